// Package volunteer is the aggregate of the people Presente sends: their
// profile (languages, regions, on call or not), their certifications and
// when each expires, and their commitments — the assignments and shift
// slots they hold, with their windows.
//
// Commitments live here, on the volunteer's own stream, because the rule
// they serve spans every request and shift: a volunteer never holds two
// commitments whose windows overlap, and takes only work whose required
// certifications are valid for its whole window. Two dispatchers assigning
// the same volunteer at the same instant both append to this stream at the
// version they read, so exactly one succeeds.
//
// Name, phone and email are personal data of the volunteer (subject:
// VolunteerID), declared as such.
package volunteer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
)

// StreamType names volunteer streams.
const StreamType = "volunteer"

// namespace derives volunteer stream ids from volunteer ids.
var namespace = uuid.MustParse("6e1f0a3c-9b2d-4c7e-8a5f-1d3b7c9e2a40")

// StreamID returns the stream of a volunteer's record. A volunteer with an
// account shares the account's id (so they act on their own record), and
// the account's stream has that id: the record's stream is derived from it.
func StreamID(volunteerID uuid.UUID) uuid.UUID { return uuid.NewSHA1(namespace, volunteerID[:]) }

// Level is how well a volunteer speaks a language.
type Level string

// Levels, from least to most.
const (
	Basic          Level = "basic"
	Conversational Level = "conversational"
	Fluent         Level = "fluent"
	Native         Level = "native"
)

// Levels lists every level, from least to most.
var Levels = []Level{Basic, Conversational, Fluent, Native}

// rank orders levels; 0 for an unknown one.
func (l Level) rank() int { return slices.Index(Levels, l) + 1 }

// AtLeast tells whether l is at least min.
func (l Level) AtLeast(min Level) bool { return l.rank() >= min.rank() && l.rank() > 0 }

// Language is a language a volunteer speaks, as a lower-case tag ("es",
// "mam", "ht"), and how well.
type Language struct {
	Code  string `json:"code"`
	Level Level  `json:"level"`
}

// Certification names a qualification ("rapid_response", "court_accompaniment").
type Certification string

// Kind says what a commitment is.
type Kind string

// Kinds of commitment.
const (
	Assignment Kind = "assignment"
	ShiftSlot  Kind = "shift"
)

// Events.
type (
	// Registered opens a volunteer's record, active and not on call.
	Registered struct {
		VolunteerID uuid.UUID  `json:"volunteer_id"`
		UserID      uuid.UUID  `json:"user_id,omitzero"` // their account, if they have one
		Name        string     `json:"name" pii:"volunteer_id"`
		Phone       string     `json:"phone" pii:"volunteer_id"`
		Email       string     `json:"email" pii:"volunteer_id"`
		Languages   []Language `json:"languages"`
		Regions     []string   `json:"regions"`
		// PriorAssignments counts those done before Presente kept the
		// record, so a seasoned volunteer is not treated as a newcomer.
		PriorAssignments int `json:"prior_assignments,omitempty"`
	}
	// ProfileChanged replaces the languages and regions.
	ProfileChanged struct {
		VolunteerID uuid.UUID  `json:"volunteer_id"`
		Languages   []Language `json:"languages"`
		Regions     []string   `json:"regions"`
	}
	// ContactChanged replaces the contact details.
	ContactChanged struct {
		VolunteerID uuid.UUID `json:"volunteer_id"`
		Name        string    `json:"name" pii:"volunteer_id"`
		Phone       string    `json:"phone" pii:"volunteer_id"`
		Email       string    `json:"email" pii:"volunteer_id"`
	}
	// OnCallChanged turns the volunteer's on-call availability on or off.
	OnCallChanged struct {
		VolunteerID uuid.UUID `json:"volunteer_id"`
		OnCall      bool      `json:"on_call"`
	}
	// Deactivated stops sending the volunteer anywhere.
	Deactivated struct {
		VolunteerID uuid.UUID `json:"volunteer_id"`
	}
	// Activated lets a deactivated volunteer take work again.
	Activated struct {
		VolunteerID uuid.UUID `json:"volunteer_id"`
	}
	// CertificationGranted records a qualification, valid from GrantedAt
	// until ExpiresAt (never, when zero). Granting again renews it.
	CertificationGranted struct {
		VolunteerID   uuid.UUID     `json:"volunteer_id"`
		Certification Certification `json:"certification"`
		GrantedAt     time.Time     `json:"granted_at"`
		ExpiresAt     time.Time     `json:"expires_at,omitzero"`
		// SessionID is the training session that granted it, if any.
		SessionID uuid.UUID `json:"session_id,omitzero"`
	}
	// CertificationRevoked withdraws a qualification (the reason is in
	// the event's metadata).
	CertificationRevoked struct {
		VolunteerID   uuid.UUID     `json:"volunteer_id"`
		Certification Certification `json:"certification"`
	}
	// Committed records that the volunteer holds a piece of work for a
	// window: an assignment to a request, or a shift slot.
	Committed struct {
		VolunteerID  uuid.UUID     `json:"volunteer_id"`
		CommitmentID uuid.UUID     `json:"commitment_id"`
		Kind         Kind          `json:"kind"`
		Window       domain.Window `json:"window"`
		// Ref is the request or shift the work belongs to.
		Ref uuid.UUID `json:"ref,omitzero"`
	}
	// Released ends a commitment: done, declined, withdrawn or released.
	// Served is set when the work was done.
	Released struct {
		VolunteerID  uuid.UUID `json:"volunteer_id"`
		CommitmentID uuid.UUID `json:"commitment_id"`
		Served       bool      `json:"served,omitempty"`
	}
)

