// Package live is the websocket hub behind Presente's live channel: it
// holds every open connection, pushes server messages to the ones a
// message is meant for, and closes connections whose session has ended.
//
// # Protocol
//
// The web server authenticates the session cookie and then hands the
// request to [Hub.Serve], which upgrades it. A handshake whose Origin
// header is not in the allow-list (PRESENTE_ALLOWED_ORIGINS) is refused
// with 403 and a JSON body
//
//	{"error":{"code":"origin_not_allowed","message":"..."}}
//
// and a handshake while the server shuts down with 503 and code
// "unavailable".
//
// The channel carries JSON text messages from server to client. The first
// is always
//
//	{"type":"hello","user_id":"<uuid>","role":"<role>"}
//
// Messages the client sends are read and discarded for now; one longer than
// the read limit (4 KiB unless configured) closes the connection with 1009
// (message too big). The server pings every 25 seconds; a client that stops
// answering is disconnected without a close frame.
//
// Close codes the server sends:
//
//   - 4001 "session ended: sign in again": the session was revoked, its
//     user deactivated, or it expired (revalidation failed). Reconnecting
//     with the same cookie will not work; the client must sign in again.
//   - 1001 going away: the server is shutting down. Reconnect with backoff.
//   - 4002 "resync: reconnect with your last position": the client fell
//     so far behind that its send queue filled (messages were lost), or
//     its view's first sync failed. A view's client reconnects with the
//     position of the last message it applied and receives what it missed
//     (see web/LIVE.md); others reload what they show.
//
// Nothing in this package logs message contents, session or user ids, or
// client addresses; it logs only close reasons and connection counts.
package live

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// Close codes and reasons the server sends (see the package comment).
const (
	closeSessionEnded = 4001
	reasonSessionEnd  = "session ended: sign in again"
	reasonShutdown    = "server shutting down"
)

// Client is who a connection belongs to. The web server fills it in from
// the session it has authenticated before calling [Hub.Serve].
type Client struct {
	SessionID, UserID uuid.UUID
	// Role decides which published messages the connection receives.
	Role string
	// Since is when the session was confirmed: a CloseSessions or
	// CloseUser after it, which the connection was not yet registered to
	// receive, closes it on arrival. Zero means "just now".
	Since time.Time
}

// Options configures a [Hub]. Zero values take the defaults given.
type Options struct {
	// Logger receives debug lines about connections; none when nil.
	Logger *zap.Logger
	// AllowedOrigins are the exact origins ("https://presente.example.org",
	// "http://localhost:8080") whose pages may open the live channel.
	// Check them with [ValidateOrigins] when parsing the configuration; New
	// ignores, with a warning, entries that are not origins.
	AllowedOrigins []string
	// WriteTimeout bounds every write to a connection; 1s.
	WriteTimeout time.Duration
	// PingInterval is how often the server pings; 25s. A connection from
	// which no pong has arrived for PingInterval and a third is closed.
	PingInterval time.Duration
	// SendQueue is how many messages may wait for one connection; 64. A
	// connection whose queue is full is closed rather than waited for.
	SendQueue int
	// ReadLimit is the largest message a client may send, in bytes; 4 KiB.
	ReadLimit int64
	// Revalidate reports whether a session is still valid, and its
	// account's role now: an error if it has expired, been revoked or
	// cannot be confirmed; role "" when the role is not known. The hub
	// calls it for every connected session each RevalidateEvery and closes
	// with 4001 that session's connections on any error (failing closed),
	// and those opened under another role than the one reported: a role
	// changed on another server reaches this one's connections within
	// RevalidateEvery. Nil disables revalidation.
	Revalidate func(ctx context.Context, sessionID uuid.UUID) (role string, err error)
	// RevalidateEvery is how often sessions are revalidated; 1 minute.
	RevalidateEvery time.Duration
}

// revalidateTimeout bounds one Revalidate call, so a stuck database cannot
// stall the checks of every other session.
const revalidateTimeout = 5 * time.Second

