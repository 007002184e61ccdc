package dispatch

import (
	"context"
	"fmt"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

// RosterEntry is one volunteer of an imported roster: their registration
// and the certifications they already hold.
type RosterEntry struct {
	Register volunteer.Register
	Grants   []volunteer.Grant
}

// ImportRoster registers every entry's volunteer and grants their
// certifications in one transaction: the whole roster or nothing. An
// entry whose volunteer is already registered, as after a retried import
// whose first try committed unseen, is left as it is; registered reports,
// for each entry, whether this call registered it. A domain error names
// the entry's index.
func (s *Service) ImportRoster(ctx context.Context, meta eventstore.Metadata, entries []RosterEntry) (registered []bool, err error) {
	_, err = s.store.Transact(ctx, meta, func(ctx context.Context, l eventstore.Loader) ([]eventstore.StreamAppend, error) {
		registered = make([]bool, len(entries))
		appends := make([]eventstore.StreamAppend, 0, len(entries))
		for i, entry := range entries {
			id := volunteer.StreamID(entry.Register.VolunteerID)
			v, err := load(ctx, l, volunteer.Decider, id)
			if err != nil {
				return nil, err
			}
			if v.state.Exists {
				continue
			}
			state := v.state
			var events []domain.Event
			for _, c := range append([]volunteer.Command{entry.Register}, grants(entry.Grants)...) {
				decided, err := volunteer.Decider.Decide(state, c)
				if err != nil {
					return nil, &RosterError{Index: i, Err: err}
				}
				for _, e := range decided {
					state = volunteer.Decider.Evolve(state, e)
				}
				events = append(events, decided...)
			}
			registered[i] = true
			appends = append(appends, eventstore.StreamAppend{
				Stream: eventstore.Stream{Type: volunteer.StreamType, ID: id}, Expected: v.version, Events: events})
		}
		return appends, nil
	})
	if err != nil {
		return nil, err
	}
	return registered, nil
}

func grants(gs []volunteer.Grant) []volunteer.Command {
	out := make([]volunteer.Command, len(gs))
	for i, g := range gs {
		out[i] = g
	}
	return out
}

// RosterError is a roster entry the volunteer rules refused.
type RosterError struct {
	Index int
	Err   error
}

func (e *RosterError) Error() string { return fmt.Sprintf("roster entry %d: %v", e.Index+1, e.Err) }

func (e *RosterError) Unwrap() error { return e.Err }
