package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
)

// serverBinary is cmd/presente, built once for the tests.
var serverBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "presente-load-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBinary = filepath.Join(dir, "presente")
	if out, err := exec.Command("go", "build", "-o", serverBinary, "../presente").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ../presente: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var servingURL = regexp.MustCompile(`serving\s.*"url": "(http://[^"]+)"`)

// startServer runs `presente serve --env development --demo` on a free
// port against a fresh database and returns its URL; it is stopped when
// the test ends.
func startServer(t *testing.T) string {
	t.Helper()
	db := pgtest.NewDatabase(t)
	cmd := exec.Command(serverBinary, "serve", "--env", "development", "--demo", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+db, "PRESENTE_MASTER_KEY="+keyring.GenerateMasterKey(),
		"XDG_CONFIG_HOME="+t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() { // to the end, so the server never blocks on its log
			if m := servingURL.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not say where it serves within 30s")
	}
	return ""
}

// runLoad runs the generator in process and decodes its JSON result into
// out; it returns the exit status and what it wrote on stderr.
func runLoad(t *testing.T, out any, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := run(ctx, append(args, "-json"), func(string) string { return "" }, &stdout, &stderr)
	if stdout.Len() > 0 {
		var wrapped struct {
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &wrapped); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
		}
		if err := json.Unmarshal(wrapped.Result, out); err != nil {
			t.Fatal(err)
		}
	}
	return code, stderr.String()
}

func TestBoardLatencyTimesEveryClientsDeltaAndIdleMemoryReadsTheServer(t *testing.T) {
	base := startServer(t)

	t.Run("board-latency", func(t *testing.T) {
		var res latencyResult
		code, stderr := runLoad(t, &res, "-scenario", "board-latency", "-url", base, "-clients", "8", "-rate", "15",
			"-duration", "2s", "-warmup", "0s", "-settle", "1s")
		if code != exitOK {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
		if res.Acked == 0 || res.Matched != res.Acked || res.Unmatched != 0 {
			t.Errorf("%d commands acknowledged, %d shown on the board, %d never: want all shown", res.Acked, res.Matched, res.Unmatched)
		}
		if got, want := res.Deliveries, res.Matched*8; got != want || res.Missing != 0 {
			t.Errorf("%d deliveries timed and %d missing, want %d and 0: every client sees every command", got, res.Missing, want)
		}
		if res.Delta.Count == 0 || res.Delta.P99 < res.Delta.P50 || res.Baseline.Count == 0 {
			t.Errorf("latency %+v, baseline %+v: want both measured", res.Delta, res.Baseline)
		}
		if res.Gaps != 0 || res.Duplicates != 0 || len(res.Errors) != 0 {
			t.Errorf("gaps %d, duplicates %d, errors %v; want none", res.Gaps, res.Duplicates, res.Errors)
		}
	})

	t.Run("idle-memory", func(t *testing.T) {
		var res memoryResult
		code, stderr := runLoad(t, &res, "-scenario", "idle-memory", "-url", base, "-clients", "40", "-settle", "200ms")
		if code != exitOK {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
		if len(res.Phases) != 2 || res.Phases[0].Endpoint != "board" || res.Phases[1].Endpoint != "live" {
			t.Fatalf("phases %+v, want board then live", res.Phases)
		}
		for _, p := range res.Phases {
			// Every connection has its reader and its writer goroutine on
			// the server: the figures come from the server, not from here.
			if p.Per.Goroutines < 1.5 || p.Per.Goroutines > 2.5 {
				t.Errorf("%s: %.2f server goroutines per connection, want about 2", p.Endpoint, p.Per.Goroutines)
			}
		}
	})

	t.Run("a wrong password is an error, not a result", func(t *testing.T) {
		var stderr bytes.Buffer
		code := run(context.Background(), []string{"-scenario", "idle-memory", "-url", base, "-clients", "1"},
			func(k string) string { return map[string]string{"PRESENTE_LOAD_PASSWORD": "not-the-password"}[k] },
			&bytes.Buffer{}, &stderr)
		if code != exitFailure || !strings.Contains(stderr.String(), "HTTP 401") {
			t.Errorf("exit %d, stderr %q; want 1 naming HTTP 401", code, stderr.String())
		}
	})
}

func TestTheLiveRuleFindsGapsAndDuplicates(t *testing.T) {
	c := func(tx uint64, pos int64) cursor { return cursor{tx, pos} }
	tests := []struct {
		name     string
		last     cursor
		has      bool
		prev, at cursor
		want     verdict
	}{
		{"the first delta applies", cursor{}, false, c(5, 1), c(6, 2), apply},
		{"a delta from last applies", c(6, 2), true, c(6, 2), c(7, 3), apply},
		{"a delta from before last applies", c(6, 2), true, c(5, 1), c(7, 3), apply},
		{"a delta at last is a duplicate", c(7, 3), true, c(6, 2), c(7, 3), duplicate},
		{"a delta before last is a duplicate", c(7, 3), true, c(5, 1), c(6, 2), duplicate},
		{"a delta from after last is a gap", c(6, 2), true, c(7, 3), c(8, 4), gap},
		{"transaction ids compare before positions", c(9, 1), true, c(8, 50), c(10, 2), apply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := judge(tt.last, tt.has, tt.prev, tt.at); got != tt.want {
				t.Errorf("judge = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestDeltaHeaderAndCursorsReadWhatTheServerWrites(t *testing.T) {
	msg := []byte(`{"type":"delta","view":"board","prev":"18446744073709551615:12","position":"7411:1290","data":{"requests":[]}}`)
	prev, pos, ok := deltaHeader(msg)
	if !ok || string(prev) != "18446744073709551615:12" || string(pos) != "7411:1290" {
		t.Fatalf("header = %q %q %v", prev, pos, ok)
	}
	if c, ok := parseCursor(prev); !ok || c.tx != 1<<64-1 || c.pos != 12 {
		t.Errorf("prev = %+v %v, want the largest transaction id", c, ok)
	}
	for _, bad := range []string{"", ":", "1:", ":1", "1:x", "18446744073709551616:1"} {
		if _, ok := parseCursor([]byte(bad)); ok {
			t.Errorf("parseCursor(%q) accepted it", bad)
		}
	}
}

func TestHistogramQuantilesAreWithinABucket(t *testing.T) {
	var h histogram
	for v := int64(1); v <= 100000; v++ {
		h.record(v * 1000) // 1 µs to 100 ms
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		want := q * 100000 * 1000
		if got := float64(h.quantile(q)); got > want || got < want*0.99 {
			t.Errorf("q%.3f = %.0f, want within 1 %% under %.0f", q, got, want)
		}
	}
	if h.max != 100000*1000 || h.min != 1000 {
		t.Errorf("min %d max %d", h.min, h.max)
	}
}
