package dispatch_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

func (f fixture) request(t *testing.T, needed int, w domain.Window, requires ...volunteer.Certification) uuid.UUID {
	t.Helper()
	id := uuid.New()
	if err := f.svc.ReceiveRequest(context.Background(), meta, request.Receive{RequestID: id, Kind: request.RapidResponse, Window: w,
		Region: "East", Languages: []string{"es"}, Certifications: requires, Needed: needed, Priority: request.Urgent, PersonID: uuid.New(),
		PersonName: "Rosa", MeetingPoint: "Warehouse on 5th"}); err != nil {
		t.Fatal(err)
	}
	return id
}

// served takes a volunteer through a whole assignment: offered,
// accepted, arrived, done.
func (f fixture) served(t *testing.T, v uuid.UUID, r uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	a, err := f.svc.Offer(ctx, meta, r, v, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []request.AssignmentStatus{request.Accepted, request.Arrived, request.Done} {
		if err := f.svc.ChangeAssignment(ctx, meta, r, a, to); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTwoDispatchersAssigningOneVolunteerToOverlappingRequestsOneWins(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v := f.veteran(t, "rapid_response")
	east := f.request(t, 1, domain.Window{Start: monday.Add(time.Hour), End: monday.Add(3 * time.Hour)}, "rapid_response")
	north := f.request(t, 1, domain.Window{Start: monday.Add(2 * time.Hour), End: monday.Add(4 * time.Hour)}, "rapid_response")

	for round := range 5 { // the same instant, several times over
		errs := make([]error, 2)
		ids := make([]uuid.UUID, 2)
		var wg sync.WaitGroup
		for i, r := range []uuid.UUID{east, north} {
			wg.Go(func() { ids[i], errs[i] = f.svc.Offer(ctx, meta, r, v, false) })
		}
		wg.Wait()
		var overlap *volunteer.OverlapError
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.As(err, &overlap):
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d offers won, want exactly 1 (%v)", round, won, errs)
		}
		// Free the volunteer for the next round.
		for i, r := range []uuid.UUID{east, north} {
			if errs[i] == nil {
				if err := f.svc.ChangeAssignment(ctx, meta, r, ids[i], request.Withdrawn); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func TestAnAssignmentNamesTheTeamRuleThatBlocksIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.request(t, 1, domain.Window{Start: monday.Add(time.Hour), End: monday.Add(2 * time.Hour)})
	newcomer := f.volunteer(t)
	_, err := f.svc.Offer(ctx, meta, r, newcomer, false)
	var rule *request.RuleError
	if !errors.As(err, &rule) || rule.Rule != "first_assignment_alone" {
		t.Fatalf("a newcomer alone: %v, want the first_assignment_alone rule", err)
	}
	st, _, _ := eventstore.LoadState(ctx, f.store, volunteer.Decider, volunteer.StreamID(newcomer))
	if len(st.Commitments) != 0 {
		t.Error("the refused offer left a commitment on the volunteer")
	}
	veteran := f.veteran(t)
	if _, err := f.svc.Offer(ctx, meta, r, veteran, false); err != nil {
		t.Fatalf("an experienced volunteer: %v", err)
	}
	if _, err := f.svc.Offer(ctx, meta, r, newcomer, false); !errors.As(err, &rule) || rule.Rule != "team_full" {
		t.Errorf("a second volunteer on a request needing one: %v, want team_full", err)
	}
	if _, err := f.svc.Offer(ctx, meta, r, newcomer, true); err != nil {
		t.Errorf("with an explicit override: %v", err)
	}
}

func TestAVolunteerWhoServedWithAVeteranMayThenGoAlone(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	past := domain.Window{Start: monday.AddDate(0, 0, -7), End: monday.AddDate(0, 0, -7).Add(time.Hour)}
	pair := f.request(t, 2, past)
	veteran, newcomer := f.veteran(t), f.volunteer(t)
	if _, err := f.svc.Offer(ctx, meta, pair, veteran, false); err != nil {
		t.Fatal(err)
	}
	f.served(t, newcomer, pair)
	alone := f.request(t, 1, domain.Window{Start: monday.Add(time.Hour), End: monday.Add(2 * time.Hour)})
	if _, err := f.svc.Offer(ctx, meta, alone, newcomer, false); err != nil {
		t.Errorf("after one completed assignment: %v", err)
	}
}

// TestTheScenarioMorningThroughTheService walks DOMAIN.md's 06:40 report:
// received, the on-call responders in East with the certification proposed
// first, two assigned, each accepts, goes en route and arrives, the report
// is confirmed and the region alerted, and the request resolved and closed.
func TestTheScenarioMorningThroughTheService(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var responders []uuid.UUID
	for range 3 {
		v := f.veteran(t, "rapid_response")
		if err := f.svc.Volunteer(ctx, meta, v, volunteer.SetOnCall{OnCall: true}); err != nil {
			t.Fatal(err)
		}
		responders = append(responders, v)
	}
	f.veteran(t) // not on call, not certified: not proposed
	r := f.request(t, 2, domain.Window{Start: monday, End: monday.Add(3 * time.Hour)}, "rapid_response")

	res, err := f.svc.Match(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Matches) != 3 {
		t.Fatalf("proposed %d responders, want the 3 on call and certified", len(res.Matches))
	}
	var assignments []uuid.UUID
	for _, m := range res.Matches[:2] {
		a, err := f.svc.Offer(ctx, meta, r, m.VolunteerID, false)
		if err != nil {
			t.Fatal(err)
		}
		assignments = append(assignments, a)
	}
	for _, a := range assignments {
		for _, to := range []request.AssignmentStatus{request.Accepted, request.EnRoute, request.Arrived} {
			if err := f.svc.ChangeAssignment(ctx, meta, r, a, to); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.svc.Request(ctx, meta, r, request.Alert{}); !errors.Is(err, request.ErrNotConfirmed) {
		t.Fatalf("an alert before confirmation: %v", err)
	}
	for _, c := range []request.Command{request.Verify{Outcome: request.Confirmed}, request.Alert{},
		request.Resolve{Outcome: "verified_no_action", At: monday.Add(time.Hour)}, request.Close{At: monday.Add(2 * time.Hour)}} {
		if err := f.svc.Request(ctx, meta, r, c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	st, _, _ := eventstore.LoadState(ctx, f.store, request.Decider, r)
	if st.Status() != request.Closed || !st.Alerted || st.Verification != request.Confirmed {
		t.Errorf("the request ends %s, alerted %v, %s; want closed, alerted, confirmed", st.Status(), st.Alerted, st.Verification)
	}
}

func TestThePeopleOfRequestsClosedBeforeTheCutoffAreDueForForgetting(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	closed := f.request(t, 1, domain.Window{Start: monday, End: monday.Add(time.Hour)})
	f.request(t, 1, domain.Window{Start: monday, End: monday.Add(time.Hour)}) // still open: never due
	if err := f.svc.Request(ctx, meta, closed, request.Cancel{Reason: "duplicate", At: monday}); err != nil {
		t.Fatal(err)
	}
	st, _, _ := eventstore.LoadState(ctx, f.store, request.Decider, closed)
	if due, err := f.svc.ClosedRequestPeople(ctx, monday); err != nil || len(due) != 0 {
		t.Fatalf("due at the closing instant = %v, %v; want none yet", due, err)
	}
	due, err := f.svc.ClosedRequestPeople(ctx, monday.Add(time.Second))
	if err != nil || len(due) != 1 || due[0] != st.PersonID {
		t.Fatalf("due after closing = %v, %v; want only the closed request's person", due, err)
	}
	if err := f.svc.Request(ctx, meta, closed, request.Reopen{Reason: "called back"}); err != nil {
		t.Fatal(err)
	}
	if due, _ := f.svc.ClosedRequestPeople(ctx, monday.AddDate(0, 2, 0)); len(due) != 0 {
		t.Errorf("a reopened request's person is due: %v", due)
	}
}

func TestCancellingARequestFreesItsVolunteers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	w := domain.Window{Start: monday.Add(time.Hour), End: monday.Add(3 * time.Hour)}
	first := f.request(t, 1, w)
	v := f.veteran(t)
	if _, err := f.svc.Offer(ctx, meta, first, v, false); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Request(ctx, meta, first, request.Cancel{Reason: "the hearing was postponed", At: monday}); err != nil {
		t.Fatal(err)
	}
	second := f.request(t, 1, w)
	if _, err := f.svc.Offer(ctx, meta, second, v, false); err != nil {
		t.Errorf("the same window after the first request was cancelled: %v", err)
	}
	if err := f.svc.Volunteer(ctx, meta, v, volunteer.Deactivate{Now: monday.Add(4 * time.Hour)}); err != nil {
		t.Errorf("deactivating once the work is over: %v", err)
	}
}

func TestARetriedOfferFindsTheAssignmentItMade(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.request(t, 1, domain.Window{Start: monday.Add(time.Hour), End: monday.Add(2 * time.Hour)})
	v := f.veteran(t)
	id := uuid.New()
	for range 2 {
		if got, err := f.svc.OfferAs(ctx, meta, id, r, v, false); err != nil || got != id {
			t.Fatalf("OfferAs = %s, %v; want %s both times", got, err, id)
		}
	}
	st, _, _ := eventstore.LoadState(ctx, f.store, request.Decider, r)
	if len(st.Assignments) != 1 {
		t.Errorf("assignments = %d, want 1", len(st.Assignments))
	}
}
