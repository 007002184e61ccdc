package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/infra/bus/natstest"
	"github.com/presente-dispatch/presente/infra/dispatch"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
)

// cluster is several Presente instances sharing one database and, with
// the nats bus, one JetStream stream, as in the multi profile of
// docker-compose.yml.
type cluster struct {
	env       func(string) string
	args      []string
	instances []*server
	stopped   map[*server]bool
	cookie    string
}

// startCluster starts n instances with args (the first also seeds the
// demo organization) and signs the demo dispatcher in.
func startCluster(t *testing.T, n int, logger *zap.Logger, args ...string) *cluster {
	t.Helper()
	c := &cluster{
		// One configuration directory: the instances share the
		// development master key, as real ones share PRESENTE_MASTER_KEY.
		env:     envOf(map[string]string{"XDG_CONFIG_HOME": t.TempDir(), "DATABASE_URL": pgtest.NewDatabase(t)}),
		args:    append([]string{"--addr", "127.0.0.1:0", "--env", "development"}, args...),
		stopped: map[*server]bool{},
	}
	for i := range n {
		args := c.args
		if i == 0 {
			args = append(args, "--demo")
		}
		c.start(t, logger.Named(fmt.Sprint("instance", i)), args)
	}
	body := fmt.Sprintf(`{"email":"dispatcher@demo.example.org","password":%q}`, demoPassword)
	resp, err := http.Post("http://"+c.instances[0].Addr()+"/api/v1/session", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 1 {
		t.Fatalf("demo sign-in: %d", resp.StatusCode)
	}
	c.cookie = resp.Cookies()[0].Name + "=" + resp.Cookies()[0].Value
	return c
}

func (c *cluster) start(t *testing.T, logger *zap.Logger, args []string) {
	t.Helper()
	cfg, err := parseConfig("serve", args, c.env, io.Discard, parseOptions{server: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := startServer(context.Background(), cfg, c.env, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !c.stopped[s] {
			_ = s.shutdown(5 * time.Second)
		}
	})
	c.instances = append(c.instances, s)
}

// stop shuts instance s down, as when its machine is taken away.
func (c *cluster) stop(t *testing.T, s *server) {
	t.Helper()
	c.stopped[s] = true
	if err := s.shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// leader waits for an instance other than not to relay the log, and
// returns it.
func (c *cluster) leader(t *testing.T, not *server, within time.Duration) *server {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, s := range c.instances {
			if s != not && s.relay.Leading() {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no instance took the relay over within %s", within)
		}
		time.Sleep(time.Millisecond)
	}
}

// report receives a rapid-response request through instance s and returns
// its id.
func report(t *testing.T, s *server) uuid.UUID {
	t.Helper()
	id := uuid.New()
	err := dispatch.New(s.store, dispatch.Options{}).ReceiveRequest(context.Background(), eventstore.Metadata{Actor: "system:test"},
		request.Receive{RequestID: id, Kind: request.RapidResponse, Window: domain.Window{Start: time.Now(), End: time.Now().Add(time.Hour)},
			Region: "East", Needed: 1, Priority: request.Urgent, PersonID: uuid.New(), MeetingPoint: "Corner"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// boardClient follows the dispatch board over a websocket and applies
// web/LIVE.md's rules, recording any gap or duplicate.
type boardClient struct {
	name string
	conn *websocket.Conn

	mu       sync.Mutex
	last     eventstore.Cursor
	synced   string // the mode of the last "synced"
	seen     map[uuid.UUID]time.Time
	problems []string
	closed   chan struct{}
}

type wireDelta struct {
	Prev     string          `json:"prev"`
	Position string          `json:"position"`
	Data     json.RawMessage `json:"data"`
}

type wireMsg struct {
	Type     string          `json:"type"`
	Position string          `json:"position"`
	Mode     string          `json:"mode"`
	Data     json.RawMessage `json:"data"`
	Prev     string          `json:"prev"`
	Deltas   []wireDelta     `json:"deltas"`
}

// dialBoard opens the board on s, resuming after from when it is not nil.
func dialBoard(t *testing.T, name string, s *server, cookie string, from *boardClient) *boardClient {
	t.Helper()
	url := "ws://" + s.Addr() + "/api/v1/live/board"
	b := &boardClient{name: name, seen: map[uuid.UUID]time.Time{}, closed: make(chan struct{})}
	if from != nil {
		from.mu.Lock()
		b.last, b.seen = from.last, from.seen
		from.mu.Unlock()
		url += "?after=" + b.last.String()
	}
	conn, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Cookie": {cookie}, "Origin": {"http://" + s.Addr()}})
	if err != nil {
		t.Fatalf("%s: open the board: %v (%v)", name, err, resp)
	}
	b.conn = conn
	t.Cleanup(func() { conn.Close() })
	go b.read()
	deadline := time.Now().Add(20 * time.Second)
	for b.mode() == "" {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not synced within 20s", name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return b
}

func (b *boardClient) mode() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.synced
}

func (b *boardClient) read() {
	defer close(b.closed)
	for {
		_, raw, err := b.conn.ReadMessage()
		if err != nil {
			return
		}
		var m wireMsg
		if err := json.Unmarshal(raw, &m); err != nil {
			b.problem("undecodable message: %v", err)
			continue
		}
		now := time.Now()
		b.mu.Lock()
		switch m.Type {
		case "snapshot":
			at, err := eventstore.ParseCursor(m.Position)
			if err != nil {
				b.problems = append(b.problems, "snapshot position "+m.Position)
			}
			b.last = at
			b.note(m.Data, now)
		case "delta":
			b.apply(wireDelta{Prev: m.Prev, Position: m.Position, Data: m.Data}, now)
		case "deltas":
			for _, d := range m.Deltas {
				b.apply(d, now)
			}
		case "synced":
			b.synced = m.Mode
		}
		b.mu.Unlock()
	}
}

func (b *boardClient) problem(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// apply applies one delta; the caller holds b.mu. The server never sends
// one connection a gap or a duplicate: both are recorded as problems.
func (b *boardClient) apply(d wireDelta, now time.Time) {
	prev, err1 := eventstore.ParseCursor(d.Prev)
	at, err2 := eventstore.ParseCursor(d.Position)
	switch {
	case err1 != nil || err2 != nil:
		b.problems = append(b.problems, fmt.Sprintf("delta positions %q %q", d.Prev, d.Position))
		return
	case !cursorBefore(b.last, at):
		b.problems = append(b.problems, fmt.Sprintf("duplicate delta up to %s at %s", at, b.last))
		return
	case cursorBefore(b.last, prev):
		b.problems = append(b.problems, fmt.Sprintf("gap: delta from %s at %s", prev, b.last))
	}
	b.last = at
	b.note(d.Data, now)
}

// note records when each request was first on the board.
func (b *boardClient) note(data json.RawMessage, now time.Time) {
	var board struct {
		Requests []struct {
			RequestID uuid.UUID `json:"request_id"`
		} `json:"requests"`
	}
	if err := json.Unmarshal(data, &board); err != nil {
		b.problems = append(b.problems, "undecodable board: "+err.Error())
		return
	}
	for _, r := range board.Requests {
		if _, ok := b.seen[r.RequestID]; !ok {
			b.seen[r.RequestID] = now
		}
	}
}

func cursorBefore(a, b eventstore.Cursor) bool {
	return a.TxID < b.TxID || (a.TxID == b.TxID && a.Position < b.Position)
}

// waitFor waits until every client has shown every request.
func waitFor(t *testing.T, clients []*boardClient, ids []uuid.UUID, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, b := range clients {
		for {
			b.mu.Lock()
			missing := 0
			for _, id := range ids {
				if _, ok := b.seen[id]; !ok {
					missing++
				}
			}
			problems := b.problems
			b.mu.Unlock()
			if len(problems) > 0 {
				t.Fatalf("%s: %s", b.name, strings.Join(problems, "; "))
			}
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d requests not on the board within %s", b.name, missing, len(ids), within)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

func TestSeveralInstancesShareTheLiveBoardThroughNATSAndSurviveLosingTheRelay(t *testing.T) {
	url := natstest.URL(t)
	stream := natstest.Stream(t, url)
	logger := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	c := startCluster(t, 3, logger, "--bus", "nats", "--nats-url", url, "--nats-stream", stream)
	leader := c.leader(t, nil, 15*time.Second)
	for _, s := range c.instances {
		code, body := httpGet(t, "http://"+s.Addr()+"/readyz")
		want := fmt.Sprintf(`"relaying":%v`, s == leader)
		if code != http.StatusOK || !strings.Contains(body, want) || !strings.Contains(body, `"connected":true`) {
			t.Errorf("readyz of an instance = %d %s, want ready, connected to NATS and %s", code, body, want)
		}
	}

	var clients []*boardClient
	var dead *boardClient
	for i, s := range c.instances {
		b := dialBoard(t, fmt.Sprint("client of instance ", i), s, c.cookie, nil)
		clients = append(clients, b)
		if s == leader {
			dead = b
		}
	}
	var others []*server
	for _, s := range c.instances {
		if s != leader {
			others = append(others, s)
		}
	}

	// A command on an instance that does not relay reaches every board.
	var ids []uuid.UUID
	for range 3 {
		ids = append(ids, report(t, others[0]))
	}
	// Generous: other packages' transactions on the same PostgreSQL hold
	// the commit-safe log back for a while.
	waitFor(t, clients, ids, 30*time.Second)

	// The relaying instance stops. Commands keep coming, on both
	// survivors, while leadership moves.
	stopped := time.Now()
	c.stop(t, leader)
	for i := range 4 {
		ids = append(ids, report(t, others[i%2]))
	}
	next := c.leader(t, leader, 15*time.Second)
	t.Logf("the relay moved to another instance %s after the leader began to stop", time.Since(stopped).Round(time.Millisecond))
	select {
	case <-dead.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the stopped instance's websocket is still open")
	}
	var survivors []*boardClient
	for _, b := range clients {
		if b != dead {
			survivors = append(survivors, b)
		}
	}
	waitFor(t, survivors, ids, 30*time.Second)

	// Its client moves to a live instance and resumes from its last
	// position with the deltas it missed.
	moved := dialBoard(t, "moved client", next, c.cookie, dead)
	if moved.mode() != "resumed" {
		t.Errorf("the moved client synced by %q, want resumed from its position", moved.mode())
	}
	for range 3 {
		ids = append(ids, report(t, others[1]))
	}
	waitFor(t, append(survivors, moved), ids, 30*time.Second)
}
