// Command presente-load drives a running Presente server through its real
// API and websockets, as dispatchers would, and reports what it measured
// beside a baseline taken in the same run (docs/BENCHMARKS.md).
//
//	presente-load -scenario board-latency -clients 5000 -rate 50 -duration 60s -url http://127.0.0.1:8080
//	presente-load -scenario idle-memory -clients 10000 -url http://127.0.0.1:8080
//	presente-load -scenario raid-morning -url http://127.0.0.1:8080
//	presente-load -scenario shift-opens -url http://127.0.0.1:8080
//	presente-load -scenario reconnect-storm -url http://127.0.0.1:8080
//	presente-load -scenario throughput -url http://127.0.0.1:8080
//
// Issue 7's scenarios (raid-morning, shift-opens, reconnect-storm,
// throughput) default to the scale; every figure is printed
// beside two baselines measured in the same run: a raw Postgres INSERT
// at the same arrival rate (-baseline-dsn) and a websocket ping over the
// scenario's own connections.
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
	"strconv"
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

	// Issue 7's scenarios.
	CoordinatorEmail string `json:"coordinator_email"`
	// Volunteers is how many volunteer accounts a scenario signs in and
	// connects (made through invitations; see volunteers.go).
	Volunteers    int    `json:"volunteers"`
	VolunteerFile string `json:"volunteer_file,omitempty"`
	// Requests and Commands are raid-morning's intake and total commands
	// (the intake counts among the commands).
	Requests int `json:"requests"`
	Commands int `json:"commands"`
	// Slots is shift-opens' capacity.
	Slots int `json:"slots"`
	// Rates and Step are throughput's offered rates, each held for Step.
	Rates []float64     `json:"rates"`
	Step  time.Duration `json:"step"`
	// BaselineDSN is the PostgreSQL server of the insert baseline, which
	// makes and uses a scratch database there; BaselineConns its pool;
	// BaselineFor how long it runs at a scenario's rate (at most the
	// scenario's own length).
	BaselineDSN   string        `json:"-"`
	BaselineConns int           `json:"baseline_conns"`
	BaselineFor   time.Duration `json:"baseline_duration"`
	// StormBounded makes reconnect-storm's clients reconnect through the
	// handshake bound (-dial-concurrency) too, as they first connected.
	StormBounded bool `json:"storm_bounded"`
	// Timeout bounds each HTTP request, as a phone's patience would.
	Timeout time.Duration `json:"timeout"`

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
		"board-latency":   boardLatency,
		"idle-memory":     idleMemory,
		"raid-morning":    raidMorning,
		"shift-opens":     shiftOpens,
		"reconnect-storm": reconnectStorm,
		"throughput":      throughput,
	}
}

