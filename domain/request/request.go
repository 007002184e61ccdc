// Package request is the aggregate of a request for volunteers: an
// accompaniment (an ICE check-in, a court hearing, a legal or medical
// appointment) known days ahead, or a rapid-response report of ICE
// activity that must be verified before any alert goes out.
//
// A request follows received → triaged → assigned → in progress →
// resolved → closed, and can be cancelled and reopened. Its assignments —
// one volunteer each, offered, accepted or declined, en route, arrived,
// done or withdrawn — live in the request's own stream, because the team
// rules are the request's: never more volunteers than needed without an
// override, every listed language and certification covered, nobody on
// their first assignment alone. Whether a volunteer is free and certified
// is the volunteer aggregate's rule; an assignment changes both streams
// together.
//
// The person's name, phone, address and the meeting point are personal
// data of the person (subject: PersonID), and so are the notes.
package request

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

// StreamType names request streams.
const StreamType = "request"

// Kind is what a request is for.
type Kind string

// Kinds.
const (
	Accompaniment Kind = "accompaniment"
	RapidResponse Kind = "rapid_response"
)

// SubKinds of accompaniment.
var SubKinds = []string{"ice_checkin", "court_hearing", "legal_appointment", "medical_appointment", "welcome_center", "other"}

// Priority orders requests on the board.
type Priority string

// Priorities.
const (
	Normal Priority = "normal"
	High   Priority = "high"
	Urgent Priority = "urgent"
)

// Status is where a request stands.
type Status string

// Statuses.
const (
	Received   Status = "received"
	Triaged    Status = "triaged"
	Assigned   Status = "assigned"
	InProgress Status = "in_progress"
	Resolved   Status = "resolved"
	Closed     Status = "closed"
	Cancelled  Status = "cancelled"
)

// Verification is where a rapid-response report stands.
type Verification string

// Verification outcomes.
const (
	Unverified    Verification = "unverified"
	Dispatched    Verification = "verifiers_dispatched"
	Confirmed     Verification = "confirmed"
	FalseAlarm    Verification = "false_alarm"
	CouldNotCheck Verification = "could_not_verify"
)

// AssignmentStatus is where one volunteer's assignment stands.
type AssignmentStatus string

// Assignment statuses.
const (
	Offered   AssignmentStatus = "offered"
	Accepted  AssignmentStatus = "accepted"
	Declined  AssignmentStatus = "declined"
	EnRoute   AssignmentStatus = "en_route"
	Arrived   AssignmentStatus = "arrived"
	Done      AssignmentStatus = "done"
	Withdrawn AssignmentStatus = "withdrawn"
)

// active tells whether an assignment still counts toward the team.
func (s AssignmentStatus) active() bool { return s != Declined && s != Withdrawn }

