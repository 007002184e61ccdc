// Package training holds two aggregates: courses, the catalog of what the
// network teaches (know-your-rights, court accompaniment, rapid response
// and legal observing, de-escalation, interpreting …), each naming the
// certification it grants and for how long; and sessions, a course given
// on a date at a place to a bounded number of volunteers, whose attendance
// earns the certification.
//
// A session copies its course's certification and validity when it is
// scheduled, so a later change to the course never rewrites what an
// earlier session granted.
package training

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

// Stream types.
const (
	CourseStreamType  = "course"
	SessionStreamType = "training_session"
)

// MaxValidityMonths bounds how long a certification may be valid.
const MaxValidityMonths = 120

// Course events.
type (
	// CourseAdded puts a course in the catalog. ValidityMonths 0 means
	// the certification never expires.
	CourseAdded struct {
		CourseID       uuid.UUID               `json:"course_id"`
		Name           string                  `json:"name"`
		Certification  volunteer.Certification `json:"certification"`
		ValidityMonths int                     `json:"validity_months,omitempty"`
	}
	// CourseChanged renames a course or changes its validity for
	// sessions scheduled from now on.
	CourseChanged struct {
		CourseID       uuid.UUID `json:"course_id"`
		Name           string    `json:"name"`
		ValidityMonths int       `json:"validity_months,omitempty"`
	}
	// CourseRetired takes a course out of the catalog.
	CourseRetired struct {
		CourseID uuid.UUID `json:"course_id"`
	}
)

// Session events.
type (
	// SessionScheduled schedules a course session.
	SessionScheduled struct {
		SessionID      uuid.UUID               `json:"session_id"`
		CourseID       uuid.UUID               `json:"course_id"`
		Certification  volunteer.Certification `json:"certification"`
		ValidityMonths int                     `json:"validity_months,omitempty"`
		Window         domain.Window           `json:"window"`
		Place          string                  `json:"place"`
		Capacity       int                     `json:"capacity"`
		// TrainerID is the trainer's account or volunteer id: a name
		// would be personal data in the clear.
		TrainerID uuid.UUID `json:"trainer_id,omitzero"`
	}
	// Enrolled gives a volunteer a seat.
	Enrolled struct {
		SessionID   uuid.UUID `json:"session_id"`
		VolunteerID uuid.UUID `json:"volunteer_id"`
	}
	// Unenrolled gives a seat back.
	Unenrolled struct {
		SessionID   uuid.UUID `json:"session_id"`
		VolunteerID uuid.UUID `json:"volunteer_id"`
	}
	// AttendanceRecorded records whether an enrolled volunteer attended.
	AttendanceRecorded struct {
		SessionID   uuid.UUID `json:"session_id"`
		VolunteerID uuid.UUID `json:"volunteer_id"`
		Attended    bool      `json:"attended"`
	}
	// CertificationIssued records that the session's certification was
	// granted to an attendee, valid until ExpiresAt (never when zero).
	CertificationIssued struct {
		SessionID   uuid.UUID `json:"session_id"`
		VolunteerID uuid.UUID `json:"volunteer_id"`
		GrantedAt   time.Time `json:"granted_at"`
		ExpiresAt   time.Time `json:"expires_at,omitzero"`
	}
	// SessionCancelled calls the session off (the reason is in the
	// metadata).
	SessionCancelled struct {
		SessionID uuid.UUID `json:"session_id"`
	}
)

// EventType implements domain.Event.
func (CourseAdded) EventType() string         { return "CourseAdded" }
func (CourseChanged) EventType() string       { return "CourseChanged" }
func (CourseRetired) EventType() string       { return "CourseRetired" }
func (SessionScheduled) EventType() string    { return "TrainingSessionScheduled" }
func (Enrolled) EventType() string            { return "TrainingEnrolled" }
func (Unenrolled) EventType() string          { return "TrainingUnenrolled" }
func (AttendanceRecorded) EventType() string  { return "TrainingAttendanceRecorded" }
func (CertificationIssued) EventType() string { return "TrainingCertificationIssued" }
func (SessionCancelled) EventType() string    { return "TrainingSessionCancelled" }

