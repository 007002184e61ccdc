package request_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/domaintest"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/volunteer"
)

var (
	req      = uuid.MustParse("0195a3b2-0000-7000-8000-0000000e0001")
	person   = uuid.MustParse("0195a3b2-0000-7000-8000-0000000e0002")
	a1       = uuid.MustParse("0195a3b2-0000-7000-8000-0000000e00a1")
	a2       = uuid.MustParse("0195a3b2-0000-7000-8000-0000000e00a2")
	marisol  = uuid.MustParse("0195a3b2-0000-7000-8000-0000000e00b1")
	joaquin  = uuid.MustParse("0195a3b2-0000-7000-8000-0000000e00b2")
	morning  = time.Date(2026, 11, 23, 6, 40, 0, 0, time.UTC)
	window   = domain.Window{Start: morning, End: morning.Add(3 * time.Hour)}
	rr       = volunteer.Certification("rapid_response")
	interp   = volunteer.Certification("interpreting")
	received = request.ReceivedEvent{RequestID: req, Kind: request.RapidResponse, Window: window, Region: "East",
		Languages: []string{"es"}, Certifications: []volunteer.Certification{rr}, Needed: 2, Priority: request.Urgent, PersonID: person,
		MeetingPoint: "Warehouse on 5th"}
)

func accompaniment(needed int) request.ReceivedEvent {
	return request.ReceivedEvent{RequestID: req, Kind: request.Accompaniment, SubKind: "court_hearing", Window: window, Region: "East",
		Languages: []string{"mam"}, TeamCertifications: []volunteer.Certification{interp}, Needed: needed, Priority: request.Normal, PersonID: person}
}

func candidate(id uuid.UUID, experienced bool, langs []string, certs ...volunteer.Certification) request.Candidate {
	return request.Candidate{VolunteerID: id, Languages: langs, Certifications: certs, Experienced: experienced}
}

var (
	veteran  = candidate(marisol, true, []string{"es", "en"}, rr)
	newcomer = candidate(joaquin, false, []string{"es"}, rr)
)

func offered(aid, vid uuid.UUID) request.AssignmentOffered {
	return request.AssignmentOffered{RequestID: req, AssignmentID: aid, VolunteerID: vid}
}

func changed(aid uuid.UUID, to request.AssignmentStatus) request.AssignmentChanged {
	return request.AssignmentChanged{RequestID: req, AssignmentID: aid, Status: to, At: morning.Add(time.Hour)}
}