// Events.
type (
	// ReceivedEvent records a new request.
	ReceivedEvent struct {
		RequestID uuid.UUID     `json:"request_id"`
		Kind      Kind          `json:"kind"`
		SubKind   string        `json:"sub_kind,omitempty"`
		Window    domain.Window `json:"window"`
		Region    string        `json:"region"`
		Languages []string      `json:"languages,omitempty"`
		// Certifications every volunteer must hold.
		Certifications []volunteer.Certification `json:"certifications,omitempty"`
		// TeamCertifications at least one volunteer on the team must hold.
		TeamCertifications []volunteer.Certification `json:"team_certifications,omitempty"`
		Needed             int                       `json:"needed"`
		Priority           Priority                  `json:"priority"`
		PersonID           uuid.UUID                 `json:"person_id"`
		PersonName         string                    `json:"person_name,omitempty" pii:"person_id"`
		PersonPhone        string                    `json:"person_phone,omitempty" pii:"person_id"`
		PersonAddress      string                    `json:"person_address,omitempty" pii:"person_id"`
		MeetingPoint       string                    `json:"meeting_point,omitempty" pii:"person_id"`
		Notes              string                    `json:"notes,omitempty" pii:"person_id"`
	}
	// TriagedEvent records the dispatcher's triage and priority.
	TriagedEvent struct {
		RequestID uuid.UUID `json:"request_id"`
		Priority  Priority  `json:"priority"`
	}
	// AssignmentOffered offers the request to a volunteer.
	AssignmentOffered struct {
		RequestID    uuid.UUID `json:"request_id"`
		AssignmentID uuid.UUID `json:"assignment_id"`
		VolunteerID  uuid.UUID `json:"volunteer_id"`
		// Override records that the dispatcher assigned beyond the need.
		Override bool `json:"override,omitempty"`
	}
	// AssignmentChanged moves an assignment to a new status (accepted,
	// declined, en route, arrived, done, withdrawn) at At.
	AssignmentChanged struct {
		RequestID    uuid.UUID        `json:"request_id"`
		AssignmentID uuid.UUID        `json:"assignment_id"`
		Status       AssignmentStatus `json:"status"`
		At           time.Time        `json:"at"`
	}
	// VerificationRecorded records what verifiers found.
	VerificationRecorded struct {
		RequestID uuid.UUID    `json:"request_id"`
		Outcome   Verification `json:"outcome"`
	}
	// AlertSent records that the on-call list of the region was alerted.
	AlertSent struct {
		RequestID uuid.UUID `json:"request_id"`
		Region    string    `json:"region"`
	}
	// ResolvedEvent records the outcome.
	ResolvedEvent struct {
		RequestID uuid.UUID `json:"request_id"`
		Outcome   string    `json:"outcome"`
		At        time.Time `json:"at"`
	}
	// ClosedEvent closes the request.
	ClosedEvent struct {
		RequestID uuid.UUID `json:"request_id"`
		At        time.Time `json:"at"`
	}
	// CancelledEvent calls the request off (the reason is in the metadata).
	CancelledEvent struct {
		RequestID uuid.UUID `json:"request_id"`
		At        time.Time `json:"at"`
	}
	// ReopenedEvent reopens a closed or cancelled request.
	ReopenedEvent struct {
		RequestID uuid.UUID `json:"request_id"`
	}
)

// EventType implements domain.Event.
func (ReceivedEvent) EventType() string        { return "RequestReceived" }
func (TriagedEvent) EventType() string         { return "RequestTriaged" }
func (AssignmentOffered) EventType() string    { return "AssignmentOffered" }
func (AssignmentChanged) EventType() string    { return "AssignmentChanged" }
func (VerificationRecorded) EventType() string { return "VerificationRecorded" }
func (AlertSent) EventType() string            { return "AlertSent" }
func (ResolvedEvent) EventType() string        { return "RequestResolved" }
func (ClosedEvent) EventType() string          { return "RequestClosed" }
func (CancelledEvent) EventType() string       { return "RequestCancelled" }
func (ReopenedEvent) EventType() string        { return "RequestReopened" }

// Events lists a zero value of every event type, for registration.
var Events = []domain.Event{ReceivedEvent{}, TriagedEvent{}, AssignmentOffered{}, AssignmentChanged{}, VerificationRecorded{},
	AlertSent{}, ResolvedEvent{}, ClosedEvent{}, CancelledEvent{}, ReopenedEvent{}}

// Outcomes a request may be resolved with.
var Outcomes = []string{"accompanied", "person_released", "person_detained", "hearing_postponed", "no_show", "verified_no_action", "other"}

// Candidate is what the team rules need to know of a volunteer being
// offered the request; the volunteer aggregate supplies it.
type Candidate struct {
	VolunteerID uuid.UUID
	Languages   []string
	// Certifications are those valid for the request's whole window.
	Certifications []volunteer.Certification
	// Experienced is false for a volunteer who has never completed an
	// assignment.
	Experienced bool
}

