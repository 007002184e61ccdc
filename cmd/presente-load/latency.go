package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// Stages of a request on the board, in the order the load moves it: a
// delta showing a request at a stage also shows every earlier stage's
// change, since a delta carries the current rows. Between triaged and
// removed, raid-morning's commands each add one (see boardStage).
const (
	stageReceived = 1    // on the board, status received
	stageTriaged  = 2    // any later open status, no assignment yet
	stageRemoved  = 1000 // in requests_removed
)

// assignmentRank is how far an assignment has gone, one per command:
// offered, then accepted or declined, en route, arrived, done.
var assignmentRank = map[string]int{"offered": 1, "accepted": 2, "declined": 2, "withdrawn": 2, "en_route": 3, "arrived": 4, "done": 5}

// boardStage is how many of the load's commands a board row shows: 1 for
// being there, 1 for being triaged (any status past received), 1 more
// for resolved, and each assignment's rank. Each command raises it by
// exactly one, so a command is shown once its request's stage reaches
// the stage the command's answer left it at.
func boardStage(status string, assignments []string) int {
	st := stageReceived
	switch status {
	case "received":
	case "resolved":
		st += 2
	default:
		st++
	}
	for _, a := range assignments {
		st += assignmentRank[a]
	}
	return st
}

// deltaRec is one delta of the board, as every client receives the same
// bytes: what it shows, parsed once, and when each client read it.
type deltaRec struct {
	at       cursor
	first    int64          // when the first client read it
	arrivals []atomic.Int64 // by client; 0 until read
	reqs     []reqStage
}

type reqStage struct {
	id    uuid.UUID
	stage int
}

