package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/infra/eventstore"
)

// Error is an answer for the client: a stable machine-readable code, a
// message that says what to fix, and the offending field when there is one.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// statusClientClosed is the conventional status (nginx's 499) for a
// request whose client went away; nobody receives it, but logs and metrics
// should not count it as a server fault.
const statusClientClosed = 499

var errNotFound = &Error{Code: "not_found", Message: "no such resource: check the path against the API documentation"}

// errorStatus maps an error to its HTTP status and client-facing body. It
// is the only place that does so.
func errorStatus(err error) (int, *Error) {
	var (
		apiErr   *Error
		conflict *eventstore.ConcurrencyError
	)
	switch {
	case errors.Is(err, errNotFound):
		return http.StatusNotFound, errNotFound
	case errors.As(err, &conflict):
		return http.StatusConflict, &Error{Code: "conflict",
			Message: "someone else changed this at the same moment: reload and try again"}
	case errors.As(err, &apiErr):
		return http.StatusBadRequest, apiErr
	case errors.Is(err, eventstore.ErrOutcomeUnknown):
		return http.StatusServiceUnavailable, &Error{Code: "outcome_unknown",
			Message: "the database did not confirm this change: check whether it was saved before trying again"}
	case errors.Is(err, eventstore.ErrClosed):
		return http.StatusServiceUnavailable, &Error{Code: "unavailable",
			Message: "the server is shutting down: try again in a moment"}
	case errors.Is(err, context.Canceled):
		return statusClientClosed, &Error{Code: "cancelled", Message: "the request was cancelled"}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, &Error{Code: "unavailable",
			Message: "the server could not finish in time: try again shortly"}
	default:
		return http.StatusInternalServerError, &Error{Code: "internal",
			Message: "something went wrong on the server; it has been logged"}
	}
}

// writeError answers a request with err. Errors that are the server's fault
// are logged here, once; their text never reaches the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, body := errorStatus(err)
	switch {
	case code == http.StatusServiceUnavailable:
		s.logger.Warn("request not completed", zap.String("route", r.Pattern), zap.Error(err))
		w.Header().Set("Retry-After", "2")
	case code >= 500:
		s.logger.Error("request failed", zap.String("route", r.Pattern), zap.Error(err))
	}
	writeJSON(w, code, map[string]*Error{"error": body})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client has gone if this fails
}
