package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"
)

// throughputStep is one offered rate of the throughput scenario.
type throughputStep struct {
	Rate     float64 `json:"offered_per_second"`
	Sent     int64   `json:"sent"`
	NotSent  int64   `json:"not_sent"` // arrivals skipped: too many waiting
	Acked    int64   `json:"acknowledged"`
	Achieved float64 `json:"acknowledged_per_second"`
	// Sustained: at least 95 % of the offered rate acknowledged, none
	// skipped, and the last answer within a second of the last arrival.
	Sustained bool            `json:"sustained"`
	Answers   summary         `json:"command_answer"`
	Delta     summary         `json:"commit_to_board"`
	Unshown   int64           `json:"commands_never_shown"`
	Ping      summary         `json:"baseline_ping"`
	PG        *baselineResult `json:"baseline_insert"`
	ServerCPU float64         `json:"server_cpu_cores"`
	LoadCPU   float64         `json:"generator_cpu_cores"`
	// PoolWait is the server's time waiting for a pooled database
	// connection per acknowledged command, in ms (from its /metrics).
	PoolWait float64          `json:"server_pool_wait_ms_per_command"`
	Errors   map[string]int64 `json:"errors"`
}

type throughputResult struct {
	Clients int              `json:"board_clients"`
	Step    string           `json:"step"`
	Steps   []throughputStep `json:"steps"`
	Gaps    int64            `json:"gaps"`
	Dups    int64            `json:"duplicates"`
	// MaxSustained is the highest offered rate sustained.
	MaxSustained float64 `json:"max_sustained_per_second"`
}

func (r *throughputResult) print(w io.Writer) {
	fmt.Fprintf(w, "throughput: commands at fixed rates (open model; receive, triage, cancel in turn), %s each, %d board clients watching\n", r.Step, r.Clients)
	for _, s := range r.Steps {
		fmt.Fprintf(w, "%6.0f/s offered: %d sent, %d not sent, %d acknowledged = %.0f/s (sustained: %v); CPU server %.2f, generator %.2f cores; server waited %.1f ms per command for a pooled connection\n",
			s.Rate, s.Sent, s.NotSent, s.Acked, s.Achieved, s.Sustained, s.ServerCPU, s.LoadCPU, s.PoolWait)
		fmt.Fprintf(w, "  command latency (from arrival)    %s\n", s.Answers)
		fmt.Fprintf(w, "  commit → board, every client      %s   (%d never shown)\n", s.Delta, s.Unshown)
		printBaselines(w, "command", s.Answers.P99, s.Ping, s.PG)
		printErrors(w, s.Errors)
	}
	fmt.Fprintf(w, "highest rate sustained: %.0f commands/s; LIVE.md rule: %d gaps, %d duplicates\n", r.MaxSustained, r.Gaps, r.Dups)
}

func (r *throughputResult) failures() []string {
	var f []string
	if r.Gaps > 0 || r.Dups > 0 {
		f = append(f, fmt.Sprintf("%d gaps and %d duplicates in the deltas", r.Gaps, r.Dups))
	}
	for _, s := range r.Steps {
		for kind, n := range s.Errors {
			if isServerFault(kind) {
				f = append(f, fmt.Sprintf("%.0f/s: %d × %s", s.Rate, n, kind))
			}
		}
	}
	return f
}

// isServerFault tells whether an error kind is not the client's fault:
// a 5xx, a lost connection, a timeout.
func isServerFault(kind string) bool {
	for _, s := range []string{"(5xx)", "connection lost", "timeout", "dial", "other:"} {
		if strings.Contains(kind, s) {
			return true
		}
	}
	return false
}