// Commands.
type (
	// Receive records a new request.
	Receive struct {
		RequestID          uuid.UUID
		Kind               Kind
		SubKind            string
		Window             domain.Window
		Region             string
		Languages          []string
		Certifications     []volunteer.Certification
		TeamCertifications []volunteer.Certification
		Needed             int
		Priority           Priority
		PersonID           uuid.UUID
		PersonName         string
		PersonPhone        string
		PersonAddress      string
		MeetingPoint       string
		Notes              string
	}
	// Triage records the dispatcher's triage.
	Triage struct{ Priority Priority }
	// Offer offers the request to a volunteer. Team is the rest of the
	// team as it stands (the volunteers already on it), so the team rules
	// can be checked; Override allows more volunteers than needed.
	Offer struct {
		AssignmentID uuid.UUID
		Candidate    Candidate
		Team         []Candidate
		Override     bool
	}
	// ChangeAssignment moves an assignment on (accept, decline, en
	// route, arrived, done, withdraw).
	ChangeAssignment struct {
		AssignmentID uuid.UUID
		To           AssignmentStatus
		At           time.Time
	}
	// Verify records a rapid-response verification outcome.
	Verify struct{ Outcome Verification }
	// Alert alerts the region's on-call list; only after confirmation.
	Alert struct{}
	// Resolve records the outcome.
	Resolve struct {
		Outcome string
		At      time.Time
	}
	// Close closes a resolved request.
	Close struct{ At time.Time }
	// Cancel calls the request off; Reason is required.
	Cancel struct {
		Reason string
		At     time.Time
	}
	// Reopen reopens a closed or cancelled request; Reason is required.
	Reopen struct{ Reason string }
)

// Command is any of the commands above.
type Command interface{ isCommand() }

func (Receive) isCommand()          {}
func (Triage) isCommand()           {}
func (Offer) isCommand()            {}
func (ChangeAssignment) isCommand() {}
func (Verify) isCommand()           {}
func (Alert) isCommand()            {}
func (Resolve) isCommand()          {}
func (Close) isCommand()            {}
func (Cancel) isCommand()           {}
func (Reopen) isCommand()           {}

// Errors.
var (
	ErrNotFound          = errors.New("no such request")
	ErrExists            = errors.New("this request already exists")
	ErrClosed            = errors.New("this request is closed: reopen it first")
	ErrCancelled         = errors.New("this request was cancelled: reopen it first")
	ErrNotClosed         = errors.New("only a closed or cancelled request can be reopened")
	ErrNobodyArrived     = errors.New("nobody has arrived yet: a request is resolved after a volunteer arrived, or cancelled")
	ErrNotResolved       = errors.New("resolve the request before closing it")
	ErrReasonRequired    = errors.New("a reason is required")
	ErrNoSuchAssignment  = errors.New("no such assignment on this request")
	ErrAlreadyOnTeam     = errors.New("this volunteer is already on this request")
	ErrNotConfirmed      = errors.New("an alert goes out only after the report is confirmed: false alarms spread fear")
	ErrNotRapidResponse  = errors.New("only a rapid-response report is verified")
	ErrAlreadyAlerted    = errors.New("the region's on-call list was already alerted")
	ErrBadTransition     = errors.New("an assignment cannot move that way")
	ErrVerificationFinal = errors.New("this report's verification is already decided")
	ErrNoVerifierOnSite  = errors.New("a report is confirmed or called a false alarm only by a verifier who arrived on site")
)

// RuleError refuses an offer and names the team rule that blocks it.
type RuleError struct {
	// Rule is a stable code: team_full, language_missing,
	// team_certification_missing, certification_missing,
	// first_assignment_alone.
	Rule    string
	Message string
}

func (e *RuleError) Error() string { return e.Message }

// InvalidError is a command field that does not hold what it must.
type InvalidError = domain.InvalidError

// Assignment is one volunteer on the request.
type Assignment struct {
	AssignmentID uuid.UUID
	VolunteerID  uuid.UUID
	Status       AssignmentStatus
	Changed      time.Time
}

// State is a request as its events leave it.
type State struct {
	Exists             bool
	RequestID          uuid.UUID
	Kind               Kind
	Window             domain.Window
	Region             string
	Languages          []string
	Certifications     []volunteer.Certification
	TeamCertifications []volunteer.Certification
	Needed             int
	Priority           Priority
	PersonID           uuid.UUID
	Triaged            bool
	Resolved           bool
	Closed             bool
	Cancelled          bool
	Verification       Verification
	Alerted            bool
	Assignments        []Assignment
}

