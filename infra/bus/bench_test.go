package bus_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/bus"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
)

const (
	dropNotify   = `DROP TRIGGER events_notify ON events`
	createNotify = `CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify()`
)

// BenchmarkAppendNotifyCost is the figure docs/BENCHMARKS.md reports for
// the wake-up's cost: append throughput at 1 and 8 writers without any
// notification ("none"), with the NOTIFY trigger of migration 007 firing in
// every appending transaction ("trigger"), and with the trigger dropped and
// a goroutine issuing one NOTIFY of its own after commits instead, at most
// every 5 ms ("after"). It alternates 21 rounds of 0.5 s of the three in one
// process, in a rotating order so that a trend in the host's load favours
// none, with a Listener consuming notifications throughout as a server's
// would, and reports each side's median rate and the medians of the
// per-round ratios to "none". Run it with -benchtime 1x; it ignores b.N.
func BenchmarkAppendNotifyCost(b *testing.B) {
	const rounds, round = 21, 500 * time.Millisecond
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			pool := pgtest.NewPool(b)
			registry := eventstore.NewRegistry()
			if err := registry.Register(noteAdded{}); err != nil {
				b.Fatal(err)
			}
			store, err := eventstore.New(pool, registry, eventstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(store.Close)
			ctx, cancel := context.WithCancel(context.Background())
			listener := bus.NewListener(pool, zap.NewNop())
			var wg sync.WaitGroup
			wg.Go(func() { _ = listener.Run(ctx) })
			b.Cleanup(func() { cancel(); wg.Wait() })

			sides := []struct {
				name  string
				setUp func() (tearDown func())
			}{
				{"none", func() func() {
					exec(b, pool, dropNotify)
					return func() { exec(b, pool, createNotify) }
				}},
				{"trigger", func() func() { return func() {} }},
				{"after", func() func() {
					exec(b, pool, dropNotify)
					ctx, cancel := context.WithCancel(context.Background())
					var wg sync.WaitGroup
					wg.Go(func() { notifyAfterCommits(ctx, store, pool) })
					return func() { cancel(); wg.Wait(); exec(b, pool, createNotify) }
				}},
			}
			rates := make([][]float64, len(sides))
			ratios := make([][]float64, len(sides))
			for i := range rounds {
				got := make([]float64, len(sides))
				for k := range sides {
					j := (i + k) % len(sides)
					tearDown := sides[j].setUp()
					got[j] = appendRate(b, store, writers, round)
					tearDown()
				}
				for j := range sides {
					rates[j] = append(rates[j], got[j])
					ratios[j] = append(ratios[j], got[j]/got[0])
				}
				b.Logf("round %d: none %.0f/s, trigger %.0f/s (%.2f), after %.0f/s (%.2f)", i+1, got[0], got[1], got[1]/got[0], got[2], got[2]/got[0])
			}
			for j, side := range sides {
				b.ReportMetric(median(rates[j]), side.name+"-events/s")
				if j > 0 {
					b.ReportMetric(median(ratios[j]), side.name+"-ratio")
				}
			}
		})
	}
}

// notifyAfterCommits is the alternative measured against the trigger:
// after the store commits it sends one NOTIFY in a transaction of its own,
// off the writers' path, at most every 5 ms however many commits happened
// meanwhile. It would need every process that appends to run it.
func notifyAfterCommits(ctx context.Context, store *eventstore.Store, pool *pgxpool.Pool) {
	for {
		committed := store.Committed()
		select {
		case <-ctx.Done():
			return
		case <-committed:
		}
		_, _ = pool.Exec(ctx, `SELECT pg_notify('`+bus.Channel+`', '')`)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func exec(b *testing.B, pool *pgxpool.Pool, sql string) {
	b.Helper()
	if _, err := pool.Exec(context.Background(), sql); err != nil {
		b.Fatal(err)
	}
}

// benchText is a payload of realistic size for one command's event.
var benchText = strings.Repeat("Verifier en route to the east-side workplace report. ", 4)

// appendRate runs writers goroutines, each appending one event at a time
// to its own stream in a closed loop, for d, and returns appends per
// second.
func appendRate(b *testing.B, s *eventstore.Store, writers int, d time.Duration) float64 {
	b.Helper()
	var (
		done atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, writers)
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for range writers {
		wg.Go(func() {
			stream := eventstore.Stream{Type: "note", ID: uuid.Must(uuid.NewV7())}
			for v := int64(0); time.Now().Before(deadline); v++ {
				if _, err := s.Append(context.Background(), stream, v, testMeta, noteAdded{Text: benchText}); err != nil {
					errs <- err
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return float64(done.Load()) / elapsed.Seconds()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
