package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/postgres"
)

// runMigrate creates the database if it is missing and applies every
// migration this build embeds.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig("migrate", args, getenv, stderr, parseOptions{})
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
	var (
		asJSON           bool
		anchorIn, saveTo string
	)
	cfg, err := parseConfig("verify", args, getenv, stderr, parseOptions{extra: func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
		fs.StringVar(&anchorIn, "anchor", "", "check that every stream head saved in this file is still in the log, unchanged")
		fs.StringVar(&saveTo, "save-anchor", "", "save the stream heads to this file, kept outside the database, for a later --anchor")
	}})
	if err != nil {
		return configError(err, stderr)
	}
	anchors, err := readAnchor(anchorIn)
	if err != nil {
		return err
	}
	// Verification reads stored columns only; it decodes no event payload,
	// so it needs no event types registered.
	store, _, closeStore, err := openStore(ctx, cfg, eventstore.NewRegistry(), nil)
	if err != nil {
		return err
	}
	defer closeStore()
	report, err := store.Verify(ctx, anchors)
	if err != nil {
		return err
	}
	if saveTo != "" && report.OK() {
		if err := writeAnchor(saveTo, report.Heads); err != nil {
			return err
		}
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
		if anchorIn != "" {
			fmt.Fprintf(stdout, "checked against %d anchored stream heads from %s\n", len(anchors), anchorIn)
		}
		if saveTo != "" && report.OK() {
			fmt.Fprintf(stdout, "saved %d stream heads to %s: keep it outside the database\n", len(report.Heads), saveTo)
		}
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

// anchorFile is the format of a saved anchor.
type anchorFile struct {
	SavedAt time.Time         `json:"saved_at"`
	Heads   []eventstore.Head `json:"heads"`
}

func readAnchor(path string) ([]eventstore.Head, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read anchor: %w", err)
	}
	var a anchorFile
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("anchor %s is not a file saved by presente verify --save-anchor: %w", path, err)
	}
	return a.Heads, nil
}

func writeAnchor(path string, heads []eventstore.Head) error {
	b, err := json.MarshalIndent(anchorFile{SavedAt: time.Now().UTC(), Heads: heads}, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("save anchor: %w", err)
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