// Status is the request's place in its lifecycle.
func (s State) Status() Status {
	switch {
	case s.Cancelled:
		return Cancelled
	case s.Closed:
		return Closed
	case s.Resolved:
		return Resolved
	}
	for _, a := range s.Assignments {
		if a.Status == EnRoute || a.Status == Arrived || a.Status == Done {
			return InProgress
		}
	}
	if s.Active() > 0 {
		return Assigned
	}
	if s.Triaged {
		return Triaged
	}
	return Received
}

// Active is how many assignments count toward the team.
func (s State) Active() int {
	n := 0
	for _, a := range s.Assignments {
		if a.Status.active() {
			n++
		}
	}
	return n
}

// Assignment returns an assignment by id.
func (s State) Assignment(id uuid.UUID) (Assignment, bool) {
	i := slices.IndexFunc(s.Assignments, func(a Assignment) bool { return a.AssignmentID == id })
	if i < 0 {
		return Assignment{}, false
	}
	return s.Assignments[i], true
}

// OnTeam tells whether a volunteer holds an active assignment.
func (s State) OnTeam(v uuid.UUID) bool {
	return slices.ContainsFunc(s.Assignments, func(a Assignment) bool { return a.VolunteerID == v && a.Status.active() })
}

// Decider is the request aggregate.
var Decider = domain.Decider[State, Command]{
	StreamType: StreamType,
	Initial:    func() State { return State{} },
	Evolve:     evolve,
	Decide:     decide,
}

func evolve(s State, e domain.Event) State {
	switch e := e.(type) {
	case ReceivedEvent:
		s = State{Exists: true, RequestID: e.RequestID, Kind: e.Kind, Window: e.Window, Region: e.Region, Languages: e.Languages,
			Certifications: e.Certifications, TeamCertifications: e.TeamCertifications, Needed: e.Needed, Priority: e.Priority, PersonID: e.PersonID}
		if e.Kind == RapidResponse {
			s.Verification = Unverified
		}
	case TriagedEvent:
		s.Triaged, s.Priority = true, e.Priority
	case AssignmentOffered:
		s.Assignments = append(slices.Clone(s.Assignments), Assignment{AssignmentID: e.AssignmentID, VolunteerID: e.VolunteerID, Status: Offered})
		if s.Kind == RapidResponse && s.Verification == Unverified {
			s.Verification = Dispatched
		}
	case AssignmentChanged:
		s.Assignments = slices.Clone(s.Assignments)
		for i := range s.Assignments {
			if s.Assignments[i].AssignmentID == e.AssignmentID {
				s.Assignments[i].Status, s.Assignments[i].Changed = e.Status, e.At
			}
		}
	case VerificationRecorded:
		s.Verification = e.Outcome
	case AlertSent:
		s.Alerted = true
	case ResolvedEvent:
		s.Resolved = true
	case ClosedEvent:
		s.Closed = true
	case CancelledEvent:
		s.Cancelled = true
	case ReopenedEvent:
		s.Closed, s.Cancelled, s.Resolved = false, false, false
	}
	return s
}

// transitions lists where each assignment status may go.
var transitions = map[AssignmentStatus][]AssignmentStatus{
	Offered:  {Accepted, Declined, Withdrawn},
	Accepted: {EnRoute, Arrived, Withdrawn, Declined},
	EnRoute:  {Arrived, Withdrawn},
	Arrived:  {Done, Withdrawn},
}

