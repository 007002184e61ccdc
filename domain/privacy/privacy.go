// Package privacy holds the rules of Presente's duty to forget: a data
// subject (a person served, a volunteer) whose personal data has been
// destroyed by crypto-shredding, and the reason codes a forgetting records.
//
// A subject's stream records only that they were forgotten, once. The data
// key itself is destroyed outside the log (infra/keyring), before the
// forgetting is recorded, so a failure to record never leaves data readable.
package privacy

import (
	"errors"
	"strings"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
)

// StreamType names the streams of data subjects.
const StreamType = "subject"

// namespace derives subject stream ids (UUIDv5) from subject ids, so that a
// subject's stream never takes the id of the aggregate the subject is
// (an account's stream has the account's own id).
var namespace = uuid.MustParse("5b0d2c1e-8a4f-4c55-9d7e-2f1a6c3b9e10")

// StreamID returns the id of the stream that records what happened to a
// subject's personal data.
func StreamID(subject uuid.UUID) uuid.UUID { return uuid.NewSHA1(namespace, subject[:]) }

// Reason is why a subject was forgotten. It is a code, never free text: a
// sentence stored in the clear beside a subject's id could name the person,
// and the log keeps it forever.
type Reason string

// The reasons a forgetting may record.
const (
	// ReasonAsked: the person asked to be forgotten.
	ReasonAsked Reason = "asked"
	// ReasonRetention: the retention period after their request closed ran out.
	ReasonRetention Reason = "retention"
	// ReasonLegal: on legal advice.
	ReasonLegal Reason = "legal"
	// ReasonMistake: the record should never have been made.
	ReasonMistake Reason = "mistake"
)

// Reasons lists every reason code.
var Reasons = []Reason{ReasonAsked, ReasonRetention, ReasonLegal, ReasonMistake}

// Valid tells whether r is one of Reasons.
func (r Reason) Valid() bool {
	for _, known := range Reasons {
		if r == known {
			return true
		}
	}
	return false
}

// ErrInvalidReason is returned for a reason that is not one of Reasons.
// Its message lists the codes and never repeats what was given, which may
// be exactly the free text that must not be kept (or logged).
var ErrInvalidReason = errors.New("the reason must be a code: " + reasonList() +
	" (never free text, which could name the person)")

func reasonList() string {
	codes := make([]string, len(Reasons))
	for i, r := range Reasons {
		codes[i] = string(r)
	}
	return strings.Join(codes[:len(codes)-1], ", ") + " or " + codes[len(codes)-1]
}

// ParseReason returns s as a Reason, or ErrInvalidReason.
func ParseReason(s string) (Reason, error) {
	if r := Reason(s); r.Valid() {
		return r, nil
	}
	return "", ErrInvalidReason
}

// SubjectForgotten records that a subject's data key was destroyed, so
// every piece of their personal data in the log and its backups is
// unreadable. It names the subject by its random id only.
type SubjectForgotten struct {
	SubjectID uuid.UUID `json:"subject_id"`
}

// EventType implements domain.Event.
func (SubjectForgotten) EventType() string { return "SubjectForgotten" }

// Events lists a zero value of every event type, for registration.
var Events = []domain.Event{SubjectForgotten{}}

// ErrNoSubject is returned for a command that names no subject.
var ErrNoSubject = errors.New("the subject id is required")

// RecordForgotten records, on the subject's stream, that the subject's data
// key has been destroyed. Recording it again is harmless: a subject is
// recorded as forgotten once.
type RecordForgotten struct {
	SubjectID uuid.UUID
}

// State is a subject's stream as its events leave it.
type State struct {
	Forgotten bool
}

// Decider is the subject aggregate.
var Decider = domain.Decider[State, RecordForgotten]{
	StreamType: StreamType,
	Initial:    func() State { return State{} },
	Evolve: func(s State, e domain.Event) State {
		if _, ok := e.(SubjectForgotten); ok {
			s.Forgotten = true
		}
		return s
	},
	Decide: func(s State, c RecordForgotten) ([]domain.Event, error) {
		if c.SubjectID == uuid.Nil {
			return nil, ErrNoSubject
		}
		if s.Forgotten {
			return nil, nil
		}
		return []domain.Event{SubjectForgotten{SubjectID: c.SubjectID}}, nil
	},
}
