package projections_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/projections"
	"github.com/presente-dispatch/presente/projections/projectiontest"
)

// seen records every event it is given, without a key, so an event applied
// twice shows as two rows. failAt makes Apply fail after writing its rows
// when the batch holds that position.
type seen struct {
	failAt atomic.Int64
}

func (*seen) Name() string     { return "seen" }
func (*seen) Version() int     { return 1 }
func (*seen) Tables() []string { return []string{"seen"} }
func (*seen) DDL(t projections.Names) []string {
	return []string{`CREATE TABLE ` + t.Table("seen") + ` (position bigint NOT NULL, stream_id uuid NOT NULL, event_type text NOT NULL)`,
		`CREATE INDEX ON ` + t.Table("seen") + ` (position)`}
}

var errBoom = errors.New("boom")

func (s *seen) Apply(ctx context.Context, tx pgx.Tx, t projections.Names, batch []eventstore.Recorded) error {
	for _, r := range batch {
		if _, err := tx.Exec(ctx, `INSERT INTO `+t.Table("seen")+` VALUES ($1, $2, $3)`, r.Position, r.StreamID, r.Type); err != nil {
			return err
		}
	}
	for _, r := range batch {
		if r.Position == s.failAt.Load() {
			return errBoom
		}
	}
	return nil
}

