package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// memoryFigures are the server's memory figures read from /metrics.
type memoryFigures struct {
	RSS        float64 `json:"rss_bytes"`
	HeapInuse  float64 `json:"heap_inuse_bytes"`
	StackInuse float64 `json:"stack_inuse_bytes"`
	Goroutines float64 `json:"goroutines"`
	GCs        float64 `json:"gc_count"`
}

func figures(m metrics) memoryFigures {
	return memoryFigures{
		RSS:        m["process_resident_memory_bytes"],
		HeapInuse:  m["go_memstats_heap_inuse_bytes"],
		StackInuse: m["go_memstats_stack_inuse_bytes"],
		Goroutines: m["go_goroutines"],
		GCs:        m["go_gc_duration_seconds_count"],
	}
}

// perConn is what each connection added, from before to after.
type perConn struct {
	RSS        float64 `json:"rss_bytes"`
	HeapInuse  float64 `json:"heap_inuse_bytes"`
	StackInuse float64 `json:"stack_inuse_bytes"`
	Goroutines float64 `json:"goroutines"`
}

func per(before, after memoryFigures, n int) perConn {
	f := float64(n)
	return perConn{RSS: (after.RSS - before.RSS) / f, HeapInuse: (after.HeapInuse - before.HeapInuse) / f,
		StackInuse: (after.StackInuse - before.StackInuse) / f, Goroutines: (after.Goroutines - before.Goroutines) / f}
}

// memoryPhase is one endpoint's idle connections.
type memoryPhase struct {
	Endpoint    string         `json:"endpoint"`
	Path        string         `json:"path"`
	Connections int            `json:"connections"`
	OpenSecs    float64        `json:"open_seconds"`
	Before      memoryFigures  `json:"before"`
	After       memoryFigures  `json:"after"`
	Per         perConn        `json:"per_connection"`
	AfterGC     *memoryFigures `json:"after_gc,omitempty"`
	PerAfterGC  *perConn       `json:"per_connection_after_gc,omitempty"`
	Reconnects  int64          `json:"reconnects"`
}

type memoryResult struct {
	Phases []memoryPhase    `json:"phases"`
	Gaps   int64            `json:"gaps"`
	Dups   int64            `json:"duplicates"`
	Errors map[string]int64 `json:"errors"`
}

func kb(b float64) string { return fmt.Sprintf("%6.1f KB", b/1024) }

func (r *memoryResult) print(w io.Writer) {
	fmt.Fprintln(w, "idle-memory: the server's memory per idle connection, (after - before) / connections")
	fmt.Fprintf(w, "  %-8s %-20s %7s %8s %10s %10s %10s %12s %11s\n", "", "path", "conns", "open s", "RSS", "heap inuse", "stack", "heap+stack", "goroutines")
	row := func(name string, p memoryPhase, c perConn) {
		fmt.Fprintf(w, "  %-8s %-20s %7d %8.1f %10s %10s %10s %12s %11.2f\n", name, p.Path, p.Connections, p.OpenSecs,
			kb(c.RSS), kb(c.HeapInuse), kb(c.StackInuse), kb(c.HeapInuse+c.StackInuse), c.Goroutines)
	}
	for i, p := range r.Phases {
		row(p.Endpoint, p, p.Per)
		if p.PerAfterGC != nil {
			row(p.Endpoint+"+gc", p, *p.PerAfterGC)
		}
		if i > 0 {
			fmt.Fprintf(w, "         (%s ran after %s: the runtime keeps freed memory for a while, so its RSS figure reads low)\n", p.Endpoint, r.Phases[0].Endpoint)
		}
	}
	for _, p := range r.Phases {
		fmt.Fprintf(w, "  %s: before RSS %.1f MB heap %.1f MB, goroutines %.0f; after RSS %.1f MB heap %.1f MB, goroutines %.0f\n",
			p.Endpoint, p.Before.RSS/1e6, p.Before.HeapInuse/1e6, p.Before.Goroutines, p.After.RSS/1e6, p.After.HeapInuse/1e6, p.After.Goroutines)
	}
	printErrors(w, r.Errors)
}

