package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

// liveView is a client of a live view that applies its messages by the rules
// of web/LIVE.md, and fails the test on a gap or a duplicate. It keeps the
// board's requests and volunteers by id.
type liveView struct {
	t         testing.TB
	ws        *websocket.Conn
	last      eventstore.Cursor
	mode      string
	requests  map[string]map[string]any
	volunteer map[string]map[string]any
	shifts    map[string]map[string]any
	mine      map[string]any
	deltas    int
}

// follow opens the live view at path ("/api/v1/live/board") as u, resuming
// after the position when it is not empty, and reads the first sync.
func (e *env) follow(u *user, path, after string) *liveView {
	e.t.Helper()
	b := &liveView{t: e.t, requests: map[string]map[string]any{}, volunteer: map[string]map[string]any{}, shifts: map[string]map[string]any{}}
	if after != "" {
		c, _ := eventstore.ParseCursor(after)
		b.last = c
	}
	return e.open(b, u, path)
}

// resume reconnects a client that has prev's state, after prev's last
// position, as a dropped client does.
func (e *env) resume(prev *liveView, u *user, path string) *liveView {
	e.t.Helper()
	b := &liveView{t: e.t, last: prev.last, requests: map[string]map[string]any{}, volunteer: map[string]map[string]any{},
		shifts: map[string]map[string]any{}}
	for id, r := range prev.requests {
		b.requests[id] = r
	}
	for id, v := range prev.volunteer {
		b.volunteer[id] = v
	}
	for id, sh := range prev.shifts {
		b.shifts[id] = sh
	}
	return e.open(b, u, path)
}

func (e *env) open(b *liveView, u *user, path string) *liveView {
	e.t.Helper()
	after := ""
	if b.last != (eventstore.Cursor{}) {
		after = b.last.String()
	}
	ws, err := e.dialView(u, path, after)
	if err != nil {
		e.t.Fatalf("open %s: %v", path, err)
	}
	e.t.Cleanup(func() { ws.Close() })
	b.ws = ws
	if m := b.next(5 * time.Second); m["type"] != "hello" {
		e.t.Fatalf("first message %v, want hello", m)
	}
	b.sync()
	return b
}

func (e *env) dialView(u *user, path, after string) (*websocket.Conn, error) {
	h := http.Header{"Cookie": {u.cookie}, "Origin": {"http://presente.test"}}
	q := ""
	if after != "" {
		q = "?after=" + url.QueryEscape(after)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.ts.URL, "http")+path+q, h)
	return ws, err
}

