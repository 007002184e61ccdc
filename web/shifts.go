package web

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/shift"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/accounts"
)

// scheduleShiftRequest is the body of POST /api/v1/shifts.
type scheduleShiftRequest struct {
	Role      string                    `json:"role"`
	Start     time.Time                 `json:"start"`
	End       time.Time                 `json:"end"`
	Region    string                    `json:"region"`
	Place     string                    `json:"place"`
	Capacity  int                       `json:"capacity"`
	Requires  []volunteer.Certification `json:"requires"`
	Languages []string                  `json:"languages"`
}

// shiftView is a shift as the API shows it. Who holds its slots is shown
// to staff only; a volunteer sees counts and their own place.
type shiftView struct {
	ShiftID   uuid.UUID                 `json:"shift_id"`
	Role      string                    `json:"role"`
	Start     time.Time                 `json:"start"`
	End       time.Time                 `json:"end"`
	Region    string                    `json:"region"`
	Place     string                    `json:"place,omitempty"`
	Capacity  int                       `json:"capacity"`
	Open      int                       `json:"open"`
	Waitlist  int                       `json:"waitlist"`
	Requires  []volunteer.Certification `json:"requires"`
	Languages []string                  `json:"languages"`
	Cancelled bool                      `json:"cancelled"`
	Claimants []uuid.UUID               `json:"claimants,omitempty"`
	Waiting   []uuid.UUID               `json:"waiting,omitempty"`
	// Mine is the caller's own place: "claimed", "waitlisted" or "".
	Mine             string `json:"mine,omitempty"`
	WaitlistPosition int    `json:"waitlist_position,omitempty"`
}

func viewShift(st shift.State, p *accounts.Principal) shiftView {
	v := shiftView{ShiftID: st.ShiftID, Role: st.Role, Start: st.Window.Start, End: st.Window.End, Region: st.Region, Place: st.Place,
		Capacity: st.Capacity, Open: st.Open(), Waitlist: len(st.Waitlist), Requires: orEmpty(st.Requires), Languages: orEmpty(st.Languages),
		Cancelled: st.Cancelled}
	if p.Role != account.Volunteer {
		v.Claimants, v.Waiting = st.Claimants, st.Waitlist
	}
	switch {
	case st.Holds(p.UserID):
		v.Mine = "claimed"
	case st.WaitlistPosition(p.UserID) > 0:
		v.Mine, v.WaitlistPosition = "waitlisted", st.WaitlistPosition(p.UserID)
	}
	return v
}

func orEmpty[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// handleScheduleShift serves POST /api/v1/shifts: a coordinator schedules
// a shift.
func (s *Server) handleScheduleShift(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	var req scheduleShiftRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	if err := s.dispatch.ScheduleShift(r.Context(), p.Meta(""), shift.Schedule{ShiftID: id, Role: req.Role,
		Window: domain.Window{Start: req.Start, End: req.End}, Region: req.Region, Place: req.Place, Capacity: req.Capacity,
		Requires: req.Requires, Languages: req.Languages}); err != nil {
		return err
	}
	return s.writeShift(w, r, p, id, http.StatusCreated)
}

func (s *Server) writeShift(w http.ResponseWriter, r *http.Request, p *accounts.Principal, id uuid.UUID, status int) error {
	st, err := s.dispatch.ShiftState(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, status, viewShift(st, p))
	return nil
}

// handleGetShift serves GET /api/v1/shifts/{id}: a shift, with who holds
// it for staff and the caller's own place for a volunteer.
func (s *Server) handleGetShift(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	return s.writeShift(w, r, p, id, http.StatusOK)
}

// handleClaimShift serves POST /api/v1/shifts/{id}/claims/{volunteer}:
// the volunteer (or staff for them) claims a slot, or joins the waitlist
// when the shift is full.
func (s *Server) handleClaimShift(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	v, err := pathID(r, "volunteer")
	if err != nil {
		return err
	}
	claim, err := s.dispatch.ClaimShift(r.Context(), p.Meta(""), id, v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, claim)
	return nil
}

// handleReleaseShift serves POST /api/v1/shifts/{id}/claims/{volunteer}/release:
// the volunteer gives their slot back (or leaves the waitlist); after the
// cutoff a reason is required. The first on the waitlist who can take the
// slot is promoted at once.
func (s *Server) handleReleaseShift(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, v, reason, err := idsAndReason(r, "volunteer")
	if err != nil {
		return err
	}
	if err := s.dispatch.ReleaseShift(r.Context(), p.Meta(reason), id, v); err != nil {
		return err
	}
	return s.writeShift(w, r, p, id, http.StatusOK)
}

// idsAndReason reads the {id} and another UUID path parameter and an
// optional reason body.
func idsAndReason(r *http.Request, other string) (uuid.UUID, uuid.UUID, string, error) {
	id, reason, err := idAndReason(r)
	if err != nil {
		return uuid.Nil, uuid.Nil, "", err
	}
	o, err := pathID(r, other)
	return id, o, reason, err
}
