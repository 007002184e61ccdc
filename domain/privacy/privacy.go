// Package privacy holds the events of Presente's duty to forget: a data
// subject (a person served, a volunteer) whose personal data has been
// destroyed by crypto-shredding.
package privacy

import "github.com/google/uuid"

// StreamType names the streams of data subjects.
const StreamType = "subject"

// SubjectForgotten records that a subject's data key was destroyed, so
// every piece of their personal data in the log and its backups is
// unreadable. It names the subject by its random id only.
type SubjectForgotten struct {
	SubjectID uuid.UUID `json:"subject_id"`
}

// EventType implements domain.Event.
func (SubjectForgotten) EventType() string { return "SubjectForgotten" }
