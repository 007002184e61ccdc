package live

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/eventstore"
)

// conn is one websocket connection. Its writer goroutine is the only one
// that writes data to ws (gorilla allows one concurrent writer); its reader
// goroutine the only one that reads.
type conn struct {
	client Client
	ws     *websocket.Conn
	send   chan outgoing // never closed: senders need no care
	done   chan struct{} // closed by end

	// view is the key of the view followed, "" for none. While syncing
	// (the hub's mutex guards it and pending), deltas published for the
	// view wait in pending until the first sync has been queued.
	view    string
	syncing bool
	pending []*delta
	// floor is the position the client has reached: a delta not past it
	// is not sent.
	floor eventstore.Cursor

	once   sync.Once
	code   int // close code the writer sends once done is closed; 0 for none
	reason string
}

// outgoing is a message queued for a connection, and its size.
type outgoing struct {
	pm   *websocket.PreparedMessage
	size int
}

// slowLink is the slowest link a client may have and still receive a
// large message (a snapshot, a batch of missed deltas): 32 KiB/s, a weak
// 3G signal in a courthouse basement.
const slowLink = 32 << 10

// writeDeadline is how long writing a message of size bytes may take:
// the write timeout, plus what a slow link needs for a large message.
func (h *Hub) writeDeadline(size int) time.Duration {
	return h.writeTimeout + time.Duration(size)*time.Second/slowLink
}

// end asks the writer to send a close frame with code and reason (none
// when code is 0) and close the socket. The first call decides; end
// reports whether it was this one.
func (c *conn) end(code int, reason string) bool {
	first := false
	c.once.Do(func() {
		c.code, c.reason = code, reason
		close(c.done)
		first = true
	})
	return first
}

// writeLoop writes queued messages and pings until the connection ends,
// then sends the close frame and closes the socket, which ends readLoop.
func (h *Hub) writeLoop(c *conn) {
	defer h.wg.Done()
	defer h.finished(c)
	ping := time.NewTicker(h.pingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			h.closeSocket(c)
			return
		case out := <-c.send:
			// Ending wins over queued messages: a revoked session gets
			// nothing more once CloseSessions has returned.
			select {
			case <-c.done:
				h.closeSocket(c)
				return
			default:
			}
			_ = c.ws.SetWriteDeadline(time.Now().Add(h.writeDeadline(out.size)))
			if err := c.ws.WritePreparedMessage(out.pm); err != nil {
				h.drop(c, "write_failed")
				h.closeSocket(c)
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.writeTimeout)); err != nil {
				h.drop(c, "ping_failed")
				h.closeSocket(c)
				return
			}
		}
	}
}

// closeSocket sends the close frame end asked for, then closes the socket
// without waiting for the client's reply: a revoked session must not keep
// a socket open for as long as the client takes to answer.
func (h *Hub) closeSocket(c *conn) {
	if c.code != 0 {
		_ = c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(c.code, c.reason), time.Now().Add(h.writeTimeout))
	}
	_ = c.ws.Close()
}

// readLoop reads, within the read limit, and discards what the client
// sends, so that gorilla handles pings, pongs and close frames, until
// reading fails; then it has the writer close the connection.
func (h *Hub) readLoop(c *conn) {
	defer h.wg.Done()
	c.ws.SetReadLimit(h.readLimit)
	_ = c.ws.SetReadDeadline(time.Now().Add(h.pongWait))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(h.pongWait))
	})
	for {
		_, r, err := c.ws.NextReader()
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		if err != nil {
			h.drop(c, readFailure(err))
			return
		}
	}
}

// drop stops delivering to c and ends it without a close frame: the
// connection has failed, so none could be delivered, or gorilla has
// already sent one.
func (h *Hub) drop(c *conn, why string) {
	h.mu.Lock()
	h.forget(c)
	n := len(h.conns)
	h.mu.Unlock()
	if c.end(0, "") {
		h.logger.Debug("connection closed", zap.String("reason", why), zap.Int("connections", n))
	}
}

// finished forgets c once its writer has closed the socket.
func (h *Hub) finished(c *conn) {
	h.mu.Lock()
	delete(h.running, c)
	h.mu.Unlock()
}

// readFailure names why reading failed, for the log. The error itself is
// not logged: network errors carry the client's address.
func readFailure(err error) string {
	var (
		closeErr *websocket.CloseError
		netErr   net.Error
	)
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		return "message_too_big"
	case errors.As(err, &closeErr) && closeErr.Code != websocket.CloseAbnormalClosure:
		return "client_closed"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "pong_timeout"
	default:
		return "connection_lost"
	}
}
