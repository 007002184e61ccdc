package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
)

func TestAVolunteerEnrollsAttendsAndIsCertified(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator, vol := e.users[account.Coordinator], e.users[account.Volunteer]
	mustStatus(t, e.do(coordinator, "POST", "/api/v1/volunteers", map[string]any{"user_id": vol.id, "name": "Rosa", "phone": "+1 555 0100"}),
		http.StatusCreated, "register")
	r := e.do(coordinator, "POST", "/api/v1/courses", map[string]any{"name": "Court accompaniment", "certification": "court_accompaniment", "validity_months": 24})
	mustStatus(t, r, http.StatusCreated, "add a course")
	var course struct {
		CourseID uuid.UUID `json:"course_id"`
	}
	decode(t, r.body, &course)
	start := e.throttle.Now().Add(48 * time.Hour)
	r = e.do(coordinator, "POST", "/api/v1/courses/"+course.CourseID.String()+"/sessions",
		map[string]any{"start": start, "end": start.Add(3 * time.Hour), "place": "Community center", "capacity": 12})
	mustStatus(t, r, http.StatusCreated, "schedule a session")
	var session struct {
		SessionID uuid.UUID `json:"session_id"`
	}
	decode(t, r.body, &session)
	base := "/api/v1/sessions/" + session.SessionID.String()

	other := e.newUser(account.Volunteer)
	if r := e.do(vol, "POST", base+"/enrollments/"+other.id.String(), nil); r.status != http.StatusForbidden {
		t.Errorf("enrolling someone else: %d, want 403", r.status)
	}
	mustStatus(t, e.do(vol, "POST", base+"/enrollments/"+vol.id.String(), nil), http.StatusNoContent, "enroll")
	if r := e.do(coordinator, "POST", base+"/attendance/"+vol.id.String(), map[string]bool{"attended": true}); r.errorCode() != "not_yet_held" {
		t.Errorf("attendance before the session: %d %s", r.status, r.body)
	}
	e.throttle.Advance(52 * time.Hour)
	r = e.do(coordinator, "POST", base+"/attendance/"+vol.id.String(), map[string]bool{"attended": true, "certify": true})
	mustStatus(t, r, http.StatusOK, "attendance and certification")
	if !strings.Contains(r.body, `"certification":"court_accompaniment"`) || !strings.Contains(r.body, start.Add(3*time.Hour).AddDate(2, 0, 0).Format("2006-01-02")) {
		t.Errorf("the volunteer after the session: %s; want court_accompaniment for two years from the session's end", r.body)
	}
}

func TestAnAdminSetsTheOrganizationsTimeZone(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.users[account.Admin]
	if r := e.do(admin, "GET", "/api/v1/settings", nil); !strings.Contains(r.body, `"time_zone":"UTC"`) {
		t.Errorf("the default settings: %s", r.body)
	}
	if r := e.do(admin, "POST", "/api/v1/settings/time-zone", map[string]string{"time_zone": "Mars/Olympus"}); r.errorCode() != "unknown_time_zone" {
		t.Errorf("an unknown zone: %d %s", r.status, r.body)
	}
	mustStatus(t, e.do(admin, "POST", "/api/v1/settings/time-zone", map[string]string{"time_zone": "America/Chicago"}), http.StatusOK, "set the zone")
	if r := e.do(e.users[account.Volunteer], "GET", "/api/v1/settings", nil); !strings.Contains(r.body, "America/Chicago") {
		t.Errorf("a volunteer's view of the settings: %s", r.body)
	}
}

