package live_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/web/live"
)

// counter is a view for these tests: its state is the list of deltas
// published so far, and a snapshot returns it with the position of the
// last one.
type counter struct {
	hub *live.Hub
	mu  sync.Mutex
	at  eventstore.Cursor
	n   int
	// block, when set, holds snapshots until it is closed.
	block chan struct{}
}

func pos(n int) eventstore.Cursor { return eventstore.Cursor{TxID: 1000, Position: int64(n)} }

// publish publishes the next delta, numbered from 1.
func (c *counter) publish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.at
	c.n++
	c.at = pos(c.n)
	c.hub.PublishDelta("count", prev, c.at, fmt.Appendf(nil, `{"type":"delta","view":"count","prev":%q,"position":%q,"n":%d}`, prev, c.at, c.n), 1024)
}

func (c *counter) snapshot(context.Context) ([]byte, eventstore.Cursor, error) {
	if c.block != nil {
		<-c.block
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Appendf(nil, `{"n":%d}`, c.n), c.at, nil
}

// newViewHub serves the view "count" of a counter; ?after= resumes.
func newViewHub(tb testing.TB, opts live.Options) (*counter, string) {
	tb.Helper()
	opts.Logger = zaptest.NewLogger(tb)
	hub := live.New(opts)
	view := &counter{hub: hub}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := live.View{Key: "count", Snapshot: view.snapshot}
		if a := r.URL.Query().Get("after"); a != "" {
			c, err := eventstore.ParseCursor(a)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			v.After = &c
		}
		hub.ServeView(w, r, live.Client{SessionID: uuid.New(), UserID: uuid.New(), Role: "dispatcher"}, v)
	}))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = hub.Shutdown(ctx)
		srv.Close()
	})
	return view, "ws" + strings.TrimPrefix(srv.URL, "http")
}

// follower is a client that applies the view's messages by the protocol's
// rules and fails the test on a gap or a duplicate.
type follower struct {
	tb   testing.TB
	ws   *websocket.Conn
	last eventstore.Cursor
	seen []int // the deltas applied, by number
	mode string
}

func follow(tb testing.TB, addr, after string) *follower {
	tb.Helper()
	u := addr
	if after != "" {
		u += "?after=" + after
	}
	ws, _, err := dialer.Dial(u, nil)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	tb.Cleanup(func() { ws.Close() })
	f := &follower{tb: tb, ws: ws}
	if msg := f.next(); msg["type"] != "hello" {
		tb.Fatalf("first message %v, want hello", msg)
	}
	return f
}

func (f *follower) next() map[string]any {
	f.tb.Helper()
	var msg map[string]any
	if err := json.Unmarshal(readText(f.tb, f.ws), &msg); err != nil {
		f.tb.Fatal(err)
	}
	return msg
}

func cursorOf(tb testing.TB, v any) eventstore.Cursor {
	tb.Helper()
	c, err := eventstore.ParseCursor(fmt.Sprint(v))
	if err != nil {
		tb.Fatalf("position %v: %v", v, err)
	}
	return c
}

func earlier(a, b eventstore.Cursor) bool {
	return a.TxID < b.TxID || (a.TxID == b.TxID && a.Position < b.Position)
}

// apply applies one delta by the rules of web/LIVE.md.
func (f *follower) apply(d map[string]any) {
	f.tb.Helper()
	prev, at := cursorOf(f.tb, d["prev"]), cursorOf(f.tb, d["position"])
	switch {
	case earlier(f.last, prev):
		f.tb.Fatalf("gap: at %s, got a delta from %s", f.last, prev)
	case !earlier(f.last, at):
		f.tb.Fatalf("duplicate: at %s, got a delta to %s again", f.last, at)
	}
	f.last = at
	f.seen = append(f.seen, int(d["n"].(float64)))
}

