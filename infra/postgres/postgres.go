// Package postgres connects Presente to PostgreSQL: it opens connection
// pools with the session settings the event log relies on, creates the
// database when it is missing, and applies the embedded schema migrations.
package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// versionTable records which migrations have been applied.
const versionTable = "schema_version"

// Migrations returns the embedded schema migrations, in the layout tern reads.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		// fs.Sub fails only for an invalid path literal, which is a build defect.
		return migrationFiles
	}
	return sub
}

// MigrationsDigest identifies the exact set of embedded migrations, so that a
// test template database built from other migrations is never reused.
func MigrationsDigest() (string, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return "", fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, name := range names {
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("read migration %s: %w", name, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// PoolOptions tunes a connection pool.
type PoolOptions struct {
	// MaxConns caps the pool; zero keeps pgx's default (4 or the CPU count).
	MaxConns int32
	// IdleInTransactionTimeout ends sessions that hold a transaction open
	// while idle. A forgotten open transaction would hold back every reader
	// of the global log (see ARCHITECTURE.md), so it must not live long.
	IdleInTransactionTimeout time.Duration
}

// Open connects a pool to the database named in connString and checks that
// it answers.
func Open(ctx context.Context, connString string, opts PoolOptions) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	timeout := opts.IdleInTransactionTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = fmt.Sprint(timeout.Milliseconds())
	cfg.ConnConfig.RuntimeParams["application_name"] = "presente"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", describe(cfg.ConnConfig), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %w", describe(cfg.ConnConfig), err)
	}
	return pool, nil
}

// describe names a database for messages without its password.
func describe(c *pgx.ConnConfig) string {
	return fmt.Sprintf("database %q on %s:%d as %q", c.Database, c.Host, c.Port, c.User)
}

// EnsureDatabase creates the database named in connString if it does not
// exist, connecting to the server's "postgres" database to do so.
func EnsureDatabase(ctx context.Context, connString string) (created bool, err error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return false, fmt.Errorf("parse database URL: %w", err)
	}
	name := cfg.Database
	if name == "" {
		return false, errors.New("the database URL names no database: add one, e.g. postgres://postgres@127.0.0.1:5432/presente")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return false, conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		return false, fmt.Errorf("connect to %s: %w", describe(cfg), err)
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	aconn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return false, fmt.Errorf("database %q is missing and connecting to %s to create it failed: %w", name, describe(admin), err)
	}
	defer aconn.Close(ctx)
	if _, err := aconn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created concurrently
			return false, nil
		}
		return false, fmt.Errorf("create database %q: %w", name, err)
	}
	return true, nil
}

// Migrate applies every embedded migration not yet applied to the database
// named in connString. Concurrent callers are serialized by tern's advisory
// lock, so two servers starting at once are safe.
func Migrate(ctx context.Context, connString string) (applied int32, err error) {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return 0, fmt.Errorf("connect for migrations: %w", err)
	}
	defer conn.Close(ctx)
	m, err := newMigrator(ctx, conn)
	if err != nil {
		return 0, err
	}
	before, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return 0, fmt.Errorf("apply migrations: %w", err)
	}
	after, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return after - before, nil
}

func newMigrator(ctx context.Context, conn *pgx.Conn) (*migrate.Migrator, error) {
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return nil, fmt.Errorf("prepare migrations: %w", err)
	}
	if err := m.LoadMigrations(Migrations()); err != nil {
		return nil, fmt.Errorf("load embedded migrations: %w", err)
	}
	return m, nil
}

// LatestVersion is the number of the newest embedded migration.
func LatestVersion() (int32, error) {
	names, err := migrate.FindMigrations(Migrations())
	if err != nil {
		return 0, fmt.Errorf("list embedded migrations: %w", err)
	}
	return int32(len(names)), nil
}

// Status reports the schema version a database is at and the newest this
// binary knows.
type Status struct {
	Current int32 `json:"current"`
	Latest  int32 `json:"latest"`
}

// UpToDate tells whether every embedded migration has been applied.
func (s Status) UpToDate() bool { return s.Current == s.Latest }

// MigrationStatus reads the applied schema version through the pool without
// taking tern's migration lock, so it is cheap enough for readiness checks.
func MigrationStatus(ctx context.Context, pool *pgxpool.Pool) (Status, error) {
	latest, err := LatestVersion()
	if err != nil {
		return Status{}, err
	}
	var current int32
	err = pool.QueryRow(ctx, `SELECT coalesce((SELECT version FROM `+versionTable+` LIMIT 1), 0)`).Scan(&current)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table: never migrated
		return Status{Current: 0, Latest: latest}, nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("read schema version: %w", err)
	}
	return Status{Current: current, Latest: latest}, nil
}
