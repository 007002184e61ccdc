package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// arrival is one scheduled arrival of an open-model load: its index and
// the time it was due, as harness time (h.now()).
type arrival struct {
	i        int
	intended int64
}

// openLoop calls each, in its own goroutine, at a fixed rate: n arrivals,
// or as many as fit in d when n is 0. Every arrival is sent at its
// scheduled time whether or not earlier ones were answered (open model),
// unless maxInflight are still waiting, which is counted as an error of
// kind label and skipped: the server is not keeping up. tick, when set,
// runs on the loop's goroutine right after each arrival is started (for
// the ping baseline). openLoop returns when every started call has
// returned; it reports how many were started.
func (h *harness) openLoop(ctx context.Context, rate float64, n int, d time.Duration, maxInflight int64, label string,
	each func(ctx context.Context, a arrival), tick func(i int)) int64 {
	interval := time.Duration(float64(time.Second) / rate)
	t0 := time.Now()
	var (
		wg       sync.WaitGroup
		inflight atomic.Int64
		started  int64
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
loop:
	for i := 0; ; i++ {
		at := t0.Add(time.Duration(i) * interval)
		if (n > 0 && i >= n) || (n <= 0 && at.Sub(t0) >= d) {
			break
		}
		timer.Reset(time.Until(at))
		select {
		case <-ctx.Done():
			break loop
		case <-timer.C:
		}
		if inflight.Load() >= maxInflight {
			h.errs.add(label + " not sent: too many waiting for an answer")
			continue
		}
		inflight.Add(1)
		started++
		wg.Add(1)
		a := arrival{i: i, intended: int64(at.Sub(h.start))}
		go func() {
			defer wg.Done()
			defer inflight.Add(-1)
			each(ctx, a)
		}()
		if tick != nil {
			tick(i)
		}
	}
	wg.Wait()
	return started
}

// timings is a histogram safe for concurrent use, counting only samples
// whose arrival is at or after measureFrom (the warm-up is not counted).
type timings struct {
	measureFrom atomic.Int64
	mu          sync.Mutex
	h           histogram
}

func (t *timings) record(intended, v int64) {
	if intended < t.measureFrom.Load() {
		return
	}
	t.mu.Lock()
	t.h.record(v)
	t.mu.Unlock()
}

func (t *timings) summary() summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.h.summary()
}

// pinger is the idle websocket baseline: at each arrival one of the
// scenario's own clients, in turn, sends a ping carrying the time and
// the pong's round trip is timed. It crosses what a server message
// crosses (the server's reader and writer goroutines, the loopback, the
// client's reader) with no database and no fan-out.
type pinger struct {
	clients []*liveClient
	rtt     timings
	skipped atomic.Int64
}

func newPinger(clients ...[]*liveClient) *pinger {
	p := &pinger{}
	for _, cs := range clients {
		p.clients = append(p.clients, cs...)
	}
	for _, c := range p.clients {
		c.onPong = func(sent, rtt int64) { p.rtt.record(sent, rtt) }
	}
	return p
}

// ping pings the i-th client in turn.
func (p *pinger) ping(i int) {
	if len(p.clients) == 0 || !p.clients[i%len(p.clients)].ping() {
		p.skipped.Add(1)
	}
}

// ratio is a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// printBaselines writes the same-run baselines and the ratio of a p99 to
// theirs.
func printBaselines(w io.Writer, what string, p99 float64, ping summary, pg *baselineResult) {
	fmt.Fprintf(w, "  baseline: websocket ping→pong    %s\n", ping)
	if pg != nil {
		fmt.Fprintf(w, "  baseline: Postgres INSERT        %s   (%.0f/s offered, %.0f/s done, %d errors)\n",
			pg.Latency, pg.Rate, pg.Achieved, pg.Errors)
	}
	if ping.P99 > 0 {
		fmt.Fprintf(w, "  %s p99 / ping p99: %.1f×", what, p99/ping.P99)
		if pg != nil && pg.Latency.P99 > 0 {
			fmt.Fprintf(w, "   / INSERT p99: %.1f×", p99/pg.Latency.P99)
		}
		fmt.Fprintln(w)
	}
}

// storeMax raises a to v if v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for {
		prev := a.Load()
		if v <= prev || a.CompareAndSwap(prev, v) {
			return
		}
	}
}
