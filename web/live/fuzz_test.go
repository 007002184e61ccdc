package live_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/web/live"
)

// fuzzReadLimit is the hub's read limit in FuzzClientMessages: small, so
// the fuzzer reaches messages over it.
const fuzzReadLimit = 256

// FuzzClientMessages opens a real connection to a hub and sends what the
// fuzzer makes: messages split at each 0xff byte, text or binary, each
// in frames of 64 bytes or whole, with an allowed, a foreign or no Origin. The hub
// only reads and discards what clients send, so whatever they send it
// must keep serving them (a message published afterwards arrives) unless
// a message is over the read limit, which closes the connection with 1009;
// a foreign origin is refused at the handshake with a JSON error; and the
// hub forgets every connection once the client has gone.
func FuzzClientMessages(f *testing.F) {
	hub, addr := fuzzHub(f)
	f.Add(uint8(0), []byte(`{"type":"resume","after":"7411:1290"}`))
	f.Add(uint8(1), []byte("\x00\x01\x02"))
	f.Add(uint8(2), []byte("ping\xffpong\xff"))
	f.Add(uint8(4), bytes.Repeat([]byte("a"), fuzzReadLimit+1))
	f.Add(uint8(8), []byte(`{"type":"hello"}`))
	f.Add(uint8(16), []byte(`{}`))
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		c := newClient("dispatcher")
		origin := ""
		switch mode >> 3 & 3 {
		case 1:
			origin = allowed[0]
		case 2:
			origin = "https://evil.example.com"
		}
		d := &dialer
		if mode&2 == 2 {
			d = &fragmenting
		}
		ws, resp, err := tryDial(d, addr, c, origin)
		if origin == "https://evil.example.com" {
			if err == nil {
				ws.Close()
				t.Fatal("a foreign origin opened a connection")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("a foreign origin: %v, %+v", err, resp)
			}
			var body struct {
				Error struct{ Code, Message string }
			}
			raw, _ := io.ReadAll(resp.Body)
			if json.Unmarshal(raw, &body) != nil || body.Error.Code != "origin_not_allowed" || body.Error.Message == "" {
				t.Fatalf("a foreign origin's answer says nothing useful: %s", raw)
			}
			return
		}
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer ws.Close()
		expectHello(t, ws, c)

		typ := websocket.TextMessage
		if mode&1 == 1 {
			typ = websocket.BinaryMessage
		}
		tooBig := false
		for _, msg := range bytes.Split(data, []byte{0xff}) {
			if err := send(ws, typ, msg); err != nil {
				break // the server has closed: checked below
			}
			if len(msg) > fuzzReadLimit {
				tooBig = true
				break
			}
		}
		if tooBig {
			_ = ws.SetReadDeadline(time.Now().Add(wait))
			_, _, err := ws.ReadMessage()
			var closeErr *websocket.CloseError
			if !errors.As(err, &closeErr) || closeErr.Code != websocket.CloseMessageTooBig {
				t.Fatalf("a message over the limit: read gave %v, want close 1009", err)
			}
		} else {
			msg := []byte(`{"type":"delta","n":1}`)
			hub.Publish(msg, func(to live.Client) bool { return to.UserID == c.UserID })
			if got := readText(t, ws); !bytes.Equal(got, msg) {
				t.Fatalf("after the client's messages the hub sent %s, want %s", got, msg)
			}
		}
		ws.Close()
		deadline := time.Now().Add(wait)
		for hub.Count() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the hub still holds %d connections after the client left", hub.Count())
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// fragmenting sends every message over 64 bytes in several frames.
var fragmenting = websocket.Dialer{HandshakeTimeout: wait, WriteBufferSize: 64}

// send writes msg as one message.
func send(ws *websocket.Conn, typ int, msg []byte) error {
	_ = ws.SetWriteDeadline(time.Now().Add(wait))
	return ws.WriteMessage(typ, msg)
}

// fuzzHub is newHub without a test logger, which the fuzz target's inputs
// may not write to (testing allows only their own t to log).
func fuzzHub(f *testing.F) (*live.Hub, string) {
	hub := live.New(live.Options{Logger: zap.NewNop(), AllowedOrigins: allowed, ReadLimit: fuzzReadLimit})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		hub.Serve(w, r, live.Client{SessionID: uuid.MustParse(q.Get("session")), UserID: uuid.MustParse(q.Get("user")), Role: q.Get("role")})
	}))
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			f.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	return hub, "ws" + strings.TrimPrefix(srv.URL, "http")
}
