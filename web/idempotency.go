package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"

	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/accounts"
	"github.com/presente-dispatch/presente/infra/idempotency"
)

// idempotencyHeader names the header a client sets on a state-changing
// request so that a retry never acts twice.
const idempotencyHeader = "Idempotency-Key"

// anonymousScope holds the keys of requests made without a session
// (accepting an invitation). Their replay also needs the same body, which
// holds the invitation's secret token, so nobody else can replay them.
const anonymousScope = "anonymous"

// idempotencyScope is the scope of a principal's keys: one user's keys
// never collide with another's.
func idempotencyScope(p *accounts.Principal) string {
	if p == nil {
		return anonymousScope
	}
	return idempotency.UserScope(p.UserID)
}

// retryKey carries, in a request's context, a hash naming the request by
// its sender and Idempotency-Key (see retryOf).
type retryKey struct{}

// retryOf returns the hash that names r across its retries, or nil when r
// came without an Idempotency-Key. Commands that make something new derive
// its id from it, so that a retry whose first try committed unseen (the
// answer lost with the connection) finds what the first try made.
func retryOf(r *http.Request) []byte {
	b, _ := r.Context().Value(retryKey{}).([]byte)
	return b
}

// retryable tells whether an answer asks for the request to be tried
// again, so that it must not be kept for replay.
func retryable(status int) bool {
	switch status {
	case 0, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests, statusClientClosed:
		return true
	}
	return status >= 500
}

// capture records what a handler answers, to store it for retries.
type capture struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *capture) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}

func (c *capture) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// idempotent runs a state-changing request at most once per
// Idempotency-Key: the first request runs and its answer is kept (sealed)
// for a day; a retry with the same key and body gets that answer again,
// marked with Idempotent-Replayed: true; a retry while the first still runs
// is told to wait; a key reused for another request is refused. A request
// without the header simply runs.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, p *accounts.Principal, run func(http.ResponseWriter, *http.Request) error) error {
	key := r.Header.Get(idempotencyHeader)
	if key == "" {
		return run(w, r)
	}
	if err := idempotency.ValidateKey(key); err != nil {
		return &Error{Code: "invalid_idempotency_key", Message: err.Error()}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	scope := idempotencyScope(p)

	fp := sha256.New()
	io.WriteString(fp, r.Method+" "+r.URL.Path+"\n")
	fp.Write(body)
	replay, err := s.idempotency.Begin(r.Context(), scope, key, fp.Sum(nil))
	if err != nil {
		return err
	}
	if replay != nil {
		for name, values := range replay.Header {
			for _, v := range values {
				w.Header().Add(name, v)
			}
		}
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(replay.Status)
		_, _ = w.Write(replay.Body)
		return nil
	}

	c := &capture{ResponseWriter: w}
	retry := sha256.Sum256([]byte(scope + "\n" + key))
	runErr := run(c, r.WithContext(context.WithValue(r.Context(), retryKey{}, retry[:])))
	if runErr != nil {
		// The handler's error is written by the caller, through the one
		// error mapping; capture that answer too.
		s.writeError(c, r, runErr)
	}
	// Store or release even if the client has gone: the retry is coming.
	ctx := context.WithoutCancel(r.Context())
	if retryable(c.status) || (p == nil && c.status >= 300) {
		// Nor is an anonymous request's error kept: anyone could fill the
		// table with them.
		// The server failed or asked the client to come back (a conflict,
		// a throttle): the retry must run again, not replay this answer.
		if err := s.idempotency.Release(ctx, scope, key); err != nil {
			s.logger.Warn("release an idempotency key", zap.String("route", r.Pattern), zap.Error(err))
		}
		return nil
	}
	resp := idempotency.Response{Status: c.status, Header: w.Header().Clone(), Body: c.body.Bytes()}
	if err := s.idempotency.Complete(ctx, scope, key, resp); err != nil && !errors.Is(err, idempotency.ErrNotClaimed) {
		s.logger.Warn("store an idempotent answer", zap.String("route", r.Pattern), zap.Error(err))
	}
	return nil
}