// throughput offers commands at each of -rates for -step, in turn: the
// board-latency mix (receive a report, triage one, cancel one) through
// the real API, with -clients boards watching. At each rate it reports
// how many commands a second were acknowledged and their latency from
// arrival, beside Postgres INSERTs at the same rate (run just before,
// alone) and a ping over the boards' sockets at the same rate. Issue 7's
// goals: 1,000 commands/s sustained; p99 ≤ 50 ms at 200/s.
func throughput(ctx context.Context, h *harness) (result, error) {
	cfg := h.cfg
	if err := h.signIn(ctx); err != nil {
		return nil, err
	}
	pg, err := openBaseline(ctx, cfg.BaselineDSN, cfg.BaselineConns)
	if err != nil {
		return nil, err
	}
	defer pg.close()
	stats := &liveStats{}
	var cur atomic.Pointer[tracker]
	cur.Store(newTracker(h, cfg.Clients))
	clients, err := h.openClients(ctx, cfg.Clients, "board", stats, func(c *liveClient) {
		c.onDelta = func(client int, position, raw []byte, t int64) { cur.Load().seen(client, position, raw, t) }
	})
	defer closeClients(clients)
	if err != nil {
		return nil, err
	}
	res := &throughputResult{Clients: cfg.Clients, Step: cfg.Step.String()}
	for _, rate := range cfg.Rates {
		h.logf("throughput: baseline: Postgres INSERTs at %.0f/s for %s", rate, min(cfg.BaselineFor, cfg.Step))
		pgRes := pg.run(ctx, h, rate, 0, min(cfg.BaselineFor, cfg.Step))

		tr := newTracker(h, cfg.Clients)
		cur.Store(tr)
		pings := newPinger(clients)
		l := &load{h: h, tr: tr}
		from := h.now() + int64(cfg.Warmup)
		tr.measureFrom.Store(from)
		pings.rtt.measureFrom.Store(from)
		errs0 := h.errs.snapshot()
		cpu0, err := h.cpu(ctx)
		if err != nil {
			return nil, err
		}
		h.logf("throughput: %.0f commands/s for %s", rate, cfg.Step)
		began := time.Now()
		var lastAnswer atomic.Int64
		sent := h.openLoop(ctx, rate, 0, cfg.Step, maxInflight, "command", func(ctx context.Context, a arrival) {
			l.inflight.Add(1)
			l.command(ctx, a.i, a.intended)
			storeMax(&lastAnswer, h.now())
		}, pings.ping)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		elapsed := time.Since(began)
		cpu1, err := h.cpu(ctx)
		if err != nil {
			return nil, err
		}
		drained := time.Now()
		for n := tr.waiting(); n > 0 && time.Since(drained) < cfg.Drain; n = tr.waiting() {
			h.logf("throughput: %d commands not on the board yet", n)
			if err := sleep(ctx, time.Second); err != nil {
				return nil, err
			}
		}
		if err := sleep(ctx, cfg.Settle); err != nil {
			return nil, err
		}
		tr.finalize(0, true)
		errs := map[string]int64{}
		for k, v := range h.errs.snapshot() {
			if d := v - errs0[k]; d > 0 {
				errs[k] = d
			}
		}
		step := throughputStep{Rate: rate, Sent: sent, NotSent: errs["command not sent: too many waiting for an answer"],
			Acked: l.acked.Load(), Answers: l.answers.summary(), Delta: tr.lat.summary(), Unshown: tr.counts.Unmatched,
			Ping: pings.rtt.summary(), PG: pgRes, Errors: errs}
		step.Achieved = float64(step.Acked) / elapsed.Seconds()
		step.Sustained = step.NotSent == 0 && step.Achieved >= 0.95*rate &&
			time.Duration(lastAnswer.Load()-int64(began.Sub(h.start))) <= cfg.Step+time.Second
		wall := cpu1.at.Sub(cpu0.at).Seconds()
		step.ServerCPU, step.LoadCPU = (cpu1.server-cpu0.server)/wall, (cpu1.self-cpu0.self)/wall
		step.PoolWait = ratio((cpu1.poolWait-cpu0.poolWait)*1000, float64(step.Acked))
		if step.Sustained {
			res.MaxSustained = max(res.MaxSustained, rate)
		}
		res.Steps = append(res.Steps, step)
	}
	res.Gaps, res.Dups = stats.gaps.Load(), stats.duplicates.Load()
	return res, nil
}
