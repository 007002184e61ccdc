package live_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/presente-dispatch/presente/web/live"
)

// wait bounds every wait in these tests. Each one is far shorter than the
// default ping interval (25s), so no test passes by way of a ping timeout.
const wait = 5 * time.Second

var allowed = []string{"https://presente.example.org", "http://localhost:8080"}

// newHub starts a hub behind a real HTTP server that takes the connection's
// Client from the query string, as the web server would from the session.
// It returns the hub and its ws:// address.
func newHub(tb testing.TB, opts live.Options) (*live.Hub, string) {
	tb.Helper()
	opts.Logger = zaptest.NewLogger(tb)
	if opts.AllowedOrigins == nil {
		opts.AllowedOrigins = allowed
	}
	hub := live.New(opts)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		since, _ := time.Parse(time.RFC3339Nano, q.Get("since"))
		hub.Serve(w, r, live.Client{
			SessionID: uuid.MustParse(q.Get("session")),
			UserID:    uuid.MustParse(q.Get("user")),
			Role:      q.Get("role"),
			Since:     since,
		})
	}))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	return hub, "ws" + strings.TrimPrefix(srv.URL, "http")
}

func newClient(role string) live.Client {
	return live.Client{SessionID: uuid.New(), UserID: uuid.New(), Role: role}
}

var dialer = websocket.Dialer{HandshakeTimeout: wait}

func tryDial(d *websocket.Dialer, addr string, c live.Client, origin string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	q := url.Values{"session": {c.SessionID.String()}, "user": {c.UserID.String()}, "role": {c.Role}}
	if !c.Since.IsZero() {
		q.Set("since", c.Since.Format(time.RFC3339Nano))
	}
	return d.Dial(addr+"?"+q.Encode(), h)
}

// connect dials as c without an Origin header and reads the hello message.
func connect(tb testing.TB, addr string, c live.Client) *websocket.Conn {
	tb.Helper()
	return connectWith(tb, &dialer, addr, c, "")
}

func connectWith(tb testing.TB, d *websocket.Dialer, addr string, c live.Client, origin string) *websocket.Conn {
	tb.Helper()
	ws, resp, err := tryDial(d, addr, c, origin)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		tb.Fatalf("dial with origin %q: %v (status %d)", origin, err, status)
	}
	tb.Cleanup(func() { ws.Close() })
	expectHello(tb, ws, c)
	return ws
}

func expectHello(tb testing.TB, ws *websocket.Conn, c live.Client) {
	tb.Helper()
	var got map[string]string
	if err := json.Unmarshal(readText(tb, ws), &got); err != nil {
		tb.Fatalf("hello is not a JSON object of strings: %v", err)
	}
	want := map[string]string{"type": "hello", "user_id": c.UserID.String(), "role": c.Role}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		tb.Fatalf("hello = %v, want %v", got, want)
	}
}

// readText reads the next message, which must be a text message.
func readText(tb testing.TB, ws *websocket.Conn) []byte {
	tb.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	typ, msg, err := ws.ReadMessage()
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		tb.Fatalf("message type = %d, want text (%d)", typ, websocket.TextMessage)
	}
	return msg
}

// expectClose reads the next message, which must be a close frame with
// code and, unless text is empty, that text.
func expectClose(tb testing.TB, ws *websocket.Conn, code int, text string) {
	tb.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	_, msg, err := ws.ReadMessage()
	if err == nil {
		tb.Fatalf("got message %.60q, want close %d", msg, code)
	}
	checkClose(tb, err, code, text)
}

func checkClose(tb testing.TB, err error, code int, text string) {
	tb.Helper()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		tb.Fatalf("read error = %v, want a close frame with code %d", err, code)
	}
	if ce.Code != code || (text != "" && ce.Text != text) {
		tb.Fatalf("close = %d %q, want %d %q", ce.Code, ce.Text, code, text)
	}
}

// waitFor polls cond until it holds or the wait runs out.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// publish calls hub.Publish and fails the test if it does not return.
func publish(tb testing.TB, hub *live.Hub, msg []byte, to func(live.Client) bool) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		hub.Publish(msg, to)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(wait):
		tb.Fatalf("Publish blocked")
	}
}

func TestHelloNamesTheUserAndRole(t *testing.T) {
	hub, addr := newHub(t, live.Options{})
	c := newClient("dispatcher")
	connect(t, addr, c) // reads and checks hello
	if got, want := hub.Count(), 1; got != want {
		t.Fatalf("Count() = %d, want %d", got, want)
	}
}

