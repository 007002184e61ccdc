package bus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/presente-dispatch/presente/infra/bus"
)

func TestLeadershipHasOneLeaderAtATimeAndMovesWhenItsSessionOrProcessEnds(t *testing.T) {
	w := newWorld(t)
	const n = 3
	var (
		leads   [n]*bus.Leadership
		stops   [n]func()
		running atomic.Int32 // leads running now, across the three
		most    atomic.Int32 // the most ever running at once
	)
	for i := range n {
		l, err := bus.NewLeadership(bus.LeaderConfig{Pool: w.pool, Name: "relay:test", Retry: 50 * time.Millisecond,
			Check: 50 * time.Millisecond, Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		leads[i] = l
		stops[i] = run(t, func(ctx context.Context) error {
			return l.Run(ctx, func(ctx context.Context) {
				now := running.Add(1)
				for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
				}
				<-ctx.Done()
				running.Add(-1)
			})
		})
	}
	leader := func(not int) int {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			for i, l := range leads {
				if i != not && l.Leading() {
					return i
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("nobody took the lead within 10s")
			}
			time.Sleep(time.Millisecond)
		}
	}
	first := leader(-1)
	// Followers keep trying: still one leader a while later.
	time.Sleep(500 * time.Millisecond)
	if most.Load() != 1 {
		t.Fatalf("%d leads ran at once with every session healthy", most.Load())
	}

	// The leader's session is terminated: it stops leading, another leads.
	if _, err := w.pool.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, leaderBackend(t, w)); err != nil {
		t.Fatal(err)
	}
	second := leader(first)
	for deadline := time.Now().Add(5 * time.Second); leads[first].Leading(); {
		if time.Now().After(deadline) {
			t.Fatal("the leader whose session died still leads after 5s")
		}
		time.Sleep(time.Millisecond)
	}

	// The new leader's process stops: its session closes, a third leads.
	stops[second]()
	if leads[second].Leading() {
		t.Error("a stopped leadership still leads")
	}
	third := leader(second)
	time.Sleep(300 * time.Millisecond)
	if got := running.Load(); got != 1 {
		t.Errorf("%d leads run once the hand-overs settled, want 1 (leader %d)", got, third)
	}
}

func TestALeaderThatFallsSilentLosesTheLockWithinSeconds(t *testing.T) {
	w := newWorld(t)
	var leads [2]*bus.Leadership
	for i := range leads {
		l, err := bus.NewLeadership(bus.LeaderConfig{Pool: w.pool, Name: "relay:silent", Retry: 100 * time.Millisecond,
			Check: 100 * time.Millisecond, Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		leads[i] = l
		run(t, func(ctx context.Context) error {
			return l.Run(ctx, func(ctx context.Context) { <-ctx.Done() })
		})
	}
	first := -1
	for deadline := time.Now().Add(10 * time.Second); first < 0; {
		for i, l := range leads {
			if l.Leading() {
				first = i
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("nobody took the lead within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	// The leader's session stays open but unused, as when its machine
	// vanished: PostgreSQL ends it, and the other takes the lock.
	bus.Silence(leads[first])
	start := time.Now()
	other := leads[1-first]
	for !other.Leading() {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the lock held by a silent leader did not move within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("the lock moved %s after the leader fell silent", time.Since(start).Round(time.Millisecond))
}
