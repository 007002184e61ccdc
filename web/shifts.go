package web

import (
	"errors"
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
	// RepeatWeeks schedules the same shift this many weeks in a row, as
	// one series (1 when left out; at most 52).
	RepeatWeeks int `json:"repeat_weeks"`
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
	if err := checkCodes(&req.Languages, "languages"); err != nil {
		return err
	}
	if err := checkCertifications(req.Requires, "requires"); err != nil {
		return err
	}
	weeks := max(req.RepeatWeeks, 1)
	if weeks > 52 || req.RepeatWeeks < 0 {
		return &Error{Code: "invalid_field", Field: "repeat_weeks", Message: "repeat_weeks is from 1 to 52: schedule a longer series in parts"}
	}
	ids, err := newIDs(r, weeks+1)
	if err != nil {
		return err
	}
	series := uuid.Nil
	if weeks > 1 {
		series = ids[weeks]
	}
	var created []shiftView
	for i := range weeks {
		c := shift.Schedule{ShiftID: ids[i], Role: req.Role, Window: domain.Window{Start: req.Start.AddDate(0, 0, 7*i), End: req.End.AddDate(0, 0, 7*i)},
			Region: req.Region, Place: req.Place, Capacity: req.Capacity, Requires: req.Requires, Languages: req.Languages, SeriesID: series}
		if err := s.dispatch.ScheduleShift(r.Context(), p.Meta(""), c); err != nil && !errors.Is(err, shift.ErrExists) {
			return err
		}
		st, err := s.dispatch.ShiftState(r.Context(), ids[i])
		if err != nil {
			return err
		}
		created = append(created, viewShift(st, p))
	}
	if weeks == 1 {
		writeJSON(w, http.StatusCreated, created[0])
		return nil
	}
	writeJSON(w, http.StatusCreated, map[string]any{"series_id": series, "shifts": created})
	return nil
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
	id, v, err := pathIDs(r, "volunteer")
	if err != nil {
		return err
	}
	if err := refuseBody(r); err != nil {
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
	id, o, err := pathIDs(r, other)
	if err != nil {
		return uuid.Nil, uuid.Nil, "", err
	}
	reason, err := decodeReason(r)
	return id, o, reason, err
}

// pathIDs reads the {id} path parameter and another UUID one.
func pathIDs(r *http.Request, other string) (uuid.UUID, uuid.UUID, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	o, err := pathID(r, other)
	return id, o, err
}

// handleCancelShift serves POST /api/v1/shifts/{id}/cancel: a coordinator
// calls the shift off, with a reason the claimants are told.
func (s *Server) handleCancelShift(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, reason, err := idAndReason(r)
	if err != nil {
		return err
	}
	if err := s.dispatch.CancelShift(r.Context(), p.Meta(reason), id); err != nil {
		return err
	}
	return s.writeShift(w, r, p, id, http.StatusOK)
}

// timeRequest is the body of a check-in or check-out: the actual time,
// now when left out (a late check-in gives the time they really came).
type timeRequest struct {
	At time.Time `json:"at"`
}

// handleCheck serves POST /api/v1/shifts/{id}/claims/{volunteer}/check-in
// and .../check-out: the volunteer (or staff) records arrival or
// departure; the minutes served are recorded at check-out.
func (s *Server) handleCheck(in bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
		id, v, err := pathIDs(r, "volunteer")
		if err != nil {
			return err
		}
		var req timeRequest
		if r.ContentLength != 0 {
			if err := decodeJSON(r, &req); err != nil {
				return err
			}
		}
		var c shift.Command = shift.CheckOut{VolunteerID: v, At: req.At}
		if in {
			c = shift.CheckIn{VolunteerID: v, At: req.At}
		}
		if err := s.dispatch.Shift(r.Context(), p.Meta(""), id, c); err != nil {
			return err
		}
		return s.writeShift(w, r, p, id, http.StatusOK)
	}
}

// swapRequest is the body of POST /api/v1/shifts/{id}/claims/{volunteer}/swap.
type swapRequest struct {
	To uuid.UUID `json:"to"`
}

// handleOfferSwap serves POST /api/v1/shifts/{id}/claims/{volunteer}/swap:
// a claimant offers their slot to another volunteer.
func (s *Server) handleOfferSwap(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, from, err := pathIDs(r, "volunteer")
	if err != nil {
		return err
	}
	var req swapRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.dispatch.Shift(r.Context(), p.Meta(""), id, shift.OfferSwap{From: from, To: req.To}); err != nil {
		return err
	}
	return s.writeShift(w, r, p, id, http.StatusOK)
}

// handleWithdrawSwap serves POST /api/v1/shifts/{id}/claims/{volunteer}/swap/withdraw:
// the claimant takes their offer back.
func (s *Server) handleWithdrawSwap(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, from, reason, err := idsAndReason(r, "volunteer")
	if err != nil {
		return err
	}
	if err := s.dispatch.Shift(r.Context(), p.Meta(reason), id, shift.WithdrawSwap{From: from}); err != nil {
		return err
	}
	return s.writeShift(w, r, p, id, http.StatusOK)
}

// handleDeclineSwap serves POST /api/v1/shifts/{id}/swaps/{volunteer}/decline:
// the volunteer offered a slot says no; the claimant keeps it.
func (s *Server) handleDeclineSwap(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, to, reason, err := idsAndReason(r, "volunteer")
	if err != nil {
		return err
	}
	if err := s.dispatch.Shift(r.Context(), p.Meta(reason), id, shift.DeclineSwap{To: to}); err != nil {
		return err
	}
	return s.writeShift(w, r, p, id, http.StatusOK)
}

// handleAcceptSwap serves POST /api/v1/shifts/{id}/swaps/{volunteer}/accept:
// the volunteer offered a slot takes it, if they are free and certified.
func (s *Server) handleAcceptSwap(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, to, err := pathIDs(r, "volunteer")
	if err != nil {
		return err
	}
	if err := refuseBody(r); err != nil {
		return err
	}
	if err := s.dispatch.AcceptSwap(r.Context(), p.Meta(""), id, to); err != nil {
		return err
	}
	return s.writeShift(w, r, p, id, http.StatusOK)
}