// appendSome appends n events to n new streams and returns their records.
func appendSome(t *testing.T, env *projectiontest.Env, n int) []eventstore.Recorded {
	t.Helper()
	var out []eventstore.Recorded
	for range n {
		id := uuid.New()
		recs, err := env.Store.Append(context.Background(), eventstore.Stream{Type: volunteer.StreamType, ID: id}, 0, env.Meta,
			volunteer.OnCallChanged{VolunteerID: id, OnCall: true})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
	}
	// Wait until the log can return them all: another test's transaction
	// anywhere on the server holds committed events back for a while, and
	// a test that expects one batch of all of them must not get a part.
	deadline := time.Now().Add(20 * time.Second)
	for {
		all, err := env.Store.ReadAll(context.Background(), eventstore.Cursor{}, len(out)+1)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) >= len(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of the %d events appended became readable", len(all), len(out))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func checkpoint(t *testing.T, env *projectiontest.Env, name string) eventstore.Cursor {
	t.Helper()
	var c eventstore.Cursor
	if err := env.Pool.QueryRow(context.Background(), `SELECT tx_id, position FROM projection_checkpoints WHERE name = $1`, name).
		Scan(&c.TxID, &c.Position); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRunnerAppliesEveryEventOnceWithItsCheckpoint(t *testing.T) {
	env := projectiontest.New(t)
	recs := appendSome(t, env, 25)
	r := env.RunnerWith(t, projections.Options{BatchSize: 7}, &seen{})
	env.CatchUp(t, r)

	if got, want := env.Count(t, `SELECT count(*) FROM projections.seen`), len(recs); got != want {
		t.Errorf("seen holds %d rows, want %d", got, want)
	}
	if got, want := env.Count(t, `SELECT count(DISTINCT position) FROM projections.seen`), len(recs); got != want {
		t.Errorf("seen holds %d distinct events, want %d", got, want)
	}
	if got, want := checkpoint(t, env, "seen"), recs[len(recs)-1].Cursor(); got != want {
		t.Errorf("checkpoint at %s, want the last event %s", got, want)
	}
	st := r.Status()[0]
	if st.Problem != "" || st.LagEvents != 0 || st.LagSeconds != 0 {
		t.Errorf("status after catching up = %+v, want healthy without lag", st)
	}
}

func TestTwoRunnersOnOneProjectionApplyEachEventOnce(t *testing.T) {
	env := projectiontest.New(t)
	a := env.RunnerWith(t, projections.Options{BatchSize: 3}, &seen{})
	b := env.RunnerWith(t, projections.Options{BatchSize: 5}, &seen{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	doneA, doneB := a.Start(ctx), b.Start(ctx)

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { appendSome(t, env, 15) })
	}
	wg.Wait()
	env.CatchUp(t, a)
	env.CatchUp(t, b)
	cancel()
	<-doneA
	<-doneB

	if got, want := env.Count(t, `SELECT count(*) FROM projections.seen`), 60; got != want {
		t.Errorf("seen holds %d rows after two runners delivered every event, want %d (each once)", got, want)
	}
	if got := env.Count(t, `SELECT count(*) FROM (SELECT position FROM projections.seen GROUP BY position HAVING count(*) > 1) d`); got != 0 {
		t.Errorf("%d events were applied more than once", got)
	}
}

func TestAFailingApplyLeavesNeitherTheReadModelNorTheCheckpoint(t *testing.T) {
	env := projectiontest.New(t)
	recs := appendSome(t, env, 10)
	p := &seen{}
	p.failAt.Store(recs[4].Position)
	r := env.RunnerWith(t, projections.Options{BatchSize: 100}, p)

	failUntilBoom(t, r)
	if got := env.Count(t, `SELECT count(*) FROM projections.seen`); got != 0 {
		t.Errorf("after the failed batch seen holds %d rows, want none: the rows and the checkpoint commit together", got)
	}
	if got := checkpoint(t, env, "seen"); got != (eventstore.Cursor{}) {
		t.Errorf("after the failed batch the checkpoint is at %s, want the start", got)
	}
	st := r.Status()[0]
	if st.Problem == "" || !errors.Is(st.Err, errBoom) || st.LagEvents != 10 {
		t.Errorf("status = %+v, want a problem and 10 events behind", st)
	}

	p.failAt.Store(0)
	env.CatchUp(t, r)
	if got := env.Count(t, `SELECT count(*) FROM projections.seen`); got != 10 {
		t.Errorf("after recovering seen holds %d rows, want 10", got)
	}
	if st := r.Status()[0]; st.Problem != "" {
		t.Errorf("status after recovering = %+v, want healthy", st)
	}
}

func TestLagIsExportedAndGrowsWhileAProjectionIsStuck(t *testing.T) {
	env := projectiontest.New(t)
	recs := appendSome(t, env, 3)
	p := &seen{}
	p.failAt.Store(recs[0].Position)
	reg := prometheus.NewPedanticRegistry()
	r := env.RunnerWith(t, projections.Options{Registerer: reg, Clock: func() time.Time { return recs[0].RecordedAt.Add(90 * time.Second) }}, p)
	failUntilBoom(t, r)
	if got := gauge(t, reg, "presente_projection_lag_events"); got != 3 {
		t.Errorf("lag_events = %v, want 3", got)
	}
	if got := gauge(t, reg, "presente_projection_lag_seconds"); got < 89 || got > 91 {
		t.Errorf("lag_seconds = %v, want the oldest unapplied event's age, 90", got)
	}
}

// gauge returns the value of the one series of a gauge in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no single series of %s gathered", name)
	return 0
}

// failUntilBoom catches up until the projector fails, as it must once the
// events are visible (an open transaction anywhere on the server delays
// them).
func failUntilBoom(t *testing.T, r *projections.Runner) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := r.CatchUp(context.Background())
		if errors.Is(err, errBoom) {
			return
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("CatchUp = %v, want the projector's error", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEventsDeliveredAgainAreAppliedOnce(t *testing.T) {
	env := projectiontest.New(t)
	// This reader forgets the cursor and delivers the whole log every time.
	replay := func(ctx context.Context, _ eventstore.Cursor, limit int) ([]eventstore.Recorded, error) {
		return env.Store.ReadAll(ctx, eventstore.Cursor{}, limit)
	}
	r, err := projections.New(env.Pool, replay, []projections.Projector{&seen{}}, projections.Options{BatchSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	appendSome(t, env, 5)
	env.CatchUp(t, r)
	appendSome(t, env, 5)
	env.CatchUp(t, r)
	env.CatchUp(t, r)
	if got := env.Count(t, `SELECT count(*) FROM projections.seen`); got != 10 {
		t.Errorf("seen holds %d rows after every event was delivered three times, want 10", got)
	}
}

func TestAwaitReturnsOnceTheEventIsApplied(t *testing.T) {
	env := projectiontest.New(t)
	r := env.Runner(t, &seen{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := r.Start(ctx)
	defer func() { cancel(); <-done }()

	recs := appendSome(t, env, 1)
	r.Wake()
	wait, stop := context.WithTimeout(ctx, 20*time.Second)
	defer stop()
	if err := r.Await(wait, "seen", recs[0].Cursor()); err != nil {
		t.Fatal(err)
	}
	if got := env.Count(t, `SELECT count(*) FROM projections.seen WHERE position = $1`, recs[0].Position); got != 1 {
		t.Errorf("after Await the event is in seen %d times, want once", got)
	}
	var unknown *projections.UnknownError
	if err := r.Await(wait, "nope", recs[0].Cursor()); !errors.As(err, &unknown) {
		t.Errorf("Await of an unknown projection = %v, want an UnknownError", err)
	}
}

func TestARebuildEqualsTheLiveReadModelUnderConcurrentAppends(t *testing.T) {
	env := projectiontest.New(t)
	projectiontest.CheckRebuild(t, env, &seen{})
	// The swap renamed the indexes after the live table, as if it had
	// been created under its own name.
	if got := env.Count(t, `SELECT count(*) FROM pg_indexes WHERE schemaname = 'projections' AND indexname = 'seen_position_idx'`); got != 1 {
		t.Errorf("index seen_position_idx exists %d times after rebuilds, want once", got)
	}
	if got := env.Count(t, `SELECT count(*) FROM pg_tables WHERE schemaname = 'projections' AND tablename LIKE '%rebuild%'`); got != 0 {
		t.Errorf("%d rebuild tables left behind", got)
	}
}

func TestARebuildRunsOnceAtATime(t *testing.T) {
	env := projectiontest.New(t)
	appendSome(t, env, 3)
	r := env.Runner(t, &seen{})
	env.CatchUp(t, r)
	hold, err := env.Pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Release()
	// Another process's rebuild holds the lock.
	if _, err := hold.Exec(context.Background(), `SELECT pg_advisory_lock(x'70726a32'::int, hashtext('seen'))`); err != nil {
		t.Fatal(err)
	}
	if err := r.Rebuild(context.Background(), "seen"); !errors.Is(err, projections.ErrRebuildRunning) {
		t.Errorf("Rebuild while another runs = %v, want ErrRebuildRunning", err)
	}
	var unknown *projections.UnknownError
	if err := r.Rebuild(context.Background(), "nope"); !errors.As(err, &unknown) {
		t.Errorf("Rebuild of an unknown projection = %v, want an UnknownError", err)
	}
}

// seenV2 is seen at a newer version: a runner finding tables of version 1
// rebuilds them.
type seenV2 struct{ seen }

func (*seenV2) Version() int { return 2 }

func TestARunnerRebuildsTablesOfAnOlderVersionAndLeavesNewerOnesAlone(t *testing.T) {
	env := projectiontest.New(t)
	appendSome(t, env, 4)
	env.CatchUp(t, env.Runner(t, &seen{}))
	if _, err := env.Pool.Exec(context.Background(), `DELETE FROM projections.seen WHERE position = (SELECT min(position) FROM projections.seen)`); err != nil {
		t.Fatal(err)
	}

	env.CatchUp(t, env.Runner(t, &seenV2{}))
	if got := env.Count(t, `SELECT count(*) FROM projections.seen`); got != 4 {
		t.Errorf("after the newer build caught up seen holds %d rows, want the 4 of a rebuild", got)
	}
	if got := env.Count(t, `SELECT version FROM projection_checkpoints WHERE name = 'seen'`); got != 2 {
		t.Errorf("checkpoint version %d, want 2", got)
	}

	old := env.Runner(t, &seen{})
	var verr *projections.VersionError
	if err := old.CatchUp(context.Background()); !errors.As(err, &verr) {
		t.Errorf("an older build catching up = %v, want a VersionError", err)
	}
	if st := old.Status()[0]; st.Problem == "" {
		t.Errorf("the older build's status = %+v, want a problem", st)
	}
}

// TestARebuildLeavesEventsHeldBackToTheLiveRunner stages what another
// database's open transaction does to the log's readers: events that
// committed after it are held back from ReadAll. A rebuild that swaps in
// meanwhile must set the checkpoint before them, so that the live runner
// applies each of them once the horizon passes, to the new tables.
func TestARebuildLeavesEventsHeldBackToTheLiveRunner(t *testing.T) {
	env := projectiontest.New(t)
	ctx := context.Background()
	s := &seen{}
	twin := projections.Twin(s, "twin_")
	before := appendSome(t, env, 7)
	r := env.RunnerWith(t, projections.Options{BatchSize: 2, PollInterval: 5 * time.Millisecond}, s, twin)
	env.CatchUp(t, r)

	hold, err := env.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx) //nolint:errcheck // committed below
	if _, err := hold.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	late := appendSome(t, env, 5)
	running, stop := context.WithCancel(ctx)
	done := r.Start(running)
	defer func() { stop(); <-done }()
	if err := r.Rebuild(ctx, s.Name()); err != nil {
		t.Fatal(err)
	}
	if got, want := checkpoint(t, env, s.Name()), before[len(before)-1].Cursor(); got != want {
		t.Fatalf("after the rebuild the checkpoint is %s, want %s: the events held back (from %s) are not in the new tables",
			got, want, late[0].Cursor())
	}
	if n := env.Count(t, `SELECT count(*) FROM projections.seen`); n != len(before) {
		t.Fatalf("the rebuilt table holds %d events, want the %d committed before the open transaction", n, len(before))
	}
	if err := hold.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := r.Await(wait, s.Name(), late[len(late)-1].Cursor()); err != nil {
		t.Fatal(err)
	}
	if err := r.Await(wait, twin.Name(), late[len(late)-1].Cursor()); err != nil {
		t.Fatal(err)
	}
	projectiontest.SameRows(t, env.Pool, `projections.seen`, `projections.twin_seen`)
	if n := env.Count(t, `SELECT count(DISTINCT position) FROM projections.seen`); n != len(before)+len(late) {
		t.Errorf("the rebuilt read model holds %d distinct events, want %d", n, len(before)+len(late))
	}
	if n := env.Count(t, `SELECT count(*) FROM projections.seen`); n != len(before)+len(late) {
		t.Errorf("the rebuilt read model holds %d rows, want each of the %d events once", n, len(before)+len(late))
	}
}

// After a PostgreSQL crash, read-model commits that had not reached the
// disk are lost (they do not wait for it) and the checkpoint is behind
// the runner: its next pass applies those events again, with no new event
// needed to notice.
func TestARunnerReappliesWhatACrashLostWithoutWaitingForANewEvent(t *testing.T) {
	env := projectiontest.New(t)
	appendSome(t, env, 3)
	r := env.Runner(t, &seen{})
	env.CatchUp(t, r)
	// What a crash would leave: the last commits gone, rows and checkpoint
	// together.
	if _, err := env.Pool.Exec(context.Background(), `DELETE FROM projections.seen`); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Pool.Exec(context.Background(), `UPDATE projection_checkpoints SET tx_id = '0', position = 0 WHERE name = 'seen'`); err != nil {
		t.Fatal(err)
	}
	env.CatchUp(t, r)
	if got := env.Count(t, `SELECT count(*) FROM projections.seen`); got != 3 {
		t.Errorf("after the lost commits the runner holds %d rows, want the 3 applied again", got)
	}
}

// killer records every event it is given, like seen, and in the batch
// holding killAt has its own database connection terminated half-way
// through, as a crash of the projector's process or of its connection
// would, once per position in killAt.
type killer struct {
	seen
	pool   *pgxpool.Pool
	mu     sync.Mutex
	killAt map[int64]bool
	kills  int
}

func (k *killer) Apply(ctx context.Context, tx pgx.Tx, t projections.Names, batch []eventstore.Recorded) error {
	for _, r := range batch {
		if _, err := tx.Exec(ctx, `INSERT INTO `+t.Table("seen")+` VALUES ($1, $2, $3)`, r.Position, r.StreamID, r.Type); err != nil {
			return err
		}
		k.mu.Lock()
		kill := k.killAt[r.Position]
		delete(k.killAt, r.Position)
		k.mu.Unlock()
		if !kill {
			continue
		}
		var pid int
		if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			return err
		}
		if _, err := k.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
			return err
		}
		k.mu.Lock()
		k.kills++
		k.mu.Unlock()
	}
	return nil
}

func TestAProjectorKilledMidBatchAppliesNoEventTwiceAndSkipsNone(t *testing.T) {
	env := projectiontest.New(t)
	recs := appendSome(t, env, 40)
	k := &killer{pool: env.Pool, killAt: map[int64]bool{recs[3].Position: true, recs[17].Position: true, recs[31].Position: true}}
	r := env.RunnerWith(t, projections.Options{BatchSize: 10}, k)
	// Catch up as the runner's loop does: after a failed batch, again.
	failures := 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := r.CatchUp(context.Background())
		if err == nil {
			break
		}
		failures++
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %d tries: %v", failures, err)
		}
	}

	if k.kills != 3 || failures < 3 {
		t.Fatalf("the projector's connection was killed %d times and its batch failed %d times, want 3 and at least 3", k.kills, failures)
	}
	if got, want := env.Count(t, `SELECT count(*) FROM projections.seen`), len(recs); got != want {
		t.Errorf("seen holds %d rows after three kills mid-batch, want %d", got, want)
	}
	if got := env.Count(t, `SELECT count(*) FROM (SELECT position FROM projections.seen GROUP BY position HAVING count(*) > 1) d`); got != 0 {
		t.Errorf("%d events were applied more than once", got)
	}
	for _, rec := range recs {
		if env.Count(t, `SELECT count(*) FROM projections.seen WHERE position = $1`, rec.Position) != 1 {
			t.Errorf("event at %d was skipped", rec.Position)
		}
	}
	if got, want := checkpoint(t, env, "seen"), recs[len(recs)-1].Cursor(); got != want {
		t.Errorf("checkpoint at %s, want the last event %s", got, want)
	}
}
