package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
)

func TestRebuildSwapsInFreshReadModels(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	env := envOf(map[string]string{"DATABASE_URL": dbURL, "PRESENTE_MASTER_KEY": keyring.GenerateMasterKey()})
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"rebuild"}, env, nil, &out, &errs); code != exitOK {
		t.Fatalf("rebuild every read model: exit %d: %s", code, errs.String())
	}
	for _, p := range readModels() {
		if !strings.Contains(out.String(), "rebuilt "+p.Name()+"\n") {
			t.Errorf("rebuild did not report %s:\n%s", p.Name(), out.String())
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"rebuild", "board"}, env, nil, &out, &errs); code != exitOK || out.String() != "rebuilt board\n" {
		t.Errorf("rebuild board: exit %d, %q %s", code, out.String(), errs.String())
	}
	errs.Reset()
	if code := run(context.Background(), []string{"rebuild", "bored"}, env, nil, &out, &errs); code == exitOK || !strings.Contains(errs.String(), "board, ") {
		t.Errorf("rebuild of an unknown read model: exit %d: %s; want a failure naming the read models", code, errs.String())
	}
}

// Two servers against one database: a command handled by one reaches a
// board open on the other, woken across processes by LISTEN/NOTIFY.
func TestACommandOnOneServerReachesTheBoardOnAnother(t *testing.T) {
	env := envOf(map[string]string{"XDG_CONFIG_HOME": t.TempDir(), "DATABASE_URL": pgtest.NewDatabase(t)})
	start := func(demo bool) *server {
		args := []string{"--addr", "127.0.0.1:0", "--env", "development"}
		if demo {
			args = append(args, "--demo")
		}
		cfg, err := parseConfig("serve", args, env, io.Discard, parseOptions{server: true})
		if err != nil {
			t.Fatal(err)
		}
		s, err := startServer(context.Background(), cfg, env, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.shutdown(5 * time.Second) })
		return s
	}
	one, two := start(true), start(false)
	signIn := func(s *server) string {
		body := fmt.Sprintf(`{"email":"dispatcher@demo.example.org","password":%q}`, demoPassword)
		resp, err := http.Post("http://"+s.Addr()+"/api/v1/session", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 1 {
			t.Fatalf("sign in on %s: %d", s.Addr(), resp.StatusCode)
		}
		return resp.Cookies()[0].Name + "=" + resp.Cookies()[0].Value
	}

	h := http.Header{"Cookie": {signIn(two)}, "Origin": {"http://" + two.Addr()}}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+two.Addr()+"/api/v1/live/board", h)
	if err != nil {
		t.Fatalf("open the board on the second server: %v", err)
	}
	defer ws.Close()
	read := func() map[string]any {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		var m map[string]any
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("read the board: %v", err)
		}
		return m
	}
	for m := read(); m["type"] != "synced"; m = read() {
	}

	req, _ := http.NewRequest("POST", "http://"+one.Addr()+"/api/v1/requests", strings.NewReader(
		`{"kind":"rapid_response","region":"East","needed":1,"meeting_point":"Corner","person":{"name":"Caller","phone":"+1 555 0100"}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cookie", signIn(one))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		RequestID string `json:"request_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created.RequestID == "" {
		t.Fatalf("receive a request on the first server: %d", resp.StatusCode)
	}
	sent := time.Now()
	for {
		m := read()
		if m["type"] != "delta" {
			t.Fatalf("got %v, want deltas", m)
		}
		raw, _ := json.Marshal(m["data"])
		if strings.Contains(string(raw), created.RequestID) {
			t.Logf("the request reached the other server's board %s after its command returned", time.Since(sent))
			return
		}
	}
}

// The coordinators' reports read the read models of the running server.
func TestServeAnswersTheReportsFromItsReadModels(t *testing.T) {
	env := envOf(map[string]string{"XDG_CONFIG_HOME": t.TempDir(), "DATABASE_URL": pgtest.NewDatabase(t)})
	cfg, err := parseConfig("serve", []string{"--addr", "127.0.0.1:0", "--env", "development", "--demo"}, env, io.Discard, parseOptions{server: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := startServer(context.Background(), cfg, env, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.shutdown(5 * time.Second) //nolint:errcheck // nothing to check here
	body := fmt.Sprintf(`{"email":"coordinator@demo.example.org","password":%q}`, demoPassword)
	resp, err := http.Post("http://"+s.Addr()+"/api/v1/session", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 1 {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	cookie := resp.Cookies()[0].Name + "=" + resp.Cookies()[0].Value
	for _, path := range []string{"/api/v1/reports/expiring", "/api/v1/reports/coverage", "/api/v1/audit/verification"} {
		req, _ := http.NewRequest("GET", "http://"+s.Addr()+path, nil)
		req.Header.Set("Cookie", cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s on the server = %d, want 200", path, resp.StatusCode)
		}
	}
}
