package web

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/infra/accounts"
)

// handleListVolunteers serves GET /api/v1/volunteers: every volunteer with
// languages, regions, certifications and on-call status, for staff.
func (s *Server) handleListVolunteers(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	vols, err := s.dispatch.Volunteers(r.Context())
	if err != nil {
		return err
	}
	out := make([]volunteerView, 0, len(vols))
	for _, v := range vols {
		out = append(out, viewVolunteer(v))
	}
	writeJSON(w, http.StatusOK, map[string]any{"volunteers": out})
	return nil
}

// timeParam reads an optional RFC 3339 query parameter.
func timeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, &Error{Code: "invalid_field", Field: name, Message: name + " is not an RFC 3339 time such as 2026-11-26T09:00:00Z"}
	}
	return t, checkTime(name, t)
}

// windowParams reads the optional from and to query parameters of a list:
// from defaults to now and to to length after from; a window longer than
// longest is refused.
func windowParams(r *http.Request, now time.Time, length, longest time.Duration) (domain.Window, error) {
	from, err := timeParam(r, "from", now)
	if err != nil {
		return domain.Window{}, err
	}
	to, err := timeParam(r, "to", from.Add(length))
	if err != nil {
		return domain.Window{}, err
	}
	window := domain.Window{Start: from, End: to}
	if err := window.Check(); err != nil || window.Duration() > longest {
		return domain.Window{}, &Error{Code: "invalid_field", Field: "to",
			Message: fmt.Sprintf("to must be after from, at most %d days later", int(longest.Hours()/24))}
	}
	return window, nil
}

// boolParam reads an optional true/false query parameter.
func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &Error{Code: "invalid_field", Field: name, Message: name + " must be true or false"}
	}
	return b, nil
}

// handleListShifts serves GET /api/v1/shifts?from=&to=: the shifts in a
// window (the next seven days by default), each with its open slots and
// waitlist; staff see who holds them, a volunteer their own place.
func (s *Server) handleListShifts(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	window, err := windowParams(r, s.dispatch.Now(), 7*24*time.Hour, 92*24*time.Hour)
	if err != nil {
		return err
	}
	shifts, err := s.dispatch.Shifts(r.Context(), window)
	if err != nil {
		return err
	}
	out := make([]shiftView, 0, len(shifts))
	for _, sh := range shifts {
		out = append(out, viewShift(sh, p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"shifts": out})
	return nil
}

// requestSummary is a request on a list: no personal data.
type requestSummary struct {
	RequestID    string               `json:"request_id"`
	Kind         request.Kind         `json:"kind"`
	Status       request.Status       `json:"status"`
	Verification request.Verification `json:"verification,omitempty"`
	Priority     request.Priority     `json:"priority"`
	Region       string               `json:"region"`
	Start        time.Time            `json:"start"`
	End          time.Time            `json:"end"`
	Needed       int                  `json:"needed"`
	Assigned     int                  `json:"assigned"`
	Languages    []string             `json:"languages"`
}

// handleListRequests serves GET /api/v1/requests?closed=true: the open
// requests (all with closed=true), with needs and how many are assigned,
// for staff. Lists never carry the people's personal data.
func (s *Server) handleListRequests(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	closed, err := boolParam(r, "closed")
	if err != nil {
		return err
	}
	reqs, err := s.dispatch.Requests(r.Context(), closed)
	if err != nil {
		return err
	}
	out := make([]requestSummary, 0, len(reqs))
	for _, q := range reqs {
		out = append(out, requestSummary{RequestID: q.RequestID.String(), Kind: q.Kind, Status: q.Status(), Verification: q.Verification,
			Priority: q.Priority, Region: q.Region, Start: q.Window.Start, End: q.Window.End, Needed: q.Needed, Assigned: q.Active(),
			Languages: orEmpty(q.Languages)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": out})
	return nil
}
