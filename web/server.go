// Package web is Presente's HTTP surface: health and readiness probes,
// Prometheus metrics and, as the product grows, the JSON API, websockets
// and the browser UI. Handlers translate between HTTP and the layers below;
// every error becomes an HTTP answer in exactly one place (errors.go).
package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
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
}

// Server routes Presente's HTTP requests.
type Server struct {
	logger  *zap.Logger
	checks  []Check
	timeout time.Duration
	handler http.Handler
	metrics httpMetrics
}

// NewServer builds the handler tree.
func NewServer(cfg Config) (*Server, error) {
	s := &Server{logger: cfg.Logger, checks: cfg.Checks, timeout: cfg.CheckTimeout}
	if s.logger == nil {
		s.logger = zap.NewNop()
	}
	if s.timeout <= 0 {
		s.timeout = 2 * time.Second
	}
	m, err := newHTTPMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	gatherer := cfg.Gatherer
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(s.logger)}))
	mux.HandleFunc("/", s.handleNotFound)
	s.handler = s.observe(secureHeaders(mux))
	return s, nil
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
func secureHeaders(next http.Handler) http.Handler {
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
		if r.TLS != nil {
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
