package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/presente-dispatch/presente/infra/postgres"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
)

func TestTheEventLogRefusesUpdateDeleteAndTruncateEvenWhenEmpty(t *testing.T) {
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	for _, sql := range []string{
		`UPDATE events SET data = '{}'`,
		`DELETE FROM events`,
		`TRUNCATE events`,
		`TRUNCATE events CASCADE`,
	} {
		_, err := pool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "PS403" || !strings.Contains(pgErr.Message, "append-only") {
			t.Errorf("%s on an empty log: err = %v, want the append-only error", sql, err)
		}
	}
}

func TestTheEventLogRefusesUpdateAndDeleteOfStoredEvents(t *testing.T) {
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `SELECT append_events(ARRAY[gen_random_uuid()], ARRAY['note'], ARRAY[0::bigint], ARRAY[1],
		ARRAY[gen_random_uuid()], ARRAY['NoteAdded'], ARRAY[1], ARRAY['{"text":"x"}'], ARRAY['{"actor":"system:test"}'], now())`); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{`UPDATE events SET data = '{}'`, `DELETE FROM events WHERE true`} {
		_, err := pool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "PS403" {
			t.Errorf("%s: err = %v, want the append-only error PS403", sql, err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE data ? 'text'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("the stored event changed: count %d, err %v", n, err)
	}
}

// TestTheApplicationRoleMayAppendOnlyThroughAppendEvents runs as the role
// the server should use: it may append through append_events and read, and
// every other way of writing the log is refused by the grants.
func TestTheApplicationRoleMayAppendOnlyThroughAppendEvents(t *testing.T) {
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // nothing to keep
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE presente_app`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT append_events(ARRAY[gen_random_uuid()], ARRAY['note'], ARRAY[0::bigint], ARRAY[1],
		ARRAY[gen_random_uuid()], ARRAY['NoteAdded'], ARRAY[1], ARRAY['{}'], ARRAY['{"actor":"system:test"}'], now())`); err != nil {
		t.Fatalf("presente_app cannot append: %v", err)
	}
	for i, sql := range []string{
		`INSERT INTO events (tx_id, stream_id, stream_type, stream_version, event_id, event_type, schema_version, data, metadata,
			recorded_at, prev_hash, hash) VALUES ('900000000000'::xid8, gen_random_uuid(), 'note', 1, gen_random_uuid(), 'X', 1,
			'{}', '{}', now(), '\x00', '\x00')`,
		`UPDATE events SET data = '{}'`,
		`DELETE FROM events`,
		`TRUNCATE events`,
		`UPDATE streams SET version = version + 1`,
		`INSERT INTO streams VALUES (gen_random_uuid(), 'note', 1, now(), now())`,
		`ALTER TABLE events DISABLE TRIGGER events_append_only`,
	} {
		sp := fmt.Sprintf("s%d", i)
		if _, err := tx.Exec(ctx, "SAVEPOINT "+sp); err != nil {
			t.Fatal(err)
		}
		_, err := tx.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" { // insufficient_privilege
			t.Errorf("presente_app ran %.40s...: err = %v, want permission denied", sql, err)
		}
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+sp); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil || n != 1 {
		t.Errorf("presente_app reads %d events (%v), want the 1 it appended", n, err)
	}
}

func TestMigrateIsIdempotentAndStatusReportsUpToDate(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	applied, err := postgres.Migrate(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if applied != 0 {
		t.Errorf("migrating a migrated database applied %d migrations", applied)
	}
	pool, err := postgres.Open(ctx, url, postgres.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st, err := postgres.MigrationStatus(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if !st.UpToDate() || st.Latest < 1 {
		t.Errorf("status = %+v, want up to date at version >= 1", st)
	}
}

func TestEnsureDatabaseCreatesAMissingDatabaseAndMigrateFillsIt(t *testing.T) {
	ctx := context.Background()
	scratch := pgtest.NewDatabase(t) // reserves a unique name and drops it afterwards
	admin, err := pgx.Connect(ctx, pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	u, err := url.Parse(scratch)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if _, err := admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}

	created, err := postgres.EnsureDatabase(ctx, scratch)
	if err != nil || !created {
		t.Fatalf("EnsureDatabase on a missing database = %v, %v; want created", created, err)
	}
	if created, err := postgres.EnsureDatabase(ctx, scratch); err != nil || created {
		t.Fatalf("EnsureDatabase on an existing database = %v, %v; want not created", created, err)
	}
	pool, err := postgres.Open(ctx, scratch, postgres.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if st, _ := postgres.MigrationStatus(ctx, pool); st.Current != 0 {
		t.Errorf("a new database reports schema version %d, want 0", st.Current)
	}
	if applied, err := postgres.Migrate(ctx, scratch); err != nil || applied < 1 {
		t.Fatalf("Migrate = %d, %v", applied, err)
	}
	if st, _ := postgres.MigrationStatus(ctx, pool); !st.UpToDate() {
		t.Errorf("after Migrate status = %+v", st)
	}
}

func TestEnsureDatabaseExplainsAMissingDatabaseName(t *testing.T) {
	_, err := postgres.EnsureDatabase(context.Background(), "postgres://postgres@127.0.0.1:5432/")
	if err == nil || !strings.Contains(err.Error(), "names no database") {
		t.Errorf("err = %v, want an explanation that the URL names no database", err)
	}
}
