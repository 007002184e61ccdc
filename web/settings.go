package web

import (
	"net/http"

	"github.com/presente-dispatch/presente/infra/accounts"
)

// settingsView is the organization's settings.
type settingsView struct {
	TimeZone string `json:"time_zone"`
}

// handleGetSettings serves GET /api/v1/settings: the organization's
// settings, such as the time zone the UI shows times in.
func (s *Server) handleGetSettings(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	st, err := s.dispatch.Settings(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, settingsView{TimeZone: st.TimeZone})
	return nil
}

// handleSetTimeZone serves POST /api/v1/settings/time-zone: an admin sets
// the organization's time zone (an IANA name such as America/Chicago).
// Times stay UTC in the API; the zone is for display.
func (s *Server) handleSetTimeZone(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	var req settingsView
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.dispatch.SetTimeZone(r.Context(), p.Meta(""), req.TimeZone); err != nil {
		return err
	}
	return s.handleGetSettings(w, r, p)
}
