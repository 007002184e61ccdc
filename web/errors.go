package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/invitation"
	"github.com/presente-dispatch/presente/domain/organization"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/retention"
	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/domain/training"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/accounts"
	"github.com/presente-dispatch/presente/infra/eventstore"
	"github.com/presente-dispatch/presente/infra/idempotency"
	"github.com/presente-dispatch/presente/infra/keyring"
	"github.com/presente-dispatch/presente/infra/sessions"
)

// Error is an answer for the client: a stable machine-readable code, a
// message that says what to fix, and the offending field when there is one.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// Problems lists, for a request made of many parts (an imported
	// file), each part that must be fixed.
	Problems []Problem `json:"problems,omitempty"`
	// status overrides the 400 every other Error is answered with.
	status int
}

// Problem is one thing to fix in a request made of many parts: a row of an
// imported file and, when one is to blame, its column.
type Problem struct {
	Row     int    `json:"row"`
	Column  string `json:"column,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// statusClientClosed is the conventional status (nginx's 499) for a
// request whose client went away; nobody receives it, but logs and metrics
// should not count it as a server fault.
const statusClientClosed = 499

var errNotFound = &Error{Code: "not_found", Message: "no such resource: check the path against the API documentation"}

// domainAnswers maps the sentinel errors of the layers below to their
// status and code. Their messages are written for the person acting and
// are shown as they are.
var domainAnswers = []struct {
	err    error
	status int
	code   string
}{
	{accounts.ErrBadCredentials, http.StatusUnauthorized, "bad_credentials"},
	{sessions.ErrInvalid, http.StatusUnauthorized, "unauthenticated"},
	{accounts.ErrEmailTaken, http.StatusConflict, "email_taken"},
	{accounts.ErrAddressHasAccount, http.StatusConflict, "address_has_account"},
	{accounts.ErrBusy, http.StatusServiceUnavailable, "busy"},
	{accounts.ErrSelf, http.StatusConflict, "own_account"},
	{account.ErrNotFound, http.StatusNotFound, "not_found"},
	{account.ErrAlreadyRegistered, http.StatusConflict, "already_exists"},
	{account.ErrDeactivated, http.StatusConflict, "deactivated"},
	{invitation.ErrNotFound, http.StatusNotFound, "invitation_not_found"},
	{invitation.ErrUsed, http.StatusGone, "invitation_used"},
	{invitation.ErrExpired, http.StatusGone, "invitation_expired"},
	{invitation.ErrRevoked, http.StatusGone, "invitation_revoked"},
	{invitation.ErrAlreadyClosed, http.StatusConflict, "invitation_closed"},
	{invitation.ErrNotGrantable, http.StatusForbidden, "role_not_grantable"},
	{retention.ErrAlreadyOnHold, http.StatusConflict, "already_on_hold"},
	{retention.ErrNotOnHold, http.StatusConflict, "not_on_hold"},
	{retention.ErrOnHold, http.StatusConflict, "on_hold"},
	{keyring.ErrForgotten, http.StatusGone, "forgotten"},
	{idempotency.ErrInProgress, http.StatusConflict, "request_in_progress"},
	{volunteer.ErrNotFound, http.StatusNotFound, "volunteer_not_found"},
	{volunteer.ErrAlreadyRegistered, http.StatusConflict, "already_exists"},
	{volunteer.ErrInactive, http.StatusConflict, "volunteer_inactive"},
	{volunteer.ErrHasCommitments, http.StatusConflict, "volunteer_has_commitments"},
	{volunteer.ErrNotCertified, http.StatusConflict, "not_certified"},
	{shift.ErrNotFound, http.StatusNotFound, "shift_not_found"},
	{shift.ErrExists, http.StatusConflict, "already_exists"},
	{shift.ErrCancelled, http.StatusConflict, "shift_cancelled"},
	{shift.ErrOver, http.StatusConflict, "shift_over"},
	{shift.ErrAlreadyClaimed, http.StatusConflict, "already_claimed"},
	{shift.ErrAlreadyWaitlisted, http.StatusConflict, "already_waitlisted"},
	{shift.ErrNotClaimed, http.StatusConflict, "not_claimed"},
	{shift.ErrLateRelease, http.StatusUnprocessableEntity, "late_release_needs_reason"},
	{shift.ErrReasonRequired, http.StatusBadRequest, "reason_required"},
	{shift.ErrNotCheckedIn, http.StatusConflict, "not_checked_in"},
	{shift.ErrAlreadyCheckedIn, http.StatusConflict, "already_checked_in"},
	{shift.ErrNoSwap, http.StatusNotFound, "no_swap"},
	{shift.ErrSwapPending, http.StatusConflict, "swap_pending"},
	{request.ErrNotFound, http.StatusNotFound, "request_not_found"},
	{organization.ErrUnknownZone, http.StatusBadRequest, "unknown_time_zone"},
	{training.ErrCourseNotFound, http.StatusNotFound, "course_not_found"},
	{training.ErrCourseExists, http.StatusConflict, "already_exists"},
	{training.ErrCourseRetired, http.StatusConflict, "course_retired"},
	{training.ErrSessionNotFound, http.StatusNotFound, "session_not_found"},
	{training.ErrSessionExists, http.StatusConflict, "already_exists"},
	{training.ErrSessionCancelled, http.StatusConflict, "session_cancelled"},
	{training.ErrSessionFull, http.StatusConflict, "session_full"},
	{training.ErrAlreadyEnrolled, http.StatusConflict, "already_enrolled"},
	{training.ErrNotEnrolled, http.StatusConflict, "not_enrolled"},
	{training.ErrNotAttended, http.StatusConflict, "not_attended"},
	{training.ErrNotYetHeld, http.StatusConflict, "not_yet_held"},
	{training.ErrAlreadyIssued, http.StatusConflict, "already_issued"},
	{training.ErrReasonRequired, http.StatusBadRequest, "reason_required"},
	{training.ErrSessionStarted, http.StatusConflict, "session_started"},
	{request.ErrExists, http.StatusConflict, "already_exists"},
	{request.ErrClosed, http.StatusConflict, "request_closed"},
	{request.ErrCancelled, http.StatusConflict, "request_cancelled"},
	{request.ErrNotClosed, http.StatusConflict, "request_open"},
	{request.ErrNobodyArrived, http.StatusConflict, "nobody_arrived"},
	{request.ErrNotResolved, http.StatusConflict, "not_resolved"},
	{request.ErrReasonRequired, http.StatusBadRequest, "reason_required"},
	{request.ErrNoSuchAssignment, http.StatusNotFound, "assignment_not_found"},
	{request.ErrAlreadyOnTeam, http.StatusConflict, "already_on_team"},
	{request.ErrNotConfirmed, http.StatusConflict, "not_confirmed"},
	{request.ErrNotRapidResponse, http.StatusConflict, "not_rapid_response"},
	{request.ErrAlreadyAlerted, http.StatusConflict, "already_alerted"},
	{request.ErrBadTransition, http.StatusConflict, "bad_transition"},
	{request.ErrVerificationFinal, http.StatusConflict, "verification_final"},
	{request.ErrNoVerifierOnSite, http.StatusConflict, "no_verifier_on_site"},
	{idempotency.ErrMismatch, http.StatusUnprocessableEntity, "idempotency_key_reused"},
	{errNoReadModels, http.StatusServiceUnavailable, "unavailable"},
}

// errorStatus maps an error to its HTTP status and client-facing body. It
// is the only place that does so.
func errorStatus(err error) (int, *Error) {
	var (
		apiErr     *Error
		conflict   *eventstore.ConcurrencyError
		throttled  *throttledError
		streamType *eventstore.StreamTypeError
		invalid    *domain.InvalidError
		overlap    *volunteer.OverlapError
		cert       *volunteer.CertificationError
		rule       *request.RuleError
	)
	for _, a := range domainAnswers {
		if errors.Is(err, a.err) {
			return a.status, &Error{Code: a.code, Message: a.err.Error()}
		}
	}
	switch {
	case errors.Is(err, errNotFound):
		return http.StatusNotFound, errNotFound
	case errors.Is(err, errUnauthenticated):
		return http.StatusUnauthorized, errUnauthenticated
	case errors.Is(err, errForbidden):
		return http.StatusForbidden, errForbidden
	case errors.Is(err, errCrossOrigin):
		return http.StatusForbidden, errCrossOrigin
	case errors.Is(err, errActiveAccount):
		return http.StatusConflict, errActiveAccount
	case errors.As(err, &streamType):
		// An id of something else where an account or invitation was meant.
		return http.StatusNotFound, &Error{Code: "not_found", Message: "no such " + streamType.Want + ": check the id"}
	case errors.As(err, &throttled):
		n := retryAfterSeconds(throttled.wait)
		return http.StatusTooManyRequests, &Error{Code: "too_many_attempts",
			Message: fmt.Sprintf("too many failed attempts: try again in %d seconds", n)}
	case errors.As(err, &conflict):
		return http.StatusConflict, &Error{Code: "conflict",
			Message: "someone else changed this at the same moment: reload and try again"}
	case errors.As(err, &invalid):
		return http.StatusBadRequest, &Error{Code: "invalid_field", Field: invalid.Field, Message: invalid.Error()}
	case errors.As(err, &overlap):
		return http.StatusConflict, &Error{Code: "overlap", Message: overlap.Error()}
	case errors.As(err, &cert):
		return http.StatusConflict, &Error{Code: "certification_missing", Message: cert.Error()}
	case errors.As(err, &rule):
		return http.StatusConflict, &Error{Code: rule.Rule, Message: rule.Error()}
	case errors.As(err, &apiErr) && apiErr.Code == codeBodyTooLarge:
		return http.StatusRequestEntityTooLarge, apiErr
	case errors.As(err, &apiErr) && apiErr.Code == codeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType, apiErr
	case errors.As(err, &apiErr):
		if apiErr.status != 0 {
			return apiErr.status, apiErr
		}
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
	case databaseTrouble(err) != nil:
		return http.StatusServiceUnavailable, databaseTrouble(err)
	default:
		return http.StatusInternalServerError, &Error{Code: "internal",
			Message: "something went wrong on the server; it has been logged"}
	}
}

// databaseTrouble tells, for an error that stopped a request, whether the
// database was away or out of resources rather than the request wrong or
// the server broken: the answer is then 503 with Retry-After, and nothing
// was saved (a commit whose reply was lost is ErrOutcomeUnknown, answered
// above). It returns nil for any other error.
func databaseTrouble(err error) *Error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "53100": // disk_full
			return &Error{Code: "unavailable", Message: "the database has run out of disk space, so nothing was saved: " +
				"an administrator must free space; try again after that"}
		case strings.HasPrefix(pgErr.Code, "08"), // connection exceptions
			strings.HasPrefix(pgErr.Code, "53"),                                 // insufficient resources: memory, connections
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // shutting down, crashed, starting up
			return errDatabaseAway
		}
		return nil
	}
	var (
		connect *pgconn.ConnectError
		netErr  net.Error
	)
	if errors.As(err, &connect) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgx.ErrTxClosed) {
		return errDatabaseAway
	}
	return nil
}

var errDatabaseAway = &Error{Code: "unavailable",
	Message: "the database is not reachable right now, so nothing was saved: try again in a few seconds"}

// writeError answers a request with err. Errors that are the server's fault
// are logged here, once; their text never reaches the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, body := errorStatus(err)
	var throttled *throttledError
	switch {
	case errors.As(err, &throttled):
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(throttled.wait)))
	case errors.Is(err, idempotency.ErrInProgress):
		w.Header().Set("Retry-After", "1")
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
