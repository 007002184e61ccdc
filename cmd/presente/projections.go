package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/presente-dispatch/presente/web"

	"github.com/presente-dispatch/presente/projections"
	"github.com/presente-dispatch/presente/projections/audit"
	"github.com/presente-dispatch/presente/projections/board"
	"github.com/presente-dispatch/presente/projections/metrics"
	"github.com/presente-dispatch/presente/projections/roster"
	"github.com/presente-dispatch/presente/projections/shiftboard"
	"github.com/presente-dispatch/presente/projections/timeline"
)

// readModels are the projections every server keeps up to date.
func readModels() []projections.Projector {
	return []projections.Projector{board.New(), shiftboard.New(), roster.New(), timeline.New(), audit.New(), metrics.New()}
}

// readModelCheck reports the read models on /readyz: their positions and
// lag, and not ready while one cannot apply the log (the board would lie).
// A read model that is merely behind is reported, not failed: the server
// still takes commands, and the lag is on /metrics to alert on.
func readModelCheck(r *projections.Runner) web.Check {
	return web.Check{Name: "read_models", Run: func(context.Context) (any, error) {
		status := r.Status()
		for _, st := range status {
			if st.Problem != "" {
				return status, fmt.Errorf("read model %s: %s", st.Name, st.Problem)
			}
		}
		return status, nil
	}}
}

// runRebuild rebuilds one read model (or every one) from the start of the
// log into fresh tables and swaps them in. Running servers keep serving
// the old tables until the swap, and follow the new ones after it.
func runRebuild(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig("rebuild", args, getenv, stderr, parseOptions{keys: true, positional: "read model's name", optional: true})
	if err != nil {
		return configError(err, stderr)
	}
	registry, err := newRegistry()
	if err != nil {
		return err
	}
	// Projectors read the log sealed: no personal data is decrypted here.
	// The store still wants the keyring, as it would seal what it wrote.
	logger := newLogger(cfg, stderr)
	defer logger.Sync() //nolint:errcheck // nothing to do if stderr is gone
	master, err := masterKey(cfg, getenv, logger)
	if err != nil {
		return err
	}
	store, pool, closeStore, err := openStore(ctx, cfg, registry, &master)
	if err != nil {
		return err
	}
	defer closeStore()
	runner, err := projections.New(pool, store.ReadAllSealed, readModels(), projections.Options{})
	if err != nil {
		return err
	}
	names := runner.Names()
	if len(cfg.Args) == 1 {
		names = cfg.Args[:1]
	}
	for _, name := range names {
		if err := runner.Rebuild(ctx, name); err != nil {
			return fmt.Errorf("rebuild %s: %w (read models: %s)", name, err, strings.Join(runner.Names(), ", "))
		}
		fmt.Fprintf(stdout, "rebuilt %s\n", name)
	}
	return nil
}
