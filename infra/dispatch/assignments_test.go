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
	st, _, _ := eventstore.LoadState(ctx, f.store, volunteer.Decider, newcomer)
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