// Events lists a zero value of every event type, for registration.
var Events = []domain.Event{CourseAdded{}, CourseChanged{}, CourseRetired{}, SessionScheduled{}, Enrolled{}, Unenrolled{},
	AttendanceRecorded{}, CertificationIssued{}, SessionCancelled{}}

// Errors.
var (
	ErrCourseNotFound   = errors.New("no such course")
	ErrCourseExists     = errors.New("this course already exists")
	ErrCourseRetired    = errors.New("this course is retired")
	ErrSessionNotFound  = errors.New("no such training session")
	ErrSessionExists    = errors.New("this training session already exists")
	ErrSessionCancelled = errors.New("this training session was cancelled")
	ErrSessionFull      = errors.New("this training session is full")
	ErrAlreadyEnrolled  = errors.New("this volunteer is already enrolled")
	ErrNotEnrolled      = errors.New("this volunteer is not enrolled in this session")
	ErrNotAttended      = errors.New("the certification is granted only to volunteers who attended")
	ErrNotYetHeld       = errors.New("attendance is recorded once the session has started")
	ErrAlreadyIssued    = errors.New("this session's certification was already granted to this volunteer")
	ErrReasonRequired   = errors.New("a reason is required: the enrolled volunteers are told why")
	ErrSessionStarted   = errors.New("the session has started: seats can no longer be taken or given back")
)

// InvalidError is a command field that does not hold what it must.
type InvalidError = domain.InvalidError

// Course commands.
type (
	// AddCourse puts a course in the catalog.
	AddCourse struct {
		CourseID       uuid.UUID
		Name           string
		Certification  volunteer.Certification
		ValidityMonths int
	}
	// ChangeCourse renames a course or changes its validity.
	ChangeCourse struct {
		Name           string
		ValidityMonths int
	}
	// RetireCourse takes it out of the catalog.
	RetireCourse struct{}
)

// CourseCommand is any course command.
type CourseCommand interface{ isCourseCommand() }

func (AddCourse) isCourseCommand()    {}
func (ChangeCourse) isCourseCommand() {}
func (RetireCourse) isCourseCommand() {}

// Course is a course as its events leave it.
type Course struct {
	Exists         bool
	CourseID       uuid.UUID
	Name           string
	Certification  volunteer.Certification
	ValidityMonths int
	Retired        bool
}

// CourseDecider is the course aggregate.
var CourseDecider = domain.Decider[Course, CourseCommand]{
	StreamType: CourseStreamType,
	Initial:    func() Course { return Course{} },
	Evolve: func(c Course, e domain.Event) Course {
		switch e := e.(type) {
		case CourseAdded:
			return Course{Exists: true, CourseID: e.CourseID, Name: e.Name, Certification: e.Certification, ValidityMonths: e.ValidityMonths}
		case CourseChanged:
			c.Name, c.ValidityMonths = e.Name, e.ValidityMonths
		case CourseRetired:
			c.Retired = true
		}
		return c
	},
	Decide: decideCourse,
}

func decideCourse(c Course, cmd CourseCommand) ([]domain.Event, error) {
	if _, ok := cmd.(AddCourse); !ok {
		switch {
		case !c.Exists:
			return nil, ErrCourseNotFound
		case c.Retired:
			return nil, ErrCourseRetired
		}
	}
	switch cmd := cmd.(type) {
	case AddCourse:
		if c.Exists {
			return nil, ErrCourseExists
		}
		name, err := checkCourse(cmd.Name, cmd.ValidityMonths)
		if err != nil {
			return nil, err
		}
		if cmd.CourseID == uuid.Nil {
			return nil, &InvalidError{Field: "course_id", Message: "is required"}
		}
		if cmd.Certification == "" || len(cmd.Certification) > 64 || strings.Trim(string(cmd.Certification), "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			return nil, &InvalidError{Field: "certification", Message: "use lower-case letters, digits and _, such as court_accompaniment"}
		}
		return []domain.Event{CourseAdded{CourseID: cmd.CourseID, Name: name, Certification: cmd.Certification, ValidityMonths: cmd.ValidityMonths}}, nil
	case ChangeCourse:
		name, err := checkCourse(cmd.Name, cmd.ValidityMonths)
		if err != nil {
			return nil, err
		}
		if name == c.Name && cmd.ValidityMonths == c.ValidityMonths {
			return nil, nil
		}
		return []domain.Event{CourseChanged{CourseID: c.CourseID, Name: name, ValidityMonths: cmd.ValidityMonths}}, nil
	case RetireCourse:
		return []domain.Event{CourseRetired{CourseID: c.CourseID}}, nil
	}
	return nil, fmt.Errorf("course: unknown command %T", cmd)
}

