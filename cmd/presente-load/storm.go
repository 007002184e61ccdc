package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// stormWatch records, for every client, when the storm cut it and when
// and how it was next in sync.
type stormWatch struct {
	dropAt   []atomic.Int64 // 0 until dropped
	dialAt   []atomic.Int64 // the first dial after the drop
	syncedAt []atomic.Int64 // the first sync after the drop; 0 until then
	resumed  []atomic.Bool  // that sync was "resumed", not a snapshot
	// bare: the client had applied no delta since its snapshot when cut,
	// so it asked to resume from the snapshot's position.
	bare []atomic.Bool
}

func newStormWatch(n int) *stormWatch {
	return &stormWatch{dropAt: make([]atomic.Int64, n), dialAt: make([]atomic.Int64, n), bare: make([]atomic.Bool, n), syncedAt: make([]atomic.Int64, n), resumed: make([]atomic.Bool, n)}
}

func (s *stormWatch) onDial(client int, t int64) {
	if d := s.dropAt[client].Load(); d != 0 && t > d {
		s.dialAt[client].CompareAndSwap(0, t)
	}
}

func (s *stormWatch) onSynced(client int, resumed bool, t int64) {
	if d := s.dropAt[client].Load(); d != 0 && t > d && s.syncedAt[client].Load() == 0 {
		s.resumed[client].Store(resumed)
		s.syncedAt[client].Store(t)
	}
}

// stormTally sums a storm: how many were dropped, back in sync, resumed
// from ?after= and reloaded by snapshot, each client's time from drop to
// sync, and when the first drop and the last sync were.
type stormTally struct {
	Dropped   int `json:"dropped"`
	Synced    int `json:"back_in_sync"`
	Resumed   int `json:"resumed"`
	Snapshots int `json:"snapshot_reloads"`
	// SnapshotsBare are the snapshot reloads of clients that had applied
	// no delta since their snapshot (they resumed from its position).
	SnapshotsBare int       `json:"snapshot_reloads_from_a_snapshot_position"`
	FirstDrop     int64     `json:"-"`
	LastSync      int64     `json:"-"`
	perClient     histogram // drop → in sync
	resume        histogram // dial → in sync: the server's part
}

func (s *stormWatch) tally() stormTally {
	var t stormTally
	for i := range s.dropAt {
		d := s.dropAt[i].Load()
		if d == 0 {
			continue
		}
		t.Dropped++
		if t.FirstDrop == 0 || d < t.FirstDrop {
			t.FirstDrop = d
		}
		at := s.syncedAt[i].Load()
		if at == 0 {
			continue
		}
		t.Synced++
		t.LastSync = max(t.LastSync, at)
		t.perClient.record(at - d)
		if dial := s.dialAt[i].Load(); dial != 0 {
			t.resume.record(at - dial)
		}
		if s.resumed[i].Load() {
			t.Resumed++
		} else {
			t.Snapshots++
			if s.bare[i].Load() {
				t.SnapshotsBare++
			}
		}
	}
	return t
}

// stormResult is what reconnect-storm measured.
type stormResult struct {
	Clients     int     `json:"clients"`
	Window      string  `json:"window"`
	Rate        float64 `json:"command_rate"`
	ConnectSecs float64 `json:"connect_seconds"`
	stormTally
	AllResumedSecs float64 `json:"first_drop_to_all_in_sync_seconds"`
	AfterLastDrop  float64 `json:"last_drop_to_all_in_sync_seconds"`
	DropToSync     summary `json:"drop_to_sync"`
	DialToSync     summary `json:"dial_to_sync"`
	// The commands sent meanwhile, and their deltas on every client.
	Sent    int64   `json:"commands_sent"`
	Acked   int64   `json:"commands_acknowledged"`
	Answers summary `json:"command_answer"`
	Delta   summary `json:"commit_to_board"`
	deliveryCounts
	Ping       summary          `json:"baseline_ping"`
	PG         *baselineResult  `json:"baseline_insert"`
	Gaps       int64            `json:"gaps"`
	Duplicates int64            `json:"duplicates"`
	Reconnects int64            `json:"reconnects_not_caused_by_the_storm"`
	Errors     map[string]int64 `json:"errors"`
}

