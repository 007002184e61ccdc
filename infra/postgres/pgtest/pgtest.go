// Package pgtest gives each test its own fresh, migrated PostgreSQL
// database, cloned from a template that is migrated once per set of
// migrations. Tests run against a real server: a missing server is a test
// failure, never a skip.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/presente-dispatch/presente/infra/postgres"
)

// DefaultURL is the server tests use when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres"

// ServerURL returns the connection string of the server tests use: the
// database it names is used only to create and drop test databases.
func ServerURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

var template struct {
	once sync.Once
	name string
	err  error
}

// NewDatabase creates a fresh migrated database for tb, drops it when tb
// ends, and returns its connection string.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	template.once.Do(func() { template.name, template.err = ensureTemplate(ctx) })
	if template.err != nil {
		tb.Fatalf("pgtest: prepare template database: %v", template.err)
	}

	admin, err := connectAdmin(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close(ctx)

	name := "presente_test_" + randomSuffix()
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s",
		pgx.Identifier{name}.Sanitize(), pgx.Identifier{template.name}.Sanitize())); err != nil {
		tb.Fatalf("pgtest: create database %s from template %s: %v", name, template.name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := connectAdmin(ctx)
		if err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})

	cs, err := withDatabase(ServerURL(), name)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return cs
}

// NewPool creates a fresh migrated database for tb and returns a pool on it,
// closed when tb ends.
func NewPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	return NewPoolFor(tb, NewDatabase(tb))
}

// NewPoolFor returns a pool on the database at url, closed when tb ends.
func NewPoolFor(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := postgres.Open(ctx, url, postgres.PoolOptions{MaxConns: 20})
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// ensureTemplate builds the template database for the current migrations
// unless another test process already has. An advisory lock serializes
// test binaries that start at the same time.
func ensureTemplate(ctx context.Context) (string, error) {
	digest, err := postgres.MigrationsDigest()
	if err != nil {
		return "", err
	}
	name := "presente_template_" + digest
	admin, err := connectAdmin(ctx)
	if err != nil {
		return "", err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(hashtext($1))", name); err != nil {
		return "", fmt.Errorf("lock template %s: %w", name, err)
	}
	defer admin.Exec(context.Background(), "SELECT pg_advisory_unlock(hashtext($1))", name) //nolint:errcheck // the lock dies with the connection anyway

	var isTemplate bool
	err = admin.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&isTemplate)
	switch {
	case err == nil && isTemplate:
		return name, nil
	case err == nil:
		// A previous run died half-way through migrating it.
		if _, err := admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return "", fmt.Errorf("drop unfinished template %s: %w", name, err)
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return "", fmt.Errorf("look up template %s: %w", name, err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create template %s: %w", name, err)
	}
	cs, err := withDatabase(ServerURL(), name)
	if err != nil {
		return "", err
	}
	if _, err := postgres.Migrate(ctx, cs); err != nil {
		return "", fmt.Errorf("migrate template %s: %w", name, err)
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" IS_TEMPLATE true"); err != nil {
		return "", fmt.Errorf("mark %s as template: %w", name, err)
	}
	return name, nil
}

func connectAdmin(ctx context.Context) (*pgx.Conn, error) {
	c, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		return nil, fmt.Errorf("pgtest: these tests need PostgreSQL at %s (set TEST_DATABASE_URL to another server): %w",
			redact(ServerURL()), err)
	}
	return c, nil
}

// withDatabase returns connString naming database db instead of its own.
// It accepts both URL and keyword/value connection strings.
func withDatabase(connString, db string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "", fmt.Errorf("parse TEST_DATABASE_URL: %w", err)
		}
		u.Path = "/" + db
		return u.String(), nil
	}
	// In keyword/value form a later keyword overrides an earlier one.
	return connString + " dbname='" + db + "'", nil
}

func redact(url string) string {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return "(unparseable TEST_DATABASE_URL)"
	}
	return fmt.Sprintf("%s:%d as %s", cfg.Host, cfg.Port, cfg.User)
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