func TestHandshakeFromAnOriginNotAllowedIsRefused(t *testing.T) {
	for _, origin := range []string{
		"https://evil.example",
		"http://presente.example.org",               // other scheme
		"https://presente.example.org:8443",         // other port
		"https://live.presente.example.org",         // subdomain
		"https://presente.example.org.evil.example", // suffix
		"http://localhost:8081",
		"http://localhost", // default port 80, not 8080
		"null",             // sandboxed frames, file: pages
	} {
		t.Run(origin, func(t *testing.T) {
			hub, addr := newHub(t, live.Options{})
			ws, resp, err := tryDial(&dialer, addr, newClient("dispatcher"), origin)
			if err == nil {
				ws.Close()
				t.Fatal("handshake succeeded")
			}
			if !errors.Is(err, websocket.ErrBadHandshake) {
				t.Fatalf("dial error = %v, want %v", err, websocket.ErrBadHandshake)
			}
			if got, want := resp.StatusCode, http.StatusForbidden; got != want {
				t.Fatalf("status = %d, want %d", got, want)
			}
			if got := resp.Header.Get("Upgrade"); got != "" {
				t.Fatalf("Upgrade header = %q, want none", got)
			}
			var body struct {
				Error struct{ Code, Message string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if got, want := body.Error.Code, "origin_not_allowed"; got != want {
				t.Fatalf("error code = %q, want %q", got, want)
			}
			if !strings.Contains(body.Error.Message, "PRESENTE_ALLOWED_ORIGINS") {
				t.Fatalf("message %q does not name PRESENTE_ALLOWED_ORIGINS", body.Error.Message)
			}
			if got := hub.Count(); got != 0 {
				t.Fatalf("Count() = %d, want 0", got)
			}
		})
	}
}

func TestHandshakeFromAnAllowedOriginIsAccepted(t *testing.T) {
	for _, origin := range []string{
		"https://presente.example.org",
		"https://PRESENTE.Example.org",     // hosts compare case-insensitively
		"https://presente.example.org:443", // default port written out
		"http://localhost:8080",
	} {
		t.Run(origin, func(t *testing.T) {
			_, addr := newHub(t, live.Options{})
			connectWith(t, &dialer, addr, newClient("volunteer"), origin)
		})
	}
}

// A client that sends no Origin is not a browser, so no hostile page can
// be acting through it.
func TestHandshakeWithoutOriginIsAccepted(t *testing.T) {
	_, addr := newHub(t, live.Options{})
	connectWith(t, &dialer, addr, newClient("volunteer"), "")
}

func TestPlainHTTPRequestGetsAJSONError(t *testing.T) {
	_, addr := newHub(t, live.Options{})
	c := newClient("volunteer")
	q := url.Values{"session": {c.SessionID.String()}, "user": {c.UserID.String()}, "role": {c.Role}}
	if !c.Since.IsZero() {
		q.Set("since", c.Since.Format(time.RFC3339Nano))
	}
	resp, err := http.Get("http" + strings.TrimPrefix(addr, "ws") + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusBadRequest; got != want {
		t.Fatalf("status = %d, want %d", got, want)
	}
	var body struct {
		Error struct{ Code string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if got, want := body.Error.Code, "websocket_required"; got != want {
		t.Fatalf("error code = %q, want %q", got, want)
	}
}

func TestCloseSessionsClosesOnlyThoseSessionsAtOnce(t *testing.T) {
	hub, addr := newHub(t, live.Options{})
	revoked := newClient("volunteer")
	other := live.Client{SessionID: uuid.New(), UserID: revoked.UserID, Role: "volunteer"} // same user, another session
	wsRevoked := connect(t, addr, revoked)
	wsOther := connect(t, addr, other)

	hub.CloseSessions(revoked.SessionID)
	publish(t, hub, []byte(`{"type":"after"}`), nil)

	// The close frame comes before anything published after CloseSessions.
	expectClose(t, wsRevoked, 4001, "session ended: sign in again")
	if got := string(readText(t, wsOther)); got != `{"type":"after"}` {
		t.Fatalf("other session got %q", got)
	}
	if got, want := hub.Count(), 1; got != want {
		t.Fatalf("Count() = %d, want %d", got, want)
	}
}

func TestASessionClosedBeforeItsHandshakeRegistersIsClosedAtOnce(t *testing.T) {
	hub, addr := newHub(t, live.Options{})
	late := newClient("dispatcher")
	// The web server authenticated the session, then it was revoked
	// before the hub registered the connection.
	hub.CloseSessions(late.SessionID)
	ws, _, err := tryDial(&dialer, addr, late, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	expectClose(t, ws, 4001, "session ended: sign in again")
	if got := hub.Count(); got != 0 {
		t.Errorf("Count() = %d, want 0", got)
	}
	// Another session of the same user connects as usual.
	connect(t, addr, live.Client{SessionID: uuid.New(), UserID: late.UserID, Role: "dispatcher"})
}

func TestAUserClosedAfterTheirHandshakeWasAuthenticatedIsClosedOnArrival(t *testing.T) {
	hub, addr := newHub(t, live.Options{})
	demoted := newClient("dispatcher")
	demoted.Since = time.Now()
	hub.CloseUser(demoted.UserID) // a role change between authentication and registration
	ws, _, err := tryDial(&dialer, addr, demoted, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	expectClose(t, ws, 4001, "session ended: sign in again")
	// Authenticated after the change: it connects, with the new role.
	again := live.Client{SessionID: demoted.SessionID, UserID: demoted.UserID, Role: "volunteer", Since: time.Now()}
	connect(t, addr, again)
}

func TestCloseSessionsDoesNotWaitForABacklog(t *testing.T) {
	// A long write timeout: the connection must close because of
	// CloseSessions, not because a write timed out.
	hub, addr := newHub(t, live.Options{WriteTimeout: time.Minute})
	c := newClient("volunteer")
	ws := connect(t, addr, c)

	// Far more than the sockets hold while the client is not reading, and
	// fewer than the send queue's 64, so the writer has a backlog.
	const backlog = 32
	payload := bytes.Repeat([]byte("x"), 1<<20)
	for i := range backlog {
		publish(t, hub, fmt.Appendf(nil, "before %02d %s", i, payload), nil)
	}
	hub.CloseSessions(c.SessionID)
	publish(t, hub, []byte("after"), nil)

	var received int
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			checkClose(t, err, 4001, "session ended: sign in again")
			break
		}
		if !bytes.HasPrefix(msg, fmt.Appendf(nil, "before %02d ", received)) {
			t.Fatalf("got message %.10q, want before %02d", msg, received)
		}
		received++
	}
	t.Logf("received %d of the backlog of %d before the close", received, backlog)
	if received == backlog {
		t.Fatalf("the whole backlog of %d messages was written before the close frame", backlog)
	}
}

func TestCloseUserClosesEveryConnectionOfTheUser(t *testing.T) {
	hub, addr := newHub(t, live.Options{})
	user := newClient("volunteer")
	sameSession := connect(t, addr, user) // two tabs of one session
	sameSession2 := connect(t, addr, user)
	otherSession := connect(t, addr, live.Client{SessionID: uuid.New(), UserID: user.UserID, Role: user.Role})
	bystander := newClient("volunteer")
	wsBystander := connect(t, addr, bystander)

	hub.CloseUser(user.UserID)
	publish(t, hub, []byte(`{"type":"after"}`), nil)

	for _, ws := range []*websocket.Conn{sameSession, sameSession2, otherSession} {
		expectClose(t, ws, 4001, "session ended: sign in again")
	}
	if got := string(readText(t, wsBystander)); got != `{"type":"after"}` {
		t.Fatalf("bystander got %q", got)
	}
	if got, want := hub.Count(), 1; got != want {
		t.Fatalf("Count() = %d, want %d", got, want)
	}
}

func TestRevalidationFailureClosesTheSession(t *testing.T) {
	var (
		mu      sync.Mutex
		revoked = map[uuid.UUID]bool{}
		checked = map[uuid.UUID]int{}
		demoted = uuid.New()
	)
	hub, addr := newHub(t, live.Options{
		RevalidateEvery: 10 * time.Millisecond,
		Revalidate: func(ctx context.Context, id uuid.UUID) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			checked[id]++
			if revoked[id] {
				return "", errors.New("session revoked")
			}
			if id == demoted {
				return "volunteer", nil
			}
			return "", nil
		},
	})
	expiring, staying := newClient("volunteer"), newClient("volunteer")
	wsExpiring := connect(t, addr, expiring)
	wsStaying := connect(t, addr, staying)
	// A dispatcher demoted on another server: their connection, opened as
	// a dispatcher, is closed at the next revalidation.
	demotedClient := newClient("dispatcher")
	demotedClient.SessionID = demoted
	expectClose(t, connect(t, addr, demotedClient), 4001, "session ended: sign in again")
	waitFor(t, "both sessions to be revalidated", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return checked[expiring.SessionID] > 0 && checked[staying.SessionID] > 0
	})

	mu.Lock()
	revoked[expiring.SessionID] = true
	mu.Unlock()

	expectClose(t, wsExpiring, 4001, "session ended: sign in again")
	publish(t, hub, []byte(`{"type":"after"}`), nil)
	if got := string(readText(t, wsStaying)); got != `{"type":"after"}` {
		t.Fatalf("valid session got %q", got)
	}
	if got, want := hub.Count(), 1; got != want {
		t.Fatalf("Count() = %d, want %d", got, want)
	}
}

func TestPublishReachesOnlyTheClientsTheFilterAccepts(t *testing.T) {
	hub, addr := newHub(t, live.Options{})
	dispatchers := []*websocket.Conn{
		connect(t, addr, newClient("dispatcher")),
		connect(t, addr, newClient("dispatcher")),
	}
	volunteer := connect(t, addr, newClient("volunteer"))

	publish(t, hub, []byte(`{"type":"board"}`), func(c live.Client) bool { return c.Role == "dispatcher" })
	publish(t, hub, []byte(`{"type":"everyone"}`), nil)

	for i, ws := range dispatchers {
		for _, want := range []string{`{"type":"board"}`, `{"type":"everyone"}`} {
			if got := string(readText(t, ws)); got != want {
				t.Fatalf("dispatcher %d got %q, want %q", i, got, want)
			}
		}
	}
	// Messages arrive in order, so had the board message reached the
	// volunteer it would come first.
	if got, want := string(readText(t, volunteer)), `{"type":"everyone"}`; got != want {
		t.Fatalf("volunteer got %q, want %q", got, want)
	}
}

func TestAClientThatDoesNotReadIsDroppedWithoutBlockingOthers(t *testing.T) {
	// The write timeout is longer than any wait here, so only a full send
	// queue can drop the client while the test runs.
	hub, addr := newHub(t, live.Options{SendQueue: 4, WriteTimeout: time.Minute})
	slow := connect(t, addr, newClient("dispatcher"))
	fast := connect(t, addr, newClient("dispatcher"))

	payload := bytes.Repeat([]byte("x"), 16<<10)
	deadline := time.Now().Add(wait)
	var sent int
	for ; hub.Count() == 2; sent++ {
		if time.Now().After(deadline) {
			t.Fatalf("the client that does not read is still connected after %d messages", sent)
		}
		msg := fmt.Appendf(nil, "%08d%s", sent, payload)
		publish(t, hub, msg, nil)
		if got := readText(t, fast); !bytes.Equal(got, msg) {
			t.Fatalf("fast client got message %.8q, want %.8q", got, msg)
		}
	}
	publish(t, hub, []byte(`{"type":"after"}`), nil)
	if got := string(readText(t, fast)); got != `{"type":"after"}` {
		t.Fatalf("fast client got %.60q after the drop", got)
	}

	// Once it reads again, the slow client finds what its socket held and
	// then the close frame.
	_ = slow.SetReadDeadline(time.Now().Add(wait))
	var received int
	for {
		_, msg, err := slow.ReadMessage()
		if err != nil {
			checkClose(t, err, 4002, "resync: reconnect with your last position")
			break
		}
		if want := fmt.Sprintf("%08d", received); !bytes.HasPrefix(msg, []byte(want)) {
			t.Fatalf("slow client got message %.8q, want %s", msg, want)
		}
		received++
	}
	if received >= sent {
		t.Fatalf("slow client received all %d messages; it should have been dropped", sent)
	}
}

func TestClientMessagesAreDiscardedAndTooLongOnesClose(t *testing.T) {
	hub, addr := newHub(t, live.Options{ReadLimit: 1024})
	ws := connect(t, addr, newClient("volunteer"))

	if err := ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("a"), 1024)); err != nil {
		t.Fatal(err)
	}
	publish(t, hub, []byte(`{"type":"after"}`), nil)
	if got := string(readText(t, ws)); got != `{"type":"after"}` {
		t.Fatalf("got %q: the client's message should be discarded, not echoed", got)
	}

	if err := ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("a"), 1025)); err != nil {
		t.Fatal(err)
	}
	expectClose(t, ws, websocket.CloseMessageTooBig, "")
	waitFor(t, "the connection to be forgotten", func() bool { return hub.Count() == 0 })
}

