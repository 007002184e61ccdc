// Package shift is the aggregate of a shift: a time slot with a role (court
// watch, hotline, on-call rapid response, welcome center), a region or
// place, a capacity and the certifications it requires. Volunteers claim
// its slots; once it is full they join an ordered waitlist, and when a slot
// is released the first on the waitlist is promoted at once.
//
// The shift decides capacity, the waitlist's order, release cutoffs,
// check-in and swaps. Whether a volunteer may take a slot at all (active,
// certified for the whole window, not busy elsewhere) is the volunteer
// aggregate's rule: the command runs against both streams at once.
package shift

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/volunteer"
)

// StreamType names shift streams.
const StreamType = "shift"

// MaxCapacity bounds a shift's slots.
const MaxCapacity = 500

// Events.
type (
	// Scheduled opens a shift.
	Scheduled struct {
		ShiftID   uuid.UUID                 `json:"shift_id"`
		Role      string                    `json:"role"`
		Window    domain.Window             `json:"window"`
		Region    string                    `json:"region"`
		Place     string                    `json:"place,omitempty"`
		Capacity  int                       `json:"capacity"`
		Requires  []volunteer.Certification `json:"requires,omitempty"`
		Languages []string                  `json:"languages,omitempty"`
		// SeriesID ties together the shifts of a weekly series.
		SeriesID uuid.UUID `json:"series_id,omitzero"`
	}
	// Claimed gives a volunteer a slot.
	Claimed struct {
		ShiftID     uuid.UUID `json:"shift_id"`
		VolunteerID uuid.UUID `json:"volunteer_id"`
	}
	// Waitlisted puts a volunteer at the end of the waitlist.
	Waitlisted struct {
		ShiftID     uuid.UUID `json:"shift_id"`
		VolunteerID uuid.UUID `json:"volunteer_id"`
	}
	// Released frees a volunteer's slot; Late when it came after the
	// release cutoff (its reason is in the metadata).
	Released struct {
		ShiftID     uuid.UUID `json:"shift_id"`
		VolunteerID uuid.UUID `json:"volunteer_id"`
		Late        bool      `json:"late,omitempty"`
	}
	// Promoted moves the first volunteer on the waitlist into a freed slot.
	Promoted struct {
		ShiftID     uuid.UUID `json:"shift_id"`
		VolunteerID uuid.UUID `json:"volunteer_id"`
	}
	// LeftWaitlist takes a volunteer off the waitlist.
	LeftWaitlist struct {
		ShiftID     uuid.UUID `json:"shift_id"`
		VolunteerID uuid.UUID `json:"volunteer_id"`
	}
	// CheckedIn records when a volunteer actually arrived.
	CheckedIn struct {
		ShiftID     uuid.UUID `json:"shift_id"`
		VolunteerID uuid.UUID `json:"volunteer_id"`
		At          time.Time `json:"at"`
	}
	// CheckedOut records when a volunteer left, and the minutes served.
	CheckedOut struct {
		ShiftID     uuid.UUID `json:"shift_id"`
		VolunteerID uuid.UUID `json:"volunteer_id"`
		At          time.Time `json:"at"`
		Minutes     int       `json:"minutes"`
	}
	// Cancelled calls the shift off; every claimant and waitlisted
	// volunteer is let go (the reason, which they are told, is in the
	// metadata).
	Cancelled struct {
		ShiftID uuid.UUID `json:"shift_id"`
		// Claimants and Waitlisted are who was let go, so that each can be
		// told (absent from events recorded before they were added).
		Claimants  []uuid.UUID `json:"claimants,omitempty"`
		Waitlisted []uuid.UUID `json:"waitlisted,omitempty"`
	}
	// SwapOffered: a volunteer offers their slot to another.
	SwapOffered struct {
		ShiftID uuid.UUID `json:"shift_id"`
		From    uuid.UUID `json:"from"`
		To      uuid.UUID `json:"to"`
	}
	// SwapAccepted: the other volunteer took the slot.
	SwapAccepted struct {
		ShiftID uuid.UUID `json:"shift_id"`
		From    uuid.UUID `json:"from"`
		To      uuid.UUID `json:"to"`
	}
	// SwapWithdrawn: the offer ended unaccepted (declined or withdrawn).
	SwapWithdrawn struct {
		ShiftID uuid.UUID `json:"shift_id"`
		From    uuid.UUID `json:"from"`
		To      uuid.UUID `json:"to"`
	}
)

