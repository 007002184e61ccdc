// Command presente-load drives a running Presente server through its real
// API and websockets, as dispatchers would, and reports what it measured
// beside a baseline taken in the same run (docs/BENCHMARKS.md).
//
//	presente-load -scenario board-latency -clients 5000 -rate 50 -duration 60s -url http://127.0.0.1:8080
//	presente-load -scenario idle-memory -clients 10000 -url http://127.0.0.1:8080
//
// It signs in once (PRESENTE_LOAD_PASSWORD, the demo password by default)
// and shares the session among all its sockets, as one dispatcher with
// many tabs: sign-ins are slow and throttled by design. Every board client
// applies the rules of web/LIVE.md; a gap or a duplicate fails the run.
// Errors are counted by kind. The exit status is 1 when anything failed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// demoPassword is the published password of the demo accounts
// (cmd/presente/demo.go), used when PRESENTE_LOAD_PASSWORD is not set.
const demoPassword = "presente-demo-password"

// config is what the command line asks for.
type config struct {
	Scenario string        `json:"scenario"`
	URL      string        `json:"url"`
	Clients  int           `json:"clients"`
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration"`
	Warmup   time.Duration `json:"warmup"`
	Email    string        `json:"email"`
	// DialConcurrency bounds the handshakes (and first syncs) in flight.
	DialConcurrency int `json:"dial_concurrency"`
	// Settle is how long idle connections sit before memory is read, and
	// how long after the last command deltas may still arrive.
	Settle time.Duration `json:"settle"`
	// Drain bounds the wait, after the last command, for the board to
	// show every acknowledged one; those it has not shown by then fail
	// the run.
	Drain time.Duration `json:"drain"`
	// GCWait, when set, also waits up to this long for the server's next
	// garbage collection and reads its memory again after it.
	GCWait time.Duration `json:"gc_wait"`
	// Endpoints are the live endpoints idle-memory opens, in order.
	Endpoints []string `json:"endpoints"`
	JSON      bool     `json:"-"`

	base     *url.URL
	password string
}

// scenario runs against a server and returns its result; an error means
// it could not be measured at all.
type scenario func(ctx context.Context, h *harness) (result, error)

// result is what a scenario measured.
type result interface {
	// print writes the result for people.
	print(w io.Writer)
	// failures are the reasons the run failed loudly: lost or repeated
	// deltas, commands that never reached the board.
	failures() []string
}

// scenarios names every scenario. Issue 7's mixes go here.
func scenarios() map[string]scenario {
	return map[string]scenario{
		"board-latency": boardLatency,
		"idle-memory":   idleMemory,
	}
}

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var cfg config
	var endpoints string
	fs := flag.NewFlagSet("presente-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Scenario, "scenario", "", "board-latency or idle-memory")
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "the running server's URL; also sent as Origin, so it must be an allowed origin")
	fs.IntVar(&cfg.Clients, "clients", 1000, "websocket clients to open")
	fs.Float64Var(&cfg.Rate, "rate", 50, "board-latency: commands per second (fixed arrival rate)")
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "board-latency: how long commands are sent")
	fs.DurationVar(&cfg.Warmup, "warmup", 5*time.Second, "board-latency: commands and pings sent but not counted at first")
	fs.StringVar(&cfg.Email, "email", "dispatcher@demo.example.org", "account to sign in as (a dispatcher or coordinator); password from PRESENTE_LOAD_PASSWORD")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", 32, "handshakes and first syncs in flight at once")
	fs.DurationVar(&cfg.Settle, "settle", 3*time.Second, "quiet time before memory is read, and after the last command")
	fs.DurationVar(&cfg.Drain, "drain", time.Minute, "board-latency: how long, after the last command, the board may take to show every acknowledged one")
	fs.DurationVar(&cfg.GCWait, "gc-wait", 0, "idle-memory: also wait up to this long for the server's next GC before the first reading, after each endpoint's connections opened and after they closed, and read memory after it (the runtime forces one every 2 minutes)")
	fs.StringVar(&endpoints, "endpoints", "board,live", "idle-memory: endpoints to open, in order: board (/api/v1/live/board), live (/api/v1/live)")
	fs.BoolVar(&cfg.JSON, "json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if _, ok := scenarios()[cfg.Scenario]; !ok {
		names := make([]string, 0)
		for n := range scenarios() {
			names = append(names, n)
		}
		sort.Strings(names)
		return cfg, fmt.Errorf("-scenario %q: use %s", cfg.Scenario, strings.Join(names, " or "))
	}
	u, err := url.Parse(strings.TrimSuffix(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
		return cfg, fmt.Errorf("-url %q: write the server's base URL, such as http://127.0.0.1:8080", cfg.URL)
	}
	cfg.base = u
	switch {
	case cfg.Clients < 1:
		return cfg, errors.New("-clients must be at least 1")
	case cfg.Rate <= 0:
		return cfg, errors.New("-rate must be above 0")
	case cfg.Duration <= 0:
		return cfg, errors.New("-duration must be above 0")
	case cfg.Warmup < 0 || cfg.Warmup >= cfg.Duration:
		return cfg, errors.New("-warmup must be at least 0 and shorter than -duration")
	case cfg.DialConcurrency < 1:
		return cfg, errors.New("-dial-concurrency must be at least 1")
	}
	for _, e := range strings.Split(endpoints, ",") {
		e = strings.TrimSpace(e)
		if _, ok := livePaths[e]; !ok {
			return cfg, fmt.Errorf("-endpoints: %q is neither board nor live", e)
		}
		cfg.Endpoints = append(cfg.Endpoints, e)
	}
	cfg.password = getenv("PRESENTE_LOAD_PASSWORD")
	if cfg.password == "" {
		cfg.password = demoPassword
	}
	return cfg, nil
}

// run is the program; main only exits with its status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "presente-load:", err)
		return exitUsage
	}
	h := newHarness(cfg, stderr)
	defer h.close()
	res, err := scenarios()[cfg.Scenario](ctx, h)
	if err != nil {
		fmt.Fprintf(stderr, "presente-load: %s: %v\n", cfg.Scenario, err)
		return exitFailure
	}
	if cfg.JSON {
		out := struct {
			Config config `json:"config"`
			Result result `json:"result"`
		}{cfg, res}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			fmt.Fprintln(stderr, "presente-load: encode the result:", err)
			return exitFailure
		}
		fmt.Fprintln(stdout, string(b))
	} else {
		res.print(stdout)
	}
	if f := res.failures(); len(f) > 0 {
		for _, why := range f {
			fmt.Fprintln(stderr, "FAIL:", why)
		}
		return exitFailure
	}
	return exitOK
}
