package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// livePaths are the live endpoints a client may open.
var livePaths = map[string]string{
	"board":  "/api/v1/live/board",  // the dispatch board view
	"live":   "/api/v1/live",        // the session channel alone: hello, close codes
	"shifts": "/api/v1/live/shifts", // the shift board, as anyone signed in sees it
	"mine":   "/api/v1/live/mine",   // a volunteer's own assignments and shifts
}

// cursor is a position in the log, "<txid>:<position>" (web/LIVE.md).
type cursor struct {
	tx  uint64
	pos int64
}

func (c cursor) String() string {
	return strconv.FormatUint(c.tx, 10) + ":" + strconv.FormatInt(c.pos, 10)
}

// parseCursor reads a position without allocating: every client reads
// two per delta.
func parseCursor(b []byte) (cursor, bool) {
	i := bytes.IndexByte(b, ':')
	if i <= 0 || i == len(b)-1 {
		return cursor{}, false
	}
	tx, ok1 := digits(b[:i])
	pos, ok2 := digits(b[i+1:])
	return cursor{tx: tx, pos: int64(pos)}, ok1 && ok2 && pos < 1<<63
}

func digits(b []byte) (uint64, bool) {
	var n uint64
	for _, c := range b {
		d := uint64(c - '0')
		if c < '0' || c > '9' || n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, len(b) > 0
}

// before tells whether a is earlier in the log than b.
func before(a, b cursor) bool { return a.tx < b.tx || (a.tx == b.tx && a.pos < b.pos) }

// verdict is what LIVE.md's rule makes of a delta.
type verdict int

const (
	apply     verdict = iota
	duplicate         // position <= last: ignore it
	gap               // prev > last: close and reconnect with ?after=last
)

// judge applies the rule of web/LIVE.md ("Applying messages") to a delta
// covering prev..at, for a client at last (has is false before any
// snapshot or delta).
func judge(last cursor, has bool, prev, at cursor) verdict {
	switch {
	case !has:
		return apply
	case !before(last, at):
		return duplicate
	case before(last, prev):
		return gap
	}
	return apply
}

// liveStats are what every client of a run counts together.
type liveStats struct {
	gaps, duplicates, reconnects, resnapshots atomic.Int64
	// drops are the connections the load itself cut (drop), which
	// reconnect like any other but are not errors.
	drops atomic.Int64
}

var (
	errGap        = errors.New("gap in the deltas")
	errBadMessage = errors.New("a message that does not follow web/LIVE.md")
)

// liveClient is one websocket client of a live endpoint, like a browser
// tab: it applies the snapshot and deltas as LIVE.md says, and reconnects
// with ?after=last, with backoff, when the connection ends.
type liveClient struct {
	id    int
	h     *harness
	path  string
	view  bool
	stats *liveStats
	// onDelta receives every delta the client applies, with the time it
	// was read. It runs on the client's reader goroutine.
	onDelta func(client int, position, raw []byte, t int64)
	// onPong receives the round trip of a ping sent at sent.
	onPong func(sent, rtt int64)
	// onSynced receives every synced message: whether the server resumed
	// from ?after= (mode "resumed") rather than sending a snapshot, and
	// when it was read. It runs on the client's reader goroutine.
	onSynced func(client int, resumed bool, t int64)
	// onDial receives the time of every dial, before the handshake.
	onDial func(client int, t int64)
	// freeRedial lets the client reconnect without waiting for the
	// handshake bound (as phones do not take turns): only its first
	// connection waits.
	freeRedial bool
	// cookie is the session the client connects with; the harness's when
	// empty.
	cookie string
	// dropped is set by drop, so the connection's end is not an error.
	dropped atomic.Bool
	// sinceSnapshot counts the deltas applied since the last snapshot.
	sinceSnapshot atomic.Int64

	ws        atomic.Pointer[websocket.Conn]
	synced    atomic.Bool
	firstSync chan struct{}
	syncOnce  sync.Once
	stop      chan struct{}
	stopped   chan struct{}

	// Only the reader goroutine touches these.
	last       cursor
	hasLast    bool
	everSynced bool
}

func (h *harness) newClient(id int, endpoint string, stats *liveStats) *liveClient {
	return &liveClient{id: id, h: h, path: livePaths[endpoint], view: endpoint != "live", stats: stats,
		firstSync: make(chan struct{}), stop: make(chan struct{}), stopped: make(chan struct{})}
}

// dialer opens the sockets. Small buffers: a delta is about a kilobyte
// and the client writes only control frames.
var dialer = websocket.Dialer{
	NetDialContext:   (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	HandshakeTimeout: 15 * time.Second,
	ReadBufferSize:   2048,
	WriteBufferSize:  256,
}

func (c *liveClient) stopping() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// run connects and reconnects until close. sem bounds the handshakes and
// first syncs in flight across clients.
func (c *liveClient) run(sem chan struct{}) {
	defer close(c.stopped)
	backoff := time.Second
	for !c.stopping() {
		held := !(c.freeRedial && c.everSynced)
		if held {
			select {
			case sem <- struct{}{}:
			case <-c.stop:
				return
			}
		}
		release := func() {
			if held {
				held = false
				<-sem
			}
		}
		if c.onDial != nil {
			c.onDial(c.id, c.h.now())
		}
		ws, err := c.dial()
		if err != nil {
			release()
			c.wait(&backoff)
			continue
		}
		c.ws.Store(ws)
		if c.stopping() {
			c.sayGoodbye(ws)
		}
		err = c.read(ws, release)
		release()
		c.ws.Store(nil)
		c.synced.Store(false)
		_ = ws.Close()
		if c.stopping() {
			return
		}
		if c.dropped.Swap(false) {
			c.stats.drops.Add(1)
		} else {
			c.stats.reconnects.Add(1)
			c.h.errs.add(kindOf(err, nil))
		}
		if c.everSynced {
			backoff = time.Second
		}
		c.wait(&backoff)
	}
}

// wait sleeps a jittered backoff (LIVE.md: 1 s doubling to 30 s).
func (c *liveClient) wait(backoff *time.Duration) {
	d := *backoff/2 + rand.N(*backoff)
	*backoff = min(*backoff*2, 30*time.Second)
	select {
	case <-time.After(d):
	case <-c.stop:
	}
}

func (c *liveClient) dial() (*websocket.Conn, error) {
	scheme := "ws"
	if c.h.cfg.base.Scheme == "https" {
		scheme = "wss"
	}
	u := scheme + "://" + c.h.cfg.base.Host + c.path
	if c.view && c.hasLast {
		u += "?after=" + c.last.String()
	}
	cookie := c.cookie
	if cookie == "" {
		cookie = c.h.cookie
	}
	hdr := http.Header{"Cookie": {cookie}, "Origin": {c.h.origin}}
	ws, resp, err := dialer.DialContext(context.Background(), u, hdr)
	if err != nil {
		c.h.errs.add(kindOf(err, resp))
		if resp != nil {
			_ = resp.Body.Close()
		}
		return nil, err
	}
	return ws, nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// read handles messages until the connection fails or the client stops;
// release is called once the first sync is done.
func (c *liveClient) read(ws *websocket.Conn, release func()) error {
	ws.SetPongHandler(func(s string) error {
		if len(s) == 8 && c.onPong != nil {
			sent := int64(binaryUint64([]byte(s)))
			c.onPong(sent, c.h.now()-sent)
		}
		return nil
	})
	for {
		_, r, err := ws.NextReader()
		if err != nil {
			return err
		}
		buf := bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		_, err = buf.ReadFrom(r)
		if err == nil {
			err = c.handle(buf.Bytes(), c.h.now(), release)
		}
		if buf.Cap() <= 64<<10 { // not the odd big snapshot
			bufPool.Put(buf)
		}
		if err != nil {
			if errors.Is(err, errGap) {
				c.sayGoodbye(ws)
			}
			return err
		}
	}
}

var deltaPrefix = []byte(`{"type":"delta",`)

// envelope is any server message, decoded the slow way.
type envelope struct {
	Type     string            `json:"type"`
	Prev     string            `json:"prev"`
	Position string            `json:"position"`
	Mode     string            `json:"mode"`
	Deltas   []json.RawMessage `json:"deltas"`
}

func (c *liveClient) handle(msg []byte, t int64, release func()) error {
	if bytes.HasPrefix(msg, deltaPrefix) {
		if prev, pos, ok := deltaHeader(msg); ok {
			return c.delta(prev, pos, msg, t)
		}
	}
	var e envelope
	if err := json.Unmarshal(msg, &e); err != nil {
		return fmt.Errorf("%w: %v", errBadMessage, err)
	}
	switch e.Type {
	case "hello":
		if !c.view {
			c.markSynced(release)
		}
	case "snapshot":
		at, ok := parseCursor([]byte(e.Position))
		if !ok {
			return fmt.Errorf("%w: snapshot position %q", errBadMessage, e.Position)
		}
		if c.everSynced {
			c.stats.resnapshots.Add(1)
		}
		c.last, c.hasLast = at, true
		c.sinceSnapshot.Store(0)
	case "deltas":
		for _, raw := range e.Deltas {
			prev, pos, ok := deltaHeader(raw)
			if !ok {
				var d envelope
				if err := json.Unmarshal(raw, &d); err != nil {
					return fmt.Errorf("%w: %v", errBadMessage, err)
				}
				prev, pos = []byte(d.Prev), []byte(d.Position)
			}
			if err := c.delta(prev, pos, raw, t); err != nil {
				return err
			}
		}
	case "delta":
		return c.delta([]byte(e.Prev), []byte(e.Position), msg, t)
	case "synced":
		if c.onSynced != nil {
			c.onSynced(c.id, e.Mode == "resumed", t)
		}
		c.markSynced(release)
	}
	return nil
}

func (c *liveClient) markSynced(release func()) {
	c.everSynced = true
	c.synced.Store(true)
	c.syncOnce.Do(func() { close(c.firstSync) })
	release()
}

// delta applies one delta by LIVE.md's rule.
func (c *liveClient) delta(prev, pos, raw []byte, t int64) error {
	p, ok1 := parseCursor(prev)
	at, ok2 := parseCursor(pos)
	if !ok1 || !ok2 {
		return fmt.Errorf("%w: delta positions %q %q", errBadMessage, prev, pos)
	}
	switch judge(c.last, c.hasLast, p, at) {
	case duplicate:
		c.stats.duplicates.Add(1)
		c.h.errs.add("duplicate delta (ignored by the rule)")
		return nil
	case gap:
		c.stats.gaps.Add(1)
		return errGap
	}
	c.last, c.hasLast = at, true
	c.sinceSnapshot.Add(1)
	if c.onDelta != nil {
		c.onDelta(c.id, pos, raw, t)
	}
	return nil
}

// deltaHeader finds prev and position near the start of a delta, as the
// server writes them, without decoding the rest.
func deltaHeader(msg []byte) (prev, pos []byte, ok bool) {
	head := msg[:min(len(msg), 256)]
	prev, ok1 := stringField(head, `"prev":"`)
	pos, ok2 := stringField(head, `"position":"`)
	return prev, pos, ok1 && ok2
}

func stringField(b []byte, key string) ([]byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil, false
	}
	rest := b[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil, false
	}
	return rest[:j], true
}

// ping sends a ping carrying the time; the pong handler reports the round
// trip. It reports false when the client is not connected and in sync.
func (c *liveClient) ping() bool {
	ws := c.ws.Load()
	if ws == nil || !c.synced.Load() {
		return false
	}
	var b [8]byte
	putUint64(b[:], uint64(c.h.now()))
	return ws.WriteControl(websocket.PingMessage, b[:], time.Now().Add(time.Second)) == nil
}

// drop cuts the connection without a close frame, as a phone losing
// its network does; the client reconnects by LIVE.md's rule (after a
// jittered second, with ?after=last). It reports false when the client
// was not connected.
func (c *liveClient) drop() bool {
	ws := c.ws.Load()
	if ws == nil {
		return false
	}
	c.dropped.Store(true)
	_ = ws.UnderlyingConn().Close()
	return true
}

// close ends the client: a close frame, so the server closes the TCP
// connection first and keeps the TIME_WAIT (not our local port), then
// the socket once the server has answered or after a while.
func (c *liveClient) close() {
	close(c.stop)
	if ws := c.ws.Load(); ws != nil {
		c.sayGoodbye(ws)
	}
	select {
	case <-c.stopped:
	case <-time.After(5 * time.Second):
		if ws := c.ws.Load(); ws != nil {
			_ = ws.Close()
		}
		<-c.stopped
	}
}

func (c *liveClient) sayGoodbye(ws *websocket.Conn) {
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

func binaryUint64(b []byte) uint64 {
	var v uint64
	for i := range 8 {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// openClients starts n clients of endpoint, dialConcurrency at a time,
// and waits until every one has had its first sync, or timeout.
func (h *harness) openClients(ctx context.Context, n int, endpoint string, stats *liveStats,
	setup func(*liveClient)) ([]*liveClient, error) {
	sem := make(chan struct{}, h.cfg.DialConcurrency)
	clients := make([]*liveClient, n)
	began := time.Now()
	for i := range clients {
		c := h.newClient(i, endpoint, stats)
		if setup != nil {
			setup(c)
		}
		clients[i] = c
		go c.run(sem)
	}
	deadline := time.After(max(2*time.Minute, time.Duration(n)*20*time.Millisecond))
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for i, c := range clients {
		for waiting := true; waiting; {
			select {
			case <-c.firstSync:
				waiting = false
			case <-tick.C:
				h.logf("%s: %d of %d clients in sync", endpoint, i, n)
			case <-ctx.Done():
				return clients, ctx.Err()
			case <-deadline:
				return clients, fmt.Errorf("only %d of %d %s clients in sync after %s", i, n, endpoint, time.Since(began).Round(time.Second))
			}
		}
	}
	h.logf("%s: %d clients in sync in %s", endpoint, n, time.Since(began).Round(10*time.Millisecond))
	return clients, nil
}

// closeClients closes clients, many at a time.
func closeClients(clients []*liveClient) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range clients {
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.close()
		}()
	}
	wg.Wait()
}
