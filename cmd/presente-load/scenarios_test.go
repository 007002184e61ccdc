package main

import (
	"context"
	"io"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestIssue7ScenariosRunAgainstARealServer runs each of issue 7's
// scenarios at a tiny scale against `presente serve --env development
// --demo`, making its volunteers through invitations, and checks what
// each promises: every command acknowledged and shown, exactly the
// shift's capacity claimed, every dropped client resumed without a
// snapshot, baselines measured.
func TestIssue7ScenariosRunAgainstARealServer(t *testing.T) {
	base := startServer(t)
	vols := t.TempDir() + "/volunteers.json"
	common := []string{"-url", base, "-volunteer-file", vols, "-baseline-duration", "1s", "-settle", "500ms"}

	t.Run("raid-morning", func(t *testing.T) {
		var res raidResult
		code, stderr := runLoad(t, &res, append(common, "-scenario", "raid-morning", "-clients", "3", "-volunteers", "6",
			"-requests", "3", "-commands", "30", "-duration", "6s", "-warmup", "0s")...)
		if code != exitOK {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
		if res.Acked != 30 || res.RequestsDone != 3 || res.Matched != 30 || res.Unmatched != 0 {
			t.Errorf("%d acknowledged, %d resolved, %d shown, %d never: want every step of 3 requests, all on the board",
				res.Acked, res.RequestsDone, res.Matched, res.Unmatched)
		}
		for _, step := range raidSteps {
			if res.ByStep[step] != 3 {
				t.Errorf("step %q acknowledged %d times, want 3", step, res.ByStep[step])
			}
		}
		if res.Deliveries != 30*3 || res.Missing != 0 {
			t.Errorf("%d deliveries, %d missing; want 90 and 0", res.Deliveries, res.Missing)
		}
		if res.Ping.Count == 0 || res.PG == nil || res.PG.Done == 0 || res.PG.Errors != 0 {
			t.Errorf("baselines: ping %+v, insert %+v; want both measured", res.Ping, res.PG)
		}
	})

	t.Run("shift-opens", func(t *testing.T) {
		var res shiftOpensResult
		code, stderr := runLoad(t, &res, append(common, "-scenario", "shift-opens", "-volunteers", "6", "-slots", "2", "-duration", "500ms")...)
		if code != exitOK {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
		if res.Answers.Claimed != 2 || res.APIClaimants != 2 || res.Answers.answered() != 6 {
			t.Errorf("answers %+v, API %d holders: want 2 claimed and 6 answered", res.Answers, res.APIClaimants)
		}
		if res.PhonesFinal != 6 {
			t.Errorf("%d phones show the final counts, want 6", res.PhonesFinal)
		}
	})

	t.Run("reconnect-storm", func(t *testing.T) {
		var res stormResult
		code, stderr := runLoad(t, &res, append(common, "-scenario", "reconnect-storm", "-clients", "10", "-duration", "1s", "-rate", "10")...)
		if code != exitOK {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
		if res.Dropped != 10 || res.Resumed != 10 || res.Snapshots != 0 {
			t.Errorf("%d dropped, %d resumed, %d snapshots; want 10, 10, 0", res.Dropped, res.Resumed, res.Snapshots)
		}
		if res.Acked == 0 || res.Missing != 0 || res.Unmatched != 0 {
			t.Errorf("%d commands acknowledged, %d deliveries missing, %d never shown", res.Acked, res.Missing, res.Unmatched)
		}
		if res.DialToSync.Count != 10 || res.AllResumedSecs <= 0 {
			t.Errorf("dial → sync %+v, all resumed in %.2f s", res.DialToSync, res.AllResumedSecs)
		}
	})

	t.Run("throughput", func(t *testing.T) {
		var res throughputResult
		code, stderr := runLoad(t, &res, append(common, "-scenario", "throughput", "-clients", "2", "-rates", "5,10", "-step", "2s", "-warmup", "0s")...)
		if code != exitOK {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
		if len(res.Steps) != 2 || res.Steps[0].Rate != 5 || res.Steps[1].Rate != 10 {
			t.Fatalf("steps %+v, want 5/s then 10/s", res.Steps)
		}
		for _, s := range res.Steps {
			if s.Acked != s.Sent || s.Sent < int64(2*s.Rate)-1 || s.Unshown != 0 || s.PG == nil || s.PG.Done == 0 {
				t.Errorf("%.0f/s: %d sent, %d acknowledged, %d never shown, baseline %+v", s.Rate, s.Sent, s.Acked, s.Unshown, s.PG)
			}
		}
	})
}

// TestEveryRaidStepRaisesTheBoardStageByOne walks a request through the
// raid's steps as the board shows it and checks that each step's row is
// at raidStage(step), so a command is matched by the first delta that
// shows it, and not before.
func TestEveryRaidStepRaisesTheBoardStageByOne(t *testing.T) {
	rows := []struct {
		status      string
		assignments []string
	}{
		{"received", nil},
		{"triaged", nil},
		{"assigned", []string{"offered"}},
		{"assigned", []string{"accepted"}},
		{"assigned", []string{"accepted", "offered"}},
		{"assigned", []string{"accepted", "declined"}},
		{"in_progress", []string{"en_route", "declined"}},
		{"in_progress", []string{"arrived", "declined"}},
		{"in_progress", []string{"done", "declined"}},
		{"resolved", []string{"done", "declined"}},
	}
	if len(rows) != len(raidSteps) {
		t.Fatalf("%d rows for %d steps", len(rows), len(raidSteps))
	}
	for step, r := range rows {
		if got := boardStage(r.status, r.assignments); got != raidStage(step) {
			t.Errorf("after %q the row (%s %v) is at stage %d, want %d", raidSteps[step], r.status, r.assignments, got, raidStage(step))
		}
	}
	if boardStage("cancelled", nil) >= stageRemoved {
		t.Error("no row on the board may reach the stage of a removed request")
	}
	// The board-latency mix keeps its stages.
	if boardStage("received", nil) != stageReceived || boardStage("triaged", nil) != stageTriaged {
		t.Error("received and triaged rows moved stage")
	}
}

// TestTheRaidPlanSpreadsTheIntakeAndKeepsEachRequestInOrder drives the
// plan as the load does, answering commands out of order, and checks
// that requests arrive by every (commands/requests)-th arrival, a
// request's steps are never handed out while one is in flight, every
// request gets its own two volunteers, and all steps are handed out.
func TestTheRaidPlanSpreadsTheIntakeAndKeepsEachRequestInOrder(t *testing.T) {
	vols := make([]volunteerSession, 8)
	for i := range vols {
		vols[i] = volunteerSession{UserID: uuid.New()}
	}
	p := newRaidPlan(4, 40, vols)
	var (
		inflight []*raidRequest
		intakeAt []int
		busy     = map[*raidRequest]bool{}
		handed   = 0
		nothing  = 0
		seen     = map[uuid.UUID]bool{}
	)
	for i := 0; i < 200 && handed < 40; i++ {
		r := p.next(i)
		switch {
		case r == nil:
			nothing++
		case busy[r]:
			t.Fatalf("arrival %d: request %d handed out while its step %d is in flight", i, r.intakeSlot, r.step)
		default:
			if r.step == 0 {
				intakeAt = append(intakeAt, i)
				if seen[r.a.UserID] || seen[r.b.UserID] || r.a.UserID == r.b.UserID {
					t.Errorf("request %d shares a volunteer", r.intakeSlot)
				}
				seen[r.a.UserID], seen[r.b.UserID] = true, true
			}
			busy[r] = true
			inflight = append(inflight, r)
			handed++
		}
		// Answer the oldest command but one every other arrival: out of order.
		if len(inflight) >= 2 && i%2 == 1 {
			r := inflight[1]
			inflight = slices.Delete(inflight, 1, 2)
			delete(busy, r)
			p.done(r)
		}
		if len(inflight) == 1 && r == nil {
			r := inflight[0]
			inflight = inflight[:0]
			delete(busy, r)
			p.done(r)
		}
	}
	// At every 10th arrival at the latest; earlier when no step was ready.
	if len(intakeAt) != 4 {
		t.Fatalf("requests received at arrivals %v, want 4", intakeAt)
	}
	for k, i := range intakeAt {
		if i > 10*k {
			t.Errorf("request %d received at arrival %d, want by %d", k, i, 10*k)
		}
	}
	if handed != 40 {
		t.Errorf("%d commands handed out, want 40 (%d arrivals found nothing ready)", handed, nothing)
	}
	for _, r := range inflight {
		p.done(r)
	}
	for i := 1000; ; i++ {
		if r := p.next(i); r == nil {
			break
		} else {
			t.Errorf("request %d still has step %d after every step was handed out", r.intakeSlot, r.step)
			p.done(r)
		}
	}
}

func TestTheStormCountsOnlyTheFirstSyncAfterEachDrop(t *testing.T) {
	w := newStormWatch(4)
	w.onSynced(0, false, 5) // the first sync, before any drop: not counted
	w.dropAt[0].Store(10)
	w.onDial(0, 11)
	w.onSynced(0, true, 20)
	w.onSynced(0, false, 30) // a later resync is not the storm's
	w.dropAt[1].Store(12)
	w.onDial(1, 13)
	w.onSynced(1, false, 40) // a snapshot
	w.dropAt[2].Store(15)    // dropped, never back
	got := w.tally()
	if got.Dropped != 3 || got.Synced != 2 || got.Resumed != 1 || got.Snapshots != 1 {
		t.Errorf("tally %+v, want 3 dropped, 2 in sync: 1 resumed, 1 snapshot", got)
	}
	if got.FirstDrop != 10 || got.LastSync != 40 || got.perClient.max != 28 || got.resume.min != 9 {
		t.Errorf("first drop %d, last sync %d, slowest %d, fastest redial %d; want 10, 40, 28, 9",
			got.FirstDrop, got.LastSync, got.perClient.max, got.resume.min)
	}
}

func TestShiftTakenReadsTheShiftBoardAsVolunteersGetIt(t *testing.T) {
	id := uuid.MustParse("0192e3b4-7c1d-7000-8000-000000000001")
	msg := []byte(`{"type":"delta","view":"shifts","prev":"1:1","position":"2:2","data":{"shifts":[` +
		`{"shift_id":"0192e3b4-7c1d-7000-8000-000000000002","claimed":1,"waitlist":0},` +
		`{"shift_id":"0192e3b4-7c1d-7000-8000-000000000001","claimed":50,"waitlist":17,"open":0}]}}`)
	if n, ok := shiftTaken(msg, id); !ok || n != 67 {
		t.Errorf("taken = %d %v, want 67", n, ok)
	}
	if _, ok := shiftTaken(msg, uuid.New()); ok {
		t.Error("found a shift the message does not carry")
	}
	w := newShiftWatch(id, 2)
	w.onDelta(1, []byte("2:2"), msg, 99)
	w.onDelta(0, []byte("2:2"), []byte("not even JSON: decoded once, from the cache"), 100)
	if w.taken[0].Load() != 67 || w.taken[1].Load() != 67 || w.at[0].Load() != 100 {
		t.Errorf("clients saw %d and %d at %d", w.taken[0].Load(), w.taken[1].Load(), w.at[0].Load())
	}
}

func TestSetupHelpersReadWhatTheServerGives(t *testing.T) {
	if tok, err := invitationToken("http://localhost:8080/join#abc-DEF_123"); err != nil || tok != "abc-DEF_123" {
		t.Errorf("token = %q, %v", tok, err)
	}
	if _, err := invitationToken("http://localhost:8080/join"); err == nil {
		t.Error("a link without a token was accepted")
	}
	for in, want := range map[string]string{
		"postgres://postgres@127.0.0.1:5432/postgres":              "postgres://postgres@127.0.0.1:5432/" + baselineDatabase,
		"postgres://u:p@db:5433/app?sslmode=disable":               "postgres://u:p@db:5433/" + baselineDatabase + "?sslmode=disable",
		"postgres://postgres@127.0.0.1:5432/" + baselineDatabase:   "postgres://postgres@127.0.0.1:5432/" + baselineDatabase,
		"postgresql://postgres@127.0.0.1/other?application_name=x": "postgresql://postgres@127.0.0.1/" + baselineDatabase + "?application_name=x",
	} {
		if got, err := baselineDSN(in); err != nil || got != want {
			t.Errorf("baselineDSN(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for kind, want := range map[string]bool{
		"HTTP 503 (5xx) unavailable":               true,
		"connection lost (reset or EOF)":           true,
		"timeout":                                  true,
		"HTTP 409 shift_full":                      false,
		"command not sent: too many waiting for …": false,
	} {
		if isServerFault(kind) != want {
			t.Errorf("isServerFault(%q) = %v", kind, !want)
		}
	}
}

func TestOpenLoopKeepsItsScheduleAndSkipsPastTheInflightBound(t *testing.T) {
	h := newHarness(config{base: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}}, io.Discard)
	var (
		mu       sync.Mutex
		intended []int64
		release  = make(chan struct{})
		started  atomic.Int64
	)
	// 20 arrivals at 200/s; the first two never answer until the end, so
	// with at most 2 in flight every later one is skipped.
	go func() {
		time.Sleep(300 * time.Millisecond)
		close(release)
	}()
	sent := h.openLoop(context.Background(), 200, 20, 0, 2, "probe", func(_ context.Context, a arrival) {
		started.Add(1)
		mu.Lock()
		intended = append(intended, a.intended)
		mu.Unlock()
		<-release
	}, nil)
	if sent != 2 || started.Load() != 2 || h.errs.snapshot()["probe not sent: too many waiting for an answer"] != 18 {
		t.Errorf("sent %d, errors %v; want 2 sent and 18 skipped", sent, h.errs.snapshot())
	}

	// Without a bound, arrivals are due every 1/rate whatever the answers take.
	intended = nil
	sent = h.openLoop(context.Background(), 100, 0, 100*time.Millisecond, 1000, "probe", func(_ context.Context, a arrival) {
		mu.Lock()
		intended = append(intended, a.intended)
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}, nil)
	slices.Sort(intended)
	if sent != 10 || len(intended) != 10 {
		t.Fatalf("sent %d in 100 ms at 100/s, want 10", sent)
	}
	for i := 1; i < len(intended); i++ {
		if d := time.Duration(intended[i] - intended[i-1]); d != 10*time.Millisecond {
			t.Errorf("arrival %d due %s after the one before, want 10ms", i, d)
		}
	}
}
