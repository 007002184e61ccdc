package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/postgres"
)

// runMigrate creates the database if it is missing and applies every
// migration this build embeds.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig("migrate", args, getenv, stderr, false, nil)
	if err != nil {
		return configError(err, stderr)
	}
	created, err := postgres.EnsureDatabase(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintln(stdout, "created the database")
	}
	applied, err := postgres.Migrate(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	latest, err := postgres.LatestVersion()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied %d migration(s); the schema is at version %d\n", applied, latest)
	return nil
}

// runVerify walks every stream's hash chain and reports any break. It exits
// 1 when the log has been tampered with.
func runVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var asJSON bool
	cfg, err := parseConfig("verify", args, getenv, stderr, false, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	})
	if err != nil {
		return configError(err, stderr)
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.PoolOptions{MaxConns: 2})
	if err != nil {
		return err
	}
	defer pool.Close()
	// Verification reads stored columns only; it decodes no event payload,
	// so it needs no event types registered.
	store, err := eventstore.New(pool, eventstore.NewRegistry(), eventstore.Options{})
	if err != nil {
		return err
	}
	report, err := store.Verify(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "verified %d events in %d streams\n", report.Events, report.Streams)
		fmt.Fprintf(stdout, "stream heads digest: %s\n", report.Digest)
		if report.OK() {
			fmt.Fprintln(stdout, "OK: every hash chain is intact")
		} else {
			fmt.Fprintf(stdout, "TAMPERED: %d break(s) found\n", len(report.Breaks))
			for _, b := range report.Breaks {
				fmt.Fprintf(stdout, "  %s\n", b)
			}
		}
	}
	if !report.OK() {
		return &failure{code: exitFailure}
	}
	return nil
}

// runHealthcheck asks a running server whether it is ready. Container
// images without curl use it as their health check.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("presente healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080/readyz", "the readiness URL to probe")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for an answer")
	if err := fs.Parse(args); err != nil {
		return configError(&flagParseError{err: err}, stderr)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck URL %q: %w", *url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", *url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: %s", *url, resp.Status)
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}