func (r *stormResult) print(w io.Writer) {
	fmt.Fprintf(w, "reconnect-storm: %d board clients (in sync in %.1f s) dropped within %s, %.0f commands/s meanwhile\n",
		r.Clients, r.ConnectSecs, r.Window, r.Rate)
	fmt.Fprintf(w, "clients: %d dropped, %d back in sync: %d resumed from ?after=, %d reloaded by snapshot (%d of them had no delta since their snapshot)\n",
		r.Dropped, r.Synced, r.Resumed, r.Snapshots, r.SnapshotsBare)
	fmt.Fprintf(w, "time to all in sync: %.2f s from the first drop, %.2f s after the last\n", r.AllResumedSecs, r.AfterLastDrop)
	fmt.Fprintf(w, "  drop → in sync, each client       %s\n", r.DropToSync)
	fmt.Fprintf(w, "  redial → in sync (after the jittered 1 s backoff) %s\n", r.DialToSync)
	fmt.Fprintf(w, "commands: %d sent, %d acknowledged, %d shown, %d never; %d deliveries timed, %d missing\n",
		r.Sent, r.Acked, r.Matched, r.Unmatched, r.Deliveries, r.Missing)
	fmt.Fprintf(w, "  command latency (from arrival)    %s\n", r.Answers)
	fmt.Fprintf(w, "  commit → board, every client      %s\n", r.Delta)
	printBaselines(w, "redial → in sync", r.DialToSync.P99, r.Ping, r.PG)
	fmt.Fprintf(w, "LIVE.md rule: %d gaps, %d duplicates; %d reconnects the storm did not cause\n", r.Gaps, r.Duplicates, r.Reconnects)
	printErrors(w, r.Errors)
}

func (r *stormResult) failures() []string {
	var f []string
	if r.Dropped != r.Clients || r.Synced != r.Dropped {
		f = append(f, fmt.Sprintf("%d of %d clients dropped, %d back in sync", r.Dropped, r.Clients, r.Synced))
	}
	if r.Snapshots > 0 {
		f = append(f, fmt.Sprintf("%d clients reloaded a snapshot though the gap was small", r.Snapshots))
	}
	if r.Gaps > 0 || r.Duplicates > 0 {
		f = append(f, fmt.Sprintf("%d gaps and %d duplicates in the deltas", r.Gaps, r.Duplicates))
	}
	if r.Acked < r.Sent {
		f = append(f, fmt.Sprintf("%d of %d commands sent during the storm failed (errors by kind above)", r.Sent-r.Acked, r.Sent))
	}
	if r.Unmatched > 0 || r.Missing > 0 {
		f = append(f, fmt.Sprintf("%d commands never shown, %d deliveries missing", r.Unmatched, r.Missing))
	}
	return f
}

