// Package web is Presente's HTTP surface: health and readiness probes,
// Prometheus metrics and, as the product grows, the JSON API, websockets
// and the browser UI. Handlers translate between HTTP and the layers below;
// every error becomes an HTTP answer in exactly one place (errors.go).
package web

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/accounts"
	"github.com/presente-dispatch/presente/infra/dispatch"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/idempotency"
	"github.com/presente-dispatch/presente/infra/privacy"
	"github.com/presente-dispatch/presente/projections"
	"github.com/presente-dispatch/presente/web/feed"
	"github.com/presente-dispatch/presente/web/live"
	"github.com/presente-dispatch/presente/web/ui"
)

// Check is one readiness condition, such as "the database answers".
// Run returns details to show operators, and an error when not ready.
// Details and errors must not contain secrets or personal data.
type Check struct {
	Name string
	Run  func(ctx context.Context) (detail any, err error)
}

// Config is what the server needs from the outside.
type Config struct {
	Logger *zap.Logger
	// Checks decide readiness; /readyz answers 200 only when all pass.
	Checks []Check
	// Gatherer is served on /metrics.
	Gatherer prometheus.Gatherer
	// Registerer receives the HTTP metrics; none when nil.
	Registerer prometheus.Registerer
	// CheckTimeout bounds each readiness check; 2s when zero.
	CheckTimeout time.Duration

	// Accounts signs people in and runs account commands.
	Accounts *accounts.Service
	// Forget destroys a data subject's key and records it (infra/privacy.Forget
	// over the server's pool and store).
	Forget func(ctx context.Context, subject uuid.UUID, meta eventstore.Metadata) (alreadyForgotten bool, err error)
	// Retention is the retention job, for its status and legal holds.
	Retention *privacy.Retention
	// Dispatch runs the commands of the dispatch domain.
	Dispatch *dispatch.Service
	// Idempotency keeps the answers of state-changing requests for retries.
	Idempotency *idempotency.Store
	// Hub holds the live websocket connections.
	Hub *live.Hub
	// Feed gives the live views (the boards, a volunteer's own work) their
	// snapshots; the deltas it publishes reach the hub's connections.
	Feed *feed.Feed
	// PublicURL is where people reach Presente ("https://presente.example.org"):
	// invitation links point there, and an https URL makes cookies Secure
	// and turns HSTS on even behind a TLS-terminating proxy.
	PublicURL *url.URL
	// AllowedOrigins are other origins trusted to send state-changing
	// requests and open websockets, besides PublicURL's.
	AllowedOrigins []string
	// TrustedProxies are the addresses of reverse proxies whose
	// X-Forwarded-For is believed, for sign-in throttling.
	TrustedProxies []netip.Prefix
	// Throttle bounds failed sign-ins.
	Throttle ThrottleOptions
	// ReadModels is the database holding the read models (the
	// projections schema), for the coordinators' reports; without it
	// they answer 503.
	ReadModels projections.Querier
	// Verify walks the log's hash chains (eventstore.Store.Verify without
	// anchors), for the audit-chain status; without it that answers 503.
	Verify func(ctx context.Context) (eventstore.VerifyReport, error)
}

// Server routes Presente's HTTP requests.
type Server struct {
	logger  *zap.Logger
	checks  []Check
	timeout time.Duration
	handler http.Handler
	metrics httpMetrics

	accounts       *accounts.Service
	forget         func(context.Context, uuid.UUID, eventstore.Metadata) (bool, error)
	retention      *privacy.Retention
	dispatch       *dispatch.Service
	idempotency    *idempotency.Store
	hub            *live.Hub
	feed           *feed.Feed
	publicURL      *url.URL
	trustedProxies []netip.Prefix
	throttle       *throttle
	csrf           *http.CrossOriginProtection
	readModels     projections.Querier
	verify         func(context.Context) (eventstore.VerifyReport, error)
	verification   verification
	// languages are the catalogs of the web app, by tag: the languages
	// an account may choose.
	languages map[string]string
}

// NewServer builds the handler tree. It fails when a route declares no
// permission or the configuration is incomplete.
func NewServer(cfg Config) (*Server, error) {
	s := &Server{logger: cfg.Logger, checks: cfg.Checks, timeout: cfg.CheckTimeout,
		accounts: cfg.Accounts, forget: cfg.Forget, retention: cfg.Retention, dispatch: cfg.Dispatch, idempotency: cfg.Idempotency, hub: cfg.Hub, feed: cfg.Feed,
		publicURL: cfg.PublicURL, trustedProxies: cfg.TrustedProxies, throttle: newThrottle(cfg.Throttle),
		readModels: cfg.ReadModels, verify: cfg.Verify}
	if s.logger == nil {
		s.logger = zap.NewNop()
	}
	if s.timeout <= 0 {
		s.timeout = 2 * time.Second
	}
	if s.accounts == nil || s.forget == nil || s.retention == nil || s.dispatch == nil || s.idempotency == nil || s.hub == nil || s.feed == nil || s.publicURL == nil {
		return nil, errors.New("web: the server needs Accounts, Forget, Retention, Dispatch, Idempotency, Hub, Feed and PublicURL")
	}
	m, err := newHTTPMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m

	s.csrf = http.NewCrossOriginProtection()
	for _, origin := range append([]string{Origin(s.publicURL)}, cfg.AllowedOrigins...) {
		if err := s.csrf.AddTrustedOrigin(origin); err != nil {
			return nil, fmt.Errorf("allowed origin %q: %w", origin, err)
		}
	}
	s.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errCrossOrigin)
	}))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	gatherer := cfg.Gatherer
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(s.logger)}))
	routes := s.routes()
	if err := checkRoutes(routes); err != nil {
		return nil, err
	}
	for _, rt := range routes {
		mux.Handle(rt.pattern, s.guard(rt))
	}
	app, err := ui.New()
	if err != nil {
		return nil, fmt.Errorf("web app: %w", err)
	}
	s.languages = app.Languages()
	mux.HandleFunc("GET /{$}", app.ServePage)
	mux.HandleFunc("GET /join", app.ServePage)
	mux.HandleFunc("GET /assets/", app.ServeAsset)
	mux.HandleFunc("/", s.handleNotFound)
	s.handler = s.observe(s.secureHeaders(mux))
	return s, nil
}