// EventType implements domain.Event.
func (Scheduled) EventType() string     { return "ShiftScheduled" }
func (Claimed) EventType() string       { return "ShiftSlotClaimed" }
func (Waitlisted) EventType() string    { return "ShiftWaitlisted" }
func (Released) EventType() string      { return "ShiftSlotReleased" }
func (Promoted) EventType() string      { return "ShiftWaitlistPromoted" }
func (LeftWaitlist) EventType() string  { return "ShiftWaitlistLeft" }
func (CheckedIn) EventType() string     { return "ShiftCheckedIn" }
func (CheckedOut) EventType() string    { return "ShiftCheckedOut" }
func (Cancelled) EventType() string     { return "ShiftCancelled" }
func (SwapOffered) EventType() string   { return "ShiftSwapOffered" }
func (SwapAccepted) EventType() string  { return "ShiftSwapAccepted" }
func (SwapWithdrawn) EventType() string { return "ShiftSwapWithdrawn" }

// Events lists a zero value of every event type, for registration.
var Events = []domain.Event{Scheduled{}, Claimed{}, Waitlisted{}, Released{}, Promoted{}, LeftWaitlist{},
	CheckedIn{}, CheckedOut{}, Cancelled{}, SwapOffered{}, SwapAccepted{}, SwapWithdrawn{}}

// Commands.
type (
	// Schedule opens the shift.
	Schedule struct {
		ShiftID   uuid.UUID
		Role      string
		Window    domain.Window
		Region    string
		Place     string
		Capacity  int
		Requires  []volunteer.Certification
		Languages []string
		SeriesID  uuid.UUID
	}
	// Claim asks for a slot, or a place on the waitlist when full.
	Claim struct {
		VolunteerID uuid.UUID
		Now         time.Time
	}
	// Release gives a slot back (or leaves the waitlist). After Cutoff
	// before the start, a Reason is required. The first on the waitlist
	// not in Skip (found unable to take it) is promoted.
	Release struct {
		VolunteerID uuid.UUID
		Now         time.Time
		Cutoff      time.Duration
		Reason      string
		Skip        []uuid.UUID
	}
	// CheckIn records the actual arrival time At, known at Now.
	CheckIn struct {
		VolunteerID uuid.UUID
		At, Now     time.Time
	}
	// CheckOut records the actual departure time At, known at Now.
	CheckOut struct {
		VolunteerID uuid.UUID
		At, Now     time.Time
	}
	// Cancel calls the shift off; Reason is required.
	Cancel struct{ Reason string }
	// OfferSwap offers From's slot to To.
	OfferSwap struct{ From, To uuid.UUID }
	// AcceptSwap: To takes the slot offered to them.
	AcceptSwap struct{ To uuid.UUID }
	// WithdrawSwap ends From's pending offer: From changed their mind.
	WithdrawSwap struct{ From uuid.UUID }
	// DeclineSwap ends every offer pending to To: To says no.
	DeclineSwap struct{ To uuid.UUID }
)

// Command is any of the commands above.
type Command interface{ isCommand() }

func (Schedule) isCommand()     {}
func (Claim) isCommand()        {}
func (Release) isCommand()      {}
func (CheckIn) isCommand()      {}
func (CheckOut) isCommand()     {}
func (Cancel) isCommand()       {}
func (OfferSwap) isCommand()    {}
func (AcceptSwap) isCommand()   {}
func (WithdrawSwap) isCommand() {}
func (DeclineSwap) isCommand()  {}

