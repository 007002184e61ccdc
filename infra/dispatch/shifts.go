// Package dispatch runs the commands of the dispatch domain against the
// event log: those on one aggregate through eventstore.Execute, and those
// whose rule spans aggregates (a volunteer claiming a shift slot: the
// shift's capacity and the volunteer's other commitments) through
// eventstore.Transact, which reads and writes every stream involved in
// one transaction. It holds no rule of its own; the rules are the deciders
// in domain/.
package dispatch

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/organization"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

// Options tune the service.
type Options struct {
	// ReleaseCutoff is how long before a shift starts a slot may be
	// released without a reason; 24 hours when zero.
	ReleaseCutoff time.Duration
	// Clock gives the time; time.Now when nil.
	Clock func() time.Time
}

// Service runs dispatch commands.
type Service struct {
	store  *eventstore.Store
	cutoff time.Duration
	now    func() time.Time
}

// New returns the dispatch service. The store must register the events of
// the dispatch domain.
func New(store *eventstore.Store, opts Options) *Service {
	s := &Service{store: store, cutoff: opts.ReleaseCutoff, now: opts.Clock}
	if s.cutoff <= 0 {
		s.cutoff = 24 * time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// slotNamespace derives the id of a volunteer's commitment to a shift.
var slotNamespace = uuid.MustParse("3c9d2e71-5a0b-4f6e-9c8d-7b1a2e4f6d05")

// SlotCommitment is the id of the commitment a volunteer holds for a slot
// on a shift: the same for every claim of it, so releasing finds it.
func SlotCommitment(shiftID, volunteerID uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(slotNamespace, append(shiftID[:], volunteerID[:]...))
}

// ScheduleShift opens a shift.
func (s *Service) ScheduleShift(ctx context.Context, meta eventstore.Metadata, c shift.Schedule) error {
	_, err := eventstore.Execute(ctx, s.store, shift.Decider, c.ShiftID, shift.Command(c), meta)
	return err
}

// RegisterVolunteer opens a volunteer's record.
func (s *Service) RegisterVolunteer(ctx context.Context, meta eventstore.Metadata, c volunteer.Register) error {
	_, err := eventstore.Execute(ctx, s.store, volunteer.Decider, volunteer.StreamID(c.VolunteerID), volunteer.Command(c), meta)
	return err
}

// Volunteer runs a command on a volunteer's own record (profile, contact,
// on call, certifications, activation).
func (s *Service) Volunteer(ctx context.Context, meta eventstore.Metadata, volunteerID uuid.UUID, c volunteer.Command) error {
	_, err := eventstore.Execute(ctx, s.store, volunteer.Decider, volunteer.StreamID(volunteerID), c, meta)
	return err
}

// VolunteerState returns a volunteer's record as their events leave it.
func (s *Service) VolunteerState(ctx context.Context, id uuid.UUID) (volunteer.State, error) {
	st, _, err := eventstore.LoadState(ctx, s.store, volunteer.Decider, volunteer.StreamID(id))
	if err == nil && !st.Exists {
		err = volunteer.ErrNotFound
	}
	return st, err
}

// ShiftState returns a shift as its events leave it.
func (s *Service) ShiftState(ctx context.Context, id uuid.UUID) (shift.State, error) {
	st, _, err := eventstore.LoadState(ctx, s.store, shift.Decider, id)
	if err == nil && !st.Exists {
		err = shift.ErrNotFound
	}
	return st, err
}

// Claim is the outcome of a claim: a slot, or a place on the waitlist.
type Claim struct {
	Claimed bool `json:"claimed"`
	// Position is the place on the waitlist, from 1, when not claimed.
	Position int `json:"waitlist_position,omitempty"`
}

// lockOrder sorts volunteers by their stream's id, the order in which
// every command locks volunteers' streams, so that two commands touching
// the same volunteers never wait on each other in a cycle.
func lockOrder(volunteers []uuid.UUID) []uuid.UUID {
	out := slices.Clone(volunteers)
	slices.SortFunc(out, func(a, b uuid.UUID) int {
		sa, sb := volunteer.StreamID(a), volunteer.StreamID(b)
		return slices.Compare(sa[:], sb[:])
	})
	return out
}

// loaded is a stream read inside a transaction: its state and version.
type loaded[S any] struct {
	state   S
	version int64
}

func load[S, C any](ctx context.Context, l eventstore.Loader, d domain.Decider[S, C], id uuid.UUID) (loaded[S], error) {
	history, version, err := l(ctx, id)
	if err != nil {
		return loaded[S]{}, err
	}
	state, err := eventstore.Fold(d, history)
	return loaded[S]{state: state, version: version}, err
}

// ClaimShift gives the volunteer a slot on the shift, or a place on its
// waitlist when it is full. A slot is taken only if the volunteer is
// active, certified for the whole shift and free for its window; the shift
// and the volunteer's record change together or not at all.
func (s *Service) ClaimShift(ctx context.Context, meta eventstore.Metadata, shiftID, volunteerID uuid.UUID) (Claim, error) {
	var out Claim
	_, err := s.store.Transact(ctx, meta, func(ctx context.Context, l eventstore.Loader) ([]eventstore.StreamAppend, error) {
		sh, err := load(ctx, l, shift.Decider, shiftID)
		if err != nil {
			return nil, err
		}
		events, err := shift.Decider.Decide(sh.state, shift.Claim{VolunteerID: volunteerID, Now: s.now()})
		if err != nil {
			return nil, err
		}
		v, err := load(ctx, l, volunteer.Decider, volunteer.StreamID(volunteerID))
		if err != nil {
			return nil, err
		}
		commit := volunteer.Commit{CommitmentID: SlotCommitment(shiftID, volunteerID), Kind: volunteer.ShiftSlot,
			Window: sh.state.Window, Requires: sh.state.Requires, Ref: shiftID}
		committed, err := volunteer.Decider.Decide(v.state, commit)
		var overlap *volunteer.OverlapError
		switch _, waitlisted := events[0].(shift.Waitlisted); {
		case waitlisted && errors.As(err, &overlap):
			// Busy now, perhaps free by the time a slot opens: the
			// waitlist keeps them, and promotion checks again.
			committed, err = nil, nil
		case waitlisted && err == nil:
			committed = nil // nothing is held until promoted
		}
		if err != nil {
			return nil, err
		}
		after := shift.Decider.Evolve(sh.state, events[0])
		out = Claim{Claimed: after.Holds(volunteerID), Position: after.WaitlistPosition(volunteerID)}
		return []eventstore.StreamAppend{
			{Stream: eventstore.Stream{Type: shift.StreamType, ID: shiftID}, Expected: sh.version, Events: events},
			{Stream: eventstore.Stream{Type: volunteer.StreamType, ID: volunteer.StreamID(volunteerID)}, Expected: v.version, Events: committed},
		}, nil
	})
	return out, err
}

// ReleaseShift gives the volunteer's slot back (or takes them off the
// waitlist). After the release cutoff a reason is required, carried in
// meta. The first on the waitlist who can take the freed slot (active,
// certified, free) is promoted in the same transaction; those who cannot
// keep their place for later.
func (s *Service) ReleaseShift(ctx context.Context, meta eventstore.Metadata, shiftID, volunteerID uuid.UUID) error {
	_, err := s.store.Transact(ctx, meta, func(ctx context.Context, l eventstore.Loader) ([]eventstore.StreamAppend, error) {
		sh, err := load(ctx, l, shift.Decider, shiftID)
		if err != nil {
			return nil, err
		}
		release := shift.Release{VolunteerID: volunteerID, Now: s.now(), Cutoff: s.cutoff, Reason: meta.Reason}
		appends := []eventstore.StreamAppend{}
		for {
			events, err := shift.Decider.Decide(sh.state, release)
			if err != nil {
				return nil, err
			}
			appends = []eventstore.StreamAppend{{Stream: eventstore.Stream{Type: shift.StreamType, ID: shiftID}, Expected: sh.version, Events: events}}
			if _, left := events[0].(shift.LeftWaitlist); left {
				return appends, nil
			}
			leaving, err := s.releaseCommitment(ctx, l, shiftID, volunteerID)
			if err != nil {
				return nil, err
			}
			appends = append(appends, leaving)
			promoted, ok := events[len(events)-1].(shift.Promoted)
			if !ok {
				return appends, nil
			}
			p, err := load(ctx, l, volunteer.Decider, volunteer.StreamID(promoted.VolunteerID))
			if err != nil {
				return nil, err
			}
			committed, err := volunteer.Decider.Decide(p.state, volunteer.Commit{CommitmentID: SlotCommitment(shiftID, promoted.VolunteerID),
				Kind: volunteer.ShiftSlot, Window: sh.state.Window, Requires: sh.state.Requires, Ref: shiftID})
			if err == nil {
				return append(appends, eventstore.StreamAppend{Stream: eventstore.Stream{Type: volunteer.StreamType, ID: volunteer.StreamID(promoted.VolunteerID)},
					Expected: p.version, Events: committed}), nil
			}
			// They cannot take it now: pass them over, keeping their place.
			release.Skip = append(release.Skip, promoted.VolunteerID)
		}
	})
	return err
}

// releaseCommitment ends the volunteer's commitment to the shift slot.
func (s *Service) releaseCommitment(ctx context.Context, l eventstore.Loader, shiftID, volunteerID uuid.UUID) (eventstore.StreamAppend, error) {
	v, err := load(ctx, l, volunteer.Decider, volunteer.StreamID(volunteerID))
	if err != nil {
		return eventstore.StreamAppend{}, err
	}
	events, err := volunteer.Decider.Decide(v.state, volunteer.Release{CommitmentID: SlotCommitment(shiftID, volunteerID)})
	if errors.Is(err, volunteer.ErrNoSuchCommitment) {
		events, err = nil, nil // nothing held on their side
	}
	return eventstore.StreamAppend{Stream: eventstore.Stream{Type: volunteer.StreamType, ID: volunteer.StreamID(volunteerID)}, Expected: v.version, Events: events}, err
}

// Shift runs a command on a shift alone: check-in and check-out (with the
// service's clock as Now), offering or withdrawing a swap.
func (s *Service) Shift(ctx context.Context, meta eventstore.Metadata, shiftID uuid.UUID, c shift.Command) error {
	switch cmd := c.(type) {
	case shift.CheckIn:
		cmd.Now = s.now()
		if cmd.At.IsZero() {
			cmd.At = cmd.Now
		}
		c = cmd
	case shift.CheckOut:
		cmd.Now = s.now()
		if cmd.At.IsZero() {
			cmd.At = cmd.Now
		}
		c = cmd
	}
	_, err := eventstore.Execute(ctx, s.store, shift.Decider, shiftID, c, meta)
	return err
}

// CancelShift calls a shift off with the reason in meta, and frees every
// claimant's window, in one transaction.
func (s *Service) CancelShift(ctx context.Context, meta eventstore.Metadata, shiftID uuid.UUID) error {
	_, err := s.store.Transact(ctx, meta, func(ctx context.Context, l eventstore.Loader) ([]eventstore.StreamAppend, error) {
		sh, err := load(ctx, l, shift.Decider, shiftID)
		if err != nil {
			return nil, err
		}
		events, err := shift.Decider.Decide(sh.state, shift.Cancel{Reason: meta.Reason})
		if err != nil {
			return nil, err
		}
		appends := []eventstore.StreamAppend{{Stream: eventstore.Stream{Type: shift.StreamType, ID: shiftID}, Expected: sh.version, Events: events}}
		for _, v := range lockOrder(sh.state.Claimants) {
			leaving, err := s.releaseCommitment(ctx, l, shiftID, v)
			if err != nil {
				return nil, err
			}
			appends = append(appends, leaving)
		}
		return appends, nil
	})
	return err
}

// AcceptSwap hands the slot offered to volunteer To over: the shift, the
// giver's record and the taker's (who must be free and certified) change
// together.
func (s *Service) AcceptSwap(ctx context.Context, meta eventstore.Metadata, shiftID, to uuid.UUID) error {
	_, err := s.store.Transact(ctx, meta, func(ctx context.Context, l eventstore.Loader) ([]eventstore.StreamAppend, error) {
		sh, err := load(ctx, l, shift.Decider, shiftID)
		if err != nil {
			return nil, err
		}
		events, err := shift.Decider.Decide(sh.state, shift.AcceptSwap{To: to})
		if err != nil {
			return nil, err
		}
		from := events[0].(shift.SwapAccepted).From
		appends := []eventstore.StreamAppend{{Stream: eventstore.Stream{Type: shift.StreamType, ID: shiftID}, Expected: sh.version, Events: events}}
		for _, v := range lockOrder([]uuid.UUID{from, to}) {
			if v == from {
				leaving, err := s.releaseCommitment(ctx, l, shiftID, from)
				if err != nil {
					return nil, err
				}
				appends = append(appends, leaving)
				continue
			}
			taker, err := load(ctx, l, volunteer.Decider, volunteer.StreamID(to))
			if err != nil {
				return nil, err
			}
			committed, err := volunteer.Decider.Decide(taker.state, volunteer.Commit{CommitmentID: SlotCommitment(shiftID, to),
				Kind: volunteer.ShiftSlot, Window: sh.state.Window, Requires: sh.state.Requires, Ref: shiftID})
			if err != nil {
				return nil, err
			}
			appends = append(appends, eventstore.StreamAppend{Stream: eventstore.Stream{Type: volunteer.StreamType, ID: volunteer.StreamID(to)},
				Expected: taker.version, Events: committed})
		}
		return appends, nil
	})
	return err
}

// Settings returns the organization's settings.
func (s *Service) Settings(ctx context.Context) (organization.Settings, error) {
	st, _, err := eventstore.LoadState(ctx, s.store, organization.Decider, organization.StreamID)
	return st, err
}

// SetTimeZone sets the zone the organization reads times in, an IANA name
// looked up in the time zone database the binary carries.
func (s *Service) SetTimeZone(ctx context.Context, meta eventstore.Metadata, zone string) error {
	_, err := time.LoadLocation(zone)
	c := organization.SetTimeZone{TimeZone: zone, Known: err == nil && zone != "" && zone != "Local"}
	_, err = eventstore.Execute(ctx, s.store, organization.Decider, organization.StreamID, organization.Command(c), meta)
	return err
}

// UncoveredWork is work a volunteer still holds without a certification
// it requires valid for its whole window: left behind when a
// certification is revoked or renewed with an earlier expiry. The
// coordinator decides whether to release them from it.
type UncoveredWork struct {
	CommitmentID uuid.UUID                 `json:"commitment_id"`
	Kind         volunteer.Kind            `json:"kind"`
	Ref          uuid.UUID                 `json:"ref"`
	Start        time.Time                 `json:"start"`
	End          time.Time                 `json:"end"`
	Missing      []volunteer.Certification `json:"missing"`
}

// Uncovered lists the work v holds whose required certifications v no
// longer holds for its window, by start time.
func (s *Service) Uncovered(ctx context.Context, v volunteer.State) ([]UncoveredWork, error) {
	var out []UncoveredWork
	for _, c := range v.Commitments {
		var requires []volunteer.Certification
		switch c.Kind {
		case volunteer.ShiftSlot:
			sh, err := s.ShiftState(ctx, c.Ref)
			if err != nil {
				return nil, err
			}
			requires = sh.Requires
		case volunteer.Assignment:
			req, _, err := eventstore.LoadSealedState(ctx, s.store, request.Decider, c.Ref)
			if err != nil {
				return nil, err
			}
			requires = req.Certifications
		}
		var missing []volunteer.Certification
		for _, cert := range requires {
			if !v.Certified(cert, c.Window) {
				missing = append(missing, cert)
			}
		}
		if len(missing) > 0 {
			out = append(out, UncoveredWork{CommitmentID: c.CommitmentID, Kind: c.Kind, Ref: c.Ref,
				Start: c.Window.Start, End: c.Window.End, Missing: missing})
		}
	}
	slices.SortFunc(out, func(a, b UncoveredWork) int { return a.Start.Compare(b.Start) })
	return out, nil
}