func TestRequestRules(t *testing.T) {
	var (
		invalid *request.InvalidError
		rule    *request.RuleError
	)
	tests := []struct {
		name     string
		given    []domain.Event
		when     request.Command
		then     []domain.Event
		wantErr  error
		wantAs   any
		wantRule string
	}{
		{name: "an urgent rapid-response report is received in one step",
			when: request.Receive{RequestID: req, Kind: request.RapidResponse, Window: window, Region: " East ", Languages: []string{"es"},
				Certifications: []volunteer.Certification{rr}, Needed: 2, Priority: request.Urgent, PersonID: person, MeetingPoint: "Warehouse on 5th"},
			then: []domain.Event{received}},
		{name: "an accompaniment names its sub-kind",
			when: request.Receive{RequestID: req, Kind: request.Accompaniment, SubKind: "tea", Window: window, Region: "East", Needed: 1,
				Priority: request.Normal, PersonID: person}, wantAs: &invalid},
		{name: "a request cannot end before it starts",
			when: request.Receive{RequestID: req, Kind: request.RapidResponse, Window: domain.Window{Start: window.End, End: window.Start},
				Region: "East", Needed: 1, Priority: request.Urgent, PersonID: person}, wantAs: &invalid},
		{name: "a request lasting more than a week is refused as a mistyped date",
			when: request.Receive{RequestID: req, Kind: request.RapidResponse, Window: domain.Window{Start: window.Start, End: window.Start.AddDate(1, 0, 0)},
				Region: "East", Needed: 1, Priority: request.Urgent, PersonID: person}, wantAs: &invalid},
		{name: "a request needs at least one volunteer",
			when: request.Receive{RequestID: req, Kind: request.RapidResponse, Window: window, Region: "East", Priority: request.Urgent,
				PersonID: person}, wantAs: &invalid},
		{name: "an experienced, certified volunteer is offered the request",
			given: []domain.Event{received}, when: request.Offer{AssignmentID: a1, Candidate: veteran},
			then: []domain.Event{offered(a1, marisol)}},
		{name: "a volunteer without a required certification is refused, naming the rule",
			given: []domain.Event{received}, when: request.Offer{AssignmentID: a1, Candidate: candidate(marisol, true, []string{"es"})},
			wantAs: &rule, wantRule: "certification_missing"},
		{name: "no more volunteers than needed without an override",
			given:  []domain.Event{received, offered(a1, marisol), offered(a2, joaquin)},
			when:   request.Offer{AssignmentID: uuid.New(), Candidate: candidate(uuid.New(), true, []string{"es"}, rr), Team: []request.Candidate{veteran, newcomer}},
			wantAs: &rule, wantRule: "team_full"},
		{name: "an explicit override assigns beyond the need and says so",
			given: []domain.Event{received, offered(a1, marisol), offered(a2, joaquin)},
			when: request.Offer{AssignmentID: uuid.MustParse("0195a3b2-0000-7000-8000-0000000e00a3"), Candidate: candidate(uuid.MustParse("0195a3b2-0000-7000-8000-0000000e00b3"), true, []string{"es"}, rr),
				Team: []request.Candidate{veteran, newcomer}, Override: true},
			then: []domain.Event{request.AssignmentOffered{RequestID: req, AssignmentID: uuid.MustParse("0195a3b2-0000-7000-8000-0000000e00a3"),
				VolunteerID: uuid.MustParse("0195a3b2-0000-7000-8000-0000000e00b3"), Override: true}}},
		{name: "a declined assignment frees its place on the team",
			given: []domain.Event{received, offered(a1, marisol), changed(a1, request.Declined)},
			when:  request.Offer{AssignmentID: a2, Candidate: veteran},
			then:  []domain.Event{offered(a2, marisol)}},
		{name: "a volunteer already on the team is not offered twice",
			given: []domain.Event{received, offered(a1, marisol)}, when: request.Offer{AssignmentID: a2, Candidate: veteran, Team: []request.Candidate{veteran}},
			wantErr: request.ErrAlreadyOnTeam},
		{name: "nobody goes on their first assignment alone",
			given:  []domain.Event{received, offered(a1, joaquin)},
			when:   request.Offer{AssignmentID: a2, Candidate: candidate(uuid.MustParse("0195a3b2-0000-7000-8000-0000000e00b4"), false, []string{"es"}, rr), Team: []request.Candidate{newcomer}},
			wantAs: &rule, wantRule: "first_assignment_alone"},
		{name: "the last place goes to someone who speaks a listed language nobody else does",
			given:  []domain.Event{accompaniment(1)},
			when:   request.Offer{AssignmentID: a1, Candidate: candidate(marisol, true, []string{"es"}, interp)},
			wantAs: &rule, wantRule: "language_missing"},
		{name: "the last place goes to someone holding a team certification nobody else holds",
			given:  []domain.Event{accompaniment(1)},
			when:   request.Offer{AssignmentID: a1, Candidate: candidate(marisol, true, []string{"mam"})},
			wantAs: &rule, wantRule: "team_certification_missing"},
		{name: "a team covering every language and certification takes its last member",
			given: []domain.Event{accompaniment(2), offered(a1, marisol)},
			when:  request.Offer{AssignmentID: a2, Candidate: candidate(joaquin, false, []string{"es"}), Team: []request.Candidate{candidate(marisol, true, []string{"mam"}, interp)}},
			then:  []domain.Event{offered(a2, joaquin)}},
		{name: "an offered volunteer accepts",
			given: []domain.Event{received, offered(a1, marisol)},
			when:  request.ChangeAssignment{AssignmentID: a1, To: request.Accepted, At: morning.Add(time.Hour)},
			then:  []domain.Event{changed(a1, request.Accepted)}},
		{name: "an assignment cannot jump from offered to done",
			given: []domain.Event{received, offered(a1, marisol)},
			when:  request.ChangeAssignment{AssignmentID: a1, To: request.Done, At: morning}, wantErr: request.ErrBadTransition},
		{name: "a request cannot be resolved before anyone arrived",
			given: []domain.Event{received, offered(a1, marisol), changed(a1, request.Accepted), changed(a1, request.EnRoute)},
			when:  request.Resolve{Outcome: "verified_no_action", At: morning.Add(time.Hour)}, wantErr: request.ErrNobodyArrived},
		{name: "a request is resolved once a volunteer arrived",
			given: []domain.Event{received, offered(a1, marisol), changed(a1, request.Accepted), changed(a1, request.Arrived)},
			when:  request.Resolve{Outcome: "verified_no_action", At: morning.Add(2 * time.Hour)},
			then:  []domain.Event{request.ResolvedEvent{RequestID: req, Outcome: "verified_no_action", At: morning.Add(2 * time.Hour)}}},
		{name: "a request without arrivals can still be cancelled, with a reason",
			given: []domain.Event{received}, when: request.Cancel{Reason: "duplicate report", At: morning},
			then: []domain.Event{request.CancelledEvent{RequestID: req, At: morning}}},
		{name: "cancelling needs a reason",
			given: []domain.Event{received}, when: request.Cancel{At: morning}, wantErr: request.ErrReasonRequired},
		{name: "a closed request accepts no more changes",
			given: []domain.Event{received, request.ResolvedEvent{RequestID: req}, request.ClosedEvent{RequestID: req}},
			when:  request.Triage{Priority: request.High}, wantErr: request.ErrClosed},
		{name: "a closed request can be reopened with a reason",
			given: []domain.Event{received, request.ResolvedEvent{RequestID: req}, request.ClosedEvent{RequestID: req}},
			when:  request.Reopen{Reason: "the person called back"},
			then:  []domain.Event{request.ReopenedEvent{RequestID: req}}},
		{name: "an open request cannot be reopened",
			given: []domain.Event{received}, when: request.Reopen{Reason: "?"}, wantErr: request.ErrNotClosed},
		{name: "a report is confirmed by a verifier who arrived",
			given: []domain.Event{received, offered(a1, marisol), changed(a1, request.Accepted), changed(a1, request.Arrived)},
			when:  request.Verify{Outcome: request.Confirmed},
			then:  []domain.Event{request.VerificationRecorded{RequestID: req, Outcome: request.Confirmed}}},
		{name: "nobody confirms a report before a verifier is on site",
			given: []domain.Event{received, offered(a1, marisol)}, when: request.Verify{Outcome: request.Confirmed},
			wantErr: request.ErrNoVerifierOnSite},
		{name: "a report that could not be checked needs nobody on site",
			given: []domain.Event{received}, when: request.Verify{Outcome: request.CouldNotCheck},
			then: []domain.Event{request.VerificationRecorded{RequestID: req, Outcome: request.CouldNotCheck}}},
		{name: "a newcomer is not the first on a team",
			given:  []domain.Event{accompaniment(3)},
			when:   request.Offer{AssignmentID: a1, Candidate: candidate(joaquin, false, []string{"mam"}, interp)},
			wantAs: &rule, wantRule: "first_assignment_alone"},
		{name: "no alert goes out before confirmation",
			given: []domain.Event{received, offered(a1, marisol)}, when: request.Alert{}, wantErr: request.ErrNotConfirmed},
		{name: "no alert goes out after a false alarm",
			given: []domain.Event{received, request.VerificationRecorded{RequestID: req, Outcome: request.FalseAlarm}},
			when:  request.Alert{}, wantErr: request.ErrNotConfirmed},
		{name: "after confirmation the region's on-call list is alerted",
			given: []domain.Event{received, request.VerificationRecorded{RequestID: req, Outcome: request.Confirmed}},
			when:  request.Alert{}, then: []domain.Event{request.AlertSent{RequestID: req, Region: "East"}}},
		{name: "a region is alerted once",
			given: []domain.Event{received, request.VerificationRecorded{RequestID: req, Outcome: request.Confirmed}, request.AlertSent{RequestID: req, Region: "East"}},
			when:  request.Alert{}, wantErr: request.ErrAlreadyAlerted},
		{name: "an accompaniment is not verified",
			given: []domain.Event{accompaniment(1)}, when: request.Verify{Outcome: request.Confirmed}, wantErr: request.ErrNotRapidResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := request.Decider.Decide(request.Decider.Fold(tt.given), tt.when)
			domaintest.Then(t, got, err, tt.then, tt.wantErr, tt.wantAs)
			if r, ok := tt.wantAs.(**request.RuleError); ok && (*r).Rule != tt.wantRule {
				t.Fatalf("rule = %s, want %s", (*r).Rule, tt.wantRule)
			}
		})
	}
}

func TestTheStatusFollowsTheLifecycle(t *testing.T) {
	steps := []struct {
		event domain.Event
		want  request.Status
	}{
		{received, request.Received},
		{request.TriagedEvent{RequestID: req, Priority: request.Urgent}, request.Triaged},
		{offered(a1, marisol), request.Assigned},
		{changed(a1, request.Accepted), request.Assigned},
		{changed(a1, request.EnRoute), request.InProgress},
		{changed(a1, request.Arrived), request.InProgress},
		{request.ResolvedEvent{RequestID: req, Outcome: "verified_no_action"}, request.Resolved},
		{request.ClosedEvent{RequestID: req}, request.Closed},
		{request.ReopenedEvent{RequestID: req}, request.InProgress},
	}
	var history []domain.Event
	for _, st := range steps {
		history = append(history, st.event)
		if got := request.Decider.Fold(history).Status(); got != st.want {
			t.Errorf("after %s: status %s, want %s", st.event.EventType(), got, st.want)
		}
	}
	if v := request.Decider.Fold([]domain.Event{received, offered(a1, marisol)}).Verification; v != request.Dispatched {
		t.Errorf("a report with a verifier offered is %s, want verifiers_dispatched", v)
	}
}
