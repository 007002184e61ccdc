package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// benchEvent is a payload of realistic size for one command's event.
var benchEvent = noteAdded{Text: strings.Repeat("Verifier en route to the east-side workplace report. ", 4), N: 2}

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

// baselineInserter creates the baseline table and returns one baseline
// operation: a plain single-row INSERT of the payload and metadata an
// append writes, into a table without constraints or indexes.
func baselineInserter(b *testing.B, pool *pgxpool.Pool) func() error {
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
	return func() error {
		_, err := pool.Exec(ctx, `INSERT INTO baseline_events (data, metadata) VALUES ($1, $2)`, string(data), string(meta))
		return err
	}
}

func benchAppend(b *testing.B, s *Store, writers int, newStreams bool) {
	parallel(b, writers, appender(s, newStreams))
}

// appender returns a constructor of writers that each append one event per
// command, to their own stream or to a new stream each time.
func appender(s *Store, newStreams bool) func() func() error {
	ctx := context.Background()
	return func() func() error {
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
	}
}

// BenchmarkAppendVsBaseline is the figure docs/BENCHMARKS.md reports. It
// alternates short rounds of the baseline (a plain INSERT of the same
// payload into an unconstrained table) and of appends, at the same
// concurrency, in one process, and reports both rates and the median of
// the per-round ratios, so that a noisy machine slows both sides of each
// ratio alike. Run it with -benchtime 1x; it ignores b.N.
func BenchmarkAppendVsBaseline(b *testing.B) {
	const rounds, round = 7, 1500 * time.Millisecond
	for _, writers := range []int{1, 8} {
		for _, newStreams := range []bool{false, true} {
			name := fmt.Sprintf("writers=%d/stream=existing", writers)
			if newStreams {
				name = fmt.Sprintf("writers=%d/stream=new", writers)
			}
			b.Run(name, func(b *testing.B) {
				s, pool := newTestStore(b, Options{})
				baseline := baselineInserter(b, pool)
				var ratios, baseRates, appendRates, baseWAL, appendWAL []float64
				for range rounds {
					base, bw := timedRate(b, pool, writers, round, func() func() error { return baseline })
					app, aw := timedRate(b, pool, writers, round, appender(s, newStreams))
					baseRates, appendRates = append(baseRates, base), append(appendRates, app)
					baseWAL, appendWAL = append(baseWAL, bw), append(appendWAL, aw)
					ratios = append(ratios, app/base)
				}
				b.ReportMetric(median(baseRates), "baseline-events/s")
				b.ReportMetric(median(appendRates), "append-events/s")
				b.ReportMetric(median(ratios), "ratio")
				b.ReportMetric(median(baseWAL), "baseline-WAL-B/event")
				b.ReportMetric(median(appendWAL), "append-WAL-B/event")
			})
		}
	}
}

// timedRate runs operations from writers goroutines for d and returns the
// completed operations per second and the WAL bytes written per operation.
func timedRate(b *testing.B, pool *pgxpool.Pool, writers int, d time.Duration, newWriter func() func() error) (rate, walPerOp float64) {
	b.Helper()
	walBefore := walPosition(b, pool)
	var (
		done atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, writers)
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for range writers {
		op := newWriter()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := op(); err != nil {
					errs <- err
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	n := float64(done.Load())
	return n / elapsed.Seconds(), (walPosition(b, pool) - walBefore) / n
}

// walPosition is the server's current WAL position in bytes. The WAL is
// shared by the whole server, so other activity during a round inflates
// both sides of the comparison alike.
func walPosition(b *testing.B, pool *pgxpool.Pool) float64 {
	b.Helper()
	var pos float64
	if err := pool.QueryRow(context.Background(), `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8`).Scan(&pos); err != nil {
		b.Fatal(err)
	}
	return pos
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
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
