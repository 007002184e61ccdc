package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/presente-dispatch/presente/domain"
)

type counted struct{ by int }

func (counted) EventType() string { return "Counted" }

func TestFoldStartsFromAFreshInitialStateEachTime(t *testing.T) {
	d := domain.Decider[map[string]int, struct{}]{
		StreamType: "counter",
		Initial:    func() map[string]int { return map[string]int{} },
		Evolve: func(s map[string]int, e domain.Event) map[string]int {
			s["total"] += e.(counted).by
			return s
		},
	}
	first := d.Fold([]domain.Event{counted{by: 2}, counted{by: 3}})
	second := d.Fold([]domain.Event{counted{by: 1}})
	if got, want := first["total"], 5; got != want {
		t.Errorf("first fold total = %d, want %d", got, want)
	}
	if got, want := second["total"], 1; got != want {
		t.Errorf("second fold total = %d, want %d (state leaked between folds)", got, want)
	}
}

func TestWindowsOverlapOnlyWhenTheyShareAnInstant(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 11, 26, h, 0, 0, 0, time.UTC) }
	morning := domain.Window{Start: at(8), End: at(12)}
	tests := []struct {
		name  string
		other domain.Window
		want  bool
	}{
		{"the same window", morning, true},
		{"one inside the other", domain.Window{Start: at(9), End: at(10)}, true},
		{"one straddling the start", domain.Window{Start: at(7), End: at(9)}, true},
		{"one that starts as the other ends", domain.Window{Start: at(12), End: at(14)}, false},
		{"one entirely before", domain.Window{Start: at(5), End: at(7)}, false},
	}
	for _, tt := range tests {
		if got := morning.Overlaps(tt.other); got != tt.want || tt.other.Overlaps(morning) != tt.want {
			t.Errorf("%s: Overlaps = %v, want %v both ways", tt.name, got, tt.want)
		}
	}
	if err := (domain.Window{Start: at(12), End: at(8)}).Check(); !errors.Is(err, domain.ErrEmptyWindow) {
		t.Errorf("a window ending before it starts: %v", err)
	}
}