func parseBoardDelta(raw []byte) ([]reqStage, error) {
	var d struct {
		Data struct {
			Requests []struct {
				RequestID   uuid.UUID `json:"request_id"`
				Status      string    `json:"status"`
				Assignments []struct {
					Status string `json:"status"`
				} `json:"assignments"`
			} `json:"requests"`
			RequestsRemoved []uuid.UUID `json:"requests_removed"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	var out []reqStage
	for _, r := range d.Data.Requests {
		as := make([]string, len(r.Assignments))
		for i, a := range r.Assignments {
			as[i] = a.Status
		}
		out = append(out, reqStage{r.RequestID, boardStage(r.Status, as)})
	}
	for _, id := range d.Data.RequestsRemoved {
		out = append(out, reqStage{id, stageRemoved})
	}
	return out, nil
}

// command is an acknowledged command waiting for the delta showing it.
type command struct {
	id       uuid.UUID
	stage    int
	ack      int64 // when its HTTP answer had been read
	measured bool  // past the warm-up
}

// tracker matches commands with the deltas showing them, and times each
// client's delta from the command's answer. A command is shown by the
// first delta, in log order, holding its request at its stage or later.
// Every client of the board reads the same deltas, so the match is made
// once per delta, after the fact, from when each client read it.
type tracker struct {
	n           int
	measureFrom atomic.Int64
	h           *harness

	mu     sync.RWMutex
	deltas map[string]*deltaRec // by position, until finalized
	shown  map[uuid.UUID]int    // the latest stage of each request a delta showed

	cmu        sync.Mutex
	cmds       map[uuid.UUID][]*command
	lat, first histogram
	counts     deliveryCounts

	pmu   sync.Mutex
	pongs histogram

	bad atomic.Int64 // deltas that could not be decoded
}

// deliveryCounts say how many deltas reached how many clients.
type deliveryCounts struct {
	Matched    int64 `json:"commands_matched"`
	Unmatched  int64 `json:"commands_never_shown"`
	Deliveries int64 `json:"deliveries"`
	Missing    int64 `json:"deliveries_missing"`
	// Early counts deliveries read before the command's answer: the
	// delta overtook the HTTP response. They count as 0 ms.
	Early int64 `json:"deliveries_before_answer"`
	Bad   int64 `json:"deltas_unreadable"`
}

func newTracker(h *harness, n int) *tracker {
	return &tracker{n: n, h: h, deltas: map[string]*deltaRec{}, shown: map[uuid.UUID]int{}, cmds: map[uuid.UUID][]*command{}}
}

// waiting counts the acknowledged commands no delta has shown yet.
func (t *tracker) waiting() int {
	t.cmu.Lock()
	defer t.cmu.Unlock()
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	for id, list := range t.cmds {
		for _, c := range list {
			if t.shown[id] < c.stage {
				n++
			}
		}
	}
	return n
}

// seen records that client read the delta at position. It runs on every
// client's reader goroutine for every delta, so the common path is a
// read-locked map lookup and a store.
func (t *tracker) seen(client int, position, raw []byte, at int64) {
	t.mu.RLock()
	d := t.deltas[string(position)]
	t.mu.RUnlock()
	if d == nil {
		t.mu.Lock()
		if d = t.deltas[string(position)]; d == nil {
			c, _ := parseCursor(position) // the client has checked it
			d = &deltaRec{at: c, first: at, arrivals: make([]atomic.Int64, t.n)}
			reqs, err := parseBoardDelta(raw)
			if err != nil {
				t.bad.Add(1)
				t.h.errs.add("board delta not decodable")
			}
			d.reqs = reqs
			for _, rs := range reqs {
				t.shown[rs.id] = max(t.shown[rs.id], rs.stage)
			}
			t.deltas[string(position)] = d
		}
		t.mu.Unlock()
	}
	d.arrivals[client].Store(at)
}

func (t *tracker) acked(c *command) {
	t.cmu.Lock()
	t.cmds[c.id] = append(t.cmds[c.id], c)
	t.cmu.Unlock()
}

func (t *tracker) pong(sent, rtt int64) {
	if sent < t.measureFrom.Load() {
		return
	}
	t.pmu.Lock()
	t.pongs.record(rtt)
	t.pmu.Unlock()
}

// finalize matches the deltas first read before cutoff (all of them when
// all is set) with their commands and records every client's latency.
// With all set, commands still unmatched never reached the board.
func (t *tracker) finalize(cutoff int64, all bool) {
	t.mu.Lock()
	var done []*deltaRec
	for k, d := range t.deltas {
		if all || d.first < cutoff {
			done = append(done, d)
			delete(t.deltas, k)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(done, func(a, b *deltaRec) int {
		switch {
		case before(a.at, b.at):
			return -1
		case before(b.at, a.at):
			return 1
		}
		return 0
	})
	t.cmu.Lock()
	defer t.cmu.Unlock()
	for _, d := range done {
		for _, rs := range d.reqs {
			list := t.cmds[rs.id]
			keep := list[:0]
			for _, c := range list {
				if c.stage <= rs.stage {
					t.match(c, d)
				} else {
					keep = append(keep, c)
				}
			}
			if len(keep) == 0 {
				delete(t.cmds, rs.id)
			} else {
				t.cmds[rs.id] = keep
			}
		}
	}
	if all {
		for id, list := range t.cmds {
			t.counts.Unmatched += int64(len(list))
			delete(t.cmds, id)
		}
	}
}

// match records the latencies of command c, shown by delta d. The
// caller holds cmu.
func (t *tracker) match(c *command, d *deltaRec) {
	t.counts.Matched++
	if !c.measured {
		return
	}
	t.first.record(d.first - c.ack)
	for i := range d.arrivals {
		a := d.arrivals[i].Load()
		if a == 0 {
			t.counts.Missing++
			continue
		}
		lat := a - c.ack
		if lat < 0 {
			t.counts.Early++
		}
		t.lat.record(lat)
		t.counts.Deliveries++
	}
}

// load sends the commands: each arrival receives a new rapid-response
// report, triages one received earlier or cancels one triaged earlier, in
// turn, so the board keeps a steady size and every kind of delta (a new
// row, a changed row, a removed row) is timed.
type load struct {
	h  *harness
	tr *tracker

	mu                 sync.Mutex
	received, triaged  []uuid.UUID
	inflight           atomic.Int64
	sent               atomic.Int64
	hmu                sync.Mutex
	answers            histogram
	acked, skippedPing atomic.Int64
}

// maxInflight bounds the commands waiting for an answer: past it the
// server is not keeping up and arrivals are counted as not sent.
const maxInflight = 2000

func (l *load) command(ctx context.Context, i int, intended int64) {
	defer l.inflight.Add(-1)
	var (
		id     uuid.UUID
		action string
		stage  int
	)
	l.mu.Lock()
	switch {
	case i%3 == 1 && len(l.received) > 0:
		id, l.received, action, stage = l.received[0], l.received[1:], "triage", stageTriaged
	case i%3 == 2 && len(l.triaged) > 0:
		id, l.triaged, action, stage = l.triaged[0], l.triaged[1:], "cancel", stageRemoved
	default:
		action, stage = "receive", stageReceived
	}
	l.mu.Unlock()

	var err error
	switch action {
	case "receive":
		var out struct {
			RequestID uuid.UUID `json:"request_id"`
		}
		err = l.h.do(ctx, http.MethodPost, "/api/v1/requests", map[string]any{
			"kind": "rapid_response", "region": "load-test", "needed": 1,
			"person": map[string]string{"name": fmt.Sprintf("Load %d", i)},
		}, &out)
		id = out.RequestID
	case "triage":
		err = l.h.do(ctx, http.MethodPost, "/api/v1/requests/"+id.String()+"/triage", map[string]string{"priority": "high"}, nil)
	case "cancel":
		err = l.h.do(ctx, http.MethodPost, "/api/v1/requests/"+id.String()+"/cancel", map[string]string{"reason": "load test: done"}, nil)
	}
	ack := l.h.now()
	if err != nil {
		if ctx.Err() == nil {
			l.h.errs.add("command " + action + ": " + kindOf(err, nil))
		}
		return
	}
	measured := intended >= l.tr.measureFrom.Load()
	l.tr.acked(&command{id: id, stage: stage, ack: ack, measured: measured})
	l.acked.Add(1)
	if measured {
		l.hmu.Lock()
		l.answers.record(ack - intended)
		l.hmu.Unlock()
	}
	l.mu.Lock()
	switch action {
	case "receive":
		l.received = append(l.received, id)
	case "triage":
		l.triaged = append(l.triaged, id)
	}
	l.mu.Unlock()
}

// latencyResult is what board-latency measured.
type latencyResult struct {
	Clients       int     `json:"clients"`
	Rate          float64 `json:"rate"`
	Duration      string  `json:"duration"`
	ConnectSecs   float64 `json:"connect_seconds"`
	Sent          int64   `json:"commands_sent"`
	Acked         int64   `json:"commands_acknowledged"`
	Delta         summary `json:"delta"`
	FirstDelivery summary `json:"first_delivery"`
	Baseline      summary `json:"baseline_ping"`
	Answers       summary `json:"command_answer"`
	deliveryCounts
	// ServerCPU and LoadCPU are the cores the server (from its /metrics)
	// and this generator (getrusage) kept busy while commands were sent.
	ServerCPU   float64          `json:"server_cpu_cores"`
	LoadCPU     float64          `json:"generator_cpu_cores"`
	Gaps        int64            `json:"gaps"`
	Duplicates  int64            `json:"duplicates"`
	Reconnects  int64            `json:"reconnects"`
	Resnapshots int64            `json:"resyncs_by_snapshot"`
	PingSkipped int64            `json:"baseline_pings_skipped"`
	Errors      map[string]int64 `json:"errors"`
}

func (r *latencyResult) print(w io.Writer) {
	fmt.Fprintf(w, "board-latency: %d board clients, %.0f commands/s for %s (open model), clients in sync in %.1f s\n",
		r.Clients, r.Rate, r.Duration, r.ConnectSecs)
	fmt.Fprintf(w, "commands: %d sent, %d acknowledged, %d shown on the board, %d never shown\n", r.Sent, r.Acked, r.Matched, r.Unmatched)
	fmt.Fprintf(w, "deliveries: %d timed, %d missing, %d read before the answer (counted as 0)\n", r.Deliveries, r.Missing, r.Early)
	fmt.Fprintf(w, "  answer → delta, every client   %s\n", r.Delta)
	fmt.Fprintf(w, "  answer → delta, first client   %s\n", r.FirstDelivery)
	fmt.Fprintf(w, "  baseline: websocket ping→pong  %s\n", r.Baseline)
	fmt.Fprintf(w, "  command answer (from arrival)  %s\n", r.Answers)
	if r.Baseline.P99 > 0 {
		fmt.Fprintf(w, "  p99 ratio delta / baseline: %.1f×\n", r.Delta.P99/r.Baseline.P99)
	}
	fmt.Fprintf(w, "CPU while sending: server %.2f cores, generator %.2f cores (of the machine's %d)\n", r.ServerCPU, r.LoadCPU, runtime.NumCPU())
	fmt.Fprintf(w, "LIVE.md rule: %d gaps, %d duplicates; %d reconnects, %d resyncs by snapshot; %d baseline pings skipped\n",
		r.Gaps, r.Duplicates, r.Reconnects, r.Resnapshots, r.PingSkipped)
	printErrors(w, r.Errors)
}

func (r *latencyResult) failures() []string {
	var f []string
	if r.Gaps > 0 {
		f = append(f, fmt.Sprintf("%d gaps in the deltas a client received", r.Gaps))
	}
	if r.Duplicates > 0 {
		f = append(f, fmt.Sprintf("%d duplicate deltas", r.Duplicates))
	}
	if r.Unmatched > 0 {
		f = append(f, fmt.Sprintf("%d acknowledged commands never shown on the board", r.Unmatched))
	}
	if r.Bad > 0 {
		f = append(f, fmt.Sprintf("%d board deltas not decodable", r.Bad))
	}
	if r.Missing > 0 && r.Reconnects == 0 {
		f = append(f, fmt.Sprintf("%d deliveries missing though no client reconnected", r.Missing))
	}
	if r.Acked == 0 {
		f = append(f, "no command was acknowledged")
	}
	return f
}

// boardLatency times commit → websocket delta: clients follow the board
// while commands arrive at a fixed rate; each client's delta is timed from
// the command's answer, which the server sends only after the commit.
// The baseline, in the same run, at the same rate: a ping to one of the
// same clients per arrival, in turn, timed to its pong.
func boardLatency(ctx context.Context, h *harness) (result, error) {
	cfg := h.cfg
	if err := h.signIn(ctx); err != nil {
		return nil, err
	}
	stats := &liveStats{}
	tr := newTracker(h, cfg.Clients)
	tr.measureFrom.Store(1 << 62) // nothing counts until the load starts
	began := time.Now()
	clients, err := h.openClients(ctx, cfg.Clients, "board", stats, func(c *liveClient) {
		c.onDelta = tr.seen
		c.onPong = tr.pong
	})
	defer closeClients(clients)
	if err != nil {
		return nil, err
	}
	connect := time.Since(began)

	// Deltas are matched once no client should still be reading them.
	const matchAfter = 10 * time.Second
	stopMatching := make(chan struct{})
	matched := make(chan struct{})
	go func() {
		defer close(matched)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopMatching:
				return
			case <-tick.C:
				tr.finalize(h.now()-int64(matchAfter), false)
			}
		}
	}()

	l := &load{h: h, tr: tr}
	cpu0, err := h.cpu(ctx)
	if err != nil {
		return nil, err
	}
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	t0 := time.Now()
	tr.measureFrom.Store(int64(t0.Add(cfg.Warmup).Sub(h.start)))
	h.logf("board-latency: %d commands/s for %s (first %s not counted)", int(cfg.Rate), cfg.Duration, cfg.Warmup)
	var wg sync.WaitGroup
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
arrivals:
	for i := 0; ; i++ {
		at := t0.Add(time.Duration(i) * interval)
		if at.Sub(t0) >= cfg.Duration {
			break
		}
		select {
		case <-ctx.Done():
			break arrivals
		case <-time.After(time.Until(at)):
		}
		intended := int64(at.Sub(h.start))
		if l.inflight.Load() >= maxInflight {
			h.errs.add("command not sent: too many waiting for an answer")
			continue
		}
		l.inflight.Add(1)
		l.sent.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.command(cctx, i, intended)
		}()
		if !clients[i%len(clients)].ping() {
			l.skippedPing.Add(1)
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	cpu1, err := h.cpu(ctx)
	if err != nil {
		return nil, err
	}
	// Wait for the board to show every acknowledged command (a feed that
	// fell behind shows them late: that is the latency), then for every
	// client to read the last deltas.
	drained := time.Now()
	for n := tr.waiting(); n > 0 && time.Since(drained) < cfg.Drain; n = tr.waiting() {
		h.logf("board-latency: commands done; %d not on the board yet", n)
		if err := sleep(ctx, time.Second); err != nil {
			return nil, err
		}
	}
	h.logf("board-latency: %s for the last deltas to reach every client", cfg.Settle)
	if err := sleep(ctx, cfg.Settle); err != nil {
		return nil, err
	}
	close(stopMatching)
	<-matched
	tr.finalize(0, true)

	tr.cmu.Lock()
	tr.pmu.Lock()
	l.hmu.Lock()
	res := &latencyResult{
		Clients: cfg.Clients, Rate: cfg.Rate, Duration: cfg.Duration.String(), ConnectSecs: connect.Seconds(),
		Sent: l.sent.Load(), Acked: l.acked.Load(),
		Delta: tr.lat.summary(), FirstDelivery: tr.first.summary(), Baseline: tr.pongs.summary(), Answers: l.answers.summary(),
		deliveryCounts: tr.counts,
		Gaps:           stats.gaps.Load(), Duplicates: stats.duplicates.Load(), Reconnects: stats.reconnects.Load(),
		Resnapshots: stats.resnapshots.Load(), PingSkipped: l.skippedPing.Load(),
		Errors: h.errs.snapshot(),
	}
	l.hmu.Unlock()
	tr.pmu.Unlock()
	tr.cmu.Unlock()
	res.Bad = tr.bad.Load()
	wall := cpu1.at.Sub(cpu0.at).Seconds()
	res.ServerCPU, res.LoadCPU = (cpu1.server-cpu0.server)/wall, (cpu1.self-cpu0.self)/wall
	return res, nil
}

// cpuSample is the CPU time the server and this process had used at a
// moment, in seconds.
type cpuSample struct {
	at           time.Time
	server, self float64
	// poolWait is the server's total time spent waiting for a database
	// connection from its pool, in seconds.
	poolWait float64
}

func (h *harness) cpu(ctx context.Context) (cpuSample, error) {
	m, err := h.serverMetrics(ctx)
	if err != nil {
		return cpuSample{}, err
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuSample{}, err
	}
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return cpuSample{at: time.Now(), server: m["process_cpu_seconds_total"], self: self,
		poolWait: m["presente_db_pool_acquire_wait_seconds_total"]}, nil
}
