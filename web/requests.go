package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/matching"
	"github.com/presente-dispatch/presente/domain/request"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/accounts"
)

// personRequest is the person a request is for: personal data, sealed
// under the person's own key.
type personRequest struct {
	Name    string `json:"name"`
	Phone   string `json:"phone"`
	Address string `json:"address"`
}

// receiveRequest is the body of POST /api/v1/requests. A scheduled
// accompaniment gives start and end; an urgent report gives reported_at
// (now when left out) and lasts four hours unless end is given.
type receiveRequest struct {
	Kind               request.Kind              `json:"kind"`
	SubKind            string                    `json:"sub_kind"`
	Start              time.Time                 `json:"start"`
	End                time.Time                 `json:"end"`
	ReportedAt         time.Time                 `json:"reported_at"`
	Region             string                    `json:"region"`
	MeetingPoint       string                    `json:"meeting_point"`
	Languages          []string                  `json:"languages"`
	Certifications     []volunteer.Certification `json:"certifications"`
	TeamCertifications []volunteer.Certification `json:"team_certifications"`
	Needed             int                       `json:"needed"`
	Priority           request.Priority          `json:"priority"`
	Person             personRequest             `json:"person"`
	Notes              string                    `json:"notes"`
}

// urgentWindow is how long an urgent report is worked when no end is given.
const urgentWindow = 4 * time.Hour

// assignmentView is one volunteer on a request.
type assignmentView struct {
	AssignmentID uuid.UUID                `json:"assignment_id"`
	VolunteerID  uuid.UUID                `json:"volunteer_id"`
	Status       request.AssignmentStatus `json:"status"`
}

// requestView is a request as staff see it.
type requestView struct {
	RequestID          uuid.UUID                 `json:"request_id"`
	Kind               request.Kind              `json:"kind"`
	SubKind            string                    `json:"sub_kind,omitempty"`
	Status             request.Status            `json:"status"`
	Verification       request.Verification      `json:"verification,omitempty"`
	Alerted            bool                      `json:"alerted"`
	Start              time.Time                 `json:"start"`
	End                time.Time                 `json:"end"`
	Region             string                    `json:"region"`
	MeetingPoint       string                    `json:"meeting_point,omitempty"`
	Languages          []string                  `json:"languages"`
	Certifications     []volunteer.Certification `json:"certifications"`
	TeamCertifications []volunteer.Certification `json:"team_certifications"`
	Needed             int                       `json:"needed"`
	Priority           request.Priority          `json:"priority"`
	PersonID           uuid.UUID                 `json:"person_id"`
	Person             personRequest             `json:"person"`
	Notes              string                    `json:"notes,omitempty"`
	Assignments        []assignmentView          `json:"assignments"`
}

// handleReceiveRequest serves POST /api/v1/requests: a dispatcher enters
// a request from a hotline call.
func (s *Server) handleReceiveRequest(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	var req receiveRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := checkCodes(&req.Languages, "languages"); err != nil {
		return err
	}
	if err := checkCertifications(req.Certifications, "certifications"); err != nil {
		return err
	}
	if err := checkCertifications(req.TeamCertifications, "team_certifications"); err != nil {
		return err
	}
	for _, f := range []struct {
		field, value string
		max          int
	}{{"region", req.Region, 100}, {"meeting_point", req.MeetingPoint, 300}, {"person.name", req.Person.Name, 200},
		{"person.phone", req.Person.Phone, 40}, {"person.address", req.Person.Address, 300}} {
		if len(f.value) > f.max {
			return &Error{Code: "invalid_field", Field: f.field, Message: fmt.Sprintf("%s is at most %d characters", f.field, f.max)}
		}
	}
	window := domain.Window{Start: req.Start, End: req.End}
	if req.Kind == request.RapidResponse && req.Start.IsZero() {
		reported := req.ReportedAt
		if reported.IsZero() {
			reported = time.Now()
		}
		window.Start = reported
		if window.End.IsZero() {
			window.End = reported.Add(urgentWindow)
		}
	}
	if req.Priority == "" {
		req.Priority = request.Normal
		if req.Kind == request.RapidResponse {
			req.Priority = request.Urgent
		}
	}
	ids, err := newIDs(r, 2)
	if err != nil {
		return err
	}
	if err := s.dispatch.ReceiveRequest(r.Context(), p.Meta(""), request.Receive{RequestID: ids[0], Kind: req.Kind, SubKind: req.SubKind,
		Window: window, Region: req.Region, Languages: req.Languages, Certifications: req.Certifications,
		TeamCertifications: req.TeamCertifications, Needed: req.Needed, Priority: req.Priority, PersonID: ids[1],
		PersonName: req.Person.Name, PersonPhone: req.Person.Phone, PersonAddress: req.Person.Address,
		MeetingPoint: req.MeetingPoint, Notes: req.Notes}); err != nil && !errors.Is(err, request.ErrExists) {
		return err
	}
	return s.writeRequest(w, r, ids[0], http.StatusCreated)
}

