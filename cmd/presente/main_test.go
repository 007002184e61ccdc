package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/privacy"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/infra/credentials"
	"github.com/presente-dispatch/presente/infra/dispatch"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/password"
	"github.com/presente-dispatch/presente/infra/postgres"
	"github.com/presente-dispatch/presente/infra/postgres/pgtest"
	"github.com/presente-dispatch/presente/infra/sessions"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// publicURL is the public URL production tests run under.
const publicURL = "https://presente.example.org"

func TestConfigTakesFlagsOverEnvironmentOverDefaults(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantAddr string
		wantDB   string
	}{
		{"defaults", nil, map[string]string{"PRESENTE_PUBLIC_URL": publicURL}, defaultAddr, defaultDatabaseURL},
		{"environment", nil, map[string]string{"PRESENTE_ADDR": ":9000", "DATABASE_URL": "postgres://u@db:5432/p", "PRESENTE_PUBLIC_URL": publicURL}, ":9000", "postgres://u@db:5432/p"},
		{"flag beats environment", []string{"--addr", "127.0.0.1:9001"}, map[string]string{"PRESENTE_ADDR": ":9000", "PRESENTE_PUBLIC_URL": publicURL}, "127.0.0.1:9001", defaultDatabaseURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig("serve", tt.args, envOf(tt.env), io.Discard, parseOptions{server: true})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Addr != tt.wantAddr || cfg.DatabaseURL != tt.wantDB {
				t.Errorf("addr %q db %q, want %q %q", cfg.Addr, cfg.DatabaseURL, tt.wantAddr, tt.wantDB)
			}
			if cfg.Env != "production" || cfg.ShutdownTimeout != 15*time.Second {
				t.Errorf("env %q shutdown %v, want production and 15s", cfg.Env, cfg.ShutdownTimeout)
			}
			if cfg.Bus != "local" {
				t.Errorf("bus %q, want local by default", cfg.Bus)
			}
		})
	}
}

