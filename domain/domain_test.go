package domain_test

import (
	"testing"

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
