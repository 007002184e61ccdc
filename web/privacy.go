package web

import (
	"net/http"
	"time"

	"github.com/presente-dispatch/presente/domain/privacy"
	"github.com/presente-dispatch/presente/infra/accounts"
)

// forgetRequest is the body of POST /api/v1/subjects/{id}/forget.
type forgetRequest struct {
	// Reason is a code (asked, retention, legal, mistake), never free
	// text, which could name the person beside their id forever.
	Reason privacy.Reason `json:"reason"`
}

// handleForget serves POST /api/v1/subjects/{id}/forget: destroy a person's
// data key, so their personal data can no longer be read here or in any
// backup. If the person has an account it can no longer sign in, and its
// live connections close.
func (s *Server) handleForget(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req forgetRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if !req.Reason.Valid() {
		return &Error{Code: "invalid_field", Field: "reason", Message: privacy.ErrInvalidReason.Error()}
	}
	// Forgetting someone who still works here would lock them out behind
	// the admins' backs: their account is closed first, by an admin.
	if a, err := s.accounts.Account(r.Context(), id); err == nil && a.Active {
		return errActiveAccount
	}
	already, err := s.forget(r.Context(), id, p.Meta(string(req.Reason)))
	if err != nil {
		return err
	}
	s.hub.CloseUser(id)
	writeJSON(w, http.StatusOK, map[string]any{"subject_id": id, "already_forgotten": already})
	return nil
}

// errActiveAccount refuses to forget the holder of an active account.
var errActiveAccount = &Error{Code: "account_active",
	Message: "this person has an active account: an admin deactivates it first, then they can be forgotten"}

// retentionStatus answers GET /api/v1/retention.
type retentionStatus struct {
	OnHold        bool       `json:"on_hold"`
	HeldSince     *time.Time `json:"held_since,omitempty"`
	LastRun       *time.Time `json:"last_run,omitempty"`
	LastForgotten int        `json:"last_forgotten"`
	LastFailed    int        `json:"last_failed"`
	PeriodDays    float64    `json:"period_days"`
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// handleRetentionStatus serves GET /api/v1/retention: whether automatic
// forgetting is paused by a legal hold, and what its last run did.
func (s *Server) handleRetentionStatus(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	st, err := s.retention.Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, retentionStatus{OnHold: st.OnHold, HeldSince: timeOrNil(st.HeldSince), LastRun: timeOrNil(st.LastRun),
		LastForgotten: st.LastForgotten, LastFailed: st.LastFailed, PeriodDays: st.Period.Hours() / 24})
	return nil
}

// handlePlaceHold serves POST /api/v1/retention/hold: pause automatic
// forgetting for a legal hold. The reason is required.
func (s *Server) handlePlaceHold(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	reason, err := decodeReason(r)
	if err != nil {
		return err
	}
	if err := s.retention.PlaceHold(r.Context(), p.Actor(), reason); err != nil {
		return err
	}
	return s.handleRetentionStatus(w, r, p)
}

// handleLiftHold serves POST /api/v1/retention/release: lift the legal hold;
// retention resumes with its next run.
func (s *Server) handleLiftHold(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	reason, err := decodeReason(r)
	if err != nil {
		return err
	}
	if err := s.retention.LiftHold(r.Context(), p.Actor(), reason); err != nil {
		return err
	}
	return s.handleRetentionStatus(w, r, p)
}

// handleLive serves GET /api/v1/live: the websocket of live updates,
// authenticated by the session cookie, its Origin checked against the
// allow-list. It closes at once when the session ends.
func (s *Server) handleLive(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	s.hub.Serve(w, r, liveClient(p))
	return nil
}