// newIDs returns n new ids for what a request creates: derived from its
// Idempotency-Key when it has one, so a retry whose first try committed
// unseen finds what that try made, and time-ordered random ones otherwise.
func newIDs(r *http.Request, n int) ([]uuid.UUID, error) {
	ids := make([]uuid.UUID, n)
	seed := retryOf(r)
	for i := range ids {
		if seed != nil {
			ids[i] = uuid.NewSHA1(retryNamespace, append(append([]byte(nil), seed...), byte(i)))
			continue
		}
		id, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// retryNamespace derives the ids of what a retried request creates.
var retryNamespace = uuid.MustParse("b5f8c2d1-4e6a-4f3b-9d7c-2a1e8f6b0c93")

func (s *Server) writeRequest(w http.ResponseWriter, r *http.Request, id uuid.UUID, status int) error {
	st, details, err := s.dispatch.RequestView(r.Context(), id)
	if err != nil {
		return err
	}
	v := requestView{RequestID: id, Kind: st.Kind, SubKind: details.SubKind, Status: st.Status(), Verification: st.Verification,
		Alerted: st.Alerted, Start: st.Window.Start, End: st.Window.End, Region: st.Region, MeetingPoint: details.MeetingPoint,
		Languages: orEmpty(st.Languages), Certifications: orEmpty(st.Certifications), TeamCertifications: orEmpty(st.TeamCertifications),
		Needed: st.Needed, Priority: st.Priority, PersonID: st.PersonID,
		Person: personRequest{Name: details.PersonName, Phone: details.PersonPhone, Address: details.PersonAddress},
		Notes:  details.Notes, Assignments: []assignmentView{}}
	for _, a := range st.Assignments {
		v.Assignments = append(v.Assignments, assignmentView{AssignmentID: a.AssignmentID, VolunteerID: a.VolunteerID, Status: a.Status})
	}
	writeJSON(w, status, v)
	return nil
}

// handleGetRequest serves GET /api/v1/requests/{id}: a request with the
// person's details and its assignments, for staff.
func (s *Server) handleGetRequest(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	return s.writeRequest(w, r, id, http.StatusOK)
}

// requestActionBody is the body of POST /api/v1/requests/{id}/{action}.
type requestActionBody struct {
	Priority request.Priority `json:"priority"`
	Outcome  string           `json:"outcome"`
	Reason   string           `json:"reason"`
}

// handleRequestAction serves POST /api/v1/requests/{id}/{action}: triage,
// verify, alert, resolve, close, cancel or reopen a request.
func (s *Server) handleRequestAction(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var body requestActionBody
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	if err := checkReason(body.Reason); err != nil {
		return err
	}
	now := time.Now()
	var c request.Command
	switch action := r.PathValue("action"); action {
	case "triage":
		c = request.Triage{Priority: body.Priority}
	case "verify":
		c = request.Verify{Outcome: request.Verification(body.Outcome)}
	case "alert":
		c = request.Alert{}
	case "resolve":
		c = request.Resolve{Outcome: body.Outcome, At: now}
	case "close":
		c = request.Close{At: now}
	case "cancel":
		c = request.Cancel{Reason: body.Reason, At: now}
	case "reopen":
		c = request.Reopen{Reason: body.Reason}
	default:
		return &Error{Code: "unknown_action", Field: "action",
			Message: "use triage, verify, alert, resolve, close, cancel or reopen, not " + strings.ToValidUTF8(action, "?")}
	}
	// A field the action does not read would be dropped without a word.
	switch action := r.PathValue("action"); {
	case body.Priority != "" && action != "triage":
		return &Error{Code: "invalid_field", Field: "priority", Message: "priority is given only to triage: leave it out"}
	case body.Outcome != "" && action != "verify" && action != "resolve":
		return &Error{Code: "invalid_field", Field: "outcome", Message: "outcome is given only to verify or resolve: leave it out"}
	}
	if err := s.dispatch.Request(r.Context(), p.Meta(body.Reason), id, c); err != nil {
		return err
	}
	return s.writeRequest(w, r, id, http.StatusOK)
}

// handleMatches serves GET /api/v1/requests/{id}/matches: the volunteers
// who could take the request now, ranked, with why; ?relax=region,language
// drops filters.
func (s *Server) handleMatches(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var relaxed []string
	if v := r.URL.Query().Get("relax"); v != "" {
		relaxed = strings.Split(v, ",")
	}
	for _, f := range relaxed {
		if !slices.Contains(matching.Filters, f) {
			return &Error{Code: "invalid_field", Field: "relax",
				Message: "relax lists filters to drop, separated by commas: " + strings.Join(matching.Filters, ", ")}
		}
	}
	res, err := s.dispatch.Match(r.Context(), id, relaxed...)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// offerRequest is the body of POST /api/v1/requests/{id}/assignments.
type offerRequest struct {
	VolunteerID uuid.UUID `json:"volunteer_id"`
	Override    bool      `json:"override"`
}

// handleOffer serves POST /api/v1/requests/{id}/assignments: assign a
// volunteer. A refusal names the rule that blocked it (409).
func (s *Server) handleOffer(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req offerRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.VolunteerID == uuid.Nil {
		return &Error{Code: "invalid_field", Field: "volunteer_id", Message: "volunteer_id is required"}
	}
	ids, err := newIDs(r, 1)
	if err != nil {
		return err
	}
	if _, err := s.dispatch.OfferAs(r.Context(), p.Meta(""), ids[0], id, req.VolunteerID, req.Override); err != nil {
		return err
	}
	return s.writeRequest(w, r, id, http.StatusCreated)
}

// statusRequest is the body of POST /api/v1/requests/{id}/assignments/{assignment}/status.
type statusRequest struct {
	Status request.AssignmentStatus `json:"status"`
	Reason string                   `json:"reason"`
}

// handleAssignmentStatus serves POST
// /api/v1/requests/{id}/assignments/{assignment}/status: the volunteer
// accepts, declines (with a reason), goes en route, arrives, is done; a
// dispatcher may also withdraw them.
func (s *Server) handleAssignmentStatus(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, aid, err := pathIDs(r, "assignment")
	if err != nil {
		return err
	}
	var req statusRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := checkReason(req.Reason); err != nil {
		return err
	}
	switch req.Status {
	case request.Accepted, request.Declined, request.EnRoute, request.Arrived, request.Done, request.Withdrawn:
	default:
		return &Error{Code: "invalid_field", Field: "status", Message: "status must be accepted, declined, en_route, arrived, done or withdrawn"}
	}
	if req.Status == request.Withdrawn && p.Role == account.Volunteer {
		return errForbidden // a volunteer declines; withdrawing is a dispatcher's call
	}
	if err := s.dispatch.ChangeAssignment(r.Context(), p.Meta(req.Reason), id, aid, req.Status); err != nil {
		return err
	}
	if p.Role == account.Volunteer {
		w.WriteHeader(http.StatusNoContent) // the person's details are not theirs to list
		return nil
	}
	return s.writeRequest(w, r, id, http.StatusOK)
}

// ownsAssignment tells whether the caller is the volunteer of the
// assignment the path names.
func (s *Server) ownsAssignment(r *http.Request, p *accounts.Principal) (bool, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return false, nil
	}
	aid, err := uuid.Parse(r.PathValue("assignment"))
	if err != nil {
		return false, nil
	}
	st, err := s.dispatch.RequestState(r.Context(), id)
	if errors.Is(err, request.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	a, ok := st.Assignment(aid)
	return ok && a.VolunteerID == p.UserID, nil
}