// Hub holds the live channel's connections. Its methods are safe for
// concurrent use.
type Hub struct {
	logger          *zap.Logger
	origins         map[string]bool // keys from originKey
	upgrader        websocket.Upgrader
	writeTimeout    time.Duration
	pingInterval    time.Duration
	pongWait        time.Duration
	sendQueue       int
	readLimit       int64
	revalidate      func(ctx context.Context, sessionID uuid.UUID) (string, error)
	revalidateEvery time.Duration
	stop            chan struct{} // closed by Shutdown; stops revalidation

	mu    sync.Mutex
	conns map[*conn]bool // connections that receive messages
	views map[string]*viewState
	// endedSessions and endedUsers remember for endedFor when sessions
	// and users were closed, so a connection authenticated before and
	// registered after is closed at once rather than at the next
	// revalidation (or never, for a role change).
	endedSessions map[uuid.UUID]time.Time
	endedUsers    map[uuid.UUID]time.Time
	running       map[*conn]bool // connections whose goroutines have not ended
	closed        bool           // Shutdown has begun; Serve refuses
	wg            sync.WaitGroup // connection goroutines and the revalidator
}

// New returns a hub. If opts.Revalidate is set it starts a goroutine that
// [Hub.Shutdown] stops.
func New(opts Options) *Hub {
	h := &Hub{
		logger:          opts.Logger,
		origins:         make(map[string]bool, len(opts.AllowedOrigins)),
		writeTimeout:    orDefault(opts.WriteTimeout, time.Second),
		pingInterval:    orDefault(opts.PingInterval, 25*time.Second),
		sendQueue:       orDefault(opts.SendQueue, 64),
		readLimit:       orDefault(opts.ReadLimit, 4<<10),
		revalidate:      opts.Revalidate,
		revalidateEvery: orDefault(opts.RevalidateEvery, time.Minute),
		stop:            make(chan struct{}),
		conns:           make(map[*conn]bool),
		views:           make(map[string]*viewState),
		running:         make(map[*conn]bool),
		endedSessions:   make(map[uuid.UUID]time.Time),
		endedUsers:      make(map[uuid.UUID]time.Time),
	}
	if h.logger == nil {
		h.logger = zap.NewNop()
	}
	h.logger = h.logger.Named("live")
	// A third of the interval covers the time to write the ping and a slow
	// mobile network's round trip (Centrifugo allows 8s on 25s).
	h.pongWait = h.pingInterval + h.pingInterval/3
	for _, o := range opts.AllowedOrigins {
		key, err := originKey(o)
		if err != nil {
			h.logger.Warn("ignoring an allowed origin that is not an origin", zap.Error(err))
			continue
		}
		h.origins[key] = true
	}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: h.writeTimeout,
		// Every data message is written as a PreparedMessage, which needs
		// no write buffer; a pool keeps idle connections from holding one.
		WriteBufferPool: &sync.Pool{},
		// Compression stays off: it costs memory per connection and mixing
		// compressed secrets with attacker-chosen text invites CRIME-style
		// attacks.
		EnableCompression: false,
		// Serve has already checked the origin; checking again here keeps
		// the upgrader safe on its own.
		CheckOrigin: h.originAllowed,
		Error:       h.handshakeError,
	}
	if h.revalidate != nil {
		h.wg.Add(1)
		go h.revalidateLoop()
	}
	return h
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Serve upgrades r to a websocket connection belonging to c, sends the
// hello message and returns; the connection lives on in two goroutines.
// The caller must have authenticated c's session. Handshake failures are
// answered with a JSON error.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, c Client) {
	h.open(w, r, c, "")
}