// Errors.
var (
	ErrNotFound          = errors.New("no such shift")
	ErrExists            = errors.New("this shift already exists")
	ErrCancelled         = errors.New("this shift was cancelled")
	ErrOver              = errors.New("this shift is over")
	ErrAlreadyClaimed    = errors.New("this volunteer already holds a slot on this shift")
	ErrAlreadyWaitlisted = errors.New("this volunteer is already on this shift's waitlist")
	ErrNotClaimed        = errors.New("this volunteer holds no slot on this shift")
	ErrLateRelease       = errors.New("the release cutoff has passed: say why you cannot come, so the coordinator can find someone")
	ErrReasonRequired    = errors.New("a reason is required: the claimants are told why")
	ErrNotCheckedIn      = errors.New("this volunteer has not checked in")
	ErrAlreadyCheckedIn  = errors.New("this volunteer has already checked in")
	ErrNoSwap            = errors.New("no such swap offer")
	ErrSwapPending       = errors.New("this volunteer already offers their slot to someone: withdraw that offer first")
)

// InvalidError is a command field that does not hold what it must.
type InvalidError = domain.InvalidError

// State is a shift as its events leave it.
type State struct {
	Exists    bool
	ShiftID   uuid.UUID
	Role      string
	Window    domain.Window
	Region    string
	Place     string
	Capacity  int
	Requires  []volunteer.Certification
	Languages []string
	Cancelled bool
	// Claimants hold slots, in the order they got them.
	Claimants []uuid.UUID
	// Waitlist is in order: the first is promoted next.
	Waitlist   []uuid.UUID
	CheckedIn  map[uuid.UUID]time.Time
	CheckedOut map[uuid.UUID]CheckedOut
	// Swaps maps an offering claimant to whom they offer their slot.
	Swaps map[uuid.UUID]uuid.UUID
}

// Open is how many slots are free.
func (s State) Open() int { return max(0, s.Capacity-len(s.Claimants)) }

// Holds tells whether v holds a slot.
func (s State) Holds(v uuid.UUID) bool { return slices.Contains(s.Claimants, v) }

// WaitlistPosition is v's place on the waitlist, from 1; 0 when not on it.
func (s State) WaitlistPosition(v uuid.UUID) int { return slices.Index(s.Waitlist, v) + 1 }

// Decider is the shift aggregate.
var Decider = domain.Decider[State, Command]{
	StreamType: StreamType,
	Initial: func() State {
		return State{CheckedIn: map[uuid.UUID]time.Time{}, CheckedOut: map[uuid.UUID]CheckedOut{}, Swaps: map[uuid.UUID]uuid.UUID{}}
	},
	Evolve: evolve,
	Decide: decide,
}

func without(ids []uuid.UUID, v uuid.UUID) []uuid.UUID {
	return slices.DeleteFunc(slices.Clone(ids), func(x uuid.UUID) bool { return x == v })
}

func evolve(s State, e domain.Event) State {
	switch e := e.(type) {
	case Scheduled:
		s.Exists, s.ShiftID, s.Role, s.Window, s.Region, s.Place = true, e.ShiftID, e.Role, e.Window, e.Region, e.Place
		s.Capacity, s.Requires, s.Languages = e.Capacity, e.Requires, e.Languages
	case Claimed:
		s.Claimants = append(slices.Clone(s.Claimants), e.VolunteerID)
	case Waitlisted:
		s.Waitlist = append(slices.Clone(s.Waitlist), e.VolunteerID)
	case Released:
		s.Claimants = without(s.Claimants, e.VolunteerID)
		delete(s.Swaps, e.VolunteerID)
	case Promoted:
		s.Waitlist = without(s.Waitlist, e.VolunteerID)
		s.Claimants = append(slices.Clone(s.Claimants), e.VolunteerID)
	case LeftWaitlist:
		s.Waitlist = without(s.Waitlist, e.VolunteerID)
	case CheckedIn:
		s.CheckedIn[e.VolunteerID] = e.At
	case CheckedOut:
		s.CheckedOut[e.VolunteerID] = e
	case Cancelled:
		s.Cancelled, s.Claimants, s.Waitlist, s.Swaps = true, nil, nil, map[uuid.UUID]uuid.UUID{}
	case SwapOffered:
		s.Swaps[e.From] = e.To
	case SwapAccepted:
		delete(s.Swaps, e.From)
		// The decider accepts a swap only from a claimant, but evolve
		// must read any log without panicking: a swap from someone not
		// holding a slot changes no slot.
		if i := slices.Index(s.Claimants, e.From); i >= 0 {
			s.Claimants = slices.Clone(s.Claimants)
			s.Claimants[i] = e.To
		}
		s.Waitlist = without(s.Waitlist, e.To)
	case SwapWithdrawn:
		delete(s.Swaps, e.From)
	}
	return s
}