// EventType implements domain.Event.
func (Registered) EventType() string           { return "VolunteerRegistered" }
func (ProfileChanged) EventType() string       { return "VolunteerProfileChanged" }
func (ContactChanged) EventType() string       { return "VolunteerContactChanged" }
func (OnCallChanged) EventType() string        { return "VolunteerOnCallChanged" }
func (Deactivated) EventType() string          { return "VolunteerDeactivated" }
func (Activated) EventType() string            { return "VolunteerActivated" }
func (CertificationGranted) EventType() string { return "CertificationGranted" }
func (CertificationRevoked) EventType() string { return "CertificationRevoked" }
func (Committed) EventType() string            { return "VolunteerCommitted" }
func (Released) EventType() string             { return "VolunteerReleased" }

// Events lists a zero value of every event type, for registration.
var Events = []domain.Event{Registered{}, ProfileChanged{}, ContactChanged{}, OnCallChanged{}, Deactivated{}, Activated{},
	CertificationGranted{}, CertificationRevoked{}, Committed{}, Released{}}

// Commands.
type (
	// Register opens the record.
	Register struct {
		VolunteerID uuid.UUID
		UserID      uuid.UUID
		Name        string
		Phone       string
		Email       string
		Languages   []Language
		Regions     []string
		// PriorAssignments counts assignments done before Presente.
		PriorAssignments int
	}
	// ChangeProfile replaces languages and regions.
	ChangeProfile struct {
		Languages []Language
		Regions   []string
	}
	// ChangeContact replaces the contact details.
	ChangeContact struct{ Name, Phone, Email string }
	// SetOnCall turns on-call availability on or off.
	SetOnCall struct{ OnCall bool }
	// Deactivate stops sending the volunteer; they must hold no
	// commitment that has not ended by Now.
	Deactivate struct{ Now time.Time }
	// Activate lets them take work again.
	Activate struct{}
	// Grant records a certification.
	Grant struct {
		Certification Certification
		GrantedAt     time.Time
		ExpiresAt     time.Time
		SessionID     uuid.UUID
	}
	// Revoke withdraws a certification.
	Revoke struct{ Certification Certification }
	// Commit takes on a piece of work for a window, if the volunteer is
	// active, free for the whole window, and holds every certification in
	// Requires valid for all of it.
	Commit struct {
		CommitmentID uuid.UUID
		Kind         Kind
		Window       domain.Window
		Requires     []Certification
		// Ref is the request or shift the work belongs to.
		Ref uuid.UUID
		// FromShift lets an assignment overlap the volunteer's shift
		// slots (never another assignment): an on-call responder is
		// dispatched from the shift they are working.
		FromShift bool
	}
	// Release ends a commitment; Served when the work was done.
	Release struct {
		CommitmentID uuid.UUID
		Served       bool
	}
)

// Command is any of the commands above.
type Command interface{ isCommand() }

func (Register) isCommand()      {}
func (ChangeProfile) isCommand() {}
func (ChangeContact) isCommand() {}
func (SetOnCall) isCommand()     {}
func (Deactivate) isCommand()    {}
func (Activate) isCommand()      {}
func (Grant) isCommand()         {}
func (Revoke) isCommand()        {}
func (Commit) isCommand()        {}
func (Release) isCommand()       {}