// sync reads the first sync, up to "synced".
func (f *follower) sync() {
	f.tb.Helper()
	for {
		msg := f.next()
		switch msg["type"] {
		case "snapshot":
			f.last = cursorOf(f.tb, msg["position"])
			f.seen = nil
			if n := int(msg["data"].(map[string]any)["n"].(float64)); n > 0 {
				for i := 1; i <= n; i++ {
					f.seen = append(f.seen, i)
				}
			}
		case "deltas":
			for _, d := range msg["deltas"].([]any) {
				f.apply(d.(map[string]any))
			}
		case "delta":
			f.apply(msg)
		case "synced":
			f.mode = msg["mode"].(string)
			if got := cursorOf(f.tb, msg["position"]); got != f.last {
				f.tb.Fatalf("synced at %s, but the messages brought the client to %s", got, f.last)
			}
			return
		default:
			f.tb.Fatalf("unexpected message during sync: %v", msg)
		}
	}
}

// until applies deltas until delta n has been applied.
func (f *follower) until(n int) {
	f.tb.Helper()
	for len(f.seen) == 0 || f.seen[len(f.seen)-1] < n {
		msg := f.next()
		if msg["type"] != "delta" {
			f.tb.Fatalf("got %v, want a delta", msg)
		}
		f.apply(msg)
	}
}

func wantSeen(tb testing.TB, got []int, from, to int) {
	tb.Helper()
	if len(got) != to-from+1 {
		tb.Fatalf("applied deltas %v, want %d to %d", got, from, to)
	}
	for i, n := range got {
		if n != from+i {
			tb.Fatalf("applied deltas %v, want %d to %d in order", got, from, to)
		}
	}
}

func TestAViewStartsWithASnapshotThenDeltasInOrder(t *testing.T) {
	view, addr := newViewHub(t, live.Options{})
	for range 3 {
		view.publish()
	}
	f := follow(t, addr, "")
	f.sync()
	if f.mode != "snapshot" || f.last != pos(3) {
		t.Fatalf("first sync: %s at %s, want a snapshot at %s", f.mode, f.last, pos(3))
	}
	for range 5 {
		view.publish()
	}
	f.until(8)
	wantSeen(t, f.seen, 1, 8)
}

func TestDeltasPublishedWhileTheSnapshotIsReadFollowItWithoutGapOrDuplicate(t *testing.T) {
	view, addr := newViewHub(t, live.Options{})
	view.publish()
	view.block = make(chan struct{})
	f := follow(t, addr, "")
	// The connection is registered before its snapshot is read: these
	// deltas are held for it, and those the snapshot already holds are
	// dropped.
	view.publish()
	view.publish()
	close(view.block)
	f.sync()
	view.publish()
	f.until(4)
	wantSeen(t, f.seen, 1, 4)
}

func TestAClientThatReconnectsReceivesExactlyTheDeltasItMissed(t *testing.T) {
	view, addr := newViewHub(t, live.Options{})
	f := follow(t, addr, "")
	f.sync()
	for range 4 {
		view.publish()
	}
	f.until(4)
	f.ws.Close() // the phone loses its signal
	for range 6 {
		view.publish() // 5..10, missed
	}
	again := follow(t, addr, f.last.String())
	again.last = f.last
	again.sync()
	if again.mode != "resumed" {
		t.Fatalf("reconnecting at %s: %s, want resumed", f.last, again.mode)
	}
	wantSeen(t, again.seen, 5, 10)
	view.publish()
	again.until(11)
	wantSeen(t, again.seen, 5, 11)
}

func TestAClientTooFarBehindGetsASnapshot(t *testing.T) {
	view, addr := newViewHub(t, live.Options{})
	for range 1100 { // more than the hub keeps
		view.publish()
	}
	f := follow(t, addr, pos(3).String())
	f.last = pos(3)
	f.sync()
	if f.mode != "snapshot" || f.last != pos(1100) {
		t.Fatalf("reconnecting from far behind: %s at %s, want a snapshot at %s", f.mode, f.last, pos(1100))
	}
}

