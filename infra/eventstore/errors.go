package eventstore

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// ErrConcurrency matches (with errors.Is) every ConcurrencyError.
var ErrConcurrency = errors.New("the stream changed concurrently")

// ConcurrencyError reports that a stream was not at the version an append
// expected: someone else appended first. Reload the stream and decide again.
type ConcurrencyError struct {
	StreamID uuid.UUID
	Expected int64
	// Actual is the stream's version when the append was refused, or -1 when
	// the database did not say.
	Actual int64
}

func (e *ConcurrencyError) Error() string {
	if e.Actual < 0 {
		return fmt.Sprintf("stream %s changed concurrently (expected version %d)", e.StreamID, e.Expected)
	}
	return fmt.Sprintf("stream %s is at version %d, expected version %d: it changed concurrently", e.StreamID, e.Actual, e.Expected)
}

// Is makes errors.Is(err, ErrConcurrency) true.
func (e *ConcurrencyError) Is(target error) bool { return target == ErrConcurrency }

// ErrUnknownEventType matches (with errors.Is) every UnknownEventTypeError.
var ErrUnknownEventType = errors.New("unknown event type")

// UnknownEventTypeError reports an event type that is not registered: a
// stored event this build cannot read, or a Go event that was never
// registered. It is never ignored; an event nobody can read is a defect.
type UnknownEventTypeError struct {
	Type string
}

func (e *UnknownEventTypeError) Error() string {
	return fmt.Sprintf("unknown event type %q: register it (and any upcasters) in the event registry", e.Type)
}

// Is makes errors.Is(err, ErrUnknownEventType) true.
func (e *UnknownEventTypeError) Is(target error) bool { return target == ErrUnknownEventType }

// StreamTypeError reports an append or a command addressed to a stream that
// holds another aggregate's events.
type StreamTypeError struct {
	StreamID uuid.UUID
	Want     string
	Got      string
}

func (e *StreamTypeError) Error() string {
	return fmt.Sprintf("stream %s holds %s events, not %s", e.StreamID, e.Got, e.Want)
}