func TestAClientThatAnswersPingsStaysConnected(t *testing.T) {
	// The server closes a connection that has sent no pong for 400ms.
	hub, addr := newHub(t, live.Options{PingInterval: 300 * time.Millisecond})
	ws := connect(t, addr, newClient("volunteer"))
	var pings atomic.Int32
	ws.SetPingHandler(func(data string) error {
		pings.Add(1)
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(wait))
	})
	msgs := readInBackground(ws)

	// Four pings take 1.2s, three times the pong wait: only pongs can
	// have kept the connection open.
	waitFor(t, "four pings", func() bool { return pings.Load() >= 4 })
	publish(t, hub, []byte(`{"type":"after"}`), nil)
	select {
	case r := <-msgs:
		if r.err != nil || string(r.msg) != `{"type":"after"}` {
			t.Fatalf("read %q, %v; want the published message", r.msg, r.err)
		}
	case <-time.After(wait):
		t.Fatal("no message after the pings")
	}
}

func TestAClientThatIgnoresPingsIsDropped(t *testing.T) {
	hub, addr := newHub(t, live.Options{PingInterval: 50 * time.Millisecond})
	ws := connect(t, addr, newClient("volunteer"))
	var pings atomic.Int32
	ws.SetPingHandler(func(string) error { pings.Add(1); return nil }) // no pong
	msgs := readInBackground(ws)

	select {
	case r := <-msgs:
		if r.err == nil {
			t.Fatalf("got message %q, want the connection closed", r.msg)
		}
	case <-time.After(wait):
		t.Fatal("the connection is still open")
	}
	if pings.Load() == 0 {
		t.Fatal("the server sent no ping")
	}
	waitFor(t, "the connection to be forgotten", func() bool { return hub.Count() == 0 })
}

