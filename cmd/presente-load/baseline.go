package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/presente-dispatch/presente/infra/postgres"
)

// baselineDatabase is the scratch database of the Postgres baseline, on
// the server -baseline-dsn names; it holds one table and nothing else.
const baselineDatabase = "presente_load_baseline"

// baselineDSN is dsn with its database replaced by the scratch one.
func baselineDSN(dsn string) (string, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "", fmt.Errorf("-baseline-dsn: %w", err)
	}
	if cfg.Database == baselineDatabase {
		return dsn, nil
	}
	// Rewrite the URL's path, keeping its host, user and parameters.
	head, query, _ := strings.Cut(dsn, "?")
	if !strings.Contains(head, "://") {
		return "", fmt.Errorf("-baseline-dsn %q: write a URL such as postgres://postgres@127.0.0.1:5432/postgres", dsn)
	}
	scheme, rest, _ := strings.Cut(head, "://")
	host, _, _ := strings.Cut(rest, "/")
	out := scheme + "://" + host + "/" + baselineDatabase
	if query != "" {
		out += "?" + query
	}
	return out, nil
}

// pgBaseline is the raw Postgres insert rate: single-row autocommit
// INSERTs of a command-sized JSON payload into a table with no index and
// no constraint, in a scratch database, through a pool the size of the
// server's (pgx's default on this machine, 4), each arrival timed from
// when it was due to its commit, exactly as commands are timed.
type pgBaseline struct {
	pool *pgxpool.Pool
}

const baselineTableSQL = `CREATE TABLE IF NOT EXISTS baseline_inserts (data jsonb NOT NULL, metadata jsonb NOT NULL)`

// baselinePayload is about the size of a received request's event.
var baselinePayload = `{"request_id":"0192e3b4-7c1d-7000-8000-000000000000","kind":"rapid_response","region":"load-test",` +
	`"needed":1,"priority":"high","person_name":"sealed:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",` +
	`"window":{"start":"2026-11-24T08:00:00Z","end":"2026-11-24T10:00:00Z"}}`

const baselineMetadata = `{"actor":"0192e3b4-7c1d-7000-8000-000000000001","correlation_id":"0192e3b4-7c1d-7000-8000-000000000002"}`

func openBaseline(ctx context.Context, dsn string, conns int) (*pgBaseline, error) {
	scratch, err := baselineDSN(dsn)
	if err != nil {
		return nil, err
	}
	if _, err := postgres.EnsureDatabase(ctx, scratch); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(scratch)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	cfg.MaxConns = int32(conns)
	cfg.MinConns = int32(conns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	for _, q := range []string{baselineTableSQL, `TRUNCATE baseline_inserts`} {
		if _, err := pool.Exec(ctx, q); err != nil {
			pool.Close()
			return nil, fmt.Errorf("baseline: %s: %w", q, err)
		}
	}
	return &pgBaseline{pool: pool}, nil
}

func (b *pgBaseline) close() { b.pool.Close() }

// baselineResult is one run of the Postgres baseline.
type baselineResult struct {
	Rate     float64 `json:"rate"`
	Sent     int64   `json:"sent"`
	Done     int64   `json:"done"`
	Achieved float64 `json:"achieved_per_second"`
	Errors   int64   `json:"errors"`
	Latency  summary `json:"latency"`
}

// run inserts at rate (open model) for d, or n rows when n > 0, with at
// most maxInflight waiting, and times each from its arrival to its
// commit. It runs alone, before or after the scenario's own load, never
// beside it.
func (b *pgBaseline) run(ctx context.Context, h *harness, rate float64, n int, d time.Duration) *baselineResult {
	var (
		lat    timings
		done   atomic.Int64
		failed atomic.Int64
	)
	began := time.Now()
	sent := h.openLoop(ctx, rate, n, d, maxInflight, "baseline INSERT", func(ctx context.Context, a arrival) {
		if _, err := b.pool.Exec(ctx, `INSERT INTO baseline_inserts (data, metadata) VALUES ($1, $2)`,
			baselinePayload, baselineMetadata); err != nil {
			failed.Add(1)
			return
		}
		lat.record(a.intended, h.now()-a.intended)
		done.Add(1)
	}, nil)
	return &baselineResult{Rate: rate, Sent: sent, Done: done.Load(), Errors: failed.Load(),
		Achieved: float64(done.Load()) / time.Since(began).Seconds(), Latency: lat.summary()}
}
