package web

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain"
	"github.com/presente-dispatch/presente/domain/training"
	"github.com/presente-dispatch/presente/domain/volunteer"
	"github.com/presente-dispatch/presente/infra/accounts"
)

// courseRequest is the body of POST /api/v1/courses.
type courseRequest struct {
	Name           string                  `json:"name"`
	Certification  volunteer.Certification `json:"certification"`
	ValidityMonths int                     `json:"validity_months"`
}

// handleAddCourse serves POST /api/v1/courses: a coordinator adds a course
// to the catalog, naming the certification it grants and for how long.
func (s *Server) handleAddCourse(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	var req courseRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	ids, err := newIDs(r, 1)
	if err != nil {
		return err
	}
	if err := s.dispatch.Course(r.Context(), p.Meta(""), ids[0], training.AddCourse{CourseID: ids[0], Name: req.Name,
		Certification: req.Certification, ValidityMonths: req.ValidityMonths}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"course_id": ids[0], "name": req.Name, "certification": req.Certification,
		"validity_months": req.ValidityMonths})
	return nil
}

// sessionRequest is the body of POST /api/v1/courses/{id}/sessions.
type sessionRequest struct {
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Place     string    `json:"place"`
	Capacity  int       `json:"capacity"`
	TrainerID uuid.UUID `json:"trainer_id"`
}

// handleScheduleSession serves POST /api/v1/courses/{id}/sessions: a
// coordinator schedules a session of a course.
func (s *Server) handleScheduleSession(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	course, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req sessionRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	ids, err := newIDs(r, 1)
	if err != nil {
		return err
	}
	if err := s.dispatch.ScheduleSession(r.Context(), p.Meta(""), training.ScheduleSession{SessionID: ids[0],
		Window: domain.Window{Start: req.Start, End: req.End}, Place: req.Place, Capacity: req.Capacity, TrainerID: req.TrainerID}, course); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"session_id": ids[0], "course_id": course})
	return nil
}

// handleEnroll serves POST /api/v1/sessions/{id}/enrollments/{volunteer}:
// the volunteer (or a coordinator for them) takes a seat.
func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, v, _, err := idsAndReason(r, "volunteer")
	if err != nil {
		return err
	}
	if err := s.dispatch.Session(r.Context(), p.Meta(""), id, training.Enroll{VolunteerID: v}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// attendanceRequest is the body of POST /api/v1/sessions/{id}/attendance/{volunteer}.
type attendanceRequest struct {
	Attended bool `json:"attended"`
	// Certify grants the session's certification at once to an attendee.
	Certify bool `json:"certify"`
}

// handleAttendance serves POST /api/v1/sessions/{id}/attendance/{volunteer}:
// a coordinator records whether an enrolled volunteer came and, if asked,
// grants them the course's certification.
func (s *Server) handleAttendance(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, v, err := pathIDs(r, "volunteer")
	if err != nil {
		return err
	}
	var req attendanceRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.dispatch.Session(r.Context(), p.Meta(""), id, training.RecordAttendance{VolunteerID: v, Attended: req.Attended}); err != nil {
		return err
	}
	if req.Certify {
		if err := s.dispatch.IssueCertification(r.Context(), p.Meta(""), id, v); err != nil {
			return err
		}
	}
	return s.writeVolunteer(w, r, v, http.StatusOK)
}