// reconnectStorm is issue 7's "reconnect storm": -clients board clients
// are cut (no close frame, as when a network drops) within -duration,
// evenly spread, while commands arrive at -rate, so every client misses
// a few deltas. Each reconnects as LIVE.md says (a jittered second, then
// ?after=<last>); with a gap that small the server must resume every one
// from its kept deltas, never with a snapshot, and every command must
// still reach every client exactly once. It reports the time until all
// are back in sync. Baselines, before the storm: a ping to every client
// and as many Postgres INSERTs, both at the storm's rate.
func reconnectStorm(ctx context.Context, h *harness) (result, error) {
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
	tr := newTracker(h, cfg.Clients)
	tr.measureFrom.Store(1 << 62)
	watch := newStormWatch(cfg.Clients)
	began := time.Now()
	clients, err := h.openClients(ctx, cfg.Clients, "board", stats, func(c *liveClient) {
		c.onDelta = tr.seen
		c.onSynced = watch.onSynced
		c.onDial = watch.onDial
		c.freeRedial = !cfg.StormBounded
	})
	defer closeClients(clients)
	if err != nil {
		return nil, err
	}
	connect := time.Since(began)
	stormRate := float64(cfg.Clients) / cfg.Duration.Seconds()

	pings := newPinger(clients)
	h.logf("reconnect-storm: baselines: a ping to each client, then %d INSERTs, at %.0f/s", cfg.Clients, stormRate)
	h.openLoop(ctx, stormRate, cfg.Clients, 0, int64(cfg.Clients), "ping", func(context.Context, arrival) {}, pings.ping)
	time.Sleep(time.Second) // the last pongs
	pgRes := pg.run(ctx, h, stormRate, cfg.Clients, 0)

	// Commands for 2 s before the storm, then, once every client has
	// applied a delta since its snapshot, through the storm to 5 s after
	// its end.
	l := &load{h: h, tr: tr}
	tr.measureFrom.Store(h.now())
	send := func(ctx context.Context, a arrival) {
		l.inflight.Add(1)
		l.sent.Add(1)
		l.command(ctx, a.i, a.intended)
	}
	h.openLoop(ctx, cfg.Rate, 0, 2*time.Second, maxInflight, "command", send, nil)
	// The storm is about a small gap: every client should have applied a
	// delta since its snapshot, so it resumes from a delta's position. (A
	// client still at its snapshot's position is answered with a snapshot
	// until the next delta: the hub resumes only positions its kept
	// deltas cover, web/live/views.go covers.)
	for waitUntil := time.Now().Add(cfg.Drain); ; {
		bare := 0
		for _, c := range clients {
			if c.sinceSnapshot.Load() == 0 {
				bare++
			}
		}
		if bare == 0 || time.Now().After(waitUntil) {
			break
		}
		h.logf("reconnect-storm: %d clients have no delta yet", bare)
		if err := sleep(ctx, time.Second); err != nil {
			return nil, err
		}
	}
	var cmdWG sync.WaitGroup
	cmdWG.Add(1)
	go func() {
		defer cmdWG.Done()
		h.openLoop(ctx, cfg.Rate, 0, cfg.Duration+5*time.Second, maxInflight, "command", send, nil)
	}()

	h.logf("reconnect-storm: dropping %d clients within %s", cfg.Clients, cfg.Duration)
	h.openLoop(ctx, stormRate, cfg.Clients, 0, int64(cfg.Clients), "drop", func(context.Context, arrival) {}, func(i int) {
		c := clients[i]
		watch.dropAt[i].Store(h.now())
		watch.bare[i].Store(c.sinceSnapshot.Load() == 0)
		if !c.drop() {
			watch.dropAt[i].Store(0) // not connected: nothing to cut
		}
	})
	lastDrop := h.now()
	deadline := time.Now().Add(cfg.Drain)
	for {
		t := watch.tally()
		if t.Synced == t.Dropped || time.Now().After(deadline) {
			break
		}
		h.logf("reconnect-storm: %d of %d back in sync", t.Synced, t.Dropped)
		if err := sleep(ctx, time.Second); err != nil {
			return nil, err
		}
	}
	cmdWG.Wait()
	for n := tr.waiting(); n > 0 && time.Since(deadline) < 0; n = tr.waiting() {
		if err := sleep(ctx, time.Second); err != nil {
			return nil, err
		}
	}
	if err := sleep(ctx, cfg.Settle); err != nil {
		return nil, err
	}
	tr.finalize(0, true)
	t := watch.tally()
	tr.cmu.Lock()
	l.hmu.Lock()
	res := &stormResult{
		Clients: cfg.Clients, Window: cfg.Duration.String(), Rate: cfg.Rate, ConnectSecs: connect.Seconds(),
		stormTally: t, DropToSync: t.perClient.summary(), DialToSync: t.resume.summary(),
		Sent: l.sent.Load(), Acked: l.acked.Load(), Answers: l.answers.summary(), Delta: tr.lat.summary(),
		deliveryCounts: tr.counts, Ping: pings.rtt.summary(), PG: pgRes,
		Gaps: stats.gaps.Load(), Duplicates: stats.duplicates.Load(), Reconnects: stats.reconnects.Load(),
		Errors: h.errs.snapshot(),
	}
	l.hmu.Unlock()
	tr.cmu.Unlock()
	res.Bad = tr.bad.Load()
	if t.LastSync > 0 {
		res.AllResumedSecs = float64(t.LastSync-t.FirstDrop) / 1e9
		res.AfterLastDrop = float64(t.LastSync-lastDrop) / 1e9
	}
	return res, nil
}