func TestConfigExplainsEveryInvalidSetting(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an address without a port", []string{"--addr", "localhost"}, "write host:port"},
		{"a port out of range", []string{"--addr", ":70000"}, "0 to 65535"},
		{"an unknown environment", []string{"--env", "prod"}, "use production or development"},
		{"an unknown log level", []string{"--log-level", "loud"}, "use debug, info, warn or error"},
		{"a URL naming no database", []string{"--database-url", "postgres://postgres@127.0.0.1:5432"}, "names no database"},
		{"a malformed URL", []string{"--database-url", "postgres://u:pw@[::1"}, "not a valid PostgreSQL URL"},
		{"a bad shutdown timeout", []string{"--shutdown-timeout", "soon"}, "write a duration"},
		{"production without a public URL", []string{"--public-url", ""}, "PRESENTE_PUBLIC_URL / --public-url is required in production"},
		{"a public URL with a path", []string{"--public-url", "https://example.org/presente"}, "no path"},
		{"a public URL of another scheme", []string{"--public-url", "ftp://example.org"}, "use http or https"},
		{"a plain-HTTP public URL in production", []string{"--public-url", "http://presente.example.org"}, "production needs https"},
		{"an allowed origin that is not a URL", []string{"--allowed-origins", "https://ok.example.org, nonsense"}, `PRESENTE_ALLOWED_ORIGINS has "nonsense"`},
		{"a trusted proxy that is not an address", []string{"--trusted-proxies", "10.0.0.0/8,proxy"}, `PRESENTE_TRUSTED_PROXIES has "proxy"`},
		{"a retention period of zero days", []string{"--retention-days", "0"}, "from 1 to 3650"},
		{"the demo in production", []string{"--demo"}, "--demo needs --env development"},
		{"a stray argument", []string{"now"}, `unexpected argument "now"`},
		{"an unknown bus", []string{"--bus", "kafka"}, "use local (one server) or nats"},
		{"a NATS URL of another scheme", []string{"--bus", "nats", "--nats-url", "http://u:pw@nats:4222"}, "write nats://host:4222"},
		{"a stream name JetStream refuses", []string{"--bus", "nats", "--nats-stream", "presente.events"}, "letters, digits, - and _ only"},
		{"an even number of stream replicas", []string{"--bus", "nats", "--nats-replicas", "2"}, "use 1, or 3 or 5"},
	}
	t.Run("several instances", func(t *testing.T) {
		cfg, err := parseConfig("serve", []string{"--bus", "nats", "--nats-replicas", "3"},
			envOf(map[string]string{"PRESENTE_PUBLIC_URL": publicURL, "NATS_URL": "nats://n1:4222,nats://n2:4222"}), io.Discard, parseOptions{server: true})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Bus != "nats" || cfg.NATSURL != "nats://n1:4222,nats://n2:4222" || cfg.NATSStream != "PRESENTE" || cfg.NATSReplicas != 3 {
			t.Errorf("bus %q url %q stream %q replicas %d", cfg.Bus, cfg.NATSURL, cfg.NATSStream, cfg.NATSReplicas)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("serve", tt.args, envOf(nil), io.Discard, parseOptions{server: true})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to say %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "pw@") {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
}

func TestUnknownCommandsAndBadFlagsExitWithUsage(t *testing.T) {
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"serv"}, envOf(nil), nil, io.Discard, &stderr); code != exitUsage {
		t.Errorf("unknown command: exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(stderr.String(), `unknown command "serv"`) {
		t.Errorf("stderr = %q", stderr.String())
	}
	if code := run(context.Background(), []string{"serve", "--port", "1"}, envOf(nil), nil, io.Discard, io.Discard); code != exitUsage {
		t.Errorf("unknown flag: exit %d, want %d", code, exitUsage)
	}
	if code := run(context.Background(), []string{"migrate", "-h"}, envOf(nil), nil, io.Discard, io.Discard); code != exitOK {
		t.Errorf("-h: exit %d, want 0", code)
	}
}

// missingDatabase returns the URL of a database that does not exist yet and
// will be dropped when the test ends.
func missingDatabase(t *testing.T) string {
	t.Helper()
	u := pgtest.NewDatabase(t)
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := strings.TrimPrefix(parsed.Path, "/")
	if _, err := admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	return u
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeCreatesMigratesAndAnswersProbes(t *testing.T) {
	dbURL := missingDatabase(t)
	env := envOf(map[string]string{"PRESENTE_MASTER_KEY": keyring.GenerateMasterKey(), "PRESENTE_PUBLIC_URL": publicURL})
	cfg, err := parseConfig("serve", []string{"--addr", "127.0.0.1:0", "--database-url", dbURL}, env, io.Discard, parseOptions{server: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := startServer(context.Background(), cfg, env, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.shutdown(5 * time.Second) //nolint:errcheck // also checked below
	base := "http://" + s.Addr()

	if code, body := httpGet(t, base+"/healthz"); code != 200 {
		t.Errorf("healthz = %d %s", code, body)
	}
	code, body := httpGet(t, base+"/readyz")
	if code != 200 || !strings.Contains(body, `"migrations":{"ok":true`) {
		t.Errorf("readyz = %d %s", code, body)
	}
	_, metrics := httpGet(t, base+"/metrics")
	for _, want := range []string{"presente_db_pool_connections", "presente_db_oldest_transaction_seconds", "go_goroutines", `presente_http_requests_total{code="200",route="GET /readyz"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The database disappears: the server stays up and says it is not ready.
	parsed, _ := url.Parse(dbURL)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{strings.TrimPrefix(parsed.Path, "/")}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 503 || !strings.Contains(body, "the database does not answer") {
		t.Errorf("readyz without a database = %d %s, want 503 naming the database", code, body)
	}
	if code, _ := httpGet(t, base+"/healthz"); code != 200 {
		t.Errorf("healthz without a database = %d, want 200: the process is still up", code)
	}
	if err := s.shutdown(5 * time.Second); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestMigrateThenVerifyReportsAnIntactAndThenATamperedLog(t *testing.T) {
	dbURL := missingDatabase(t)
	ctx := context.Background()
	env := envOf(map[string]string{"DATABASE_URL": dbURL})
	var out bytes.Buffer
	if code := run(ctx, []string{"migrate"}, env, nil, &out, &out); code != exitOK {
		t.Fatalf("migrate exit %d: %s", code, out.String())
	}
	latest, err := postgres.LatestVersion()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "created the database") || !strings.Contains(out.String(), fmt.Sprintf("applied %d migration(s)", latest)) {
		t.Errorf("migrate said %q", out.String())
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	stream := uuid.New()
	for v := range 3 {
		if _, err := conn.Exec(ctx, `SELECT append_events(ARRAY[$1::uuid], ARRAY['note'], ARRAY[$2::bigint], ARRAY[1], ARRAY[gen_random_uuid()],
			ARRAY['NoteAdded'], ARRAY[1], ARRAY[$3::text], ARRAY['{"actor":"system:test"}'], now())`, stream, v, `{"text":"step `+string(rune('a'+v))+`"}`); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	anchor := filepath.Join(t.TempDir(), "anchor.json")
	if code := run(ctx, []string{"verify", "--save-anchor", anchor}, env, nil, &out, &out); code != exitOK {
		t.Fatalf("verify of an intact log: exit %d: %s", code, out.String())
	}
	if !strings.Contains(out.String(), "verified 3 events in 1 streams") || !strings.Contains(out.String(), "OK") {
		t.Errorf("verify said %q", out.String())
	}

	for _, sql := range []string{
		"ALTER TABLE events DISABLE TRIGGER events_append_only",
		`UPDATE events SET data = '{"text":"nothing happened"}' WHERE stream_version = 2`,
		"ALTER TABLE events ENABLE TRIGGER events_append_only",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	if code := run(ctx, []string{"verify", "--anchor", anchor}, env, nil, &out, &out); code != exitFailure {
		t.Fatalf("verify against the anchor: exit %d, want %d: %s", code, exitFailure, out.String())
	}
	if !strings.Contains(out.String(), "TAMPERED") || !strings.Contains(out.String(), "checked against 1 anchored") {
		t.Errorf("verify --anchor said %q", out.String())
	}
	out.Reset()
	if code := run(ctx, []string{"verify", "--json"}, env, nil, &out, &out); code != exitFailure {
		t.Fatalf("verify of a tampered log: exit %d, want %d: %s", code, exitFailure, out.String())
	}
	var report struct {
		Breaks []struct {
			StreamID      uuid.UUID `json:"stream_id"`
			StreamVersion int64     `json:"stream_version"`
		}
	}
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("verify --json printed %q: %v", out.String(), err)
	}
	if len(report.Breaks) != 1 || report.Breaks[0].StreamID != stream || report.Breaks[0].StreamVersion != 2 {
		t.Errorf("breaks = %+v, want one at version 2 of %s", report.Breaks, stream)
	}
}

// TestTheBinaryShutsDownGracefullyOnSIGTERM runs the real executable: it
// must log where it listens, serve, and exit 0 on SIGTERM.
func TestTheBinaryShutsDownGracefullyOnSIGTERM(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "presente")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+pgtest.NewDatabase(t), "PRESENTE_ENV=production", "PRESENTE_PUBLIC_URL="+publicURL,
		"PRESENTE_MASTER_KEY="+keyring.GenerateMasterKey())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck // already exited on success

	lines := make(chan map[string]any, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var entry map[string]any
			if err := json.Unmarshal(sc.Bytes(), &entry); err != nil {
				entry = map[string]any{"msg": "NOT JSON: " + sc.Text()}
			}
			lines <- entry
		}
	}()
	next := func(msg string) map[string]any {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case e, ok := <-lines:
				if !ok {
					t.Fatalf("the server exited before logging %q", msg)
				}
				if strings.HasPrefix(e["msg"].(string), "NOT JSON") {
					t.Errorf("production log line is not JSON: %v", e["msg"])
				}
				if e["msg"] == msg {
					return e
				}
			case <-timeout:
				t.Fatalf("no %q log line within 30s", msg)
			}
		}
	}
	serving := next("serving")
	if code, _ := httpGet(t, serving["url"].(string)+"/readyz"); code != 200 {
		t.Errorf("readyz = %d", code)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next("stopped")
	for range lines { // read to EOF before Wait closes the pipe
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
}

func TestProductionRefusesToServeWithoutAMasterKey(t *testing.T) {
	var stderr bytes.Buffer
	env := envOf(map[string]string{"DATABASE_URL": pgtest.NewDatabase(t), "PRESENTE_PUBLIC_URL": publicURL})
	code := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0"}, env, nil, io.Discard, &stderr)
	if code != exitFailure || !strings.Contains(stderr.String(), "production needs a master key") {
		t.Fatalf("exit %d, stderr %s; want a refusal naming the master key", code, stderr.String())
	}
}

func TestDevelopmentMakesAndReusesALocalMasterKey(t *testing.T) {
	dir := t.TempDir()
	env := envOf(map[string]string{"XDG_CONFIG_HOME": dir})
	cfg := Config{Env: "development"}
	first, err := masterKey(cfg, env, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "presente", "development-master.key")
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("development key file %s: %v, mode %v; want mode 600", path, err, info.Mode().Perm())
	}
	second, err := masterKey(cfg, env, zap.NewNop())
	if err != nil || !first.Equal(second) {
		t.Errorf("a second start used another key (%v)", err)
	}
}

func TestKeygenWritesAPrivateKeyAndNeverOverwritesOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	var out bytes.Buffer
	if code := run(context.Background(), []string{"keygen", "--out", path}, envOf(nil), nil, &out, &out); code != exitOK {
		t.Fatalf("keygen exit %d: %s", code, out.String())
	}
	if _, err := keyring.ReadMasterKeyFile(path); err != nil {
		t.Fatalf("the written key does not load: %v", err)
	}
	before, _ := os.ReadFile(path)
	if code := run(context.Background(), []string{"keygen", "--out", path}, envOf(nil), nil, io.Discard, io.Discard); code == exitOK {
		t.Error("keygen overwrote an existing master key")
	}
	if code := run(context.Background(), []string{"keygen", "--out", path, "--if-missing"}, envOf(nil), nil, io.Discard, io.Discard); code != exitOK {
		t.Error("keygen --if-missing failed on an existing key")
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the existing master key changed")
	}
	out.Reset()
	if code := run(context.Background(), []string{"keygen"}, envOf(nil), nil, &out, io.Discard); code != exitOK {
		t.Fatal("keygen to stdout failed")
	}
	if _, err := keyring.ParseMasterKey(out.String()); err != nil {
		t.Errorf("printed key does not parse: %v", err)
	}
}

func TestForgetDestroysTheKeyAndRecordsIt(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(t)
	env := envOf(map[string]string{"DATABASE_URL": dbURL})
	subject := uuid.New()

	pool := pgtest.NewPoolFor(t, dbURL)
	master, _ := keyring.ParseMasterKey(keyring.GenerateMasterKey())
	keys, err := keyring.New(pool, master)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.DataKey(ctx, subject); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if code := run(ctx, []string{"forget", "--reason", "Rosa asked us", subject.String()}, env, nil, io.Discard, io.Discard); code == exitOK {
		t.Error("forget accepted a free-text reason, which could name the person")
	}
	if code := run(ctx, []string{"forget", "--reason", "legal", subject.String()}, env, nil, &out, &out); code != exitOK {
		t.Fatalf("forget exit %d: %s", code, out.String())
	}
	if _, err := keys.DataKey(ctx, subject); !errors.Is(err, keyring.ErrForgotten) {
		t.Errorf("after forget the key is still there: %v", err)
	}
	var n int
	var reason string
	if err := pool.QueryRow(ctx, `SELECT count(*), max(metadata->>'reason') FROM events WHERE stream_id = $1 AND event_type = 'SubjectForgotten'`, privacy.StreamID(subject)).Scan(&n, &reason); err != nil || n != 1 || reason != "legal" {
		t.Errorf("SubjectForgotten events: %d with reason %q (%v), want 1", n, reason, err)
	}
	out.Reset()
	if code := run(ctx, []string{"forget", subject.String()}, env, nil, &out, &out); code != exitOK || !strings.Contains(out.String(), "already forgotten") {
		t.Errorf("forgetting twice: exit %d, %s", code, out.String())
	}
	if code := run(ctx, []string{"forget", "not-a-uuid"}, env, nil, io.Discard, io.Discard); code != exitFailure {
		t.Errorf("forget of a malformed id: exit %d", code)
	}
}

// notPersonal lists every string field of a stored event type that is not
// personal data, with why. Any other string field must carry a pii tag:
// TestEveryStoredStringIsDeclaredPersonalOrListedAsNot fails otherwise.
var notPersonal = map[string]bool{
	"AccountRegistered.role":                 true, // one of four role names
	"AccountLanguageChosen.language":         true, // the tag of a catalog the app has (en, es), the account holder's screen language
	"AccountRoleChanged.from":                true, // a role name
	"AccountRoleChanged.to":                  true, // a role name
	"InvitationCreated.role":                 true, // a role name
	"CertificationGranted.certification":     true, // a certification's code name (rapid_response)
	"CertificationRevoked.certification":     true, // a certification's code name
	"VolunteerCommitted.kind":                true, // assignment or shift
	"VolunteerProfileChanged.languages":      true, // language tags and levels (es, fluent)
	"VolunteerProfileChanged.regions":        true, // coarse regions the volunteer serves (a county, a neighborhood), never an address
	"VolunteerRegistered.languages":          true, // language tags and levels
	"VolunteerRegistered.regions":            true, // coarse regions, never an address
	"AlertSent.region":                       true, // a coarse region
	"AssignmentChanged.status":               true, // an assignment status code
	"RequestReceived.certifications":         true, // certification code names
	"RequestReceived.kind":                   true, // accompaniment or rapid_response
	"RequestReceived.languages":              true, // language tags
	"RequestReceived.priority":               true, // normal, high or urgent
	"RequestReceived.region":                 true, // a coarse region, never an address (the meeting point and address are sealed)
	"RequestReceived.sub_kind":               true, // a sub-kind code (court_hearing)
	"RequestReceived.team_certifications":    true, // certification code names
	"RequestResolved.outcome":                true, // an outcome code from request.Outcomes
	"RequestTriaged.priority":                true, // a priority code
	"ShiftScheduled.languages":               true, // language tags
	"ShiftScheduled.place":                   true, // the organization's venue (a courthouse, the welcome center), not a person's address
	"ShiftScheduled.region":                  true, // a coarse region
	"ShiftScheduled.requires":                true, // certification code names
	"ShiftScheduled.role":                    true, // what volunteers do on the shift (court watch, hotline)
	"VerificationRecorded.outcome":           true, // a verification outcome code
	"CourseAdded.certification":              true, // a certification code name
	"CourseAdded.name":                       true, // a course title (Know your rights)
	"CourseChanged.name":                     true, // a course title
	"TrainingSessionScheduled.certification": true, // a certification code name
	"TrainingSessionScheduled.place":         true, // the organization's venue, not a person's address
	"OrganizationTimeZoneSet.time_zone":      true, // an IANA zone name
}

func TestEveryStoredStringIsDeclaredPersonalOrListedAsNot(t *testing.T) {
	registry, err := newRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if undeclared := registry.UndeclaredStrings(notPersonal); len(undeclared) > 0 {
		t.Errorf("these fields could hold personal data: tag them pii:\"<subject field>\" or list them in notPersonal with why: %v", undeclared)
	}
	if !registry.HasPersonalData() {
		t.Error("the registry declares no personal data at all: the account email should be declared")
	}
}

func TestForgettingAnAccountHolderDoesNotCollideWithTheirAccountStream(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(t)
	pool := pgtest.NewPoolFor(t, dbURL)
	master, _ := keyring.ParseMasterKey(keyring.GenerateMasterKey())
	keys, err := keyring.New(pool, master)
	if err != nil {
		t.Fatal(err)
	}
	registry, err := newRegistry()
	if err != nil {
		t.Fatal(err)
	}
	store, err := eventstore.New(pool, registry, eventstore.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	user := uuid.New()
	if _, err := eventstore.Execute(ctx, store, account.Decider, user,
		account.Command(account.Register{UserID: user, Email: "vol@example.org", Role: account.Volunteer}),
		eventstore.Metadata{Actor: "system:test"}); err != nil {
		t.Fatal(err)
	}
	if code := run(ctx, []string{"forget", user.String()}, envOf(map[string]string{"DATABASE_URL": dbURL}), nil, io.Discard, io.Discard); code != exitOK {
		t.Fatalf("forget exit %d", code)
	}
	events, _, err := store.Load(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	if got := events[0].Event.(account.Registered); got.Email != eventstore.Forgotten || got.Role != account.Volunteer {
		t.Errorf("after forgetting, the account reads %+v; want the email forgotten and the role kept", got)
	}
}

func TestUserAddCreatesAnAccountWhoseSecretsAreNeverStoredInTheClear(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(t)
	masterText := keyring.GenerateMasterKey()
	env := envOf(map[string]string{"DATABASE_URL": dbURL, "PRESENTE_MASTER_KEY": masterText})
	const pw = "una contraseña bastante larga"

	var out, errs bytes.Buffer
	code := run(ctx, []string{"user", "add", "--role", "admin", "--email", "Coord@Example.org", "--password-stdin"}, env,
		strings.NewReader(pw+"\n"), &out, &errs)
	if code != exitOK {
		t.Fatalf("user add exit %d: %s %s", code, out.String(), errs.String())
	}
	fields := strings.Fields(out.String())
	userID, err := uuid.Parse(fields[len(fields)-1])
	if err != nil {
		t.Fatalf("user add said %q: want the new account's id last", out.String())
	}

	pool := pgtest.NewPoolFor(t, dbURL)
	master, _ := keyring.ParseMasterKey(masterText)
	found, hash, err := credentials.New(pool, master).Lookup(ctx, "coord@example.org")
	if err != nil || found != userID {
		t.Fatalf("Lookup = %s, %v; want %s", found, err, userID)
	}
	if ok, _, err := password.Verify(pw, hash); err != nil || !ok {
		t.Errorf("the stored hash does not verify the password: %v", err)
	}
	var dumpText string
	if err := pool.QueryRow(ctx, `SELECT string_agg(data::text || metadata::text, ' ') || (SELECT string_agg(password_hash || encode(email_index, 'hex'), ' ') FROM credentials) FROM events`).Scan(&dumpText); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"coord@example.org", "Coord@Example.org", pw} {
		if strings.Contains(dumpText, secret) {
			t.Errorf("%q is stored in the clear", secret)
		}
	}
	if !strings.Contains(dumpText, `"role": "admin"`) {
		t.Errorf("the AccountRegistered event is missing: %s", dumpText)
	}

	// The same email again is refused; so is a short password or a flag password.
	for _, tt := range []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"a taken email", []string{"--role", "volunteer", "--email", "coord@example.org", "--password-stdin"}, pw, "already uses this email"},
		{"a short password", []string{"--role", "volunteer", "--email", "new@example.org", "--password-stdin"}, "short", "at least 12"},
		{"no --password-stdin", []string{"--role", "volunteer", "--email", "new@example.org"}, "", "--password-stdin is required"},
		{"an unknown role", []string{"--role", "boss", "--email", "new@example.org", "--password-stdin"}, pw, "use admin, coordinator"},
		{"a malformed email", []string{"--role", "volunteer", "--email", "nobody", "--password-stdin"}, pw, "not an email address"},
		{"an empty stdin", []string{"--role", "volunteer", "--email", "new@example.org", "--password-stdin"}, "", "no password on standard input"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var errs bytes.Buffer
			code := run(ctx, append([]string{"user", "add"}, tt.args...), env, strings.NewReader(tt.stdin), io.Discard, &errs)
			if code == exitOK || !strings.Contains(errs.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want a refusal saying %q", code, errs.String(), tt.want)
			}
		})
	}

	// Forgetting the account holder removes the way to sign in and ends
	// their sessions.
	sessionStore := sessions.New(pool, sessions.Options{})
	token, _, err := sessionStore.Create(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	if code := run(ctx, []string{"forget", userID.String()}, env, nil, io.Discard, io.Discard); code != exitOK {
		t.Fatalf("forget exit %d", code)
	}
	if _, _, err := credentials.New(pool, master).Lookup(ctx, "coord@example.org"); !errors.Is(err, credentials.ErrNotFound) {
		t.Errorf("after forget, Lookup err = %v, want ErrNotFound", err)
	}
	if _, err := sessionStore.Lookup(ctx, token); !errors.Is(err, sessions.ErrInvalid) {
		t.Errorf("after forget, the session still works: %v", err)
	}
}

func TestUserAddReclaimsCredentialsLeftWithoutAnAccount(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(t)
	masterText := keyring.GenerateMasterKey()
	master, _ := keyring.ParseMasterKey(masterText)
	pool := pgtest.NewPoolFor(t, dbURL)
	// What a crash between storing credentials and recording the account leaves.
	if err := credentials.New(pool, master).Create(ctx, uuid.New(), "orphan@example.org", "$argon2id$left-behind"); err != nil {
		t.Fatal(err)
	}
	// Left behind by a crash long enough ago that no creation is under way.
	if _, err := pool.Exec(ctx, `UPDATE credentials SET updated_at = now() - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	env := envOf(map[string]string{"DATABASE_URL": dbURL, "PRESENTE_MASTER_KEY": masterText})
	var errs bytes.Buffer
	code := run(ctx, []string{"user", "add", "--role", "volunteer", "--email", "orphan@example.org", "--password-stdin"}, env,
		strings.NewReader("a long enough password\n"), io.Discard, &errs)
	if code != exitOK {
		t.Fatalf("user add over orphaned credentials: exit %d: %s", code, errs.String())
	}
	_, hash, err := credentials.New(pool, master).Lookup(ctx, "orphan@example.org")
	if err != nil || !strings.HasPrefix(hash, "$argon2id$v=19$") {
		t.Errorf("Lookup = %q, %v; want the new account's real hash", hash, err)
	}
}

func TestTheDemoOrganizationSignsInAndOpensTheLiveChannel(t *testing.T) {
	dir := t.TempDir()
	env := envOf(map[string]string{"XDG_CONFIG_HOME": dir, "DATABASE_URL": pgtest.NewDatabase(t)})
	cfg, err := parseConfig("serve", []string{"--addr", "127.0.0.1:0", "--env", "development", "--demo"}, env, io.Discard, parseOptions{server: true})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logs), zapcore.InfoLevel))
	s, err := startServer(context.Background(), cfg, env, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer s.shutdown(5 * time.Second) //nolint:errcheck // a failed shutdown fails no assertion here
	if !strings.Contains(logs.String(), "dispatcher@demo.example.org") || !strings.Contains(logs.String(), demoPassword) {
		t.Errorf("the demo's accounts are not announced in the log:\n%s", logs.String())
	}
	base := "http://" + s.Addr()
	body := fmt.Sprintf(`{"email":"dispatcher@demo.example.org","password":%q}`, demoPassword)
	resp, err := http.Post(base+"/api/v1/session", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 1 {
		t.Fatalf("demo sign-in: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	cookie := resp.Cookies()[0]
	h := http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}, "Origin": {"http://" + s.Addr()}}
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr()+"/api/v1/live", h)
	if err != nil {
		t.Fatalf("the live channel from the server's own page: %v", err)
	}
	defer conn.Close()
	if _, hello, err := conn.ReadMessage(); err != nil || !strings.Contains(string(hello), `"role":"dispatcher"`) {
		t.Errorf("hello = %s, %v", hello, err)
	}
	// The board has something on it: the urgent report finds on-call
	// responders, and the demo volunteer has a record of their own.
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Cookie", cookie.Name+"="+cookie.Value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	urgent := demoID("open request 2")
	if code, body := get("/api/v1/requests/" + urgent.String() + "/matches"); code != http.StatusOK || !strings.Contains(body, `"volunteer_id"`) {
		t.Errorf("matches for the demo's urgent report = %d %s, want on-call responders", code, body)
	}
	if code, body := get("/api/v1/volunteers/" + demoID("volunteer Marisol").String()); code != http.StatusOK || !strings.Contains(body, "Marisol") {
		t.Errorf("a demo volunteer = %d %s", code, body)
	}
	// The read models follow the log: the demo's events are on the board,
	// and the next command reaches it too.
	if code, body := get("/readyz"); code != http.StatusOK || !strings.Contains(body, `"read_models":{"ok":true`) {
		t.Errorf("readyz after the demo = %d %s", code, body)
	}
	waitForBoard := func(what string, ok func(n int) bool) {
		t.Helper()
		// Generous: in a test run, other packages' transactions on the
		// same PostgreSQL hold the commit-safe log back for a while.
		deadline := time.Now().Add(20 * time.Second)
		for {
			var n int
			if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM projections.board_requests`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if ok(n) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the board holds %d requests", what, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitForBoard("after the demo", func(n int) bool { return n == 5 })
	ds := dispatch.New(s.store, dispatch.Options{})
	if err := ds.ReceiveRequest(context.Background(), eventstore.Metadata{Actor: "system:test"}, request.Receive{RequestID: uuid.New(),
		Kind: request.RapidResponse, Window: domain.Window{Start: time.Now(), End: time.Now().Add(time.Hour)}, Region: "East", Needed: 1,
		Priority: request.Urgent, PersonID: uuid.New(), MeetingPoint: "Corner"}); err != nil {
		t.Fatal(err)
	}
	waitForBoard("after a new report", func(n int) bool { return n == 6 })
	// Serving again seeds nothing twice.
	if err := s.shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	again, err := startServer(context.Background(), cfg, env, zap.NewNop())
	if err != nil {
		t.Fatalf("a second start with the demo already seeded: %v", err)
	}
	_ = again.shutdown(5 * time.Second)
}
