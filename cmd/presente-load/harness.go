package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
)

// harness is what every scenario shares: the server's address, an HTTP
// client, the session, a clock and the error counts.
type harness struct {
	cfg    config
	http   *http.Client
	origin string
	start  time.Time
	errs   *errorCounts
	logw   io.Writer
	logMu  sync.Mutex

	cookie string // the session, once signed in

	coordMu     sync.Mutex
	coordCookie string // the coordinator's session, once signed in
}

func newHarness(cfg config, logw io.Writer) *harness {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
	}
	return &harness{
		cfg:    cfg,
		http:   &http.Client{Transport: tr, Timeout: cmp.Or(cfg.Timeout, 10*time.Second)},
		origin: cfg.base.Scheme + "://" + cfg.base.Host,
		start:  time.Now(),
		errs:   &errorCounts{m: map[string]int64{}},
		logw:   logw,
	}
}

func (h *harness) close() { h.http.CloseIdleConnections() }

// now is the time since the harness started, in nanoseconds: monotonic,
// and never 0 once anything has happened.
func (h *harness) now() int64 { return int64(time.Since(h.start)) }

// logf reports progress on stderr.
func (h *harness) logf(format string, args ...any) {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	fmt.Fprintf(h.logw, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// apiError is an answer the API gave with a status that is not 2xx.
type apiError struct {
	Status int
	Code   string
	// Field and Message say what to fix; they appear in Error, not in
	// the counts by kind.
	Field, Message string
}

func (e *apiError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("HTTP %d %s", e.Status, e.Code)
	}
	return fmt.Sprintf("HTTP %d %s (%s: %s)", e.Status, e.Code, e.Field, e.Message)
}

// do sends a JSON request as the signed-in user and decodes a 2xx answer
// into out (when not nil).
func (h *harness) do(ctx context.Context, method, path string, body, out any) error {
	return h.doAs(ctx, h.cookie, method, path, body, out)
}

// doAs is do with another session's cookie (a volunteer's, the
// coordinator's); "" sends none.
func (h *harness) doAs(ctx context.Context, cookie, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.origin+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// A browser page at the server's own address sends its origin.
	req.Header.Set("Origin", h.origin)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	if method == http.MethodPost {
		// As the web app does, so a retry never acts twice; it costs the
		// server a row per command, which is part of what is measured.
		req.Header.Set("Idempotency-Key", uuid.NewString())
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Field   string `json:"field"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(b, &e) // the status is the error; the code only adds to it
		return &apiError{Status: resp.StatusCode, Code: e.Error.Code, Field: e.Error.Field, Message: e.Error.Message}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// signIn starts the one session every board socket and dispatcher
// command shares.
func (h *harness) signIn(ctx context.Context) error {
	cookie, err := h.signInAs(ctx, h.cfg.Email, h.cfg.password)
	if err != nil {
		return err
	}
	h.cookie = cookie
	return nil
}

// signInAs signs in and returns the session's cookie header.
func (h *harness) signInAs(ctx context.Context, email, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.origin+"/api/v1/session", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", h.origin)
	resp, err := h.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("sign in: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("sign in as %s: HTTP %d", email, resp.StatusCode)
	}
	var parts []string
	for _, c := range resp.Cookies() {
		parts = append(parts, c.Name+"="+c.Value)
	}
	if len(parts) == 0 {
		return "", errors.New("sign in: the server set no cookie")
	}
	return strings.Join(parts, "; "), nil
}

// serverMetrics reads the server's own figures from /metrics.
func (h *harness) serverMetrics(ctx context.Context) (metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.origin+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read /metrics: HTTP %d", resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

// metrics are unlabelled samples of the Prometheus text format, by name.
type metrics map[string]float64

func parseMetrics(r io.Reader) (metrics, error) {
	m := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			m[name] = f
		}
	}
	return m, sc.Err()
}

// errorCounts counts errors by kind.
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int64
}

func (e *errorCounts) add(kind string) {
	e.mu.Lock()
	e.m[kind]++
	e.mu.Unlock()
}

func (e *errorCounts) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

func printErrors(w io.Writer, errs map[string]int64) {
	if len(errs) == 0 {
		fmt.Fprintln(w, "errors: none")
		return
	}
	kinds := make([]string, 0, len(errs))
	for k := range errs {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	fmt.Fprintln(w, "errors by kind:")
	for _, k := range kinds {
		fmt.Fprintf(w, "  %-40s %d\n", k, errs[k])
	}
}

// kindOf names an error for the counts: what went wrong, not where.
func kindOf(err error, resp *http.Response) string {
	var (
		api      *apiError
		closeErr *websocket.CloseError
		netErr   net.Error
	)
	switch {
	case errors.Is(err, errGap):
		return "gap (reconnected with ?after=last)"
	case errors.Is(err, errBadMessage):
		return "message breaking web/LIVE.md"
	case resp != nil:
		return fmt.Sprintf("handshake HTTP %d", resp.StatusCode)
	case errors.As(err, &api) && api.Status >= 500:
		return fmt.Sprintf("HTTP %d (5xx) %s", api.Status, api.Code)
	case errors.As(err, &api):
		return fmt.Sprintf("HTTP %d %s", api.Status, api.Code)
	case errors.As(err, &closeErr):
		switch closeErr.Code {
		case 4002:
			return "close 4002 resync"
		case 4001:
			return "close 4001 session ended"
		case websocket.CloseGoingAway:
			return "close 1001 going away"
		case websocket.CloseAbnormalClosure:
			return "connection lost (no close frame)"
		}
		return fmt.Sprintf("close %d", closeErr.Code)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "dial refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "dial: no free local port"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection lost (reset or EOF)"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	}
	return "other: " + err.Error()
}

// histogram records durations in log-linear buckets, HDR style: exact
// below 256 ns and within 0.8 % above, in constant memory, so millions of
// samples cost nothing.
type histogram struct {
	counts   []uint64
	n        uint64
	min, max int64
	sum      float64
}

const subBits = 8 // 256 sub-buckets per power of two

func bucketOf(v int64) int {
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - subBits
	return e<<(subBits-1) + int(v>>e)
}

// lowest is the smallest value of bucket i.
func lowest(i int) int64 {
	if i < 1<<subBits {
		return int64(i)
	}
	e := i>>(subBits-1) - 1
	sub := i - e<<(subBits-1)
	return int64(sub) << e
}

func (h *histogram) record(v int64) {
	if v < 0 {
		v = 0
	}
	i := bucketOf(v)
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// quantile is the value at or below which the fraction q of samples lie
// (a bucket's lowest value, at most its width under the truth).
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(max(lowest(i), h.min), h.max)
		}
	}
	return h.max
}

// summary is a histogram's figures, for reports.
type summary struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

func (h *histogram) summary() summary {
	if h.n == 0 {
		return summary{}
	}
	return summary{Count: h.n, P50: ms(h.quantile(0.50)), P99: ms(h.quantile(0.99)), P999: ms(h.quantile(0.999)),
		Max: ms(h.max), Mean: h.sum / float64(h.n) / 1e6}
}

func (s summary) String() string {
	return fmt.Sprintf("n=%-9d p50 %8.2f ms   p99 %8.2f ms   p99.9 %8.2f ms   max %8.2f ms", s.Count, s.P50, s.P99, s.P999, s.Max)
}
