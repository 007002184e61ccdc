package domain

import (
	"errors"
	"time"
)

// Window is a span of time, [Start, End): a shift, a hearing, an
// accompaniment. Times are UTC.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// ErrEmptyWindow refuses a window that does not end after it starts.
var ErrEmptyWindow = errors.New("the end must be after the start")

// Check refuses a window without a start or end, or one that ends before
// it starts.
func (w Window) Check() error {
	if w.Start.IsZero() || w.End.IsZero() || !w.End.After(w.Start) {
		return ErrEmptyWindow
	}
	return nil
}

// Overlaps tells whether w and o share any instant. Windows that only
// touch (one ends as the other starts) do not overlap.
func (w Window) Overlaps(o Window) bool {
	return w.Start.Before(o.End) && o.Start.Before(w.End)
}

// Duration is how long the window lasts.
func (w Window) Duration() time.Duration { return w.End.Sub(w.Start) }