// open upgrades r and registers the connection, following view (none when
// empty): a view's connection receives no delta until syncView has sent
// its first sync. It reports false when the handshake was refused.
func (h *Hub) open(w http.ResponseWriter, r *http.Request, c Client, view string) (*conn, bool) {
	if !h.originAllowed(r) {
		// The origin is a web site's address, not personal data, and the
		// likeliest cause is a PRESENTE_ALLOWED_ORIGINS that lacks it.
		h.logger.Debug("handshake refused: origin not allowed", zap.String("origin", r.Header.Get("Origin")))
		writeError(w, http.StatusForbidden, errOriginNotAllowed)
		return nil, false
	}
	if h.isClosed() {
		writeError(w, http.StatusServiceUnavailable, errShuttingDown)
		return nil, false
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil, false // handshakeError has answered
	}
	hello, err := helloMessage(c)
	if err != nil {
		h.logger.Error("encode hello", zap.Error(err))
		_ = ws.Close()
		return nil, false
	}
	cn := &conn{
		client:  c,
		ws:      ws,
		send:    make(chan outgoing, h.sendQueue),
		done:    make(chan struct{}),
		view:    view,
		syncing: view != "",
	}
	// Queued before the connection is registered, so hello comes first.
	cn.send <- outgoing{pm: hello}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		// Nothing else knows this connection, so this goroutine may write.
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, reasonShutdown), time.Now().Add(h.writeTimeout))
		_ = ws.Close()
		return nil, false
	}
	if h.closedSince(c) {
		h.mu.Unlock()
		// Revoked after the web server authenticated it: nothing else
		// knows this connection, so this goroutine may write.
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(closeSessionEnded, reasonSessionEnd), time.Now().Add(h.writeTimeout))
		_ = ws.Close()
		return nil, false
	}
	h.conns[cn] = true
	if view != "" {
		v := h.views[view]
		if v == nil {
			v = &viewState{conns: map[*conn]bool{}}
			h.views[view] = v
		}
		v.conns[cn] = true
		v.unwatched = time.Time{}
	}
	h.running[cn] = true
	h.wg.Add(2)
	n := len(h.conns)
	h.mu.Unlock()
	h.logger.Debug("connection opened", zap.Int("connections", n))

	go h.writeLoop(cn)
	go h.readLoop(cn)
	return cn, true
}

type helloMsg struct {
	Type   string    `json:"type"`
	UserID uuid.UUID `json:"user_id"`
	Role   string    `json:"role"`
}

func helloMessage(c Client) (*websocket.PreparedMessage, error) {
	b, err := json.Marshal(helloMsg{Type: "hello", UserID: c.UserID, Role: c.Role})
	if err != nil {
		return nil, err
	}
	return websocket.NewPreparedMessage(websocket.TextMessage, b)
}

// Publish sends msg, a text message, to every connection for which to
// returns true, or to all when to is nil. msg is encoded once and copied,
// so the caller may reuse it. Publish never waits for a connection: one
// whose queue is full is closed with 4002. Messages from successive
// Publish calls reach each connection in the order of the calls. to runs
// with the hub locked and must not call the hub.
func (h *Hub) Publish(msg []byte, to func(Client) bool) {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, msg)
	if err != nil {
		h.logger.Error("prepare message", zap.Error(err))
		return
	}
	var slow []*conn
	h.mu.Lock()
	for c := range h.conns {
		if to != nil && !to(c.client) {
			continue
		}
		select {
		case c.send <- outgoing{pm: pm, size: len(msg)}:
		default:
			h.forget(c)
			slow = append(slow, c)
		}
	}
	n := len(h.conns)
	h.mu.Unlock()
	for _, c := range slow {
		c.end(closeResync, reasonResync)
	}
	if len(slow) > 0 {
		h.logger.Debug("connections closed", zap.String("reason", "send_queue_full"),
			zap.Int("closed", len(slow)), zap.Int("connections", n))
	}
}

// CloseSessions closes at once, with 4001, every connection of the given
// sessions: used when sessions are revoked. No message published after it
// returns reaches them.
func (h *Hub) CloseSessions(ids ...uuid.UUID) {
	set := make(map[uuid.UUID]bool, len(ids))
	h.remember(h.endedSessions, ids...)
	for _, id := range ids {
		set[id] = true
	}
	h.closeWhere(func(c Client) bool { return set[c.SessionID] }, "session_ended")
}

// remember records that ids were closed now, forgetting what is older
// than endedFor.
func (h *Hub) remember(ended map[uuid.UUID]time.Time, ids ...uuid.UUID) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, at := range ended {
		if now.Sub(at) > endedFor {
			delete(ended, id)
		}
	}
	for _, id := range ids {
		ended[id] = now
	}
}