type readResult struct {
	msg []byte
	err error
}

// readInBackground reads ws in a goroutine, which control frame handlers
// need, until reading fails.
func readInBackground(ws *websocket.Conn) <-chan readResult {
	out := make(chan readResult, 16)
	go func() {
		defer close(out)
		for {
			_ = ws.SetReadDeadline(time.Now().Add(wait))
			_, msg, err := ws.ReadMessage()
			out <- readResult{msg, err}
			if err != nil {
				return
			}
		}
	}()
	return out
}

func TestShutdownClosesEveryConnectionAndRefusesNewOnes(t *testing.T) {
	hub, addr := newHub(t, live.Options{Revalidate: func(context.Context, uuid.UUID) (string, error) { return "", nil }})
	var conns []*websocket.Conn
	for range 3 {
		conns = append(conns, connect(t, addr, newClient("volunteer")))
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := hub.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, ws := range conns {
		expectClose(t, ws, websocket.CloseGoingAway, "")
	}
	if got := hub.Count(); got != 0 {
		t.Fatalf("Count() = %d, want 0", got)
	}

	_, resp, err := tryDial(&dialer, addr, newClient("volunteer"), "")
	if err == nil {
		t.Fatal("dial after Shutdown succeeded")
	}
	if got, want := resp.StatusCode, http.StatusServiceUnavailable; got != want {
		t.Fatalf("status = %d, want %d", got, want)
	}
	b, _ := io.ReadAll(resp.Body)
	if !bytes.Contains(b, []byte(`"code":"unavailable"`)) {
		t.Fatalf("body = %s, want error code unavailable", b)
	}
}

func TestValidateOrigins(t *testing.T) {
	for _, tt := range []struct {
		origin string
		ok     bool
	}{
		{"https://presente.example.org", true},
		{"http://localhost:8080", true},
		{"https://[::1]:8443", true},
		{"https://presente.example.org/", true},
		{"presente.example.org", false},
		{"ftp://presente.example.org", false},
		{"https://presente.example.org/app", false},
		{"https://presente.example.org?x=1", false},
		{"https://user@presente.example.org", false},
		{"https://", false},
		{"*", false},
		{"null", false},
	} {
		err := live.ValidateOrigins([]string{"https://ok.example.org", tt.origin})
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidateOrigins(%q) = %v, want ok %v", tt.origin, err, tt.ok)
		}
	}
}
