package projections_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/postgres"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
	"github.com/presente-dispatch/presente/projections"
	"github.com/presente-dispatch/presente/projections/audit"
	"github.com/presente-dispatch/presente/projections/board"
	"github.com/presente-dispatch/presente/projections/metrics"
	"github.com/presente-dispatch/presente/projections/projectiontest"
	"github.com/presente-dispatch/presente/projections/roster"
	"github.com/presente-dispatch/presente/projections/shiftboard"
	"github.com/presente-dispatch/presente/projections/timeline"
)

const (
	// rebuildLogEvents is at least how many events the rebuild
	// benchmark's log holds.
	rebuildLogEvents = 1_000_000
	// rebuildLogVersion names the generator: raise it when the log it
	// builds changes, so that a cached log of the old kind is not reused.
	rebuildLogVersion = 1
	// scenarioDays is how many days of the dispatch scenario are played
	// through the dispatch service to make the pattern the log repeats.
	scenarioDays = 4
	// copiesPerTx is how many copies of the pattern one transaction
	// appends to: one command of each.
	copiesPerTx = 200
	// logWriters is how many transactions append at once.
	logWriters = 3
)

// rebuildOnly limits BenchmarkRebuildRate to one read model, for
// profiling it.
var rebuildOnly = flag.String("rebuild.only", "", "rebuild only this read model in BenchmarkRebuildRate")

// BenchmarkRebuildRate is the figure docs/BENCHMARKS.md reports: how many
// events per second Runner.Rebuild applies to each read model, over a log
// of a million events, beside the rate at which the same log is only read
// (Store.ReadAllSealed in the rebuild's batches, decoded, nothing
// applied), measured before and after each rebuild in the same run. Run it
// with -benchtime 1x; it ignores b.N.
//
// The log is built once and kept as a template database (see
// rebuildLogTemplate); each run rebuilds into a clone of it.
func BenchmarkRebuildRate(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.NewPoolFor(b, cloneDatabase(b, rebuildLogTemplate(b)))
	env := projectiontest.Open(b, pool)
	var total int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&total); err != nil {
		b.Fatal(err)
	}
	projectors := []projections.Projector{board.New(), shiftboard.New(), roster.New(), timeline.New(), audit.New(), metrics.New()}
	runner, err := projections.New(pool, env.Store.ReadAllSealed, projectors, projections.Options{})
	if err != nil {
		b.Fatal(err)
	}
	read := func() float64 {
		start := time.Now()
		n := readAll(b, env.Store)
		if n != total {
			b.Fatalf("read %d events, the log holds %d", n, total)
		}
		return float64(n) / time.Since(start).Seconds()
	}
	b.ResetTimer()
	reads := []float64{read()}
	for _, p := range projectors {
		if *rebuildOnly != "" && p.Name() != *rebuildOnly {
			continue
		}
		start := time.Now()
		if err := runner.Rebuild(ctx, p.Name()); err != nil {
			b.Fatal(err)
		}
		rate := float64(total) / time.Since(start).Seconds()
		reads = append(reads, read())
		base := (reads[len(reads)-2] + reads[len(reads)-1]) / 2
		b.ReportMetric(rate, p.Name()+"-events/s")
		b.ReportMetric(rate/base, p.Name()+"-ratio")
		b.Logf("%-10s %9.0f events/s  read before/after %9.0f / %9.0f events/s  ratio %.3f",
			p.Name(), rate, reads[len(reads)-2], reads[len(reads)-1], rate/base)
		checkRebuilt(b, pool, p.Name())
	}
	b.StopTimer()
	b.ReportMetric(median(reads), "read-events/s")
	b.ReportMetric(float64(total), "events")
}

// readAll reads the whole log as a rebuild does, in batches of 5,000
// (ten times the runner's default batch), and returns how many it read.
func readAll(tb testing.TB, s *eventstore.Store) int {
	tb.Helper()
	var (
		cursor eventstore.Cursor
		n      int
	)
	for {
		batch, err := s.ReadAllSealed(context.Background(), cursor, 5000)
		if err != nil {
			tb.Fatal(err)
		}
		n += len(batch)
		if len(batch) < 5000 {
			return n
		}
		cursor = batch[len(batch)-1].Cursor()
	}
}