func decide(s State, c Command) ([]domain.Event, error) {
	switch c.(type) {
	case Receive:
	case Reopen:
		if !s.Exists {
			return nil, ErrNotFound
		}
	default:
		switch {
		case !s.Exists:
			return nil, ErrNotFound
		case s.Closed:
			return nil, ErrClosed
		case s.Cancelled:
			return nil, ErrCancelled
		}
	}
	id := s.RequestID
	switch c := c.(type) {
	case Receive:
		return receive(s, c)
	case Triage:
		if !validPriority(c.Priority) {
			return nil, &InvalidError{Field: "priority", Message: "use normal, high or urgent"}
		}
		return []domain.Event{TriagedEvent{RequestID: id, Priority: c.Priority}}, nil
	case Offer:
		return offer(s, c)
	case ChangeAssignment:
		a, ok := s.Assignment(c.AssignmentID)
		if !ok {
			return nil, ErrNoSuchAssignment
		}
		if a.Status == c.To {
			return nil, nil
		}
		if !slices.Contains(transitions[a.Status], c.To) {
			return nil, fmt.Errorf("%w: from %s to %s", ErrBadTransition, a.Status, c.To)
		}
		return []domain.Event{AssignmentChanged{RequestID: id, AssignmentID: c.AssignmentID, Status: c.To, At: c.At.UTC()}}, nil
	case Verify:
		switch {
		case s.Kind != RapidResponse:
			return nil, ErrNotRapidResponse
		case s.Verification == Confirmed || s.Verification == FalseAlarm || s.Verification == CouldNotCheck:
			return nil, ErrVerificationFinal
		case c.Outcome != Confirmed && c.Outcome != FalseAlarm && c.Outcome != CouldNotCheck:
			return nil, &InvalidError{Field: "outcome", Message: "use confirmed, false_alarm or could_not_verify"}
		case c.Outcome != CouldNotCheck && !slices.ContainsFunc(s.Assignments, func(a Assignment) bool { return a.Status == Arrived || a.Status == Done }):
			return nil, ErrNoVerifierOnSite
		}
		return []domain.Event{VerificationRecorded{RequestID: id, Outcome: c.Outcome}}, nil
	case Alert:
		switch {
		case s.Kind != RapidResponse:
			return nil, ErrNotRapidResponse
		case s.Verification != Confirmed:
			return nil, ErrNotConfirmed
		case s.Alerted:
			return nil, ErrAlreadyAlerted
		}
		return []domain.Event{AlertSent{RequestID: id, Region: s.Region}}, nil
	case Resolve:
		if !slices.Contains(Outcomes, c.Outcome) {
			return nil, &InvalidError{Field: "outcome", Message: "use one of " + strings.Join(Outcomes, ", ")}
		}
		arrived := slices.ContainsFunc(s.Assignments, func(a Assignment) bool { return a.Status == Arrived || a.Status == Done })
		if !arrived {
			return nil, ErrNobodyArrived
		}
		return []domain.Event{ResolvedEvent{RequestID: id, Outcome: c.Outcome, At: c.At.UTC()}}, nil
	case Close:
		if !s.Resolved {
			return nil, ErrNotResolved
		}
		return []domain.Event{ClosedEvent{RequestID: id, At: c.At.UTC()}}, nil
	case Cancel:
		if strings.TrimSpace(c.Reason) == "" {
			return nil, ErrReasonRequired
		}
		return []domain.Event{CancelledEvent{RequestID: id, At: c.At.UTC()}}, nil
	case Reopen:
		if !s.Closed && !s.Cancelled {
			return nil, ErrNotClosed
		}
		if strings.TrimSpace(c.Reason) == "" {
			return nil, ErrReasonRequired
		}
		return []domain.Event{ReopenedEvent{RequestID: id}}, nil
	}
	return nil, fmt.Errorf("request: unknown command %T", c)
}

// MaxDuration bounds a request's window: a longer one is almost always a
// mistyped date (next year's), and would keep its volunteers busy for it.
const MaxDuration = 7 * 24 * time.Hour

func validPriority(p Priority) bool { return p == Normal || p == High || p == Urgent }

