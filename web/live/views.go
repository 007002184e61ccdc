package live

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/eventstore"
)

// A view is a live read model a connection follows: the dispatch board,
// the shift board, a volunteer's own work. Its state reaches the client as
// a snapshot taken at a log position, then as deltas, each covering the
// log from the position of the one before (prev) to its own (position).
// A delta carries the current state of everything those events touched,
// so a client at any position from prev up to (not including) position
// applies it and is at position. See web/LIVE.md for the protocol.

// View says what a connection follows and from where.
type View struct {
	// Key names the view's stream of deltas: connections with the same
	// key receive the same messages, encoded once ("board",
	// "shifts:staff", "mine:<volunteer id>").
	Key string
	// After is the position of the last message the client applied, when
	// it reconnects; nil for a fresh start.
	After *eventstore.Cursor
	// Snapshot reads the view's whole state and the position it reflects
	// at least. It is called when After is nil or older than the deltas
	// the hub keeps. data is the JSON of the snapshot's "data" field.
	Snapshot func(ctx context.Context) (data []byte, at eventstore.Cursor, err error)
}

// Close codes of the views (see the package comment for the others).
const (
	// closeResync asks the client to reconnect with its last position: it
	// fell behind, or its first sync failed.
	closeResync  = 4002
	reasonResync = "resync: reconnect with your last position"
)

const (
	// pendingLimit is how many deltas may arrive for a connection while
	// its first sync runs; more closes it with closeResync.
	pendingLimit = 1024
	// viewRetention is how long a view's deltas are kept once its last
	// connection has gone, for clients that reconnect.
	viewRetention = 2 * time.Minute
	// snapshotTimeout bounds reading a snapshot.
	snapshotTimeout = 10 * time.Second
)

// delta is one published delta of a view.
type delta struct {
	prev, at eventstore.Cursor
	raw      []byte
	pm       *websocket.PreparedMessage
}

// viewState is a view's connections and its recent deltas. The hub's
// mutex guards it.
type viewState struct {
	conns map[*conn]bool
	ring  []*delta // oldest first; each one's prev is the last one's at
	// base is the position the ring starts from (the oldest delta's prev),
	// known once a delta has been published.
	base    eventstore.Cursor
	hasBase bool
	// unwatched is when the last connection left; zero while one is here.
	unwatched time.Time
}

// before tells whether a is earlier in the log than b.
func before(a, b eventstore.Cursor) bool {
	return a.TxID < b.TxID || (a.TxID == b.TxID && a.Position < b.Position)
}

// covers tells whether the deltas after p are all in the ring. A p past
// the last delta is not covered: a position from the future (a restored
// database, a forged value) would otherwise silence every delta up to it.
func (v *viewState) covers(p eventstore.Cursor) bool {
	return v.hasBase && !before(p, v.base) && len(v.ring) > 0 && !before(v.ring[len(v.ring)-1].at, p)
}

// since returns the ring's deltas after p, oldest first.
func (v *viewState) since(p eventstore.Cursor) []*delta {
	for i, d := range v.ring {
		if before(p, d.at) {
			return v.ring[i:]
		}
	}
	return nil
}

// Watching tells whether any connection follows the view key, or did
// within viewRetention: worth publishing deltas for. Views every client
// shares are cheap to publish regardless; per-user views are not.
func (h *Hub) Watching(key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.views[key]
	if v == nil {
		return false
	}
	if len(v.conns) == 0 && time.Since(v.unwatched) >= viewRetention {
		// Forgotten in the same step as the answer: the deltas the caller
		// now skips can never be resumed from.
		delete(h.views, key)
		return false
	}
	return true
}

// PublishDelta sends a view's delta, the JSON message msg covering the log
// after prev up to at, to the view's connections, and keeps the view's
// last keep deltas for clients that reconnect. msg is encoded once for all
// of them. Deltas of a
// view must be published in order, each one's prev the last one's at.
// A connection whose queue is full is closed with closeResync.
func (h *Hub) PublishDelta(key string, prev, at eventstore.Cursor, msg []byte, keep int) {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, msg)
	if err != nil {
		h.logger.Error("prepare message", zap.Error(err))
		return
	}
	d := &delta{prev: prev, at: at, raw: msg, pm: pm}
	var slow []*conn
	h.mu.Lock()
	v := h.views[key]
	if v == nil {
		v = &viewState{conns: map[*conn]bool{}, unwatched: time.Now()}
		h.views[key] = v
	}
	if !v.hasBase {
		v.base, v.hasBase = prev, true
	}
	v.ring = append(v.ring, d)
	if keep < 1 {
		keep = 1
	}
	if len(v.ring) > keep {
		v.ring = append(v.ring[:0:0], v.ring[len(v.ring)-keep:]...)
		v.base = v.ring[0].prev
	}
	for c := range v.conns {
		if !c.syncing && !before(c.floor, at) {
			continue // the client's first sync already covers it
		}
		if c.syncing {
			if len(c.pending) >= pendingLimit {
				slow = append(slow, c)
				continue
			}
			c.pending = append(c.pending, d)
			continue
		}
		select {
		case c.send <- outgoing{pm: pm, size: len(msg)}:
			c.floor = at
		default:
			slow = append(slow, c)
		}
	}
	for _, c := range slow {
		h.forget(c)
	}
	h.dropUnwatched(time.Now())
	h.mu.Unlock()
	for _, c := range slow {
		c.end(closeResync, reasonResync)
	}
	if len(slow) > 0 {
		h.logger.Debug("connections closed", zap.String("reason", "send_queue_full"), zap.Int("closed", len(slow)))
	}
}