// scenarioDefaults are each scenario's own defaults (issue 7's scale) for
// the shared flags, used when the flag is not given.
var scenarioDefaults = map[string]map[string]string{
	"raid-morning":    {"clients": "500", "volunteers": "1000", "duration": "5m", "warmup": "10s"},
	"shift-opens":     {"volunteers": "1000", "duration": "2s", "warmup": "0s", "timeout": "3m"},
	"reconnect-storm": {"clients": "5000", "duration": "10s", "warmup": "0s", "rate": "20", "drain": "3m"},
	"throughput":      {"clients": "100", "warmup": "3s"},
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
	fs.StringVar(&cfg.Scenario, "scenario", "", "board-latency, idle-memory, raid-morning, shift-opens, reconnect-storm or throughput")
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "the running server's URL; also sent as Origin, so it must be an allowed origin")
	fs.IntVar(&cfg.Clients, "clients", 1000, "websocket clients to open (raid-morning, reconnect-storm, throughput: dispatcher boards; scenario defaults 500, 5000, 100)")
	fs.Float64Var(&cfg.Rate, "rate", 50, "board-latency, reconnect-storm: commands per second (fixed arrival rate)")
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "board-latency: how long commands are sent; raid-morning: how long its commands are spread over (5m); shift-opens: the window of the claims (2s); reconnect-storm: the window of the drops (10s)")
	fs.DurationVar(&cfg.Warmup, "warmup", 5*time.Second, "board-latency, raid-morning, throughput (each rate): commands and pings sent but not counted at first")
	fs.StringVar(&cfg.Email, "email", "dispatcher@demo.example.org", "account to sign in as (a dispatcher or coordinator); password from PRESENTE_LOAD_PASSWORD")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", 32, "handshakes and first syncs in flight at once")
	fs.DurationVar(&cfg.Settle, "settle", 3*time.Second, "quiet time before memory is read, and after the last command")
	fs.DurationVar(&cfg.Drain, "drain", time.Minute, "how long, after the last command, the board may take to show every acknowledged one (reconnect-storm: 3m, also for every client to be back in sync)")
	fs.DurationVar(&cfg.GCWait, "gc-wait", 0, "idle-memory: also wait up to this long for the server's next GC before the first reading, after each endpoint's connections opened and after they closed, and read memory after it (the runtime forces one every 2 minutes)")
	fs.StringVar(&endpoints, "endpoints", "board,live", "idle-memory: endpoints to open, in order: board (/api/v1/live/board), live (/api/v1/live)")
	fs.BoolVar(&cfg.JSON, "json", false, "print the result as JSON")
	fs.StringVar(&cfg.CoordinatorEmail, "coordinator-email", "coordinator@demo.example.org", "raid-morning, shift-opens: the coordinator who invites the volunteers and schedules the shift (same password)")
	fs.IntVar(&cfg.Volunteers, "volunteers", 1000, "raid-morning, shift-opens: volunteer accounts to make (or reuse) and connect")
	fs.StringVar(&cfg.VolunteerFile, "volunteer-file", "", "keep the volunteers' sessions in this file and reuse them on the next run against the same server")
	fs.IntVar(&cfg.Requests, "requests", 200, "raid-morning: new requests received")
	fs.IntVar(&cfg.Commands, "commands", 2000, "raid-morning: commands in all, the intake included, spread evenly over -duration")
	fs.IntVar(&cfg.Slots, "slots", 50, "shift-opens: the shift's capacity")
	rates := fs.String("rates", "200,500,1000", "throughput: offered commands/s, each held for -step")
	fs.DurationVar(&cfg.Step, "step", 20*time.Second, "throughput: how long each rate is held")
	fs.StringVar(&cfg.BaselineDSN, "baseline-dsn", "postgres://postgres@127.0.0.1:5432/postgres", "PostgreSQL server for the insert baseline (it makes the scratch database "+baselineDatabase+" there)")
	fs.IntVar(&cfg.BaselineConns, "baseline-conns", 4, "connections of the insert baseline (the server's pool on a 2-core machine: pgx's default of 4)")
	fs.DurationVar(&cfg.BaselineFor, "baseline-duration", 30*time.Second, "how long the insert baseline runs at each measured rate (at most the scenario's length)")
	fs.BoolVar(&cfg.StormBounded, "storm-bounded", false, "reconnect-storm: reconnect at most -dial-concurrency at a time, as the clients first connected (by default every dropped client redials when its backoff ends)")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "how long each HTTP request may take before it counts as a timeout (shift-opens: 3m, so every claim's answer is timed)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, value := range scenarioDefaults[cfg.Scenario] {
		if !set[name] {
			if err := fs.Set(name, value); err != nil {
				return cfg, err
			}
		}
	}
	for _, r := range strings.Split(*rates, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || f <= 0 {
			return cfg, fmt.Errorf("-rates: %q is not a rate above 0 (write e.g. 200,500,1000)", r)
		}
		cfg.Rates = append(cfg.Rates, f)
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
	case cfg.Volunteers < 1:
		return cfg, errors.New("-volunteers must be at least 1")
	case cfg.Requests < 1 || cfg.Commands < cfg.Requests:
		return cfg, errors.New("-requests must be at least 1 and -commands at least -requests")
	case cfg.Scenario == "raid-morning" && cfg.Volunteers < 2*cfg.Requests:
		return cfg, fmt.Errorf("raid-morning: -volunteers (%d) must be at least twice -requests (%d): each request gets two volunteers of its own, so no commitments overlap", cfg.Volunteers, cfg.Requests)
	case cfg.Slots < 1:
		return cfg, errors.New("-slots must be at least 1")
	case cfg.Step <= 0 || cfg.BaselineFor <= 0:
		return cfg, errors.New("-step and -baseline-duration must be above 0")
	case cfg.Timeout <= 0:
		return cfg, errors.New("-timeout must be above 0")
	case cfg.BaselineConns < 1:
		return cfg, errors.New("-baseline-conns must be at least 1")
	}
	for _, e := range strings.Split(endpoints, ",") {
		e = strings.TrimSpace(e)
		if e != "board" && e != "live" {
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
