package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// raidSteps is a request's life in raid-morning, one command each: the
// dispatcher receives and triages it and offers it to volunteer A, who
// accepts; offers it to B too, who declines; A goes en route, arrives and
// is done (each as A, from A's session); the dispatcher resolves it.
var raidSteps = []string{"receive", "triage", "offer A", "A accepts", "offer B", "B declines",
	"A en route", "A arrived", "A done", "resolve"}

// raidRequest is one request of the raid and its two volunteers.
type raidRequest struct {
	id         uuid.UUID
	a, b       volunteerSession
	assignA    uuid.UUID
	assignB    uuid.UUID
	step       int // the steps done, 0 to len(raidSteps)
	intakeSlot int
}

// raidPlan hands out raid-morning's commands, one per arrival: a new
// request at every (commands/requests)-th arrival while any remain
// (intake arrives evenly through the morning), and otherwise the next
// step of the request whose previous step was acknowledged first. A
// request's steps are never in flight together: each waits for the
// answer to the one before, as a dispatcher and a volunteer would.
type raidPlan struct {
	requests, commands int
	vols               []volunteerSession

	mu       sync.Mutex
	received int
	ready    []*raidRequest
}

func newRaidPlan(requests, commands int, vols []volunteerSession) *raidPlan {
	return &raidPlan{requests: requests, commands: commands, vols: vols}
}

// next is the command for arrival i: a request and the step to take, or
// nil when nothing is ready (every request received, and every one
// waiting for an answer or done).
func (p *raidPlan) next(i int) *raidRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	every := max(p.commands/p.requests, 1)
	if p.received < p.requests && (i%every == 0 || len(p.ready) == 0) {
		k := p.received
		p.received++
		return &raidRequest{a: p.vols[(2*k)%len(p.vols)], b: p.vols[(2*k+1)%len(p.vols)], intakeSlot: k}
	}
	if len(p.ready) == 0 {
		return nil
	}
	r := p.ready[0]
	p.ready = p.ready[1:]
	return r
}

// done records that r's step was acknowledged; its next step is ready.
func (p *raidPlan) done(r *raidRequest) {
	r.step++
	if r.step >= len(raidSteps) {
		return
	}
	p.mu.Lock()
	p.ready = append(p.ready, r)
	p.mu.Unlock()
}

// raidCommand sends r's next step (raidSteps[r.step]) as the person
// whose step it is; the board then shows the request at raidStage(r.step).
func (h *harness) raidCommand(ctx context.Context, r *raidRequest) error {
	reqPath := "/api/v1/requests/" + r.id.String()
	status := func(who volunteerSession, aid uuid.UUID, st, reason string) error {
		body := map[string]string{"status": st}
		if reason != "" {
			body["reason"] = reason
		}
		return h.doAs(ctx, who.Cookie, http.MethodPost, reqPath+"/assignments/"+aid.String()+"/status", body, nil)
	}
	// B is offered beyond the need of one: an explicit override, as a
	// dispatcher adds a second person to an urgent request.
	offer := func(v volunteerSession, override bool, into *uuid.UUID) error {
		var out struct {
			Assignments []struct {
				AssignmentID uuid.UUID `json:"assignment_id"`
				VolunteerID  uuid.UUID `json:"volunteer_id"`
			} `json:"assignments"`
		}
		if err := h.do(ctx, http.MethodPost, reqPath+"/assignments", map[string]any{"volunteer_id": v.UserID, "override": override}, &out); err != nil {
			return err
		}
		for _, a := range out.Assignments {
			if a.VolunteerID == v.UserID {
				*into = a.AssignmentID
				return nil
			}
		}
		return fmt.Errorf("the offer's answer lists no assignment for volunteer %s", v.UserID)
	}
	switch raidSteps[r.step] {
	case "receive":
		var out struct {
			RequestID uuid.UUID `json:"request_id"`
		}
		err := h.do(ctx, http.MethodPost, "/api/v1/requests", map[string]any{
			"kind": "rapid_response", "region": "load-test", "needed": 1, "priority": "urgent",
			"person": map[string]string{"name": fmt.Sprintf("Raid %d", r.intakeSlot)},
		}, &out)
		r.id = out.RequestID
		return err
	case "triage":
		return h.do(ctx, http.MethodPost, reqPath+"/triage", map[string]string{"priority": "urgent"}, nil)
	case "offer A":
		return offer(r.a, false, &r.assignA)
	case "A accepts":
		return status(r.a, r.assignA, "accepted", "")
	case "offer B":
		return offer(r.b, true, &r.assignB)
	case "B declines":
		return status(r.b, r.assignB, "declined", "load test: cannot make it")
	case "A en route":
		return status(r.a, r.assignA, "en_route", "")
	case "A arrived":
		return status(r.a, r.assignA, "arrived", "")
	case "A done":
		return status(r.a, r.assignA, "done", "")
	case "resolve":
		return h.do(ctx, http.MethodPost, reqPath+"/resolve", map[string]string{"outcome": "accompanied"}, nil)
	}
	return fmt.Errorf("raid: no step %d", r.step)
}

