package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/invitation"
	"github.com/presente-dispatch/presente/domain/organization"
	"github.com/presente-dispatch/presente/domain/privacy"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/retention"
	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/domain/training"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/accounts"
	"github.com/presente-dispatch/presente/infra/bus"
	"github.com/presente-dispatch/presente/infra/dispatch"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/idempotency"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
	infraprivacy "github.com/presente-dispatch/presente/infra/privacy"
	"github.com/presente-dispatch/presente/infra/testclock"
	"github.com/presente-dispatch/presente/projections"
	"github.com/presente-dispatch/presente/projections/board"
	"github.com/presente-dispatch/presente/projections/metrics"
	"github.com/presente-dispatch/presente/projections/roster"
	"github.com/presente-dispatch/presente/projections/shiftboard"
	"github.com/presente-dispatch/presente/projections/timeline"
	"github.com/presente-dispatch/presente/web/feed"
	"github.com/presente-dispatch/presente/web/live"
)

// testPassword is every test account's password.
const testPassword = "correct horse battery staple"

// env is a whole web server over a fresh real database, with one signed-in
// user per role.
type env struct {
	t        testing.TB
	ts       *httptest.Server
	server   *Server
	dbURL    string
	pool     *pgxpool.Pool
	store    *eventstore.Store
	accounts *accounts.Service
	hub      *live.Hub
	feed     *feed.Feed
	listener net.Listener // set before the server when opts.browser
	throttle *testclock.Clock
	users    map[account.Role]*user
}

// user is a test account and its session cookie.
type user struct {
	id     uuid.UUID
	email  string
	cookie string // "name=value"
}

// envOptions adjust the server an env runs.
type envOptions struct {
	checks []Check
	logger *zap.Logger
	tls    bool
	edit   func(*Config)
	// noUsers skips creating and signing in the four test users.
	noUsers bool
	// browser serves on a loopback address known before the server is
	// built, which is then the public URL and an allowed origin, as a
	// browser opening the app needs.
	browser bool
}