func receive(s State, c Receive) ([]domain.Event, error) {
	if s.Exists {
		return nil, ErrExists
	}
	switch {
	case c.RequestID == uuid.Nil || c.PersonID == uuid.Nil:
		return nil, &InvalidError{Field: "request_id", Message: "a request and a person id are required"}
	case c.Kind != Accompaniment && c.Kind != RapidResponse:
		return nil, &InvalidError{Field: "kind", Message: "use accompaniment or rapid_response"}
	case c.Kind == Accompaniment && !slices.Contains(SubKinds, c.SubKind):
		return nil, &InvalidError{Field: "sub_kind", Message: "use one of " + strings.Join(SubKinds, ", ")}
	case strings.TrimSpace(c.Region) == "":
		return nil, &InvalidError{Field: "region", Message: "is required"}
	case c.Needed < 1 || c.Needed > 50:
		return nil, &InvalidError{Field: "needed", Message: "must be from 1 to 50 volunteers"}
	case !validPriority(c.Priority):
		return nil, &InvalidError{Field: "priority", Message: "use normal, high or urgent"}
	case len(c.Notes) > 4000:
		return nil, &InvalidError{Field: "notes", Message: "is longer than 4000 characters"}
	}
	if err := c.Window.Check(); err != nil {
		return nil, &InvalidError{Field: "window", Message: err.Error()}
	}
	if c.Window.Duration() > MaxDuration {
		return nil, &InvalidError{Field: "end", Message: "a request lasts at most 7 days: check the end's date, or enter a longer need as several requests"}
	}
	if c.Kind == RapidResponse {
		c.SubKind = ""
	}
	return []domain.Event{ReceivedEvent{RequestID: c.RequestID, Kind: c.Kind, SubKind: c.SubKind,
		Window: domain.Window{Start: c.Window.Start.UTC(), End: c.Window.End.UTC()}, Region: strings.TrimSpace(c.Region),
		Languages: c.Languages, Certifications: c.Certifications, TeamCertifications: c.TeamCertifications, Needed: c.Needed, Priority: c.Priority, PersonID: c.PersonID,
		PersonName: strings.TrimSpace(c.PersonName), PersonPhone: strings.TrimSpace(c.PersonPhone),
		PersonAddress: strings.TrimSpace(c.PersonAddress), MeetingPoint: strings.TrimSpace(c.MeetingPoint), Notes: c.Notes}}, nil
}

func offer(s State, c Offer) ([]domain.Event, error) {
	v := c.Candidate
	switch {
	case c.AssignmentID == uuid.Nil || v.VolunteerID == uuid.Nil:
		return nil, &InvalidError{Field: "volunteer_id", Message: "is required"}
	}
	if a, ok := s.Assignment(c.AssignmentID); ok && a.VolunteerID == v.VolunteerID {
		return nil, nil // a retried offer
	}
	if s.OnTeam(v.VolunteerID) {
		return nil, ErrAlreadyOnTeam
	}
	if s.Active() >= s.Needed && !c.Override {
		return nil, &RuleError{Rule: "team_full",
			Message: fmt.Sprintf("the request needs %d volunteers and has them: assign more only with an explicit override", s.Needed)}
	}
	team := append(slices.Clone(c.Team), v)
	if !v.Experienced && !slices.ContainsFunc(c.Team, func(m Candidate) bool { return m.Experienced }) {
		return nil, &RuleError{Rule: "first_assignment_alone",
			Message: "this volunteer has not completed an assignment yet: assign an experienced volunteer to the team first"}
	}
	if s.Active()+1 == s.Needed {
		// The last place: the team must now cover every need.
		for _, lang := range s.Languages {
			if !slices.ContainsFunc(team, func(m Candidate) bool { return slices.Contains(m.Languages, lang) }) {
				return nil, &RuleError{Rule: "language_missing",
					Message: fmt.Sprintf("nobody on the team would speak %s: the last place must go to someone who does", lang)}
			}
		}
		for _, cert := range s.TeamCertifications {
			if !slices.ContainsFunc(team, func(m Candidate) bool { return slices.Contains(m.Certifications, cert) }) {
				return nil, &RuleError{Rule: "team_certification_missing",
					Message: fmt.Sprintf("nobody on the team would hold the %s certification: the last place must go to someone who does", cert)}
			}
		}
	}
	for _, cert := range s.Certifications {
		if !slices.Contains(v.Certifications, cert) {
			return nil, &RuleError{Rule: "certification_missing",
				Message: fmt.Sprintf("the volunteer does not hold the %s certification valid for the whole request", cert)}
		}
	}
	return []domain.Event{AssignmentOffered{RequestID: s.RequestID, AssignmentID: c.AssignmentID, VolunteerID: v.VolunteerID,
		Override: s.Active() >= s.Needed}}, nil
}