func checkCourse(name string, months int) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "" || len(name) > 120:
		return "", &InvalidError{Field: "name", Message: "is required, at most 120 characters"}
	case months < 0 || months > MaxValidityMonths:
		return "", &InvalidError{Field: "validity_months", Message: fmt.Sprintf("must be from 0 (never expires) to %d", MaxValidityMonths)}
	}
	return name, nil
}

// Session commands.
type (
	// ScheduleSession schedules a session of Course.
	ScheduleSession struct {
		SessionID uuid.UUID
		Course    Course
		Window    domain.Window
		Place     string
		Capacity  int
		TrainerID uuid.UUID
	}
	// Enroll gives a volunteer a seat, before the session starts.
	Enroll struct {
		VolunteerID uuid.UUID
		Now         time.Time
	}
	// Unenroll gives the seat back, before the session starts.
	Unenroll struct {
		VolunteerID uuid.UUID
		Now         time.Time
	}
	// RecordAttendance records whether an enrolled volunteer came.
	RecordAttendance struct {
		VolunteerID uuid.UUID
		Attended    bool
		Now         time.Time
	}
	// IssueCertification grants the session's certification to an
	// attendee, from the session's end.
	IssueCertification struct{ VolunteerID uuid.UUID }
	// CancelSession calls it off; Reason is required.
	CancelSession struct{ Reason string }
)

// SessionCommand is any session command.
type SessionCommand interface{ isSessionCommand() }

func (ScheduleSession) isSessionCommand()    {}
func (Enroll) isSessionCommand()             {}
func (Unenroll) isSessionCommand()           {}
func (RecordAttendance) isSessionCommand()   {}
func (IssueCertification) isSessionCommand() {}
func (CancelSession) isSessionCommand()      {}

// Session is a training session as its events leave it.
type Session struct {
	Exists         bool
	SessionID      uuid.UUID
	CourseID       uuid.UUID
	Certification  volunteer.Certification
	ValidityMonths int
	Window         domain.Window
	Place          string
	TrainerID      uuid.UUID
	Capacity       int
	Cancelled      bool
	Enrolled       []uuid.UUID
	Attended       map[uuid.UUID]bool
	Issued         map[uuid.UUID]bool
}

// SessionDecider is the training session aggregate.
var SessionDecider = domain.Decider[Session, SessionCommand]{
	StreamType: SessionStreamType,
	Initial:    func() Session { return Session{Attended: map[uuid.UUID]bool{}, Issued: map[uuid.UUID]bool{}} },
	Evolve:     evolveSession,
	Decide:     decideSession,
}

func evolveSession(s Session, e domain.Event) Session {
	switch e := e.(type) {
	case SessionScheduled:
		s.Exists, s.SessionID, s.CourseID, s.Certification, s.ValidityMonths = true, e.SessionID, e.CourseID, e.Certification, e.ValidityMonths
		s.Window, s.Place, s.TrainerID, s.Capacity = e.Window, e.Place, e.TrainerID, e.Capacity
	case Enrolled:
		s.Enrolled = append(slices.Clone(s.Enrolled), e.VolunteerID)
	case Unenrolled:
		s.Enrolled = slices.DeleteFunc(slices.Clone(s.Enrolled), func(v uuid.UUID) bool { return v == e.VolunteerID })
	case AttendanceRecorded:
		s.Attended[e.VolunteerID] = e.Attended
	case CertificationIssued:
		s.Issued[e.VolunteerID] = true
	case SessionCancelled:
		s.Cancelled = true
	}
	return s
}