func decide(s State, c Command) ([]domain.Event, error) {
	if _, ok := c.(Schedule); !ok {
		switch {
		case !s.Exists:
			return nil, ErrNotFound
		case s.Cancelled:
			return nil, ErrCancelled
		}
	}
	id := s.ShiftID
	switch c := c.(type) {
	case Schedule:
		return schedule(s, c)
	case Claim:
		switch {
		case !c.Now.Before(s.Window.End):
			return nil, ErrOver
		case s.Holds(c.VolunteerID):
			return nil, ErrAlreadyClaimed
		case s.WaitlistPosition(c.VolunteerID) > 0:
			return nil, ErrAlreadyWaitlisted
		case s.Open() == 0:
			return []domain.Event{Waitlisted{ShiftID: id, VolunteerID: c.VolunteerID}}, nil
		}
		return []domain.Event{Claimed{ShiftID: id, VolunteerID: c.VolunteerID}}, nil
	case Release:
		return release(s, c)
	case CheckIn:
		switch {
		case !s.Holds(c.VolunteerID):
			return nil, ErrNotClaimed
		case !s.CheckedIn[c.VolunteerID].IsZero():
			return nil, ErrAlreadyCheckedIn
		case c.At.After(c.Now):
			return nil, &InvalidError{Field: "at", Message: "is in the future: check in when you arrive"}
		case c.At.Before(s.Window.Start.Add(-2*time.Hour)) || !c.At.Before(s.Window.End):
			return nil, &InvalidError{Field: "at", Message: "must be within the shift (from two hours before its start)"}
		}
		return []domain.Event{CheckedIn{ShiftID: id, VolunteerID: c.VolunteerID, At: c.At.UTC()}}, nil
	case CheckOut:
		in := s.CheckedIn[c.VolunteerID]
		switch {
		case in.IsZero():
			return nil, ErrNotCheckedIn
		case s.CheckedOut[c.VolunteerID].VolunteerID != uuid.Nil:
			return nil, &InvalidError{Field: "at", Message: "this volunteer has already checked out"}
		case !c.At.After(in):
			return nil, &InvalidError{Field: "at", Message: "must be after the check-in"}
		case c.At.After(c.Now):
			return nil, &InvalidError{Field: "at", Message: "is in the future"}
		}
		return []domain.Event{CheckedOut{ShiftID: id, VolunteerID: c.VolunteerID, At: c.At.UTC(), Minutes: int(c.At.Sub(in).Minutes())}}, nil
	case Cancel:
		if strings.TrimSpace(c.Reason) == "" {
			return nil, ErrReasonRequired
		}
		return []domain.Event{Cancelled{ShiftID: id, Claimants: slices.Clone(s.Claimants), Waitlisted: slices.Clone(s.Waitlist)}}, nil
	case OfferSwap:
		switch {
		case !s.Holds(c.From):
			return nil, ErrNotClaimed
		case s.Holds(c.To):
			return nil, ErrAlreadyClaimed
		case c.To == uuid.Nil || c.To == c.From:
			return nil, &InvalidError{Field: "to", Message: "name another volunteer"}
		}
		if to, ok := s.Swaps[c.From]; ok {
			if to == c.To {
				return nil, nil
			}
			return nil, ErrSwapPending
		}
		return []domain.Event{SwapOffered{ShiftID: id, From: c.From, To: c.To}}, nil
	case AcceptSwap:
		if s.Holds(c.To) {
			return nil, ErrAlreadyClaimed
		}
		// Offers to the same volunteer are taken oldest claimant first, so
		// the choice never depends on map order.
		for _, from := range s.Claimants {
			if s.Swaps[from] == c.To {
				return []domain.Event{SwapAccepted{ShiftID: id, From: from, To: c.To}}, nil
			}
		}
		return nil, ErrNoSwap
	case WithdrawSwap:
		to, ok := s.Swaps[c.From]
		if !ok {
			return nil, ErrNoSwap
		}
		return []domain.Event{SwapWithdrawn{ShiftID: id, From: c.From, To: to}}, nil
	case DeclineSwap:
		var declined []domain.Event
		for _, from := range s.Claimants {
			if s.Swaps[from] == c.To {
				declined = append(declined, SwapWithdrawn{ShiftID: id, From: from, To: c.To})
			}
		}
		if len(declined) == 0 {
			return nil, ErrNoSwap
		}
		return declined, nil
	}
	return nil, fmt.Errorf("shift: unknown command %T", c)
}

