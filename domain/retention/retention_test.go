package retention_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/retention"
)

var (
	monday  = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tuesday = monday.Add(24 * time.Hour)
	cutoff  = monday.Add(-30 * 24 * time.Hour)
	ana     = uuid.MustParse("0195a3b2-0000-7000-8000-00000000c001")
	rosa    = uuid.MustParse("0195a3b2-0000-7000-8000-00000000c002")
)

func TestRetentionRules(t *testing.T) {
	var invalid *retention.InvalidError
	held := retention.LegalHoldPlaced{At: monday}
	tests := []struct {
		name     string
		given    []domain.Event
		when     retention.Command
		then     []domain.Event
		wantErr  error
		wantAs   any
		wantText string
	}{
		{name: "a legal hold pauses retention from when it is placed",
			when: retention.PlaceLegalHold{At: monday},
			then: []domain.Event{retention.LegalHoldPlaced{At: monday}}},
		{name: "a second hold while one is in place is refused, saying since when",
			given: []domain.Event{held},
			when:  retention.PlaceLegalHold{At: tuesday}, wantErr: retention.ErrAlreadyOnHold,
			wantText: "2026-03-02T09:00:00Z"},
		{name: "a hold can be placed again once lifted",
			given: []domain.Event{held, retention.LegalHoldLifted{At: monday}},
			when:  retention.PlaceLegalHold{At: tuesday},
			then:  []domain.Event{retention.LegalHoldPlaced{At: tuesday}}},
		{name: "a hold without a time is refused",
			when: retention.PlaceLegalHold{}, wantAs: &invalid},
		{name: "lifting a hold resumes retention",
			given: []domain.Event{held},
			when:  retention.LiftLegalHold{At: tuesday},
			then:  []domain.Event{retention.LegalHoldLifted{At: tuesday}}},
		{name: "lifting without a hold is refused",
			when: retention.LiftLegalHold{At: tuesday}, wantErr: retention.ErrNotOnHold},
		{name: "lifting a hold twice is refused",
			given: []domain.Event{held, retention.LegalHoldLifted{At: monday}},
			when:  retention.LiftLegalHold{At: tuesday}, wantErr: retention.ErrNotOnHold},
		{name: "a run records its cutoff, whom it forgot and how many failed",
			when: retention.RecordRun{At: monday, Cutoff: cutoff, Forgotten: []uuid.UUID{ana, rosa}, Failed: 1},
			then: []domain.Event{retention.RunCompleted{At: monday, Cutoff: cutoff, Forgotten: []uuid.UUID{ana, rosa}, Failed: 1}}},
		{name: "a run that forgot nothing is recorded too",
			given: []domain.Event{retention.RunCompleted{At: monday, Cutoff: cutoff, Forgotten: []uuid.UUID{ana}}},
			when:  retention.RecordRun{At: tuesday, Cutoff: cutoff.Add(24 * time.Hour)},
			then:  []domain.Event{retention.RunCompleted{At: tuesday, Cutoff: cutoff.Add(24 * time.Hour)}}},
		{name: "a run is refused while a legal hold is in place",
			given: []domain.Event{held},
			when:  retention.RecordRun{At: tuesday, Cutoff: cutoff}, wantErr: retention.ErrOnHold},
		{name: "a run is recorded again once the hold is lifted",
			given: []domain.Event{held, retention.LegalHoldLifted{At: monday}},
			when:  retention.RecordRun{At: tuesday, Cutoff: cutoff},
			then:  []domain.Event{retention.RunCompleted{At: tuesday, Cutoff: cutoff}}},
		{name: "a run without a time is refused",
			when: retention.RecordRun{Cutoff: cutoff}, wantAs: &invalid},
		{name: "a run without a cutoff is refused",
			when: retention.RecordRun{At: monday}, wantAs: &invalid},
		{name: "a run whose cutoff is after the run is refused",
			when: retention.RecordRun{At: monday, Cutoff: tuesday}, wantAs: &invalid, wantText: "cannot be negative"},
		{name: "a run with a negative failure count is refused",
			when: retention.RecordRun{At: monday, Cutoff: cutoff, Failed: -1}, wantAs: &invalid},
		{name: "a run naming the nil subject is refused",
			when: retention.RecordRun{At: monday, Cutoff: cutoff, Forgotten: []uuid.UUID{uuid.Nil}}, wantAs: &invalid},
		{name: "a run naming a subject twice is refused",
			when: retention.RecordRun{At: monday, Cutoff: cutoff, Forgotten: []uuid.UUID{ana, ana}}, wantAs: &invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := retention.Decider.Decide(retention.Decider.Fold(tt.given), tt.when)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.wantAs != nil:
				if !errors.As(err, tt.wantAs) {
					t.Fatalf("err = %v, want %T", err, tt.wantAs)
				}
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantText != "" && (err == nil || !strings.Contains(err.Error(), tt.wantText)) {
				t.Errorf("err = %v, want it to say %q", err, tt.wantText)
			}
			if !reflect.DeepEqual(got, tt.then) {
				t.Errorf("events = %#v, want %#v", got, tt.then)
			}
		})
	}
}

func TestStateTellsTheHoldAndTheLastRun(t *testing.T) {
	s := retention.Decider.Fold([]domain.Event{
		retention.RunCompleted{At: monday, Cutoff: cutoff, Forgotten: []uuid.UUID{ana, rosa}, Failed: 1},
		retention.LegalHoldPlaced{At: tuesday},
	})
	want := retention.State{OnHold: true, HeldSince: tuesday, LastRun: monday, LastCutoff: cutoff, LastForgotten: 2, LastFailed: 1}
	if s != want {
		t.Errorf("state = %+v, want %+v", s, want)
	}
	s = retention.Decider.Evolve(s, retention.LegalHoldLifted{At: tuesday})
	if s.OnHold || !s.HeldSince.IsZero() {
		t.Errorf("after lifting, state = %+v, want no hold", s)
	}
}

func TestTheRecordedRunDoesNotShareTheCallersSlice(t *testing.T) {
	forgotten := []uuid.UUID{ana}
	got, err := retention.Decider.Decide(retention.State{}, retention.RecordRun{At: monday, Cutoff: cutoff, Forgotten: forgotten})
	if err != nil {
		t.Fatal(err)
	}
	forgotten[0] = rosa
	if id := got[0].(retention.RunCompleted).Forgotten[0]; id != ana {
		t.Errorf("the event changed with the caller's slice: forgotten[0] = %s, want %s", id, ana)
	}
}