// testConfig wires real components over a fresh database.
func testConfig(t testing.TB, e *env, opts envOptions) Config {
	t.Helper()
	ctx := context.Background()
	e.dbURL = pgtest.NewDatabase(t)
	e.pool = pgtest.NewPoolFor(t, e.dbURL)
	master, err := keyring.ParseMasterKey(keyring.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.New(e.pool, master)
	if err != nil {
		t.Fatal(err)
	}
	registry := eventstore.NewRegistry()
	for _, ev := range slices.Concat(account.Events, invitation.Events, privacy.Events, retention.Events,
		volunteer.Events, shift.Events, request.Events, training.Events, organization.Events) {
		if err := registry.Register(ev); err != nil {
			t.Fatal(err)
		}
	}
	e.store, err = eventstore.New(e.pool, registry, eventstore.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.store.Close)
	e.accounts, err = accounts.New(e.pool, e.store, master, accounts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ret, err := infraprivacy.NewRetention(e.pool, e.store, infraprivacy.RetentionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	logger := opts.logger
	if logger == nil {
		logger = zap.NewNop()
	}
	public := &url.URL{Scheme: "http", Host: "presente.test"}
	if e.listener != nil {
		public = &url.URL{Scheme: "http", Host: e.listener.Addr().String()}
	}
	e.hub = live.New(live.Options{Logger: logger, AllowedOrigins: []string{Origin(public)},
		Revalidate: func(ctx context.Context, id uuid.UUID) (string, error) {
			role, err := e.accounts.Revalidate(ctx, id)
			return string(role), err
		}, RevalidateEvery: time.Hour})
	t.Cleanup(func() { _ = e.hub.Shutdown(ctx) })
	e.throttle = testclock.New(time.Date(2026, 11, 23, 6, 40, 0, 0, time.UTC))
	dispatcher := dispatch.New(e.store, dispatch.Options{Clock: e.throttle.Now})
	e.feed = startFeed(t, e.pool, e.store, registry, e.hub, dispatcher)
	reg := prometheus.NewRegistry()
	return Config{
		Logger: logger, Checks: opts.checks, Gatherer: reg, Registerer: reg,
		Accounts: e.accounts,
		Forget: func(ctx context.Context, subject uuid.UUID, meta eventstore.Metadata) (bool, error) {
			return infraprivacy.Forget(ctx, e.pool, e.store, subject, meta)
		},
		Retention:   ret,
		Dispatch:    dispatcher,
		Feed:        e.feed,
		Idempotency: idempotency.New(e.pool, master, idempotency.Options{}),
		Hub:         e.hub,
		PublicURL:   public,
		Throttle:    ThrottleOptions{Clock: e.throttle.Now},
		ReadModels:  e.pool,
		Verify: func(ctx context.Context) (eventstore.VerifyReport, error) {
			return e.store.Verify(ctx, nil)
		},
	}
}

// newEnv starts a server and signs in one user per role.
func newEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	e := &env{t: t, users: map[account.Role]*user{}}
	if opts.browser {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		e.listener = ln
	}
	cfg := testConfig(t, e, opts)
	if opts.edit != nil {
		opts.edit(&cfg)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.server = s
	switch {
	case opts.tls:
		e.ts = httptest.NewTLSServer(s)
	case e.listener != nil:
		e.ts = httptest.NewUnstartedServer(s)
		e.ts.Listener.Close()
		e.ts.Listener = e.listener
		e.ts.Start()
	default:
		e.ts = httptest.NewServer(s)
	}
	t.Cleanup(e.ts.Close)
	if !opts.noUsers {
		for _, role := range account.Roles {
			e.users[role] = e.newUser(role)
		}
	}
	return e
}

// newUser creates an account with role and signs it in.
func (e *env) newUser(role account.Role) *user {
	e.t.Helper()
	u := &user{email: string(role) + "-" + uuid.NewString()[:8] + "@example.org"}
	id, err := e.accounts.Create(context.Background(), accounts.NewAccount{Email: u.email, Role: role, Password: testPassword},
		eventstore.Metadata{Actor: "system:test"})
	if err != nil {
		e.t.Fatal(err)
	}
	u.id = id
	resp := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": u.email, "password": testPassword})
	if resp.status != http.StatusOK {
		e.t.Fatalf("sign in as %s: %d %s", role, resp.status, resp.body)
	}
	u.cookie = resp.cookie
	return u
}

// answer is an HTTP response, read.
type answer struct {
	status int
	header http.Header
	body   string
	cookie string // the session cookie set, "name=value"
}

// errorCode is the answer's error code, if it is an error.
func (a answer) errorCode() string {
	var body struct{ Error Error }
	_ = json.Unmarshal([]byte(a.body), &body)
	return body.Error.Code
}

// do sends a request as u (anonymous when nil) with body as JSON.
func (e *env) do(u *user, method, path string, body any, headers ...string) answer {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if u != nil {
		req.Header.Set("Cookie", u.cookie)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(raw)}
	observe(req, a)
	for _, c := range resp.Cookies() {
		if (c.Name == sessionCookie || c.Name == insecureSessionCookie) && c.Value != "" {
			a.cookie = c.Name + "=" + c.Value
		}
	}
	return a
}

// pgtestAssertAbsent dumps the database and checks that no secret is in it.
func pgtestAssertAbsent(t *testing.T, when, dbURL string, secrets map[string]string) {
	t.Helper()
	dump := pgtest.Dump(t, dbURL)
	if !bytes.Contains(dump, []byte("pii:v1:")) {
		t.Fatalf("%s: the dump holds no sealed personal data at all, so it proves nothing", when)
	}
	pgtest.AssertAbsent(t, when, dump, secrets)
}

// decode unmarshals a JSON answer body into v.
func decode(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
}

// startFeed runs the live views' pipeline as serve does: the read models
// they read, woken at every commit, and the relay and feed behind them.
func startFeed(t testing.TB, pool *pgxpool.Pool, store *eventstore.Store, registry *eventstore.Registry, hub *live.Hub,
	d *dispatch.Service) *feed.Feed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	runner, err := projections.New(pool, store.ReadAllSealed, []projections.Projector{board.New(), shiftboard.New()},
		projections.Options{PollInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	runnerDone := runner.Start(ctx)
	go bus.OnCommit(ctx, store, nil, runner.Wake)
	// The reports' read models follow in a runner of their own, so the
	// live views never wait for them.
	reports, err := projections.New(pool, store.ReadAllSealed, []projections.Projector{timeline.New(), metrics.New(), roster.New()},
		projections.Options{PollInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := reports.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	reportsDone := reports.Start(ctx)
	go bus.OnCommit(ctx, store, nil, reports.Wake)
	f, feedDone, err := feed.Start(ctx, feed.Config{Hub: hub, Pool: pool, Registry: registry, ReadModels: runner,
		Assignments: d.AssignmentsOf}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-feedDone
		<-runnerDone
		<-reportsDone
	})
	return f
}
