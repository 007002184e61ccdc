// Package domaintest checks the outcome of a decider's Given/When/Then
// row, the same way for every aggregate's rule table.
package domaintest

import (
	"errors"
	"reflect"
	"testing"

	"github.com/presente-dispatch/presente/domain"
)

// Then checks a decision: with wantErr, that err is it (errors.Is); with
// wantAs, that err is of that type (errors.As, which fills it in for
// further checks); otherwise that there was no error. In every case the
// events decided must be then.
func Then(tb testing.TB, got []domain.Event, err error, then []domain.Event, wantErr error, wantAs any) {
	tb.Helper()
	switch {
	case wantErr != nil:
		if !errors.Is(err, wantErr) {
			tb.Fatalf("error = %v, want %v", err, wantErr)
		}
	case wantAs != nil:
		if !errors.As(err, wantAs) {
			tb.Fatalf("error = %v (%T), want %T", err, err, wantAs)
		}
	case err != nil:
		tb.Fatalf("unexpected error: %v", err)
	}
	if !reflect.DeepEqual(got, then) {
		tb.Errorf("events = %#v\nwant %#v", got, then)
	}
}