// raidResult is what raid-morning measured.
type raidResult struct {
	BoardClients     int     `json:"board_clients"`
	VolunteerClients int     `json:"volunteer_clients"`
	Requests         int     `json:"requests"`
	Commands         int     `json:"commands"`
	Duration         string  `json:"duration"`
	Rate             float64 `json:"rate"`
	ConnectSecs      float64 `json:"connect_seconds"`
	Sent             int64   `json:"commands_sent"`
	Acked            int64   `json:"commands_acknowledged"`
	NothingReady     int64   `json:"arrivals_with_nothing_ready"`
	RequestsDone     int64   `json:"requests_resolved"`
	Answers          summary `json:"command_answer"`
	Delta            summary `json:"commit_to_board"`
	FirstDelivery    summary `json:"commit_to_board_first_client"`
	deliveryCounts
	Ping        summary          `json:"baseline_ping"`
	PG          *baselineResult  `json:"baseline_insert"`
	ByStep      map[string]int64 `json:"acknowledged_by_step"`
	Gaps        int64            `json:"gaps"`
	Duplicates  int64            `json:"duplicates"`
	Reconnects  int64            `json:"reconnects"`
	Resnapshots int64            `json:"resyncs_by_snapshot"`
	ServerCPU   float64          `json:"server_cpu_cores"`
	LoadCPU     float64          `json:"generator_cpu_cores"`
	Errors      map[string]int64 `json:"errors"`
}

func (r *raidResult) print(w io.Writer) {
	fmt.Fprintf(w, "raid-morning: %d requests, %d commands in %s (%.2f/s, open model), %d board clients, %d volunteer clients (live/mine), in sync in %.1f s\n",
		r.Requests, r.Commands, r.Duration, r.Rate, r.BoardClients, r.VolunteerClients, r.ConnectSecs)
	fmt.Fprintf(w, "commands: %d sent, %d acknowledged, %d requests resolved; %d arrivals found nothing ready\n",
		r.Sent, r.Acked, r.RequestsDone, r.NothingReady)
	fmt.Fprintf(w, "board: %d commands shown, %d never; %d deliveries timed, %d missing\n", r.Matched, r.Unmatched, r.Deliveries, r.Missing)
	fmt.Fprintf(w, "  command latency (from arrival)    %s\n", r.Answers)
	fmt.Fprintf(w, "  commit → board, every client      %s\n", r.Delta)
	fmt.Fprintf(w, "  commit → board, first client      %s\n", r.FirstDelivery)
	printBaselines(w, "command", r.Answers.P99, r.Ping, r.PG)
	if r.Ping.P99 > 0 {
		fmt.Fprintf(w, "  commit → board p99 / ping p99: %.1f×\n", r.Delta.P99/r.Ping.P99)
	}
	fmt.Fprintf(w, "CPU while sending: server %.2f cores, generator %.2f cores\n", r.ServerCPU, r.LoadCPU)
	fmt.Fprintf(w, "LIVE.md rule: %d gaps, %d duplicates; %d reconnects, %d resyncs by snapshot\n", r.Gaps, r.Duplicates, r.Reconnects, r.Resnapshots)
	printErrors(w, r.Errors)
}

func (r *raidResult) failures() []string {
	var f []string
	if r.Gaps > 0 || r.Duplicates > 0 {
		f = append(f, fmt.Sprintf("%d gaps and %d duplicates in the deltas", r.Gaps, r.Duplicates))
	}
	if r.Unmatched > 0 {
		f = append(f, fmt.Sprintf("%d acknowledged commands never shown on the board", r.Unmatched))
	}
	if r.Acked < r.Sent {
		f = append(f, fmt.Sprintf("%d of %d commands failed (errors by kind above)", r.Sent-r.Acked, r.Sent))
	}
	if r.Acked == 0 {
		f = append(f, "no command was acknowledged")
	}
	return f
}