func decideSession(s Session, c SessionCommand) ([]domain.Event, error) {
	if _, ok := c.(ScheduleSession); !ok {
		switch {
		case !s.Exists:
			return nil, ErrSessionNotFound
		case s.Cancelled:
			return nil, ErrSessionCancelled
		}
	}
	id := s.SessionID
	switch c := c.(type) {
	case ScheduleSession:
		switch {
		case s.Exists:
			return nil, ErrSessionExists
		case c.SessionID == uuid.Nil:
			return nil, &InvalidError{Field: "session_id", Message: "is required"}
		case !c.Course.Exists:
			return nil, ErrCourseNotFound
		case c.Course.Retired:
			return nil, ErrCourseRetired
		case c.Capacity < 1 || c.Capacity > 500:
			return nil, &InvalidError{Field: "capacity", Message: "must be from 1 to 500"}
		case strings.TrimSpace(c.Place) == "" || len(c.Place) > 200:
			return nil, &InvalidError{Field: "place", Message: "is required, at most 200 characters"}
		}
		if err := c.Window.Check(); err != nil {
			return nil, &InvalidError{Field: "window", Message: err.Error()}
		}
		if c.Window.Duration() > 24*time.Hour {
			return nil, &InvalidError{Field: "end", Message: "a session lasts at most 24 hours: schedule a longer course as several sessions"}
		}
		return []domain.Event{SessionScheduled{SessionID: c.SessionID, CourseID: c.Course.CourseID, Certification: c.Course.Certification,
			ValidityMonths: c.Course.ValidityMonths, Window: domain.Window{Start: c.Window.Start.UTC(), End: c.Window.End.UTC()},
			Place: strings.TrimSpace(c.Place), Capacity: c.Capacity, TrainerID: c.TrainerID}}, nil
	case Enroll:
		switch {
		case slices.Contains(s.Enrolled, c.VolunteerID):
			return nil, ErrAlreadyEnrolled
		case !c.Now.Before(s.Window.Start):
			return nil, ErrSessionStarted
		case len(s.Enrolled) >= s.Capacity:
			return nil, ErrSessionFull
		}
		return []domain.Event{Enrolled{SessionID: id, VolunteerID: c.VolunteerID}}, nil
	case Unenroll:
		switch {
		case !slices.Contains(s.Enrolled, c.VolunteerID):
			return nil, ErrNotEnrolled
		case !c.Now.Before(s.Window.Start):
			return nil, ErrSessionStarted
		}
		return []domain.Event{Unenrolled{SessionID: id, VolunteerID: c.VolunteerID}}, nil
	case RecordAttendance:
		switch {
		case !slices.Contains(s.Enrolled, c.VolunteerID):
			return nil, ErrNotEnrolled
		case c.Now.Before(s.Window.Start):
			return nil, ErrNotYetHeld
		}
		if got, ok := s.Attended[c.VolunteerID]; ok && got == c.Attended {
			return nil, nil
		}
		return []domain.Event{AttendanceRecorded{SessionID: id, VolunteerID: c.VolunteerID, Attended: c.Attended}}, nil
	case IssueCertification:
		switch {
		case !s.Attended[c.VolunteerID]:
			return nil, ErrNotAttended
		case s.Issued[c.VolunteerID]:
			return nil, ErrAlreadyIssued
		}
		granted := s.Window.End
		var expires time.Time
		if s.ValidityMonths > 0 {
			expires = granted.AddDate(0, s.ValidityMonths, 0)
		}
		return []domain.Event{CertificationIssued{SessionID: id, VolunteerID: c.VolunteerID, GrantedAt: granted, ExpiresAt: expires}}, nil
	case CancelSession:
		if strings.TrimSpace(c.Reason) == "" {
			return nil, ErrReasonRequired
		}
		return []domain.Event{SessionCancelled{SessionID: id}}, nil
	}
	return nil, fmt.Errorf("training session: unknown command %T", c)
}
