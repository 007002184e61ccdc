// Package privacy holds the events of Presente's duty to forget: a data
// subject (a person served, a volunteer) whose personal data has been
// destroyed by crypto-shredding.
package privacy

import "github.com/google/uuid"

// StreamType names the streams of data subjects.
const StreamType = "subject"

// namespace derives subject stream ids (UUIDv5) from subject ids, so that a
// subject's stream never takes the id of the aggregate the subject is
// (an account's stream has the account's own id).
var namespace = uuid.MustParse("5b0d2c1e-8a4f-4c55-9d7e-2f1a6c3b9e10")

// StreamID returns the id of the stream that records what happened to a
// subject's personal data.
func StreamID(subject uuid.UUID) uuid.UUID { return uuid.NewSHA1(namespace, subject[:]) }

// SubjectForgotten records that a subject's data key was destroyed, so
// every piece of their personal data in the log and its backups is
// unreadable. It names the subject by its random id only.
type SubjectForgotten struct {
	SubjectID uuid.UUID `json:"subject_id"`
}

// EventType implements domain.Event.
func (SubjectForgotten) EventType() string { return "SubjectForgotten" }
