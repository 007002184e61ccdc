package web

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/accounts"
	"github.com/presente-dispatch/presente/infra/dispatch"
)

// registerVolunteerRequest is the body of POST /api/v1/volunteers.
type registerVolunteerRequest struct {
	// UserID links the record to the volunteer's account, whose id it
	// then shares, so the volunteer can act on their own record.
	UserID           uuid.UUID            `json:"user_id"`
	Name             string               `json:"name"`
	Phone            string               `json:"phone"`
	Email            string               `json:"email"`
	Languages        []volunteer.Language `json:"languages"`
	Regions          []string             `json:"regions"`
	PriorAssignments int                  `json:"prior_assignments"`
}

// certificationView is a certification a volunteer holds.
type certificationView struct {
	Certification volunteer.Certification `json:"certification"`
	ExpiresAt     *time.Time              `json:"expires_at,omitempty"`
}

// volunteerView is a volunteer's record as staff and the volunteer see it.
type volunteerView struct {
	VolunteerID    uuid.UUID            `json:"volunteer_id"`
	Name           string               `json:"name"`
	Phone          string               `json:"phone,omitempty"`
	Email          string               `json:"email,omitempty"`
	Languages      []volunteer.Language `json:"languages"`
	Regions        []string             `json:"regions"`
	Active         bool                 `json:"active"`
	OnCall         bool                 `json:"on_call"`
	Served         int                  `json:"assignments_completed"`
	Certifications []certificationView  `json:"certifications"`
}

func viewVolunteer(st volunteer.State) volunteerView {
	v := volunteerView{VolunteerID: st.VolunteerID, Name: st.Name, Phone: st.Phone, Email: st.Email, Languages: st.Languages,
		Regions: st.Regions, Active: st.Active, OnCall: st.OnCall, Served: st.Served, Certifications: []certificationView{}}
	for c := range st.Certifications {
		cv := certificationView{Certification: c}
		if until, _ := st.CertificationExpiry(c); !until.IsZero() {
			cv.ExpiresAt = &until
		}
		v.Certifications = append(v.Certifications, cv)
	}
	slices.SortFunc(v.Certifications, func(a, b certificationView) int { return cmp.Compare(a.Certification, b.Certification) })
	return v
}

// handleRegisterVolunteer serves POST /api/v1/volunteers: a coordinator
// registers a volunteer, or a volunteer who joined through an invitation
// registers themselves (their record then shares their account's id).
func (s *Server) handleRegisterVolunteer(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	var req registerVolunteerRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := checkProfileCounts(req.Languages, req.Regions); err != nil {
		return err
	}
	if p.Role == account.Volunteer {
		switch {
		case req.UserID != uuid.Nil && req.UserID != p.UserID:
			return &Error{Code: "invalid_field", Field: "user_id", Message: "a volunteer registers only themselves: leave user_id out"}
		case req.PriorAssignments != 0:
			return &Error{Code: "invalid_field", Field: "prior_assignments", Message: "only a coordinator records experience from before Presente: leave it out"}
		}
		req.UserID = p.UserID
	}
	id := req.UserID
	if id == uuid.Nil {
		var err error
		if id, err = uuid.NewV7(); err != nil {
			return err
		}
	}
	if err := s.dispatch.RegisterVolunteer(r.Context(), p.Meta(""), volunteer.Register{VolunteerID: id, UserID: req.UserID,
		Name: req.Name, Phone: req.Phone, Email: req.Email, Languages: req.Languages, Regions: req.Regions,
		PriorAssignments: req.PriorAssignments}); err != nil {
		return err
	}
	return s.writeVolunteer(w, r, id, http.StatusCreated)
}

func (s *Server) writeVolunteer(w http.ResponseWriter, r *http.Request, id uuid.UUID, status int) error {
	st, err := s.dispatch.VolunteerState(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, status, viewVolunteer(st))
	return nil
}

// handleGetVolunteer serves GET /api/v1/volunteers/{id}: a volunteer's
// record, for staff who dispatch and for the volunteer.
func (s *Server) handleGetVolunteer(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	return s.writeVolunteer(w, r, id, http.StatusOK)
}

// checkProfileCounts bounds a volunteer's languages and regions.
func checkProfileCounts(langs []volunteer.Language, regions []string) error {
	if err := checkCount(len(langs), "languages"); err != nil {
		return err
	}
	return checkCount(len(regions), "regions")
}

// onCallRequest is the body of POST /api/v1/volunteers/{id}/on-call.
type onCallRequest struct {
	OnCall bool `json:"on_call"`
}

// handleSetOnCall serves POST /api/v1/volunteers/{id}/on-call: the
// volunteer (or a dispatcher for them) goes on call or off.
func (s *Server) handleSetOnCall(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req onCallRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.dispatch.Volunteer(r.Context(), p.Meta(""), id, volunteer.SetOnCall{OnCall: req.OnCall}); err != nil {
		return err
	}
	return s.writeVolunteer(w, r, id, http.StatusOK)
}