func schedule(s State, c Schedule) ([]domain.Event, error) {
	if s.Exists {
		return nil, ErrExists
	}
	role, region := strings.TrimSpace(c.Role), strings.TrimSpace(c.Region)
	switch {
	case c.ShiftID == uuid.Nil:
		return nil, &InvalidError{Field: "shift_id", Message: "is required"}
	case role == "" || len(role) > 100:
		return nil, &InvalidError{Field: "role", Message: "is required: what the volunteers do (court watch, hotline, ...), at most 100 characters"}
	case region == "" || len(region) > 100:
		return nil, &InvalidError{Field: "region", Message: "is required, at most 100 characters"}
	case len(c.Place) > 200:
		return nil, &InvalidError{Field: "place", Message: "is longer than 200 characters"}
	case c.Capacity < 1 || c.Capacity > MaxCapacity:
		return nil, &InvalidError{Field: "capacity", Message: fmt.Sprintf("must be from 1 to %d", MaxCapacity)}
	}
	if err := c.Window.Check(); err != nil {
		return nil, &InvalidError{Field: "window", Message: err.Error()}
	}
	if c.Window.Duration() > 24*time.Hour {
		return nil, &InvalidError{Field: "window", Message: "a shift lasts at most 24 hours"}
	}
	return []domain.Event{Scheduled{ShiftID: c.ShiftID, Role: role, Window: domain.Window{Start: c.Window.Start.UTC(), End: c.Window.End.UTC()},
		Region: region, Place: strings.TrimSpace(c.Place), Capacity: c.Capacity, Requires: c.Requires, Languages: c.Languages,
		SeriesID: c.SeriesID}}, nil
}

func release(s State, c Release) ([]domain.Event, error) {
	id := s.ShiftID
	if s.WaitlistPosition(c.VolunteerID) > 0 {
		return []domain.Event{LeftWaitlist{ShiftID: id, VolunteerID: c.VolunteerID}}, nil
	}
	if !s.Holds(c.VolunteerID) {
		return nil, ErrNotClaimed
	}
	if !c.Now.Before(s.Window.End) {
		return nil, ErrOver
	}
	late := !c.Now.Before(s.Window.Start.Add(-c.Cutoff))
	if late && strings.TrimSpace(c.Reason) == "" {
		return nil, ErrLateRelease
	}
	events := []domain.Event{Released{ShiftID: id, VolunteerID: c.VolunteerID, Late: late}}
	for _, next := range s.Waitlist {
		if !slices.Contains(c.Skip, next) {
			events = append(events, Promoted{ShiftID: id, VolunteerID: next})
			break
		}
	}
	return events, nil
}