// Errors.
var (
	ErrNotFound          = errors.New("no such volunteer")
	ErrAlreadyRegistered = errors.New("this volunteer is already registered")
	ErrInactive          = errors.New("this volunteer is deactivated: activate them first")
	ErrHasCommitments    = errors.New("this volunteer still holds assignments or shifts: release them first")
	ErrNoSuchCommitment  = errors.New("this volunteer holds no such assignment or shift")
	ErrNotCertified      = errors.New("this volunteer does not hold that certification")
)

// InvalidError is a command field that does not hold what it must.
type InvalidError = domain.InvalidError

// OverlapError refuses a commitment whose window overlaps one the
// volunteer already holds.
type OverlapError struct {
	With   uuid.UUID
	Kind   Kind
	Window domain.Window
}

func (e *OverlapError) Error() string {
	return fmt.Sprintf("the volunteer already holds %s %s from %s to %s, which overlaps",
		article(e.Kind), e.Kind, e.Window.Start.Format(time.RFC3339), e.Window.End.Format(time.RFC3339))
}

func article(k Kind) string {
	if k == Assignment {
		return "an"
	}
	return "a"
}

// CertificationError refuses work that needs a certification the
// volunteer does not hold valid for the whole window.
type CertificationError struct {
	Certification Certification
	// ExpiresAt is when the volunteer's certification runs out, if it
	// exists but expires before the window ends.
	ExpiresAt time.Time
}

func (e *CertificationError) Error() string {
	if !e.ExpiresAt.IsZero() {
		return fmt.Sprintf("the volunteer's %s certification expires %s, before the work ends", e.Certification, e.ExpiresAt.Format(time.DateOnly))
	}
	return fmt.Sprintf("the volunteer does not hold the %s certification", e.Certification)
}

// grant is a held certification.
type grant struct {
	From, Until time.Time // Until zero: never expires
}

// validFor tells whether the grant covers the whole window.
func (g grant) validFor(w domain.Window) bool {
	return !g.From.After(w.Start) && (g.Until.IsZero() || !g.Until.Before(w.End))
}

// State is a volunteer as their events leave them.
type State struct {
	Exists      bool
	VolunteerID uuid.UUID
	UserID      uuid.UUID
	// Name, Phone and Email are the contact details: a marker once the
	// volunteer is forgotten, and sealed when read inside a transaction.
	Name, Phone, Email string
	Active             bool
	OnCall             bool
	Languages          []Language
	Regions            []string
	Certifications     map[Certification]grant
	Commitments        map[uuid.UUID]Committed
	// Served counts the assignments the volunteer has completed, with
	// those done before Presente.
	Served int
}

// Speaks tells the volunteer's level in a language ("" when none).
func (s State) Speaks(code string) Level {
	for _, l := range s.Languages {
		if l.Code == code {
			return l.Level
		}
	}
	return ""
}

// InRegion tells whether the volunteer serves region.
func (s State) InRegion(region string) bool { return slices.Contains(s.Regions, region) }

// Certified tells whether the volunteer holds c valid for the whole window.
func (s State) Certified(c Certification, w domain.Window) bool {
	g, ok := s.Certifications[c]
	return ok && g.validFor(w)
}

// CertificationExpiry is when c expires (zero: never, or not held), and
// whether it is held.
func (s State) CertificationExpiry(c Certification) (time.Time, bool) {
	g, ok := s.Certifications[c]
	return g.Until, ok
}

