package privacy_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/privacy"
)

var subject = uuid.MustParse("0195a3b2-0000-7000-8000-00000000b001")

func TestForgettingRules(t *testing.T) {
	tests := []struct {
		name    string
		given   []domain.Event
		when    privacy.RecordForgotten
		then    []domain.Event
		wantErr error
	}{
		{name: "a forgetting is recorded with the subject's id",
			when: privacy.RecordForgotten{SubjectID: subject},
			then: []domain.Event{privacy.SubjectForgotten{SubjectID: subject}}},
		{name: "a subject already recorded as forgotten is not recorded again",
			given: []domain.Event{privacy.SubjectForgotten{SubjectID: subject}},
			when:  privacy.RecordForgotten{SubjectID: subject}},
		{name: "a forgetting without a subject is refused",
			when: privacy.RecordForgotten{}, wantErr: privacy.ErrNoSubject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := privacy.Decider.Decide(privacy.Decider.Fold(tt.given), tt.when)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.then) {
				t.Errorf("events = %#v, want %#v", got, tt.then)
			}
		})
	}
}

func TestReasonsAreCodes(t *testing.T) {
	for _, r := range privacy.Reasons {
		got, err := privacy.ParseReason(string(r))
		if err != nil || got != r {
			t.Errorf("ParseReason(%q) = %q, %v; want it accepted", r, got, err)
		}
	}
	for _, s := range []string{"", "Asked", "asked ", "Rosa asked us", "retention period"} {
		if privacy.Reason(s).Valid() {
			t.Errorf("Reason(%q).Valid() = true, want false", s)
		}
		_, err := privacy.ParseReason(s)
		if !errors.Is(err, privacy.ErrInvalidReason) {
			t.Errorf("ParseReason(%q) err = %v, want ErrInvalidReason", s, err)
			continue
		}
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("ParseReason(%q) err = %q repeats the free text it refused", s, err)
		}
	}
	if got, want := privacy.ErrInvalidReason.Error(), "asked, retention, legal or mistake"; !strings.Contains(got, want) {
		t.Errorf("ErrInvalidReason = %q, want it to list %q", got, want)
	}
}

func TestSubjectStreamsAreDistinctFromTheSubjectsOwnID(t *testing.T) {
	if got := privacy.StreamID(subject); got == subject {
		t.Errorf("StreamID(%s) = the subject id itself, want a derived id", subject)
	}
	if privacy.StreamID(subject) != privacy.StreamID(subject) {
		t.Error("StreamID is not stable")
	}
}
