// Package projectiontest gives projection tests what they share: a fresh
// migrated database, an event store registering every event type Presente
// stores, the dispatch service on a test clock to produce realistic
// streams, a runner, and comparisons of read-model tables.
package projectiontest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/invitation"
	"github.com/presente-dispatch/presente/domain/organization"
	"github.com/presente-dispatch/presente/domain/privacy"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/retention"
	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/domain/training"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/dispatch"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
	privacyinfra "github.com/presente-dispatch/presente/infra/privacy"
	"github.com/presente-dispatch/presente/infra/testclock"
	"github.com/presente-dispatch/presente/projections"
)

// Monday is when every test's clock starts.
var Monday = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// Env is one test's world: its own database, log and dispatch service.
type Env struct {
	Pool  *pgxpool.Pool
	Store *eventstore.Store
	// Registry holds every event type Presente stores.
	Registry *eventstore.Registry
	Service  *dispatch.Service
	Clock    *testclock.Clock
	// Meta is the metadata commands are recorded with: a dispatcher.
	Meta eventstore.Metadata
}

// New returns a fresh Env for tb.
func New(tb testing.TB) *Env {
	tb.Helper()
	return Open(tb, pgtest.NewPool(tb))
}

// Registry returns a registry of every event type Presente stores.
func Registry(tb testing.TB) *eventstore.Registry {
	tb.Helper()
	registry := eventstore.NewRegistry()
	for _, e := range slices.Concat(privacy.Events, account.Events, invitation.Events, retention.Events, volunteer.Events,
		shift.Events, request.Events, training.Events, organization.Events) {
		if err := registry.Register(e); err != nil {
			tb.Fatal(err)
		}
	}
	return registry
}

// Open returns an Env over pool, a migrated database that may already hold
// a log, with a new master key: events it writes can be revealed, events
// already there only read sealed.
func Open(tb testing.TB, pool *pgxpool.Pool) *Env {
	tb.Helper()
	master, err := keyring.ParseMasterKey(keyring.GenerateMasterKey())
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := keyring.New(pool, master)
	if err != nil {
		tb.Fatal(err)
	}
	registry := Registry(tb)
	store, err := eventstore.New(pool, registry, eventstore.Options{Keys: keys})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(store.Close)
	clock := testclock.New(Monday)
	return &Env{Pool: pool, Store: store, Registry: registry, Service: dispatch.New(store, dispatch.Options{Clock: clock.Now}), Clock: clock,
		Meta: eventstore.Metadata{Actor: "user:" + uuid.NewString()}}
}

// Runner returns a runner of projectors over the Env's log, polling fast.
func (e *Env) Runner(tb testing.TB, projectors ...projections.Projector) *projections.Runner {
	tb.Helper()
	return e.RunnerWith(tb, projections.Options{PollInterval: 10 * time.Millisecond}, projectors...)
}

// RunnerWith returns a runner of projectors with opts.
func (e *Env) RunnerWith(tb testing.TB, opts projections.Options, projectors ...projections.Projector) *projections.Runner {
	tb.Helper()
	r, err := projections.New(e.Pool, e.Store.ReadAll, projectors, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// Head returns the cursor of the newest committed event (zero for an
// empty log).
func (e *Env) Head(tb testing.TB) eventstore.Cursor {
	tb.Helper()
	var c eventstore.Cursor
	err := e.Pool.QueryRow(context.Background(), `SELECT tx_id, position FROM events ORDER BY tx_id DESC, position DESC LIMIT 1`).
		Scan(&c.TxID, &c.Position)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		tb.Fatal(err)
	}
	return c
}

// CatchUp brings every projection of r up to the newest event committed
// now. Any transaction open on the server delays the log's readers, so it
// polls with a deadline rather than expecting one pass to suffice.
func (e *Env) CatchUp(tb testing.TB, r *projections.Runner) {
	tb.Helper()
	head := e.Head(tb)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := r.CatchUp(context.Background()); err != nil {
			tb.Fatal(err)
		}
		behind := ""
		for _, s := range r.Status() {
			if s.Cursor.TxID < head.TxID || (s.Cursor.TxID == head.TxID && s.Cursor.Position < head.Position) {
				behind += fmt.Sprintf(" %s at %s;", s.Name, s.Cursor)
			}
		}
		if behind == "" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("projections did not reach the head %s within 20s:%s", head, behind)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Forget forgets a subject the way the API does.
func (e *Env) Forget(tb testing.TB, subject uuid.UUID) {
	tb.Helper()
	if _, err := privacyinfra.Forget(context.Background(), e.Pool, e.Store, subject,
		eventstore.Metadata{Actor: e.Meta.Actor, Reason: string(privacy.ReasonAsked)}); err != nil {
		tb.Fatal(err)
	}
}

// Count runs a query returning one number.
func (e *Env) Count(tb testing.TB, sql string, args ...any) int {
	tb.Helper()
	var n int
	if err := e.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return n
}

// SameRows fails tb unless tables a and b (qualified, quoted names) hold
// the same rows, compared with EXCEPT ALL both ways; it reports a few rows
// that differ.
func SameRows(tb testing.TB, pool *pgxpool.Pool, a, b string) {
	tb.Helper()
	for _, pair := range [][2]string{{a, b}, {b, a}} {
		rows, err := pool.Query(context.Background(), fmt.Sprintf(`SELECT x::text FROM (TABLE %s EXCEPT ALL TABLE %s) x LIMIT 5`, pair[0], pair[1]))
		if err != nil {
			tb.Fatalf("compare %s with %s: %v", pair[0], pair[1], err)
		}
		only, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			tb.Fatal(err)
		}
		if len(only) > 0 {
			tb.Errorf("rows in %s but not in %s:\n  %s", pair[0], pair[1], strings.Join(only, "\n  "))
		}
	}
}

// Snapshot copies each of a projector's live tables into a scratch table
// and returns the copies' names, by base name, for SameRows.
func Snapshot(tb testing.TB, pool *pgxpool.Pool, p projections.Projector) map[string]string {
	tb.Helper()
	live := projections.Live(p)
	out := map[string]string{}
	for _, base := range p.Tables() {
		copyName := pgx.Identifier{"public", "snapshot_" + base}.Sanitize()
		if _, err := pool.Exec(context.Background(), `DROP TABLE IF EXISTS `+copyName+`; CREATE TABLE `+copyName+` AS TABLE `+live.Table(base)); err != nil {
			tb.Fatal(err)
		}
		out[base] = copyName
	}
	return out
}

// NoText fails tb if any read-model table of p holds text (in any column,
// cast to text) containing one of secrets.
func NoText(tb testing.TB, pool *pgxpool.Pool, p projections.Projector, secrets ...string) {
	tb.Helper()
	live := projections.Live(p)
	for _, base := range p.Tables() {
		for _, s := range secrets {
			var n int
			err := pool.QueryRow(context.Background(), `SELECT count(*) FROM `+live.Table(base)+` x WHERE strpos(x::text, $1) > 0`, s).Scan(&n)
			if err != nil {
				tb.Fatal(err)
			}
			if n > 0 {
				tb.Errorf("%s: %d row(s) of %s hold %q", p.Name(), n, base, s)
			}
		}
	}
}

// Window returns a window starting at start and lasting d.
func Window(start time.Time, d time.Duration) domain.Window {
	return domain.Window{Start: start, End: start.Add(d)}
}