// Resync closes with 4002 every connection following view key and forgets
// its deltas: its clients reconnect and start from a snapshot. For a view
// whose delta could not be computed.
func (h *Hub) Resync(key string) {
	h.mu.Lock()
	v := h.views[key]
	delete(h.views, key)
	var ended []*conn
	if v != nil {
		for c := range v.conns {
			delete(h.conns, c)
			ended = append(ended, c)
		}
	}
	h.mu.Unlock()
	for _, c := range ended {
		c.end(closeResync, reasonResync)
	}
}

// dropUnwatched forgets the views nobody has followed for viewRetention.
// The caller holds h.mu.
func (h *Hub) dropUnwatched(now time.Time) {
	for key, v := range h.views {
		if len(v.conns) == 0 && now.Sub(v.unwatched) > viewRetention {
			delete(h.views, key)
		}
	}
}

// forget removes c from the connections that receive messages and from
// its view. The caller holds h.mu.
func (h *Hub) forget(c *conn) {
	delete(h.conns, c)
	if c.view == "" {
		return
	}
	if v := h.views[c.view]; v != nil {
		delete(v.conns, c)
		if len(v.conns) == 0 {
			v.unwatched = time.Now()
		}
	}
}

// ServeView upgrades r to a websocket connection belonging to c that
// follows view: after the hello message the client receives the view's
// state — the deltas it missed since view.After if the hub still has them,
// a snapshot otherwise — then every delta as it is published, then a
// "synced" message saying which. The caller must have authenticated c.
func (h *Hub) ServeView(w http.ResponseWriter, r *http.Request, c Client, view View) {
	cn, ok := h.open(w, r, c, view.Key)
	if !ok {
		return
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.syncView(cn, view)
	}()
}

// syncMsg tells the client its view is in sync, and how it got there.
type syncMsg struct {
	Type     string `json:"type"`
	View     string `json:"view"`
	Position string `json:"position"`
	// Mode is "resumed" (the missed deltas were sent) or "snapshot".
	Mode string `json:"mode"`
}

// syncView brings a new connection's view up to date and makes it live.
func (h *Hub) syncView(c *conn, view View) {
	h.mu.Lock()
	v := h.views[c.view]
	if view.After != nil && v != nil && v.covers(*view.After) {
		missed := v.since(*view.After)
		at := *view.After
		if len(missed) > 0 {
			at = missed[len(missed)-1].at
		}
		h.goLive(c, nil, missed, syncMsg{Type: "synced", View: c.view, Position: at.String(), Mode: "resumed"}, at)
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), snapshotTimeout)
	data, at, err := view.Snapshot(ctx)
	cancel()
	if err != nil {
		h.logger.Warn("read a view's snapshot", zap.String("view", viewKind(c.view)), zap.Error(err))
		h.mu.Lock()
		h.forget(c)
		h.mu.Unlock()
		c.end(closeResync, reasonResync)
		return
	}
	snapshot, err := json.Marshal(struct {
		Type     string          `json:"type"`
		View     string          `json:"view"`
		Position string          `json:"position"`
		Data     json.RawMessage `json:"data"`
	}{"snapshot", c.view, at.String(), data})
	if err != nil {
		h.logger.Error("encode a snapshot", zap.Error(err))
		c.end(websocket.CloseInternalServerErr, "")
		return
	}
	h.mu.Lock()
	var after []*delta
	for _, d := range c.pending {
		if before(at, d.at) {
			after = append(after, d)
		}
	}
	if len(after) > 0 {
		at = after[len(after)-1].at
	}
	h.goLive(c, snapshot, after, syncMsg{Type: "synced", View: c.view, Position: at.String(), Mode: "snapshot"}, at)
	h.mu.Unlock()
}

// goLive queues a connection's first sync — a snapshot if any, the deltas
// after it in one "deltas" message, then done — and lets published deltas
// reach it directly from now on. The caller holds h.mu, so no delta is
// published in between.
func (h *Hub) goLive(c *conn, snapshot []byte, missed []*delta, done syncMsg, at eventstore.Cursor) {
	// Deltas up to at are covered: later ones that do not reach past it
	// (a feed behind the read model the snapshot came from) are not sent.
	c.syncing, c.pending, c.floor = false, nil, at
	if !h.conns[c] {
		return // closed meanwhile
	}
	var msgs [][]byte
	if snapshot != nil {
		msgs = append(msgs, snapshot)
	}
	if len(missed) > 0 {
		raws := make([][]byte, len(missed))
		for i, d := range missed {
			raws[i] = d.raw
		}
		msgs = append(msgs, append(append([]byte(`{"type":"deltas","view":`+jsonString(c.view)+`,"deltas":[`),
			bytes.Join(raws, []byte(","))...), "]}"...))
	}
	b, _ := json.Marshal(done) // a struct of strings and numbers
	msgs = append(msgs, b)
	for _, m := range msgs {
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, m)
		if err == nil {
			select {
			case c.send <- outgoing{pm: pm, size: len(m)}:
				continue
			default:
			}
		}
		h.forget(c)
		c.end(closeResync, reasonResync)
		return
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// viewKind is a view key without the user it belongs to, for logs.
func viewKind(key string) string {
	if i := bytes.IndexByte([]byte(key), ':'); i >= 0 {
		return key[:i]
	}
	return key
}