// Origin is a URL's origin, as browsers send it: scheme://host[:port].
func Origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

var errCrossOrigin = &Error{Code: "cross_origin",
	Message: "this request came from another site's page and was refused: use Presente's own pages (or add the origin to PRESENTE_ALLOWED_ORIGINS)"}

// requestTimeout bounds every API call but the live channel; it is well
// below the idempotency lease (30 s).
const requestTimeout = 20 * time.Second

// liveRoute is the live channel's route, which lives as long as its
// connection.
const liveRoute = "GET /api/v1/live"

// guard wraps a route's handler with what every API call goes through, in
// order: cross-origin protection for state-changing methods, a bounded
// body, authentication, the route's permission, Idempotency-Key handling
// for state-changing methods, then the handler, whose error is answered
// through the one error mapping.
func (s *Server) guard(rt route) http.Handler {
	h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(rt.pattern, liveRoute) {
			// Every call ends well within an idempotency claim's lease, so
			// a retry never takes over a claim whose request still runs.
			ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		r.Body = http.MaxBytesReader(w, r.Body, rt.bodyLimit())
		p, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		allowed, err := rt.permission.allows(p, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !allowed {
			if p == nil {
				s.clearSessionCookie(w, r)
				s.writeError(w, r, errUnauthenticated)
			} else {
				s.writeError(w, r, errForbidden)
			}
			return
		}
		if m := rt.method(); m == http.MethodGet || m == http.MethodDelete {
			if err := refuseBody(r); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		run := func(w http.ResponseWriter, r *http.Request) error { return rt.handler(w, r, p) }
		if rt.changesState() && !rt.retrySafe {
			err = s.idempotent(w, r, p, run)
		} else {
			err = run(w, r)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	}))
	if rt.changesState() {
		h = s.csrf.Handler(h)
	}
	return h
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// handleHealthz serves GET /healthz: the process is up and serving HTTP.
// It deliberately checks nothing else, so an orchestrator never restarts a
// server merely because the database is away.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// checkResult is one readiness check's outcome in /readyz.
type checkResult struct {
	OK     bool   `json:"ok"`
	Detail any    `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`
}

// handleReadyz serves GET /readyz: 200 when every readiness check passes
// (database reachable, migrations applied, ...), 503 otherwise, with each
// check's outcome in the body.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	results := make(map[string]checkResult, len(s.checks))
	ready := true
	for _, c := range s.checks {
		ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
		detail, err := c.Run(ctx)
		cancel()
		res := checkResult{OK: err == nil, Detail: detail}
		if err != nil {
			ready = false
			res.Error = err.Error()
		}
		results[c.Name] = res
	}
	status, code := "ready", http.StatusOK
	if !ready {
		status, code = "not_ready", http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": results})
}

// handleNotFound answers every path no route claims.
func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, errNotFound)
}

// contentSecurityPolicy allows nothing but the server's own assets: no
// CDN, no web fonts, no third-party scripts, no inline script or style,
// and no framing (DOMAIN.md: nothing leaves the server).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; media-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// secureHeaders sets the headers every response carries.
func (s *Server) secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), payment=(), usb=()")
		h.Set("Cache-Control", "no-store")
		if s.secure(r) {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (sr *statusRecorder) WriteHeader(code int) {
	sr.status = code
	sr.ResponseWriter.WriteHeader(code)
}

func (sr *statusRecorder) Unwrap() http.ResponseWriter { return sr.ResponseWriter }

// Hijack lets the live channel take over the connection (gorilla/websocket
// asserts http.Hijacker directly rather than using Unwrap). A hijacked
// request is recorded as 101 Switching Protocols.
func (sr *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(sr.ResponseWriter).Hijack()
	if err == nil {
		sr.status = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

// observe logs and counts every request. It logs the route pattern, never
// the raw path or query, which could carry personal data or tokens.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		s.metrics.observe(route, rec.status, elapsed)
		if route == "GET /healthz" || route == "GET /readyz" || route == "GET /metrics" {
			return // probes would drown the log
		}
		s.logger.Info("request",
			zap.String("route", route),
			zap.Int("status", rec.status),
			zap.Duration("duration", elapsed))
	})
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (httpMetrics, error) {
	m := httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presente_http_requests_total",
			Help: "HTTP requests answered, by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "presente_http_request_seconds",
			Help:    "Time to answer an HTTP request, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return httpMetrics{}, err
		}
	}
	return m, nil
}

func (m httpMetrics) observe(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}