// raidMorning is issue 7's "raid morning": requests arrive and are worked
// through (raidSteps) at a fixed command rate while dispatchers' boards
// and volunteers' phones (their own view, live/mine) watch. It measures
// each command's latency from its arrival and each board client's delta
// from the command's answer (the commit), beside a ping over the same
// sockets at the same rate and a raw Postgres insert at the same rate.
func raidMorning(ctx context.Context, h *harness) (result, error) {
	cfg := h.cfg
	if err := h.signIn(ctx); err != nil {
		return nil, err
	}
	vols, err := h.volunteers(ctx, cfg.Volunteers)
	if err != nil {
		return nil, err
	}
	rate := float64(cfg.Commands) / cfg.Duration.Seconds()
	pg, err := openBaseline(ctx, cfg.BaselineDSN, cfg.BaselineConns)
	if err != nil {
		return nil, err
	}
	defer pg.close()

	stats := &liveStats{}
	tr := newTracker(h, cfg.Clients)
	tr.measureFrom.Store(1 << 62)
	began := time.Now()
	boards, err := h.openClients(ctx, cfg.Clients, "board", stats, func(c *liveClient) { c.onDelta = tr.seen })
	defer closeClients(boards)
	if err != nil {
		return nil, err
	}
	phones, err := h.openClients(ctx, len(vols), "mine", stats, func(c *liveClient) { c.cookie = vols[c.id].Cookie })
	defer closeClients(phones)
	if err != nil {
		return nil, err
	}
	connect := time.Since(began)
	pings := newPinger(boards, phones)
	pings.rtt.measureFrom.Store(1 << 62)

	// The insert baseline first, alone, at the commands' rate.
	baseFor := min(cfg.BaselineFor, cfg.Duration)
	h.logf("raid-morning: baseline: Postgres INSERTs at %.2f/s for %s", rate, baseFor)
	pgRes := pg.run(ctx, h, rate, 0, baseFor)

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
				tr.finalize(h.now()-int64(10*time.Second), false)
			}
		}
	}()

	plan := newRaidPlan(cfg.Requests, cfg.Commands, vols)
	var (
		answers          timings
		acked, nothing   atomic.Int64
		resolved         atomic.Int64
		byStepMu         sync.Mutex
		byStep           = map[string]int64{}
		measureFromStart = int64(time.Since(h.start) + cfg.Warmup)
	)
	answers.measureFrom.Store(measureFromStart)
	tr.measureFrom.Store(measureFromStart)
	pings.rtt.measureFrom.Store(measureFromStart)
	cpu0, err := h.cpu(ctx)
	if err != nil {
		return nil, err
	}
	h.logf("raid-morning: %d commands at %.2f/s for %s (first %s not counted)", cfg.Commands, rate, cfg.Duration, cfg.Warmup)
	sent := h.openLoop(ctx, rate, cfg.Commands, 0, maxInflight, "command", func(ctx context.Context, a arrival) {
		r := plan.next(a.i)
		if r == nil {
			nothing.Add(1)
			return
		}
		step := raidSteps[r.step]
		err := h.raidCommand(ctx, r)
		ack := h.now()
		if err != nil {
			if ctx.Err() == nil {
				h.errs.add("command " + step + ": " + kindOf(err, nil))
			}
			return // the request stops here; the error is counted
		}
		answers.record(a.intended, ack-a.intended)
		acked.Add(1)
		byStepMu.Lock()
		byStep[step]++
		byStepMu.Unlock()
		tr.acked(&command{id: r.id, stage: raidStage(r.step), ack: ack, measured: a.intended >= measureFromStart})
		if r.step == len(raidSteps)-1 {
			resolved.Add(1)
		}
		plan.done(r)
	}, pings.ping)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	cpu1, err := h.cpu(ctx)
	if err != nil {
		return nil, err
	}
	drained := time.Now()
	for n := tr.waiting(); n > 0 && time.Since(drained) < cfg.Drain; n = tr.waiting() {
		h.logf("raid-morning: commands done; %d not on the board yet", n)
		if err := sleep(ctx, time.Second); err != nil {
			return nil, err
		}
	}
	if err := sleep(ctx, cfg.Settle); err != nil {
		return nil, err
	}
	close(stopMatching)
	<-matched
	tr.finalize(0, true)

	tr.cmu.Lock()
	res := &raidResult{
		BoardClients: cfg.Clients, VolunteerClients: len(vols), Requests: cfg.Requests, Commands: cfg.Commands,
		Duration: cfg.Duration.String(), Rate: rate, ConnectSecs: connect.Seconds(),
		Sent: sent - nothing.Load(), Acked: acked.Load(), NothingReady: nothing.Load(), RequestsDone: resolved.Load(),
		Answers: answers.summary(), Delta: tr.lat.summary(), FirstDelivery: tr.first.summary(), deliveryCounts: tr.counts,
		Ping: pings.rtt.summary(), PG: pgRes, ByStep: byStep,
		Gaps: stats.gaps.Load(), Duplicates: stats.duplicates.Load(), Reconnects: stats.reconnects.Load(),
		Resnapshots: stats.resnapshots.Load(), Errors: h.errs.snapshot(),
	}
	tr.cmu.Unlock()
	res.Bad = tr.bad.Load()
	wall := cpu1.at.Sub(cpu0.at).Seconds()
	res.ServerCPU, res.LoadCPU = (cpu1.server-cpu0.server)/wall, (cpu1.self-cpu0.self)/wall
	return res, nil
}

// raidStage is the board stage a request reaches with raidSteps[step]
// done (boardStage): each step adds one, and resolving adds one through
// the status, so step k leaves it at k+1.
func raidStage(step int) int { return step + 1 }
