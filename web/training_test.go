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