// grantRequest is the body of POST /api/v1/volunteers/{id}/certifications.
type grantRequest struct {
	Certification volunteer.Certification `json:"certification"`
	GrantedAt     time.Time               `json:"granted_at"`
	ExpiresAt     time.Time               `json:"expires_at"`
}

// handleGrantCertification serves POST /api/v1/volunteers/{id}/certifications:
// a coordinator records a certification earned elsewhere.
func (s *Server) handleGrantCertification(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req grantRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.dispatch.Volunteer(r.Context(), p.Meta(""), id, volunteer.Grant{Certification: req.Certification,
		GrantedAt: req.GrantedAt, ExpiresAt: req.ExpiresAt}); err != nil {
		return err
	}
	return s.writeCertificationChange(w, r, id)
}

// staff are the roles that dispatch volunteers.
var staff = []account.Role{account.Coordinator, account.Dispatcher}

// handleMyAssignments serves GET /api/v1/volunteers/{id}/assignments: the
// volunteer's live assignments; where to go and the person's first name
// only from an hour before each until it ends.
func (s *Server) handleMyAssignments(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	list, err := s.dispatch.AssignmentsOf(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"assignments": list})
	return nil
}

// profileRequest is the body of POST /api/v1/volunteers/{id}/profile.
type profileRequest struct {
	Languages []volunteer.Language `json:"languages"`
	Regions   []string             `json:"regions"`
}

// handleChangeProfile serves POST /api/v1/volunteers/{id}/profile: the
// volunteer (or a coordinator) replaces their languages and regions.
func (s *Server) handleChangeProfile(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req profileRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := checkProfileCounts(req.Languages, req.Regions); err != nil {
		return err
	}
	if err := s.dispatch.Volunteer(r.Context(), p.Meta(""), id, volunteer.ChangeProfile{Languages: req.Languages, Regions: req.Regions}); err != nil {
		return err
	}
	return s.writeVolunteer(w, r, id, http.StatusOK)
}

// contactRequest is the body of POST /api/v1/volunteers/{id}/contact.
type contactRequest struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
	Email string `json:"email"`
}

// handleChangeContact serves POST /api/v1/volunteers/{id}/contact: the
// volunteer (or a coordinator) replaces their name, phone and email.
func (s *Server) handleChangeContact(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req contactRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.dispatch.Volunteer(r.Context(), p.Meta(""), id, volunteer.ChangeContact{Name: req.Name, Phone: req.Phone, Email: req.Email}); err != nil {
		return err
	}
	return s.writeVolunteer(w, r, id, http.StatusOK)
}

// certificationChange is the answer to granting or revoking a
// certification: the volunteer, and the work they still hold that now
// lacks a certification it requires, for the coordinator to act on.
type certificationChange struct {
	volunteerView
	Uncovered []dispatch.UncoveredWork `json:"uncovered_work"`
}

func (s *Server) writeCertificationChange(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	st, err := s.dispatch.VolunteerState(r.Context(), id)
	if err != nil {
		return err
	}
	uncovered, err := s.dispatch.Uncovered(r.Context(), st)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, certificationChange{volunteerView: viewVolunteer(st), Uncovered: orEmpty(uncovered)})
	return nil
}

// handleVolunteerActive serves POST /api/v1/volunteers/{id}/deactivate and
// .../activate: a coordinator stops or resumes sending a volunteer.
func (s *Server) handleVolunteerActive(active bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
		id, reason, err := idAndReason(r)
		if err != nil {
			return err
		}
		var c volunteer.Command = volunteer.Activate{}
		if !active {
			c = volunteer.Deactivate{Now: s.dispatch.Now()}
		}
		if err := s.dispatch.Volunteer(r.Context(), p.Meta(reason), id, c); err != nil {
			return err
		}
		return s.writeVolunteer(w, r, id, http.StatusOK)
	}
}

// handleRevokeCertification serves POST
// /api/v1/volunteers/{id}/certifications/{certification}/revoke: a
// coordinator withdraws a certification, with a reason.
func (s *Server) handleRevokeCertification(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, reason, err := idAndReason(r)
	if err != nil {
		return err
	}
	if strings.TrimSpace(reason) == "" {
		return &Error{Code: "reason_required", Field: "reason", Message: "say why the certification is withdrawn"}
	}
	c := volunteer.Certification(r.PathValue("certification"))
	if err := s.dispatch.Volunteer(r.Context(), p.Meta(reason), id, volunteer.Revoke{Certification: c}); err != nil {
		return err
	}
	return s.writeCertificationChange(w, r, id)
}
