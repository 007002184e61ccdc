package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/presente-dispatch/presente/infra/eventstore"
)

func newTestServer(t *testing.T, checks ...Check) *httptest.Server {
	t.Helper()
	return newEnv(t, envOptions{checks: checks, noUsers: true}).ts
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func passing(name string) Check {
	return Check{Name: name, Run: func(context.Context) (any, error) { return map[string]int{"n": 1}, nil }}
}

func TestReadyzAnswers200WhenEveryCheckPasses(t *testing.T) {
	ts := newTestServer(t, passing("database"), passing("migrations"))
	resp, body := get(t, ts.URL+"/readyz")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, body %s", resp.StatusCode, body)
	}
	var got struct {
		Status string
		Checks map[string]checkResult
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != "ready" || len(got.Checks) != 2 || !got.Checks["database"].OK {
		t.Errorf("body = %s", body)
	}
}

func TestReadyzAnswers503NamingTheFailedCheck(t *testing.T) {
	failing := Check{Name: "migrations", Run: func(context.Context) (any, error) {
		return nil, errors.New("the schema is at version 0, this build needs 1: run presente migrate")
	}}
	ts := newTestServer(t, passing("database"), failing)
	resp, body := get(t, ts.URL+"/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", resp.StatusCode)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if !strings.Contains(body, `"not_ready"`) || !strings.Contains(body, "run presente migrate") {
		t.Errorf("body = %s, want not_ready and the failing check's advice", body)
	}
}

func TestReadyzGivesUpOnACheckThatHangs(t *testing.T) {
	hangs := Check{Name: "database", Run: func(ctx context.Context) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	cfg := testConfig(t, &env{t: t}, envOptions{checks: []Check{hangs}})
	cfg.CheckTimeout = 50 * time.Millisecond
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", rec.Code)
	}
}

func TestHealthzAnswersWithoutConsultingChecks(t *testing.T) {
	broken := Check{Name: "database", Run: func(context.Context) (any, error) { return nil, errors.New("down") }}
	ts := newTestServer(t, broken)
	if resp, body := get(t, ts.URL+"/healthz"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Fatalf("healthz = %d %s", resp.StatusCode, body)
	}
}

func TestMetricsCountRequestsByRoute(t *testing.T) {
	ts := newTestServer(t)
	get(t, ts.URL+"/healthz")
	get(t, ts.URL+"/no/such/thing")
	_, body := get(t, ts.URL+"/metrics")
	for _, want := range []string{
		`presente_http_requests_total{code="200",route="GET /healthz"} 1`,
		`presente_http_requests_total{code="404",route="unmatched"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestUnknownPathsAnswerA404ErrorBody(t *testing.T) {
	ts := newTestServer(t)
	resp, body := get(t, ts.URL+"/api/v1/nothing")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"code":"not_found"`) {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("content type %q", got)
	}
}

func TestEveryResponseCarriesTheProtectiveHeaders(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/missing"} {
		resp, _ := get(t, ts.URL+path)
		for header, want := range map[string]string{
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"Cache-Control":           "no-store",
			"X-Frame-Options":         "DENY",
			"Content-Security-Policy": contentSecurityPolicy,
		} {
			if got := resp.Header.Get(header); got != want {
				t.Errorf("%s: %s = %q, want %q", path, header, got, want)
			}
		}
		if resp.Header.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS sent over plain HTTP", path)
		}
	}
}

func TestTheContentSecurityPolicyAllowsNoOtherOriginAndNoInlineCode(t *testing.T) {
	for _, forbidden := range []string{"http:", "https:", "*", "'unsafe-inline'", "'unsafe-eval'"} {
		if strings.Contains(contentSecurityPolicy, forbidden) {
			t.Errorf("the CSP contains %s", forbidden)
		}
	}
	for _, required := range []string{"default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"} {
		if !strings.Contains(contentSecurityPolicy, required) {
			t.Errorf("the CSP lacks %s", required)
		}
	}
}

func TestHSTSIsSentOverTLS(t *testing.T) {
	ts := newEnv(t, envOptions{tls: true, noUsers: true}).ts
	resp, err := ts.Client().Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
		t.Errorf("Strict-Transport-Security = %q over TLS", got)
	}
}

func TestErrorStatusMapsEachKindOfError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
		body string
	}{
		{"a concurrency conflict is 409", fmt.Errorf("claim: %w", &eventstore.ConcurrencyError{StreamID: uuid.New(), Expected: 1, Actual: 2}), http.StatusConflict, "conflict"},
		{"a client error is 400 with its own message", &Error{Code: "invalid", Message: "end is before start", Field: "end"}, http.StatusBadRequest, "invalid"},
		{"a timeout is 503", fmt.Errorf("load: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, "unavailable"},
		{"an unconfirmed append is 503 and says so", fmt.Errorf("append: %w", eventstore.ErrOutcomeUnknown), http.StatusServiceUnavailable, "outcome_unknown"},
		{"a closing store is 503", fmt.Errorf("append: %w", eventstore.ErrClosed), http.StatusServiceUnavailable, "unavailable"},
		{"a client that went away is not a server fault", fmt.Errorf("load: %w", context.Canceled), statusClientClosed, "cancelled"},
		{"a database that refuses connections is 503", fmt.Errorf("look up session: %w", &pgconn.ConnectError{}), http.StatusServiceUnavailable, "unavailable"},
		{"a database shutting down is 503", fmt.Errorf("load: %w", &pgconn.PgError{Code: "57P01", Message: "secret"}), http.StatusServiceUnavailable, "unavailable"},
		{"a database out of connections is 503", &pgconn.PgError{Code: "53300", Message: "secret"}, http.StatusServiceUnavailable, "unavailable"},
		{"a database out of disk is 503", &pgconn.PgError{Code: "53100", Message: "secret"}, http.StatusServiceUnavailable, "unavailable"},
		{"a lost connection is 503", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), http.StatusServiceUnavailable, "unavailable"},
		{"another database error is 500 without its text", &pgconn.PgError{Code: "42P01", Message: "secret relation"}, http.StatusInternalServerError, "internal"},
		{"anything else is 500 without its text", errors.New("secret internals"), http.StatusInternalServerError, "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := errorStatus(tt.err)
			if code != tt.code || body.Code != tt.body {
				t.Errorf("errorStatus = %d %s, want %d %s", code, body.Code, tt.code, tt.body)
			}
			if strings.Contains(body.Message, "secret") {
				t.Errorf("internal error text leaked to the client: %q", body.Message)
			}
		})
	}
}