func (r *memoryResult) failures() []string {
	var f []string
	if r.Gaps > 0 || r.Dups > 0 {
		f = append(f, fmt.Sprintf("%d gaps and %d duplicates in the deltas", r.Gaps, r.Dups))
	}
	for _, p := range r.Phases {
		if p.Reconnects > 0 {
			f = append(f, fmt.Sprintf("%s: %d idle connections dropped and reconnected during the measurement", p.Endpoint, p.Reconnects))
		}
	}
	return f
}

// idleMemory measures the server's memory per idle live connection: it
// reads /metrics, opens the connections of each endpoint in turn, lets
// them sit, reads /metrics again, closes them and waits for the server to
// let them go. The first endpoint is the figure; the next ones, in the
// same run, the baseline (the session channel without a view).
func idleMemory(ctx context.Context, h *harness) (result, error) {
	cfg := h.cfg
	if err := h.signIn(ctx); err != nil {
		return nil, err
	}
	m, err := h.serverMetrics(ctx)
	if err != nil {
		return nil, err
	}
	before := figures(m)
	if cfg.GCWait > 0 {
		h.logf("waiting up to %s for the server's next GC, to start from its live heap", cfg.GCWait)
		if gc, ok := h.awaitGC(ctx, before.GCs, cfg.GCWait); ok {
			before = gc
		}
	}
	res := &memoryResult{}
	var stats liveStats
	for _, ep := range cfg.Endpoints {
		ps := &liveStats{}
		began := time.Now()
		clients, err := h.openClients(ctx, cfg.Clients, ep, ps, nil)
		if err != nil {
			closeClients(clients)
			return nil, err
		}
		p := memoryPhase{Endpoint: ep, Path: livePaths[ep], Connections: cfg.Clients, OpenSecs: time.Since(began).Seconds(), Before: before}
		if err := sleep(ctx, cfg.Settle); err != nil {
			closeClients(clients)
			return nil, err
		}
		if m, err = h.serverMetrics(ctx); err != nil {
			closeClients(clients)
			return nil, err
		}
		p.After = figures(m)
		p.Per = per(before, p.After, cfg.Clients)
		if cfg.GCWait > 0 {
			h.logf("%s: waiting up to %s for the server's next GC", ep, cfg.GCWait)
			if gc, ok := h.awaitGC(ctx, p.After.GCs, cfg.GCWait); ok {
				pc := per(before, gc, cfg.Clients)
				p.AfterGC, p.PerAfterGC = &gc, &pc
			}
		}
		h.logf("%s: %d connections, %.1f KB RSS and %.1f KB heap+stack each; closing", ep, cfg.Clients, p.Per.RSS/1024,
			(p.Per.HeapInuse+p.Per.StackInuse)/1024)
		closeClients(clients)
		p.Reconnects = ps.reconnects.Load()
		stats.gaps.Add(ps.gaps.Load())
		stats.duplicates.Add(ps.duplicates.Load())
		res.Phases = append(res.Phases, p)
		// The next endpoint starts from what the server holds once it
		// has let these go.
		if before, err = h.awaitIdle(ctx, before.Goroutines, cfg.Clients); err != nil {
			return nil, err
		}
	}
	res.Gaps, res.Dups = stats.gaps.Load(), stats.duplicates.Load()
	res.Errors = h.errs.snapshot()
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// awaitGC waits for the server's GC count to pass gcs and returns its
// figures then.
func (h *harness) awaitGC(ctx context.Context, gcs float64, limit time.Duration) (memoryFigures, bool) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if sleep(ctx, time.Second) != nil {
			return memoryFigures{}, false
		}
		m, err := h.serverMetrics(ctx)
		if err == nil && figures(m).GCs > gcs {
			return figures(m), true
		}
	}
	return memoryFigures{}, false
}

// awaitIdle waits until the server's goroutines are back near goroutines
// (within 1 % of the connections closed), up to a minute, and returns its
// figures then.
func (h *harness) awaitIdle(ctx context.Context, goroutines float64, closed int) (memoryFigures, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		m, err := h.serverMetrics(ctx)
		if err != nil {
			return memoryFigures{}, err
		}
		f := figures(m)
		if f.Goroutines <= goroutines+float64(closed)/100+10 || time.Now().After(deadline) {
			if h.cfg.GCWait > 0 {
				if gc, ok := h.awaitGC(ctx, f.GCs, h.cfg.GCWait); ok {
					return gc, nil
				}
			}
			return f, nil
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return memoryFigures{}, err
		}
	}
}
