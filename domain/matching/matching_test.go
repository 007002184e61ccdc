package matching_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/matching"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/volunteer"
)

var (
	now    = time.Date(2026, 11, 23, 6, 40, 0, 0, time.UTC)
	report = domain.Window{Start: now, End: now.Add(3 * time.Hour)}
	rr     = volunteer.Certification("rapid_response")
)

// person builds a volunteer's state from a few facts.
type person struct {
	name                   string
	region                 string
	spanish                volunteer.Level
	onCall, onShift, cert  bool
	inactive, busy, seated bool
}

func (p person) id() uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, []byte(p.name)) }

func (p person) state() volunteer.State {
	id := p.id()
	events := []domain.Event{volunteer.Registered{VolunteerID: id, Name: p.name, Phone: "1", Regions: []string{p.region}, PriorAssignments: 3,
		Languages: []volunteer.Language{{Code: "es", Level: p.spanish}}}}
	if p.onCall {
		events = append(events, volunteer.OnCallChanged{VolunteerID: id, OnCall: true})
	}
	if p.cert {
		events = append(events, volunteer.CertificationGranted{VolunteerID: id, Certification: rr, GrantedAt: now.AddDate(-1, 0, 0)})
	}
	if p.onShift {
		events = append(events, volunteer.Committed{VolunteerID: id, CommitmentID: uuid.New(), Kind: volunteer.ShiftSlot,
			Window: domain.Window{Start: now.Add(-time.Hour), End: now.Add(3 * time.Hour)}})
	}
	if p.busy {
		events = append(events, volunteer.Committed{VolunteerID: id, CommitmentID: uuid.New(), Kind: volunteer.Assignment,
			Window: domain.Window{Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)}})
	}
	if p.inactive {
		events = append(events, volunteer.Deactivated{VolunteerID: id})
	}
	return volunteer.Decider.Fold(events)
}

var people = []person{
	{name: "oncall", region: "East", spanish: volunteer.Native, onCall: true, cert: true},
	{name: "onshift", region: "East", spanish: volunteer.Fluent, onShift: true, cert: true},
	{name: "home", region: "East", spanish: volunteer.Native, cert: true},
	{name: "west", region: "West", spanish: volunteer.Native, onCall: true, cert: true},
	{name: "english", region: "East", spanish: volunteer.Basic, onCall: true, cert: true},
	{name: "inactive", region: "East", spanish: volunteer.Native, onCall: true, cert: true, inactive: true},
	{name: "untrained", region: "East", spanish: volunteer.Native, onCall: true},
	{name: "busy", region: "East", spanish: volunteer.Native, onCall: true, cert: true, busy: true},
}

func states() []volunteer.State {
	out := make([]volunteer.State, len(people))
	for i, p := range people {
		out[i] = p.state()
	}
	return out
}

func names(ms []matching.Match) []string {
	byID := map[uuid.UUID]string{}
	for _, p := range people {
		byID[p.id()] = p.name
	}
	var out []string
	for _, m := range ms {
		out = append(out, byID[m.VolunteerID])
	}
	return out
}

func eastReport(region string) request.State {
	return request.Decider.Fold([]domain.Event{request.ReceivedEvent{RequestID: uuid.New(), Kind: request.RapidResponse, Window: report,
		Region: region, Languages: []string{"es"}, Certifications: []volunteer.Certification{rr}, Needed: 2, Priority: request.Urgent, PersonID: uuid.New()}})
}

func TestMatchingRanksWhoCanGoNowAndSaysWhy(t *testing.T) {
	res := matching.Rank(eastReport("East"), states(), now)
	if got, want := fmt.Sprint(names(res.Matches)), "[onshift oncall]"; got != want {
		t.Fatalf("matches = %s, want %s (on shift first, then on call; the rest filtered)", got, want)
	}
	for _, r := range res.Matches[0].Reasons {
		if r.Code == matching.FilterAvailable && (!r.Met || r.Detail != "on shift now") {
			t.Errorf("the reason for availability = %+v", r)
		}
	}
	if res.WithoutFilter != nil {
		t.Errorf("counts without filters = %v, want none when someone matches", res.WithoutFilter)
	}
}

func TestRelaxingAFilterLetsMoreThrough(t *testing.T) {
	res := matching.Rank(eastReport("East"), states(), now, matching.FilterAvailable, matching.FilterRegion)
	if got, want := fmt.Sprint(names(res.Matches)), "[onshift oncall west home]"; got != want {
		t.Errorf("matches with availability and region relaxed = %s, want %s", got, want)
	}
}

func TestWhenNobodyMatchesItSaysHowManyEachFilterHoldsBack(t *testing.T) {
	res := matching.Rank(eastReport("North"), states(), now)
	if len(res.Matches) != 0 {
		t.Fatalf("matches = %v, want none in a region nobody serves", names(res.Matches))
	}
	if got := res.WithoutFilter[matching.FilterRegion]; got != 3 { // oncall, onshift, west
		t.Errorf("without the region filter %d would match, want 3", got)
	}
	if got := res.WithoutFilter[matching.FilterLanguage]; got != 0 {
		t.Errorf("without the language filter %d would match, want 0", got)
	}
}