// CertifiedFor lists the certifications valid for the whole window.
func (s State) CertifiedFor(w domain.Window) []Certification {
	var out []Certification
	for c, g := range s.Certifications {
		if g.validFor(w) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// Load is how many commitments the volunteer holds that have not ended
// by now.
func (s State) Load(now time.Time) int {
	n := 0
	for _, c := range s.Commitments {
		if c.Window.End.After(now) {
			n++
		}
	}
	return n
}

// Decider is the volunteer aggregate.
var Decider = domain.Decider[State, Command]{
	StreamType: StreamType,
	Initial: func() State {
		return State{Certifications: map[Certification]grant{}, Commitments: map[uuid.UUID]Committed{}}
	},
	Evolve: evolve,
	Decide: decide,
}

func evolve(s State, e domain.Event) State {
	switch e := e.(type) {
	case Registered:
		s.Exists, s.VolunteerID, s.UserID, s.Active = true, e.VolunteerID, e.UserID, true
		s.Name, s.Phone, s.Email = e.Name, e.Phone, e.Email
		s.Languages, s.Regions, s.Served = e.Languages, e.Regions, e.PriorAssignments
	case ProfileChanged:
		s.Languages, s.Regions = e.Languages, e.Regions
	case ContactChanged:
		s.Name, s.Phone, s.Email = e.Name, e.Phone, e.Email
	case OnCallChanged:
		s.OnCall = e.OnCall
	case Deactivated:
		s.Active, s.OnCall = false, false
	case Activated:
		s.Active = true
	case CertificationGranted:
		s.Certifications[e.Certification] = grant{From: e.GrantedAt, Until: e.ExpiresAt}
	case CertificationRevoked:
		delete(s.Certifications, e.Certification)
	case Committed:
		s.Commitments[e.CommitmentID] = e
	case Released:
		if c, ok := s.Commitments[e.CommitmentID]; ok && e.Served && c.Kind == Assignment {
			s.Served++
		}
		delete(s.Commitments, e.CommitmentID)
	}
	return s
}

func decide(s State, c Command) ([]domain.Event, error) {
	if _, ok := c.(Register); !ok && !s.Exists {
		return nil, ErrNotFound
	}
	id := s.VolunteerID
	switch c := c.(type) {
	case Register:
		if s.Exists {
			return nil, ErrAlreadyRegistered
		}
		if c.VolunteerID == uuid.Nil {
			return nil, &InvalidError{Field: "volunteer_id", Message: "is required"}
		}
		name, phone, email, err := checkContact(c.Name, c.Phone, c.Email)
		if err != nil {
			return nil, err
		}
		langs, regions, err := checkProfile(c.Languages, c.Regions)
		if err != nil {
			return nil, err
		}
		if c.PriorAssignments < 0 || c.PriorAssignments > 10000 {
			return nil, &InvalidError{Field: "prior_assignments", Message: "must be from 0 to 10000"}
		}
		return []domain.Event{Registered{VolunteerID: c.VolunteerID, UserID: c.UserID, Name: name, Phone: phone, Email: email,
			Languages: langs, Regions: regions, PriorAssignments: c.PriorAssignments}}, nil
	case ChangeProfile:
		langs, regions, err := checkProfile(c.Languages, c.Regions)
		if err != nil {
			return nil, err
		}
		return []domain.Event{ProfileChanged{VolunteerID: id, Languages: langs, Regions: regions}}, nil
	case ChangeContact:
		name, phone, email, err := checkContact(c.Name, c.Phone, c.Email)
		if err != nil {
			return nil, err
		}
		return []domain.Event{ContactChanged{VolunteerID: id, Name: name, Phone: phone, Email: email}}, nil
	case SetOnCall:
		if c.OnCall && !s.Active {
			return nil, ErrInactive
		}
		if c.OnCall == s.OnCall {
			return nil, nil
		}
		return []domain.Event{OnCallChanged{VolunteerID: id, OnCall: c.OnCall}}, nil
	case Deactivate:
		if !s.Active {
			return nil, nil
		}
		if s.Load(c.Now) > 0 {
			return nil, ErrHasCommitments
		}
		return []domain.Event{Deactivated{VolunteerID: id}}, nil
	case Activate:
		if s.Active {
			return nil, nil
		}
		return []domain.Event{Activated{VolunteerID: id}}, nil
	case Grant:
		if err := checkCertification(c.Certification); err != nil {
			return nil, err
		}
		if c.GrantedAt.IsZero() {
			return nil, &InvalidError{Field: "granted_at", Message: "is required"}
		}
		if !c.ExpiresAt.IsZero() && !c.ExpiresAt.After(c.GrantedAt) {
			return nil, &InvalidError{Field: "expires_at", Message: "must be after granted_at"}
		}
		return []domain.Event{CertificationGranted{VolunteerID: id, Certification: c.Certification,
			GrantedAt: c.GrantedAt.UTC(), ExpiresAt: c.ExpiresAt.UTC(), SessionID: c.SessionID}}, nil
	case Revoke:
		if _, ok := s.Certifications[c.Certification]; !ok {
			return nil, ErrNotCertified
		}
		return []domain.Event{CertificationRevoked{VolunteerID: id, Certification: c.Certification}}, nil
	case Commit:
		return commit(s, c)
	case Release:
		if _, ok := s.Commitments[c.CommitmentID]; !ok {
			return nil, ErrNoSuchCommitment
		}
		return []domain.Event{Released{VolunteerID: id, CommitmentID: c.CommitmentID, Served: c.Served}}, nil
	}
	return nil, fmt.Errorf("volunteer: unknown command %T", c)
}

func commit(s State, c Commit) ([]domain.Event, error) {
	if c.CommitmentID == uuid.Nil {
		return nil, &InvalidError{Field: "commitment_id", Message: "is required"}
	}
	if err := c.Window.Check(); err != nil {
		return nil, &InvalidError{Field: "window", Message: err.Error()}
	}
	if !s.Active {
		return nil, ErrInactive
	}
	if held, ok := s.Commitments[c.CommitmentID]; ok && held.Window == c.Window {
		return nil, nil // already committed: a retried command
	}
	for _, held := range s.Commitments {
		fromShift := c.FromShift && c.Kind == Assignment && held.Kind == ShiftSlot
		if held.CommitmentID != c.CommitmentID && held.Window.Overlaps(c.Window) && !fromShift {
			return nil, &OverlapError{With: held.CommitmentID, Kind: held.Kind, Window: held.Window}
		}
	}
	for _, cert := range c.Requires {
		if g, ok := s.Certifications[cert]; !ok || !g.validFor(c.Window) {
			return nil, &CertificationError{Certification: cert, ExpiresAt: g.Until}
		}
	}
	return []domain.Event{Committed{VolunteerID: s.VolunteerID, CommitmentID: c.CommitmentID, Kind: c.Kind, Window: c.Window, Ref: c.Ref}}, nil
}

// checkContact trims the contact details and checks them.
func checkContact(name, phone, email string) (string, string, string, error) {
	name, phone, email = strings.TrimSpace(name), strings.TrimSpace(phone), strings.TrimSpace(email)
	switch {
	case name == "":
		return "", "", "", &InvalidError{Field: "name", Message: "is required: a name the dispatcher can call them by"}
	case len(name) > 200:
		return "", "", "", &InvalidError{Field: "name", Message: "is longer than 200 characters"}
	case phone == "" && email == "":
		return "", "", "", &InvalidError{Field: "phone", Message: "give a phone number or an email address, so they can be reached"}
	case len(phone) > 40 || strings.Trim(phone, "+0123456789 -().") != "":
		return "", "", "", &InvalidError{Field: "phone", Message: "write digits, spaces, + - ( ) only, at most 40 characters"}
	case len(email) > 254 || (email != "" && !strings.Contains(email, "@")):
		return "", "", "", &InvalidError{Field: "email", Message: "is not an email address such as name@example.org"}
	}
	return name, phone, email, nil
}

// checkProfile normalizes languages and regions and checks them.
func checkProfile(langs []Language, regions []string) ([]Language, []string, error) {
	out := make([]Language, 0, len(langs))
	seen := map[string]bool{}
	for _, l := range langs {
		code := strings.ToLower(strings.TrimSpace(l.Code))
		switch {
		case code == "" || len(code) > 16 || strings.Trim(code, "abcdefghijklmnopqrstuvwxyz-") != "":
			return nil, nil, &InvalidError{Field: "languages", Message: fmt.Sprintf("%q is not a language tag such as es, mam or ht", l.Code)}
		case l.Level.rank() == 0:
			return nil, nil, &InvalidError{Field: "languages", Message: fmt.Sprintf("level %q: use basic, conversational, fluent or native", l.Level)}
		case seen[code]:
			return nil, nil, &InvalidError{Field: "languages", Message: fmt.Sprintf("%s is listed twice", code)}
		}
		seen[code] = true
		out = append(out, Language{Code: code, Level: l.Level})
	}
	rs := make([]string, 0, len(regions))
	for _, r := range regions {
		r = strings.TrimSpace(r)
		if r == "" || len(r) > 100 {
			return nil, nil, &InvalidError{Field: "regions", Message: "each region is a name of 1 to 100 characters"}
		}
		if !slices.Contains(rs, r) {
			rs = append(rs, r)
		}
	}
	return out, rs, nil
}

// Check refuses a certification name that is not lower-case letters,
// digits and _, at most 64 of them.
func (c Certification) Check() error { return checkCertification(c) }

// checkCertification checks a certification's name.
func checkCertification(c Certification) error {
	if c == "" || len(c) > 64 || strings.Trim(string(c), "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		return &InvalidError{Field: "certification", Message: fmt.Sprintf("%q: use lower-case letters, digits and _, such as rapid_response", c)}
	}
	return nil
}