// closedSince tells whether c's session or user was closed after it was
// confirmed. The caller holds h.mu.
func (h *Hub) closedSince(c Client) bool {
	since := c.Since
	if since.IsZero() {
		since = time.Now().Add(-endedFor)
	}
	if at, ok := h.endedSessions[c.SessionID]; ok && !at.Before(since) {
		return true
	}
	at, ok := h.endedUsers[c.UserID]
	return ok && !c.Since.IsZero() && !at.Before(since)
}

// endedFor is how long a closed session is remembered: far longer than
// the moment between a handshake's authentication and its registration.
const endedFor = time.Minute

// CloseUser closes at once, with 4001, every connection of userID: used
// when a user is deactivated. No message published after it returns
// reaches them.
func (h *Hub) CloseUser(userID uuid.UUID) {
	h.remember(h.endedUsers, userID)
	h.closeWhere(func(c Client) bool { return c.UserID == userID }, "user_closed")
}

// closeWhere closes with 4001 the connections match accepts. Removing them
// from conns before returning is what keeps later messages from them; the
// writer sends the close frame and closes the socket.
func (h *Hub) closeWhere(match func(Client) bool, why string) {
	var ended []*conn
	h.mu.Lock()
	for c := range h.conns {
		if match(c.client) {
			h.forget(c)
			ended = append(ended, c)
		}
	}
	n := len(h.conns)
	h.mu.Unlock()
	for _, c := range ended {
		c.end(closeSessionEnded, reasonSessionEnd)
	}
	if len(ended) > 0 {
		h.logger.Debug("connections closed", zap.String("reason", why),
			zap.Int("closed", len(ended)), zap.Int("connections", n))
	}
}

// Count returns how many connections currently receive messages.
func (h *Hub) Count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Shutdown refuses new connections, closes every connection with 1001 and
// waits for their goroutines and the revalidator to end. If ctx ends first
// it closes the remaining sockets without a close frame and returns
// ctx's error. It may be called more than once.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	first := !h.closed
	h.closed = true
	ended := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		ended = append(ended, c)
	}
	clear(h.conns)
	clear(h.views)
	h.mu.Unlock()
	if first {
		close(h.stop)
	}
	for _, c := range ended {
		c.end(websocket.CloseGoingAway, reasonShutdown)
	}
	h.logger.Debug("shutting down", zap.Int("closed", len(ended)))

	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// Writers stuck on unresponsive clients give up once their socket
		// is gone.
		h.mu.Lock()
		for c := range h.running {
			_ = c.ws.Close()
		}
		h.mu.Unlock()
		return fmt.Errorf("live: shutdown: %w", ctx.Err())
	}
}

func (h *Hub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// revalidateLoop checks every connected session each revalidateEvery and
// closes the sessions Revalidate rejects.
func (h *Hub) revalidateLoop() {
	defer h.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-h.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(h.revalidateEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, id := range h.sessions() {
			cctx, ccancel := context.WithTimeout(ctx, min(revalidateTimeout, h.revalidateEvery))
			role, err := h.revalidate(cctx, id)
			ccancel()
			if ctx.Err() != nil {
				return // shutting down: Shutdown closes with 1001 instead
			}
			switch {
			case err != nil:
				// The error is not logged: it may name the session, and the
				// session store reports its own failures.
				h.closeWhere(func(c Client) bool { return c.SessionID == id }, "revalidation_failed")
			case role != "":
				// Connections authorized under a role the account no longer
				// has (what they follow depends on it) reconnect under the
				// new one.
				h.closeWhere(func(c Client) bool { return c.SessionID == id && c.Role != role }, "role_changed")
			}
		}
	}
}

// sessions returns the distinct sessions with connections, so a session
// open in several tabs is checked once.
func (h *Hub) sessions() []uuid.UUID {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := make(map[uuid.UUID]bool, len(h.conns))
	ids := make([]uuid.UUID, 0, len(h.conns))
	for c := range h.conns {
		if !seen[c.client.SessionID] {
			seen[c.client.SessionID] = true
			ids = append(ids, c.client.SessionID)
		}
	}
	return ids
}