// checkRebuilt fails tb unless the projection's checkpoint is the log's
// last event.
func checkRebuilt(tb testing.TB, pool interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, name string) {
	tb.Helper()
	var ok bool
	err := pool.QueryRow(context.Background(), `SELECT c.position = (SELECT max(position) FROM events)
FROM projection_checkpoints c WHERE c.name = $1`, name).Scan(&ok)
	if err != nil || !ok {
		tb.Fatalf("projection %s: checkpoint is not at the log's head (%v)", name, err)
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// rebuildLogTemplate returns the name of a template database holding the
// benchmark's log, building it if no earlier run has. Building takes
// minutes; the template stays on the server for the next run (drop
// databases named presente_bench_rebuild_* to reclaim the space). An
// advisory lock keeps two benchmark processes from building it twice.
func rebuildLogTemplate(b *testing.B) string {
	b.Helper()
	ctx := context.Background()
	digest, err := postgres.MigrationsDigest()
	if err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("presente_bench_rebuild_%s_v%d", digest, rebuildLogVersion)
	admin := connectAdmin(b)
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1))`, name); err != nil {
		b.Fatal(err)
	}
	defer admin.Exec(context.Background(), `SELECT pg_advisory_unlock(hashtext($1))`, name) //nolint:errcheck // dies with the connection
	var isTemplate bool
	err = admin.QueryRow(ctx, `SELECT datistemplate FROM pg_database WHERE datname = $1`, name).Scan(&isTemplate)
	switch {
	case err == nil && isTemplate:
		b.Logf("reusing the log in template database %s", name)
		return name
	case err == nil: // a build that died half-way
		if _, err := admin.Exec(ctx, `DROP DATABASE `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			b.Fatal(err)
		}
	case !errors.Is(err, pgx.ErrNoRows):
		b.Fatal(err)
	}

	start := time.Now()
	env := projectiontest.New(b)
	n := buildLog(b, env)
	if _, err := env.Pool.Exec(ctx, `VACUUM ANALYZE events`); err != nil {
		b.Fatal(err)
	}
	var source string
	if err := env.Pool.QueryRow(ctx, `SELECT current_database()`).Scan(&source); err != nil {
		b.Fatal(err)
	}
	env.Store.Close()
	env.Pool.Close() // a template's source must have no connections
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` TEMPLATE `+pgx.Identifier{source}.Sanitize()+
		` STRATEGY FILE_COPY`); err != nil {
		b.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{name}.Sanitize()+` IS_TEMPLATE true`); err != nil {
		b.Fatal(err)
	}
	b.Logf("built a log of %d events in %s and kept it as template database %s", n, time.Since(start).Round(time.Second), name)
	return name
}

// cloneDatabase creates a database from template for this run, drops it
// when the benchmark ends, and returns its connection string.
func cloneDatabase(b *testing.B, template string) string {
	b.Helper()
	ctx := context.Background()
	suffix := make([]byte, 8)
	_, _ = rand.Read(suffix)
	name := "presente_bench_" + hex.EncodeToString(suffix)
	admin := connectAdmin(b)
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` TEMPLATE `+pgx.Identifier{template}.Sanitize()+
		` STRATEGY FILE_COPY`); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c := connectAdmin(b)
		if _, err := c.Exec(context.Background(), `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			b.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(pgtest.ServerURL())
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func connectAdmin(b *testing.B) *pgx.Conn {
	b.Helper()
	c, err := pgx.Connect(context.Background(), pgtest.ServerURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// command is one transaction of the pattern: its metadata and the events
// it appended to each stream, in log order.
type command struct {
	meta    eventstore.Metadata
	appends []patternAppend
}

type patternAppend struct {
	stream   eventstore.Stream
	expected int64
	events   []patternEvent
}

// patternEvent is an event as JSON, personal data in the clear, so that a
// copy can give it new ids and have it sealed for its own subjects.
type patternEvent struct {
	typ  string
	data []byte
}

// buildLog fills env's log with at least rebuildLogEvents events and
// returns how many it wrote. It plays scenarioDays days of the dispatch
// scenario through the dispatch service (volunteers registered and
// certified, shifts scheduled, claimed, waitlisted, released, checked in
// and out, requests received, triaged, assigned, verified, resolved,
// closed, cancelled and reopened), reads them back as the pattern, and
// appends copies of it with every id replaced by a new one, through
// Store.Transact: each copy's commands in the order and grouping the
// service committed them, one command of copiesPerTx copies per
// transaction, logWriters transactions at once. Every event goes through
// append_events (versions, hash chain) and is sealed for its own
// subjects, as the service's own would be.
func buildLog(b *testing.B, env *projectiontest.Env) int {
	b.Helper()
	ctx := context.Background()
	for range scenarioDays {
		env.MustRun(b)
		env.Clock.Advance(24 * time.Hour)
	}
	pattern, perCopy := readPattern(b, env)
	copies := (rebuildLogEvents - perCopy + perCopy - 1) / perCopy // the pattern itself is the first
	b.Logf("pattern: %d events in %d transactions; appending %d copies", perCopy, len(pattern), copies)

	groups := make(chan int)
	errs := make(chan error, logWriters)
	var wg sync.WaitGroup
	for range logWriters {
		wg.Go(func() {
			for first := range groups {
				if err := appendCopies(ctx, env, pattern, min(copiesPerTx, copies-first)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	start := time.Now()
feed:
	for first := 0; first < copies; first += copiesPerTx {
		select {
		case groups <- first:
		case err := <-errs:
			b.Fatal(err)
			break feed
		}
		if first > 0 && first%(copiesPerTx*logWriters*5) == 0 {
			b.Logf("%d of %d copies after %s", first, copies, time.Since(start).Round(time.Second))
		}
	}
	close(groups)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	var n int
	if err := env.Pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// readPattern reads env's whole log, personal data revealed, as commands.
func readPattern(b *testing.B, env *projectiontest.Env) ([]command, int) {
	b.Helper()
	var (
		recs   []eventstore.Recorded
		cursor eventstore.Cursor
	)
	for {
		batch, err := env.Store.ReadAll(context.Background(), cursor, 1000)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, batch...)
		if len(batch) < 1000 {
			break
		}
		cursor = batch[len(batch)-1].Cursor()
	}
	var (
		out  []command
		last uint64
	)
	for _, r := range recs {
		if len(out) == 0 || r.TxID != last {
			meta := r.Metadata
			meta.CorrelationID = uuid.Nil // one per transaction, made by Transact
			out = append(out, command{meta: meta})
			last = r.TxID
		}
		c := &out[len(out)-1]
		i := slices.IndexFunc(c.appends, func(a patternAppend) bool { return a.stream.ID == r.StreamID })
		if i < 0 {
			c.appends = append(c.appends, patternAppend{stream: eventstore.Stream{Type: r.StreamType, ID: r.StreamID}, expected: r.StreamVersion - 1})
			i = len(c.appends) - 1
		}
		data, err := json.Marshal(r.Event)
		if err != nil {
			b.Fatal(err)
		}
		c.appends[i].events = append(c.appends[i].events, patternEvent{typ: r.Type, data: data})
	}
	return out, len(recs)
}

var uuidText = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// appendCopies appends n copies of pattern, each with ids of its own.
func appendCopies(ctx context.Context, env *projectiontest.Env, pattern []command, n int) error {
	ids := make([]map[uuid.UUID]uuid.UUID, n)
	for i := range ids {
		ids[i] = map[uuid.UUID]uuid.UUID{uuid.Nil: uuid.Nil}
	}
	remap := func(m map[uuid.UUID]uuid.UUID, id uuid.UUID) uuid.UUID {
		if to, ok := m[id]; ok {
			return to
		}
		to := uuid.Must(uuid.NewV7()) // time-ordered, as Presente makes ids
		m[id] = to
		return to
	}
	for _, c := range pattern {
		appends := make([]eventstore.StreamAppend, 0, n*len(c.appends))
		for k := range n {
			for _, a := range c.appends {
				events := make([]domain.Event, len(a.events))
				for j, e := range a.events {
					data := uuidText.ReplaceAllFunc(e.data, func(s []byte) []byte {
						return []byte(remap(ids[k], uuid.MustParse(string(s))).String())
					})
					version, err := env.Registry.SchemaVersion(e.typ)
					if err != nil {
						return err
					}
					if events[j], err = env.Registry.Decode(e.typ, version, data); err != nil {
						return err
					}
				}
				appends = append(appends, eventstore.StreamAppend{
					Stream:   eventstore.Stream{Type: a.stream.Type, ID: remap(ids[k], a.stream.ID)},
					Expected: a.expected, Events: events})
			}
		}
		if _, err := env.Store.Transact(ctx, c.meta, func(context.Context, eventstore.Loader) ([]eventstore.StreamAppend, error) {
			return appends, nil
		}); err != nil {
			return fmt.Errorf("append copies: %w", err)
		}
	}
	return nil
}
