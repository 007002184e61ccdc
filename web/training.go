package web

import (
	"net/http"
	"slices"
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

// courseView is a course of the catalog.
type courseView struct {
	CourseID       uuid.UUID               `json:"course_id"`
	Name           string                  `json:"name"`
	Certification  volunteer.Certification `json:"certification"`
	ValidityMonths int                     `json:"validity_months"`
	Retired        bool                    `json:"retired"`
}

func viewCourse(c training.Course) courseView {
	return courseView{CourseID: c.CourseID, Name: c.Name, Certification: c.Certification, ValidityMonths: c.ValidityMonths, Retired: c.Retired}
}

// handleListCourses serves GET /api/v1/courses?retired=true: the catalog,
// retired courses only when asked.
func (s *Server) handleListCourses(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	retired, err := boolParam(r, "retired")
	if err != nil {
		return err
	}
	courses, err := s.dispatch.Courses(r.Context())
	if err != nil {
		return err
	}
	out := make([]courseView, 0, len(courses))
	for _, c := range courses {
		if retired || !c.Retired {
			out = append(out, viewCourse(c))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"courses": out})
	return nil
}

// changeCourseRequest is the body of POST /api/v1/courses/{id}.
type changeCourseRequest struct {
	Name           string `json:"name"`
	ValidityMonths int    `json:"validity_months"`
}

// handleChangeCourse serves POST /api/v1/courses/{id}: a coordinator
// renames a course or changes its validity for sessions scheduled from now
// on; certifications already granted keep their expiry.
func (s *Server) handleChangeCourse(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req changeCourseRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.dispatch.Course(r.Context(), p.Meta(""), id, training.ChangeCourse{Name: req.Name, ValidityMonths: req.ValidityMonths}); err != nil {
		return err
	}
	return s.writeCourse(w, r, id)
}

// handleRetireCourse serves POST /api/v1/courses/{id}/retire: the course
// leaves the catalog; its sessions already scheduled still run.
func (s *Server) handleRetireCourse(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, reason, err := idAndReason(r)
	if err != nil {
		return err
	}
	if err := s.dispatch.Course(r.Context(), p.Meta(reason), id, training.RetireCourse{}); err != nil {
		return err
	}
	return s.writeCourse(w, r, id)
}

func (s *Server) writeCourse(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	c, err := s.dispatch.CourseState(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewCourse(c))
	return nil
}

// sessionView is a training session. Staff see who is enrolled; a
// volunteer sees only their own place (you), as on their training record.
type sessionView struct {
	SessionID     uuid.UUID               `json:"session_id"`
	CourseID      uuid.UUID               `json:"course_id"`
	CourseName    string                  `json:"course_name"`
	Certification volunteer.Certification `json:"certification"`
	Start         time.Time               `json:"start"`
	End           time.Time               `json:"end"`
	Place         string                  `json:"place"`
	TrainerID     *uuid.UUID              `json:"trainer_id,omitempty"`
	Capacity      int                     `json:"capacity"`
	SeatsLeft     int                     `json:"seats_left"`
	Cancelled     bool                    `json:"cancelled"`
	Enrolled      []uuid.UUID             `json:"enrolled,omitempty"`
	You           *traineeView            `json:"you,omitempty"`
}

// traineeView is one volunteer's place in a session.
type traineeView struct {
	Enrolled bool `json:"enrolled"`
	// Attended is absent until attendance is recorded.
	Attended  *bool `json:"attended,omitempty"`
	Certified bool  `json:"certified"`
}

func viewSession(t training.Session, courseName string, p *accounts.Principal) sessionView {
	v := sessionView{SessionID: t.SessionID, CourseID: t.CourseID, CourseName: courseName, Certification: t.Certification,
		Start: t.Window.Start, End: t.Window.End, Place: t.Place, Capacity: t.Capacity,
		SeatsLeft: max(0, t.Capacity-len(t.Enrolled)), Cancelled: t.Cancelled}
	if t.TrainerID != uuid.Nil {
		v.TrainerID = &t.TrainerID
	}
	if p != nil && slices.Contains(staff, p.Role) {
		v.Enrolled = append([]uuid.UUID{}, t.Enrolled...)
	} else if p != nil {
		v.You = viewTrainee(t, p.UserID)
	}
	return v
}

func viewTrainee(t training.Session, volunteerID uuid.UUID) *traineeView {
	tv := &traineeView{Enrolled: slices.Contains(t.Enrolled, volunteerID), Certified: t.Issued[volunteerID]}
	if a, ok := t.Attended[volunteerID]; ok {
		tv.Attended = &a
	}
	return tv
}

// courseNames maps course ids to names for session lists.
func (s *Server) courseNames(r *http.Request) (map[uuid.UUID]string, error) {
	courses, err := s.dispatch.Courses(r.Context())
	if err != nil {
		return nil, err
	}
	names := make(map[uuid.UUID]string, len(courses))
	for _, c := range courses {
		names[c.CourseID] = c.Name
	}
	return names, nil
}

// handleListSessions serves GET /api/v1/sessions?from=&to=: the training
// sessions in a window (the next 60 days by default) with seats left.
func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	window, err := windowParams(r, s.dispatch.Now(), 60*24*time.Hour, 366*24*time.Hour)
	if err != nil {
		return err
	}
	sessions, err := s.dispatch.Sessions(r.Context(), window)
	if err != nil {
		return err
	}
	names, err := s.courseNames(r)
	if err != nil {
		return err
	}
	out := make([]sessionView, 0, len(sessions))
	for _, t := range sessions {
		out = append(out, viewSession(t, names[t.CourseID], p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
	return nil
}

// handleGetSession serves GET /api/v1/sessions/{id}.
func (s *Server) handleGetSession(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	return s.writeSession(w, r, id, p)
}

func (s *Server) writeSession(w http.ResponseWriter, r *http.Request, id uuid.UUID, p *accounts.Principal) error {
	t, err := s.dispatch.SessionState(r.Context(), id)
	if err != nil {
		return err
	}
	c, err := s.dispatch.CourseState(r.Context(), t.CourseID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSession(t, c.Name, p))
	return nil
}

// handleCancelSession serves POST /api/v1/sessions/{id}/cancel: a
// coordinator calls a session off, with the reason those enrolled are told.
func (s *Server) handleCancelSession(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, reason, err := idAndReason(r)
	if err != nil {
		return err
	}
	if err := s.dispatch.Session(r.Context(), p.Meta(reason), id, training.CancelSession{Reason: reason}); err != nil {
		return err
	}
	return s.writeSession(w, r, id, p)
}

// handleUnenroll serves POST /api/v1/sessions/{id}/enrollments/{volunteer}/withdraw:
// the volunteer (or a coordinator for them) gives the seat back before the
// session starts.
func (s *Server) handleUnenroll(w http.ResponseWriter, r *http.Request, p *accounts.Principal) error {
	id, v, reason, err := idsAndReason(r, "volunteer")
	if err != nil {
		return err
	}
	if err := s.dispatch.Session(r.Context(), p.Meta(reason), id, training.Unenroll{VolunteerID: v}); err != nil {
		return err
	}
	return s.writeSession(w, r, id, p)
}

// handleVolunteerTrainings serves GET /api/v1/volunteers/{id}/trainings:
// the sessions a volunteer is enrolled in or attended, and the
// certifications they hold with their expiry.
func (s *Server) handleVolunteerTrainings(w http.ResponseWriter, r *http.Request, _ *accounts.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	vol, err := s.dispatch.VolunteerState(r.Context(), id)
	if err != nil {
		return err
	}
	sessions, err := s.dispatch.TrainingsOf(r.Context(), id)
	if err != nil {
		return err
	}
	names, err := s.courseNames(r)
	if err != nil {
		return err
	}
	out := make([]sessionView, 0, len(sessions))
	for _, t := range sessions {
		v := viewSession(t, names[t.CourseID], nil)
		v.You = viewTrainee(t, id)
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out, "certifications": viewVolunteer(vol).Certifications})
	return nil
}
