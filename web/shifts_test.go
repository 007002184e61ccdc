package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
)

func TestAVolunteerClaimsAndReleasesTheirOwnSlotOnly(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator, vol := e.users[account.Coordinator], e.users[account.Volunteer]
	other := e.newUser(account.Volunteer)
	for _, u := range []*user{vol, other} {
		r := e.do(coordinator, "POST", "/api/v1/volunteers", map[string]any{"user_id": u.id, "name": "Vol " + u.id.String()[:4],
			"phone": "+1 555 0100", "languages": []map[string]string{{"code": "es", "level": "fluent"}}, "regions": []string{"East"}})
		if r.status != http.StatusCreated {
			t.Fatalf("register volunteer: %d %s", r.status, r.body)
		}
	}
	start := e.throttle.Now().Add(72 * time.Hour)
	r := e.do(coordinator, "POST", "/api/v1/shifts", map[string]any{"role": "court watch", "start": start, "end": start.Add(4 * time.Hour),
		"region": "East", "place": "Immigration court", "capacity": 1})
	if r.status != http.StatusCreated {
		t.Fatalf("schedule: %d %s", r.status, r.body)
	}
	var sh struct {
		ShiftID uuid.UUID `json:"shift_id"`
	}
	decode(t, r.body, &sh)
	base := "/api/v1/shifts/" + sh.ShiftID.String()

	if r := e.do(vol, "POST", base+"/claims/"+other.id.String(), nil); r.status != http.StatusForbidden {
		t.Errorf("claiming for someone else: %d, want 403", r.status)
	}
	if r := e.do(vol, "POST", base+"/claims/"+vol.id.String(), nil); r.status != http.StatusOK || !strings.Contains(r.body, `"claimed":true`) {
		t.Fatalf("claim: %d %s", r.status, r.body)
	}
	if r := e.do(other, "POST", base+"/claims/"+other.id.String(), nil); !strings.Contains(r.body, `"waitlist_position":1`) {
		t.Fatalf("the second claim: %d %s, want waitlist position 1", r.status, r.body)
	}
	seen := e.do(other, "GET", base, nil)
	if strings.Contains(seen.body, vol.id.String()) || !strings.Contains(seen.body, `"mine":"waitlisted"`) {
		t.Errorf("a volunteer's view of the shift: %s; want their own place and nobody else's id", seen.body)
	}
	if r := e.do(vol, "POST", base+"/claims/"+vol.id.String()+"/release", nil); r.status != http.StatusOK {
		t.Fatalf("release: %d %s", r.status, r.body)
	}
	if r := e.do(other, "GET", base, nil); !strings.Contains(r.body, `"mine":"claimed"`) {
		t.Errorf("after the release the waitlisted volunteer was not promoted: %s", r.body)
	}
	if r := e.do(coordinator, "GET", base, nil); !strings.Contains(r.body, other.id.String()) {
		t.Errorf("the coordinator's view lacks the claimant: %s", r.body)
	}
}

func TestAnImpossibleShiftIsRefusedNamingTheField(t *testing.T) {
	e := newEnv(t, envOptions{})
	start := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	r := e.do(e.users[account.Coordinator], "POST", "/api/v1/shifts", map[string]any{"role": "court watch", "start": start,
		"end": start.Add(-time.Hour), "region": "East", "capacity": 1})
	if r.status != http.StatusBadRequest || r.errorCode() != "invalid_field" || !strings.Contains(r.body, `"field":"window"`) {
		t.Errorf("a shift ending before it starts: %d %s", r.status, r.body)
	}
}

func TestAWeeklySeriesSchedulesOneShiftPerWeek(t *testing.T) {
	e := newEnv(t, envOptions{})
	start := time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)
	r := e.do(e.users[account.Coordinator], "POST", "/api/v1/shifts", map[string]any{"role": "court watch", "start": start, "end": start.Add(4 * time.Hour),
		"region": "Downtown", "capacity": 3, "repeat_weeks": 4})
	mustStatus(t, r, http.StatusCreated, "schedule a series")
	var series struct {
		SeriesID uuid.UUID `json:"series_id"`
		Shifts   []struct {
			Start time.Time `json:"start"`
		} `json:"shifts"`
	}
	decode(t, r.body, &series)
	if series.SeriesID == uuid.Nil || len(series.Shifts) != 4 || !series.Shifts[3].Start.Equal(start.AddDate(0, 0, 21)) {
		t.Errorf("series = %s, want four weekly shifts under one series id", r.body)
	}
}

func TestTheVolunteerOfferedASwapDeclinesIt(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator := e.users[account.Coordinator]
	ana, beto := e.users[account.Volunteer], e.newUser(account.Volunteer)
	for _, u := range []*user{ana, beto} {
		mustStatus(t, e.do(coordinator, "POST", "/api/v1/volunteers", map[string]any{"user_id": u.id, "name": "Vol", "phone": "+1 555 0101", "regions": []string{"East"}}),
			http.StatusCreated, "register")
	}
	start := e.throttle.Now().Add(72 * time.Hour)
	r := e.do(coordinator, "POST", "/api/v1/shifts", map[string]any{"role": "hotline", "start": start, "end": start.Add(4 * time.Hour),
		"region": "East", "place": "Office", "capacity": 1})
	mustStatus(t, r, http.StatusCreated, "schedule")
	var sh struct {
		ShiftID uuid.UUID `json:"shift_id"`
	}
	decode(t, r.body, &sh)
	base := "/api/v1/shifts/" + sh.ShiftID.String()
	mustStatus(t, e.do(ana, "POST", base+"/claims/"+ana.id.String(), nil), http.StatusOK, "claim")
	mustStatus(t, e.do(ana, "POST", base+"/claims/"+ana.id.String()+"/swap", map[string]any{"to": beto.id}), http.StatusOK, "offer")
	if r := e.do(ana, "POST", base+"/swaps/"+beto.id.String()+"/decline", nil); r.status != http.StatusForbidden {
		t.Errorf("declining for the volunteer offered: %d, want 403", r.status)
	}
	mustStatus(t, e.do(beto, "POST", base+"/swaps/"+beto.id.String()+"/decline", map[string]string{"reason": "working that day"}), http.StatusOK, "decline")
	if r := e.do(beto, "POST", base+"/swaps/"+beto.id.String()+"/accept", nil); r.errorCode() != "no_swap" {
		t.Errorf("accepting a declined swap: %d %s, want 404 no_swap", r.status, r.body)
	}
	if r := e.do(coordinator, "GET", base, nil); !strings.Contains(r.body, `"claimants":["`+ana.id.String()) {
		t.Errorf("after the decline the claimant keeps the slot: %s", r.body)
	}
}
