// Package retention is the aggregate of Presente's retention by default:
// personal data is shredded automatically once its retention period has run
// out, unless a legal hold pauses that. One well-known stream records the
// holds and every completed run, so "when was retention paused, by whom,
// and what did each run forget?" has an exact answer.
//
// The events hold no personal data: runs name forgotten subjects by their
// random ids only, and a hold's reason travels in the event metadata.
package retention

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
)

// StreamType names the retention stream.
const StreamType = "retention"

// StreamID is the id of the one retention stream.
var StreamID = uuid.MustParse("33fb0bcb-de66-4845-92e6-149869dca70c")

// Events.
type (
	// LegalHoldPlaced pauses retention: nothing is forgotten automatically
	// until the hold is lifted.
	LegalHoldPlaced struct {
		At time.Time `json:"at"`
	}
	// LegalHoldLifted resumes retention.
	LegalHoldLifted struct {
		At time.Time `json:"at"`
	}
	// RunCompleted records one retention run: when it ran, the cutoff it
	// used (data of what closed before it was due), the subjects it forgot
	// and how many it tried to forget and could not.
	RunCompleted struct {
		At        time.Time   `json:"at"`
		Cutoff    time.Time   `json:"cutoff"`
		Forgotten []uuid.UUID `json:"forgotten"`
		Failed    int         `json:"failed"`
	}
)

// EventType implements domain.Event.
func (LegalHoldPlaced) EventType() string { return "LegalHoldPlaced" }
func (LegalHoldLifted) EventType() string { return "LegalHoldLifted" }
func (RunCompleted) EventType() string    { return "RetentionRunCompleted" }

// Events lists a zero value of every event type, for registration.
var Events = []domain.Event{LegalHoldPlaced{}, LegalHoldLifted{}, RunCompleted{}}

// Commands.
type (
	// PlaceLegalHold pauses retention from At.
	PlaceLegalHold struct{ At time.Time }
	// LiftLegalHold resumes retention from At.
	LiftLegalHold struct{ At time.Time }
	// RecordRun records a run that started At with the given cutoff.
	RecordRun struct {
		At        time.Time
		Cutoff    time.Time
		Forgotten []uuid.UUID
		Failed    int
	}
)

// Command is any of the commands above.
type Command interface{ isCommand() }

func (PlaceLegalHold) isCommand() {}
func (LiftLegalHold) isCommand()  {}
func (RecordRun) isCommand()      {}

// Errors.
var (
	// ErrOnHold refuses a run while a legal hold is in place.
	ErrOnHold = errors.New("retention is paused by a legal hold: nothing may be forgotten automatically until it is lifted")
	// ErrAlreadyOnHold refuses a second hold: there is one hold at a time,
	// and a silent no-op would let a second coordinator believe their hold
	// (and its reason) was recorded.
	ErrAlreadyOnHold = errors.New("a legal hold is already in place")
	// ErrNotOnHold refuses to lift a hold that is not in place.
	ErrNotOnHold = errors.New("there is no legal hold to lift")
)

// InvalidError is a command field that does not hold what it must.
type InvalidError = domain.InvalidError

// State is retention as its events leave it.
type State struct {
	OnHold bool
	// HeldSince is when the current hold was placed; zero when not on hold.
	HeldSince time.Time
	// LastRun is when the last recorded run started; zero before the first.
	LastRun       time.Time
	LastCutoff    time.Time
	LastForgotten int
	LastFailed    int
}

// Decider is the retention aggregate.
var Decider = domain.Decider[State, Command]{
	StreamType: StreamType,
	Initial:    func() State { return State{} },
	Evolve:     evolve,
	Decide:     decide,
}

func evolve(s State, e domain.Event) State {
	switch e := e.(type) {
	case LegalHoldPlaced:
		s.OnHold, s.HeldSince = true, e.At
	case LegalHoldLifted:
		s.OnHold, s.HeldSince = false, time.Time{}
	case RunCompleted:
		s.LastRun, s.LastCutoff, s.LastForgotten, s.LastFailed = e.At, e.Cutoff, len(e.Forgotten), e.Failed
	}
	return s
}

func decide(s State, c Command) ([]domain.Event, error) {
	switch c := c.(type) {
	case PlaceLegalHold:
		if c.At.IsZero() {
			return nil, &InvalidError{Field: "at", Message: "is required"}
		}
		if s.OnHold {
			return nil, fmt.Errorf("%w (since %s): lift it before placing another", ErrAlreadyOnHold, s.HeldSince.UTC().Format(time.RFC3339))
		}
		return []domain.Event{LegalHoldPlaced{At: c.At}}, nil
	case LiftLegalHold:
		if c.At.IsZero() {
			return nil, &InvalidError{Field: "at", Message: "is required"}
		}
		if !s.OnHold {
			return nil, ErrNotOnHold
		}
		return []domain.Event{LegalHoldLifted{At: c.At}}, nil
	case RecordRun:
		if err := validRun(c); err != nil {
			return nil, err
		}
		if s.OnHold {
			return nil, ErrOnHold
		}
		return []domain.Event{RunCompleted{At: c.At, Cutoff: c.Cutoff, Forgotten: slices.Clone(c.Forgotten), Failed: c.Failed}}, nil
	}
	return nil, fmt.Errorf("retention: unknown command %T", c)
}

func validRun(c RecordRun) error {
	switch {
	case c.At.IsZero():
		return &InvalidError{Field: "at", Message: "is required"}
	case c.Cutoff.IsZero():
		return &InvalidError{Field: "cutoff", Message: "is required"}
	case c.Cutoff.After(c.At):
		return &InvalidError{Field: "cutoff", Message: "is after the run: the retention period cannot be negative"}
	case c.Failed < 0:
		return &InvalidError{Field: "failed", Message: "is negative"}
	}
	seen := make(map[uuid.UUID]bool, len(c.Forgotten))
	for _, id := range c.Forgotten {
		switch {
		case id == uuid.Nil:
			return &InvalidError{Field: "forgotten", Message: "holds the nil uuid"}
		case seen[id]:
			return &InvalidError{Field: "forgotten", Message: "names a subject twice: a subject is forgotten once"}
		}
		seen[id] = true
	}
	return nil
}
