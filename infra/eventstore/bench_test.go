package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
)

// benchEvent is a payload of realistic size for one command's event.
var benchEvent = noteAdded{Text: strings.Repeat("Verifier en route to the east-side workplace report. ", 4), N: 2}

// BenchmarkAppend measures committed appends per second, one event per
// command, with 1 and 8 concurrent writers, beside the baseline of
// docs/BENCHMARKS.md: a plain single-row INSERT of the same payload into an
// unconstrained table at the same concurrency, in the same run. Compare the
// events/s of each pair; run with -count to interleave them.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d/baseline-insert", writers), func(b *testing.B) {
			pool := pgtest.NewPool(b)
			benchBaseline(b, pool, writers)
		})
		b.Run(fmt.Sprintf("writers=%d/append-existing-stream", writers), func(b *testing.B) {
			s, _ := newTestStore(b, Options{})
			benchAppend(b, s, writers, false)
		})
		b.Run(fmt.Sprintf("writers=%d/append-new-stream", writers), func(b *testing.B) {
			s, _ := newTestStore(b, Options{})
			benchAppend(b, s, writers, true)
		})
	}
}

// parallel runs op b.N times in all, spread over writers goroutines.
func parallel(b *testing.B, writers int, newWriter func() func() error) {
	b.Helper()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, writers)
	)
	ops := make([]func() error, writers)
	for i := range ops {
		ops[i] = newWriter()
	}
	b.ResetTimer()
	for _, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := op(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func benchBaseline(b *testing.B, pool *pgxpool.Pool, writers int) {
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE baseline_events (data jsonb, metadata jsonb)`); err != nil {
		b.Fatal(err)
	}
	data, err := json.Marshal(benchEvent)
	if err != nil {
		b.Fatal(err)
	}
	meta, err := json.Marshal(Metadata{Actor: testMeta.Actor, CorrelationID: uuid.New()})
	if err != nil {
		b.Fatal(err)
	}
	parallel(b, writers, func() func() error {
		return func() error {
			_, err := pool.Exec(ctx, `INSERT INTO baseline_events (data, metadata) VALUES ($1, $2)`, string(data), string(meta))
			return err
		}
	})
}

func benchAppend(b *testing.B, s *Store, writers int, newStreams bool) {
	ctx := context.Background()
	parallel(b, writers, func() func() error {
		// Ids are time-ordered (UUIDv7) as Presente makes them: random ids
		// scatter index inserts and multiply full-page writes to the WAL.
		stream := Stream{Type: "note", ID: newV7()}
		var version int64
		return func() error {
			if newStreams {
				stream.ID, version = newV7(), 0
			}
			if _, err := s.Append(ctx, stream, version, testMeta, benchEvent); err != nil {
				return err
			}
			version++
			return nil
		}
	})
}

// BenchmarkCommitters compares how many batches may be in flight at once,
// at 8 writers, to choose the default (Options.Committers).
func BenchmarkCommitters(b *testing.B) {
	for _, c := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("committers=%d", c), func(b *testing.B) {
			s, _ := newTestStore(b, Options{Committers: c})
			benchAppend(b, s, 8, true)
		})
	}
}
