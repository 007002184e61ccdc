package dispatch

import (
	"context"
	"time"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

// all folds every stream of a decider's type, oldest first. Lists read
// this way until the live projections (read models) take them over; it
// suits a network of hundreds, not tens of thousands.
func all[S, C any](ctx context.Context, store *eventstore.Store, d domain.Decider[S, C]) ([]S, error) {
	ids, err := store.StreamIDs(ctx, d.StreamType)
	if err != nil {
		return nil, err
	}
	out := make([]S, 0, len(ids))
	for _, id := range ids {
		st, _, err := eventstore.LoadState(ctx, store, d, id)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Volunteers lists every volunteer.
func (s *Service) Volunteers(ctx context.Context) ([]volunteer.State, error) {
	return all(ctx, s.store, volunteer.Decider)
}

// Shifts lists the shifts that overlap window, in the order scheduled.
func (s *Service) Shifts(ctx context.Context, window domain.Window) ([]shift.State, error) {
	shifts, err := all(ctx, s.store, shift.Decider)
	if err != nil {
		return nil, err
	}
	out := shifts[:0]
	for _, sh := range shifts {
		if sh.Window.Overlaps(window) {
			out = append(out, sh)
		}
	}
	return out, nil
}

// Requests lists the requests, open ones only unless closed is set.
func (s *Service) Requests(ctx context.Context, closed bool) ([]request.State, error) {
	reqs, err := all(ctx, s.store, request.Decider)
	if err != nil {
		return nil, err
	}
	out := reqs[:0]
	for _, r := range reqs {
		if st := r.Status(); closed || (st != request.Closed && st != request.Cancelled) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Now is the service's time, for callers choosing default windows.
func (s *Service) Now() time.Time { return s.now() }