func TestAViewClientThatStopsReadingIsDroppedWhileFiftyOthersReceiveEveryDelta(t *testing.T) {
	view, addr := newViewHub(t, live.Options{SendQueue: 8})
	// The slow client's socket takes little before the server must wait,
	// so the test needs megabytes, not tens of megabytes, to fill it.
	smallWindow := websocket.Dialer{HandshakeTimeout: wait, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var err error
			_ = rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			return err
		}}
		return d.DialContext(ctx, network, addr)
	}}
	slowWS, _, err := smallWindow.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slowWS.Close()
	slow := &follower{tb: t, ws: slowWS}
	slow.next() // hello
	slow.sync()
	others := make([]*follower, 50)
	for i := range others {
		others[i] = follow(t, addr, "")
		others[i].sync()
	}
	// The slow client reads nothing more; its socket buffers fill, then
	// its queue, and the hub drops it. The others read every delta as it
	// comes, as a dispatcher's screen does.
	pad := `,"pad":"` + strings.Repeat("x", 64<<10) + `"}`
	received := make([]chan int, len(others))
	for i, f := range others {
		received[i] = make(chan int, 1)
		go func() {
			defer close(received[i])
			for {
				_ = f.ws.SetReadDeadline(time.Now().Add(wait))
				_, r, err := f.ws.NextReader()
				if err != nil {
					return
				}
				// The number comes first; the padding is skipped unparsed.
				head := make([]byte, 16)
				if _, err := io.ReadFull(r, head); err != nil {
					return
				}
				var n int
				if _, err := fmt.Sscanf(string(head), `{"n":%d,`, &n); err != nil {
					return
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					return
				}
				received[i] <- n
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	i := 0
	for view.hub.Count() == 51 {
		if time.Now().After(deadline) {
			t.Fatalf("the client that does not read is still connected after %d deltas", i)
		}
		i++
		view.mu.Lock()
		prev := view.at
		view.n, view.at = i, pos(i)
		view.mu.Unlock()
		view.hub.PublishDelta("count", prev, pos(i), append(fmt.Appendf(nil, `{"n":%06d,"type":"delta","view":"count","prev":%q,"position":%q`, i, prev, pos(i)), pad...), 1024)
		for j, ch := range received {
			if got, ok := <-ch; !ok || got != i {
				t.Fatalf("client %d of the 50 got delta %d (connection open: %v), want %d", j, got, ok, i)
			}
		}
	}
	t.Logf("dropped after %d deltas of 64 KiB", i)
	if i < 10 {
		t.Fatalf("the slow client was dropped after %d deltas: the test did not fill its buffers", i)
	}
	// It was dropped: with 4002 when its queue filled, or with no close
	// frame at all when its socket stayed full past the write timeout.
	// Either way, it reconnects with its last position.
	_ = slow.ws.SetReadDeadline(time.Now().Add(wait))
	for {
		if _, _, err := slow.ws.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != 4002 && ce.Code != websocket.CloseAbnormalClosure {
				t.Errorf("the slow client was closed with %d %q, want 4002 or a dropped connection", ce.Code, ce.Text)
			}
			break
		}
	}
}

func TestAPositionFromTheFutureGetsASnapshotNotSilence(t *testing.T) {
	view, addr := newViewHub(t, live.Options{})
	for range 3 {
		view.publish()
	}
	// A restored database, or a forged value: resuming "after" a position
	// the view never reached would otherwise skip every delta up to it.
	f := follow(t, addr, pos(500).String())
	f.last = pos(500)
	f.sync()
	if f.mode != "snapshot" || f.last != pos(3) {
		t.Fatalf("resuming from the future: %s at %s, want a snapshot at %s", f.mode, f.last, pos(3))
	}
	view.publish()
	f.until(4)
}

func TestResyncSendsAViewsClientsBackToASnapshot(t *testing.T) {
	view, addr := newViewHub(t, live.Options{})
	view.publish()
	f := follow(t, addr, "")
	f.sync()
	view.hub.Resync("count")
	_ = f.ws.SetReadDeadline(time.Now().Add(wait))
	_, _, err := f.ws.ReadMessage()
	checkClose(t, err, 4002, "resync: reconnect with your last position")
	again := follow(t, addr, f.last.String())
	again.last = f.last
	again.sync()
	if again.mode != "snapshot" {
		t.Fatalf("after a resync: %s, want a snapshot (the view's deltas were forgotten)", again.mode)
	}
}