func (b *liveView) next(wait time.Duration) map[string]any {
	b.t.Helper()
	_ = b.ws.SetReadDeadline(time.Now().Add(wait))
	_, raw, err := b.ws.ReadMessage()
	if err != nil {
		b.t.Fatalf("read the live view: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		b.t.Fatal(err)
	}
	return m
}

func (b *liveView) position(v any) eventstore.Cursor {
	b.t.Helper()
	c, err := eventstore.ParseCursor(v.(string))
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

func earlier(a, c eventstore.Cursor) bool {
	return a.TxID < c.TxID || (a.TxID == c.TxID && a.Position < c.Position)
}

func (b *liveView) sync() {
	b.t.Helper()
	for {
		m := b.next(5 * time.Second)
		switch m["type"] {
		case "snapshot":
			b.requests, b.volunteer, b.shifts = map[string]map[string]any{}, map[string]map[string]any{}, map[string]map[string]any{}
			b.apply(m["data"].(map[string]any))
			b.last = b.position(m["position"])
		case "deltas":
			for _, d := range m["deltas"].([]any) {
				b.delta(d.(map[string]any))
			}
		case "synced":
			b.mode = m["mode"].(string)
			if p := b.position(m["position"]); p != b.last {
				b.t.Fatalf("synced at %s, but the messages brought the client to %s", p, b.last)
			}
			return
		default:
			b.t.Fatalf("unexpected message during the first sync: %v", m)
		}
	}
}

// delta applies one delta, failing on a gap or a duplicate: the server
// never sends either to one connection.
func (b *liveView) delta(d map[string]any) {
	b.t.Helper()
	prev, at := b.position(d["prev"]), b.position(d["position"])
	switch {
	case earlier(b.last, prev):
		b.t.Fatalf("gap: at %s, got a delta from %s", b.last, prev)
	case !earlier(b.last, at):
		b.t.Fatalf("duplicate: at %s, got a delta to %s", b.last, at)
	}
	b.apply(d["data"].(map[string]any))
	b.last = at
	b.deltas++
}

func (b *liveView) apply(data map[string]any) {
	upsert := func(into map[string]map[string]any, list any, id string) {
		items, _ := list.([]any)
		for _, it := range items {
			row := it.(map[string]any)
			into[row[id].(string)] = row
		}
	}
	remove := func(from map[string]map[string]any, list any) {
		ids, _ := list.([]any)
		for _, id := range ids {
			delete(from, id.(string))
		}
	}
	upsert(b.requests, data["requests"], "request_id")
	remove(b.requests, data["requests_removed"])
	upsert(b.volunteer, data["volunteers"], "volunteer_id")
	remove(b.volunteer, data["volunteers_removed"])
	upsert(b.shifts, data["shifts"], "shift_id")
	if _, ok := data["assignments"]; ok {
		b.mine = data
	}
}

// until applies deltas until ok holds.
func (b *liveView) until(what string, ok func() bool) {
	b.t.Helper()
	// Generous: in a test run, other packages' transactions on the same
	// PostgreSQL hold the commit-safe log back for a while.
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		wait := time.Until(deadline)
		if wait <= 0 {
			b.t.Fatalf("the live view never showed %s", what)
		}
		m := b.next(wait)
		if m["type"] != "delta" {
			b.t.Fatalf("got %v, want a delta", m)
		}
		b.delta(m)
	}
}

func (e *env) newRequest(u *user, region string, needed int) string {
	e.t.Helper()
	r := e.do(u, "POST", "/api/v1/requests", map[string]any{"kind": "rapid_response", "region": region, "needed": needed,
		"meeting_point": "Corner of 5th and Main", "person": map[string]string{"name": "Caller Yolanda", "phone": "+1 555 0142"}})
	mustStatus(t(e), r, http.StatusCreated, "receive a request")
	var created struct {
		RequestID string `json:"request_id"`
	}
	decode(e.t.(*testing.T), r.body, &created)
	return created.RequestID
}

func t(e *env) *testing.T { return e.t.(*testing.T) }

func TestTheBoardShowsARequestAnotherDispatcherReceivedWithinAMoment(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator, dispatcher := e.users[account.Coordinator], e.users[account.Dispatcher]
	first := e.newRequest(coordinator, "East", 1)

	b := e.follow(dispatcher, "/api/v1/live/board", "")
	if b.mode != "snapshot" {
		t.Fatalf("the first sync: %s, want a snapshot", b.mode)
	}
	// The snapshot is as of where the read model stood: the request just
	// received is in it or in a delta right after.
	b.until("the first request", func() bool { return b.requests[first] != nil })
	start := time.Now()
	second := e.newRequest(coordinator, "West", 2)
	b.until("the second request", func() bool { return b.requests[second] != nil })
	t.Logf("a request received through the API was on another session's board after %s", time.Since(start))
	if got := b.requests[second]["needed"]; got != float64(2) {
		t.Errorf("the board's copy of the request needs %v, want 2", got)
	}
	raw, _ := json.Marshal(b.requests)
	if strings.Contains(string(raw), "Yolanda") || strings.Contains(string(raw), "0142") {
		t.Errorf("the board carries the caller's personal data: %s", raw)
	}
	// Cancelling takes it off the board.
	mustStatus(t, e.do(dispatcher, "POST", "/api/v1/requests/"+second+"/cancel", map[string]string{"reason": "duplicate call"}),
		http.StatusOK, "cancel")
	b.until("the cancelled request gone", func() bool { return b.requests[second] == nil })
}

func TestAReconnectingBoardReceivesExactlyTheDeltasItMissed(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator, dispatcher := e.users[account.Coordinator], e.users[account.Dispatcher]
	e.newRequest(coordinator, "East", 1) // the board's deltas start somewhere
	b := e.follow(dispatcher, "/api/v1/live/board", "")
	seen := e.newRequest(coordinator, "East", 1)
	b.until("a request", func() bool { return b.requests[seen] != nil })
	b.ws.Close() // the laptop's wifi drops

	missed := []string{e.newRequest(coordinator, "East", 1), e.newRequest(coordinator, "North", 1), e.newRequest(coordinator, "West", 1)}
	mustStatus(t, e.do(dispatcher, "POST", "/api/v1/requests/"+seen+"/cancel", map[string]string{"reason": "resolved by phone"}),
		http.StatusOK, "cancel")

	// Waiting until a fresh board shows all of it, so the deltas have
	// been published, then resuming from where the first one stopped.
	fresh := e.follow(dispatcher, "/api/v1/live/board", "")
	fresh.until("every change", func() bool { return fresh.requests[missed[2]] != nil && fresh.requests[seen] == nil })
	again := e.resume(b, dispatcher, "/api/v1/live/board")
	if again.mode != "resumed" || again.deltas == 0 {
		t.Fatalf("reconnecting after %s: %s with %d deltas, want resumed with the missed deltas", b.last, again.mode, again.deltas)
	}
	// The missed deltas, applied on top of what it had, show what a fresh
	// snapshot shows. A snapshot reflects the read models, which may be
	// a round ahead of the deltas published so far: the last missed ones
	// may come right after the resume, as deltas.
	again.until("the missed changes", func() bool {
		return again.requests[missed[0]] != nil && again.requests[missed[1]] != nil && again.requests[missed[2]] != nil &&
			again.requests[seen] == nil
	})
	for _, id := range missed {
		if again.requests[id] == nil {
			t.Errorf("after resuming the board lacks %s", id)
		}
	}
	if again.requests[seen] != nil {
		t.Errorf("after resuming the board still shows the cancelled %s", seen)
	}
	got, _ := json.Marshal(again.requests)
	want, _ := json.Marshal(fresh.requests)
	if string(got) != string(want) {
		t.Errorf("after resuming the board holds\n%s\na fresh one\n%s", got, want)
	}
}

func TestAVolunteersLiveViewsCarryNobodyElsesData(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator, dispatcher, vol := e.users[account.Coordinator], e.users[account.Dispatcher], e.users[account.Volunteer]
	other := e.newUser(account.Volunteer)
	for _, u := range []*user{vol, other} {
		mustStatus(t, e.do(coordinator, "POST", "/api/v1/volunteers", map[string]any{"user_id": u.id, "name": "Vol " + u.id.String()[:4],
			"phone": "+1 555 0100", "regions": []string{"East"}, "prior_assignments": 3}), http.StatusCreated, "register")
	}
	start := time.Now().Add(72 * time.Hour).UTC()
	r := e.do(coordinator, "POST", "/api/v1/shifts", map[string]any{"role": "hotline", "start": start, "end": start.Add(4 * time.Hour),
		"region": "East", "place": "Office", "capacity": 1})
	mustStatus(t, r, http.StatusCreated, "schedule")
	var sh struct {
		ShiftID string `json:"shift_id"`
	}
	decode(t, r.body, &sh)
	mustStatus(t, e.do(other, "POST", "/api/v1/shifts/"+sh.ShiftID+"/claims/"+other.id.String(), nil), http.StatusOK, "the other claims")

	if ws, err := e.dialView(vol, "/api/v1/live/board", ""); err == nil {
		ws.Close()
		t.Error("a volunteer opened the dispatch board")
	}
	shifts := e.follow(vol, "/api/v1/live/shifts", "")
	mine := e.follow(vol, "/api/v1/live/mine", "")
	shifts.until("the other volunteer's claim", func() bool {
		return shifts.shifts[sh.ShiftID] != nil && shifts.shifts[sh.ShiftID]["open"] == float64(0)
	})
	// The volunteer joins the waitlist; their own view says so, and the
	// shift board's count changes; neither names the other volunteer.
	mustStatus(t, e.do(vol, "POST", "/api/v1/shifts/"+sh.ShiftID+"/claims/"+vol.id.String(), nil), http.StatusOK, "join the waitlist")
	shifts.until("the waitlist grown", func() bool { return shifts.shifts[sh.ShiftID]["waitlist"] == float64(1) })
	mine.until("their place on the waitlist", func() bool {
		list, _ := mine.mine["shifts"].([]any)
		return len(list) == 1 && list[0].(map[string]any)["waitlist_position"] == float64(1)
	})
	// A dispatcher offers them a request: it appears in their own view.
	req := e.newRequest(dispatcher, "East", 1)
	mustStatus(t, e.do(dispatcher, "POST", "/api/v1/requests/"+req+"/assignments", map[string]any{"volunteer_id": vol.id}), http.StatusCreated, "offer")
	mine.until("the offer", func() bool {
		list, _ := mine.mine["assignments"].([]any)
		return len(list) == 1
	})
	for name, v := range map[string]any{"shift board": shifts.shifts, "own view": mine.mine} {
		raw, _ := json.Marshal(v)
		if strings.Contains(string(raw), other.id.String()) {
			t.Errorf("the volunteer's %s names another volunteer: %s", name, raw)
		}
		if strings.Contains(string(raw), "Yolanda") {
			t.Errorf("the volunteer's %s carries the caller's name before the hour: %s", name, raw)
		}
	}
}

func TestTheBoardHasNoGapWhenATransactionCommitsLate(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator, dispatcher := e.users[account.Coordinator], e.users[account.Dispatcher]
	b := e.follow(dispatcher, "/api/v1/live/board", "")

	// A transaction takes its id, then waits, while later ones commit:
	// their events are held back until it ends, then all arrive in log
	// order. The waiting transaction here writes nothing, which holds the
	// log back exactly as a slow command's would.
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	held := []string{e.newRequest(coordinator, "East", 1), e.newRequest(coordinator, "West", 1)}
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		_ = b.ws.SetReadDeadline(deadline)
		if _, raw, err := b.ws.ReadMessage(); err == nil {
			t.Fatalf("a delta arrived while an older transaction was open: %s", raw)
		}
		break
	}
	b.ws.Close()
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	after := e.resume(b, dispatcher, "/api/v1/live/board")
	after.until("both requests", func() bool { return after.requests[held[0]] != nil && after.requests[held[1]] != nil })
}

func TestALiveViewRefusesAMalformedPosition(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.do(e.users[account.Dispatcher], "GET", "/api/v1/live/board?after=yesterday", nil)
	if r.status != http.StatusBadRequest || r.errorCode() != "invalid_field" || !strings.Contains(r.body, "after") {
		t.Errorf("a malformed after: %d %s", r.status, r.body)
	}
	_ = uuid.Nil
}