func TestTheCatalogAndSessionsAsCoordinatorsAndVolunteersSeeThem(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator, vol := e.users[account.Coordinator], e.users[account.Volunteer]
	mustStatus(t, e.do(coordinator, "POST", "/api/v1/volunteers", map[string]any{"user_id": vol.id, "name": "Rosa", "phone": "+1 555 0100"}), http.StatusCreated, "register")
	r := e.do(coordinator, "POST", "/api/v1/courses", map[string]any{"name": "Know your rights", "certification": "know_your_rights"})
	mustStatus(t, r, http.StatusCreated, "add a course")
	var course struct {
		CourseID uuid.UUID `json:"course_id"`
	}
	decode(t, r.body, &course)
	courseURL := "/api/v1/courses/" + course.CourseID.String()
	r = e.do(coordinator, "POST", courseURL, map[string]any{"name": "Know your rights (2026)", "validity_months": 12})
	if r.status != http.StatusOK || !strings.Contains(r.body, `"validity_months":12`) {
		t.Errorf("change the course: %d %s", r.status, r.body)
	}
	if r := e.do(vol, "GET", "/api/v1/courses", nil); !strings.Contains(r.body, "Know your rights (2026)") {
		t.Errorf("the catalog as a volunteer: %d %s", r.status, r.body)
	}

	start := e.throttle.Now().Add(24 * time.Hour)
	r = e.do(coordinator, "POST", courseURL+"/sessions", map[string]any{"start": start, "end": start.Add(2 * time.Hour), "place": "Library", "capacity": 2})
	mustStatus(t, r, http.StatusCreated, "schedule a session")
	var session struct {
		SessionID uuid.UUID `json:"session_id"`
	}
	decode(t, r.body, &session)
	base := "/api/v1/sessions/" + session.SessionID.String()
	mustStatus(t, e.do(vol, "POST", base+"/enrollments/"+vol.id.String(), nil), http.StatusNoContent, "enroll")

	// A volunteer sees their own place and not who else is enrolled;
	// staff see the list.
	r = e.do(vol, "GET", "/api/v1/sessions", nil)
	if !strings.Contains(r.body, `"you":{"enrolled":true`) || strings.Contains(r.body, `"enrolled":["`) || !strings.Contains(r.body, `"seats_left":1`) {
		t.Errorf("the sessions as the enrolled volunteer: %s", r.body)
	}
	if r := e.do(coordinator, "GET", base, nil); !strings.Contains(r.body, `"enrolled":["`+vol.id.String()) || strings.Contains(r.body, `"you"`) {
		t.Errorf("the session as a coordinator: %s", r.body)
	}
	if r := e.do(vol, "GET", "/api/v1/volunteers/"+vol.id.String()+"/trainings", nil); !strings.Contains(r.body, session.SessionID.String()) ||
		!strings.Contains(r.body, `"course_name":"Know your rights (2026)"`) {
		t.Errorf("the volunteer's trainings: %d %s", r.status, r.body)
	}

	// A seat is given back before the session starts, and not after.
	r = e.do(vol, "POST", base+"/enrollments/"+vol.id.String()+"/withdraw", nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, `"seats_left":2`) {
		t.Errorf("give the seat back: %d %s", r.status, r.body)
	}
	mustStatus(t, e.do(vol, "POST", base+"/enrollments/"+vol.id.String(), nil), http.StatusNoContent, "enroll again")
	e.throttle.Advance(25 * time.Hour)
	if r := e.do(vol, "POST", base+"/enrollments/"+vol.id.String()+"/withdraw", nil); r.errorCode() != "session_started" {
		t.Errorf("give the seat back after the start: %d %s, want 409 session_started", r.status, r.body)
	}

	// Cancelling needs a reason; a cancelled session takes nobody.
	if r := e.do(coordinator, "POST", base+"/cancel", nil); r.errorCode() != "reason_required" {
		t.Errorf("cancel without a reason: %d %s", r.status, r.body)
	}
	if r := e.do(coordinator, "POST", base+"/cancel", map[string]string{"reason": "trainer ill"}); r.status != http.StatusOK || !strings.Contains(r.body, `"cancelled":true`) {
		t.Errorf("cancel: %d %s", r.status, r.body)
	}
	if r := e.do(coordinator, "POST", base+"/enrollments/"+e.users[account.Volunteer].id.String()+"/withdraw", nil); r.errorCode() != "session_cancelled" {
		t.Errorf("a change to a cancelled session: %d %s", r.status, r.body)
	}

	// A retired course leaves the catalog and schedules no session.
	mustStatus(t, e.do(coordinator, "POST", courseURL+"/retire", map[string]string{"reason": "replaced"}), http.StatusOK, "retire")
	if r := e.do(vol, "GET", "/api/v1/courses", nil); strings.Contains(r.body, course.CourseID.String()) {
		t.Errorf("the catalog lists a retired course: %s", r.body)
	}
	if r := e.do(coordinator, "GET", "/api/v1/courses?retired=true", nil); !strings.Contains(r.body, `"retired":true`) {
		t.Errorf("the catalog with retired courses: %s", r.body)
	}
	if r := e.do(coordinator, "GET", "/api/v1/courses?retired=maybe", nil); r.status != http.StatusBadRequest || r.errorCode() != "invalid_field" {
		t.Errorf("retired=maybe: %d %s", r.status, r.body)
	}
	if r := e.do(coordinator, "POST", courseURL+"/sessions", map[string]any{"start": start.Add(48 * time.Hour),
		"end": start.Add(50 * time.Hour), "place": "Library", "capacity": 2}); r.errorCode() != "course_retired" {
		t.Errorf("a session of a retired course: %d %s", r.status, r.body)
	}
}
