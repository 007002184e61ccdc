package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
)

func TestAnInvitedVolunteerRegistersThemselvesAndKeepsTheirContactCurrent(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator := e.users[account.Coordinator]
	email := "lucia-" + uuid.NewString()[:8] + "@example.org"
	token := e.invite(coordinator, email, account.Volunteer)
	mustStatus(t, e.do(nil, "POST", "/api/v1/invitations/accept", map[string]string{"token": token, "password": "a long new password"}),
		http.StatusCreated, "accept")
	in := e.do(nil, "POST", "/api/v1/session", map[string]string{"email": email, "password": "a long new password"})
	mustStatus(t, in, http.StatusOK, "sign in")
	var who struct {
		UserID uuid.UUID `json:"user_id"`
	}
	decode(t, in.body, &who)
	lucia := &user{id: who.UserID, email: email, cookie: in.cookie}

	profile := map[string]any{"name": "Lucía", "phone": "+1 555 0142", "email": email,
		"languages": []map[string]string{{"code": "es", "level": "native"}}, "regions": []string{"East"}}
	withExperience := map[string]any{"name": "Lucía", "prior_assignments": 40}
	if r := e.do(lucia, "POST", "/api/v1/volunteers", withExperience); r.errorCode() != "invalid_field" || !strings.Contains(r.body, "prior_assignments") {
		t.Errorf("a volunteer claiming experience: %d %s", r.status, r.body)
	}
	if r := e.do(lucia, "POST", "/api/v1/volunteers", map[string]any{"user_id": e.users[account.Volunteer].id, "name": "Someone"}); r.errorCode() != "invalid_field" {
		t.Errorf("a volunteer registering someone else: %d %s", r.status, r.body)
	}
	r := e.do(lucia, "POST", "/api/v1/volunteers", profile)
	if r.status != http.StatusCreated || !strings.Contains(r.body, `"volunteer_id":"`+lucia.id.String()) {
		t.Fatalf("self-registration: %d %s", r.status, r.body)
	}
	if r := e.do(lucia, "POST", "/api/v1/volunteers", profile); r.errorCode() != "already_exists" {
		t.Errorf("registering twice: %d %s", r.status, r.body)
	}
	// The record is theirs: they change their contact details, and
	// nobody else's.
	mine := "/api/v1/volunteers/" + lucia.id.String()
	r = e.do(lucia, "POST", mine+"/contact", map[string]string{"name": "Lucía M.", "phone": "+1 555 0199"})
	if r.status != http.StatusOK || !strings.Contains(r.body, `"phone":"+1 555 0199"`) || !strings.Contains(r.body, `"name":"Lucía M."`) {
		t.Errorf("change contact: %d %s", r.status, r.body)
	}
	if r := e.do(lucia, "POST", mine+"/contact", map[string]string{"name": ""}); r.errorCode() != "invalid_field" {
		t.Errorf("an empty name: %d %s", r.status, r.body)
	}
	other := "/api/v1/volunteers/" + e.users[account.Volunteer].id.String()
	if r := e.do(lucia, "POST", other+"/contact", map[string]string{"name": "x"}); r.status != http.StatusForbidden {
		t.Errorf("changing someone else's contact: %d", r.status)
	}
}

func TestRevokingACertificationNamesTheWorkItLeavesUncovered(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator, vol := e.users[account.Coordinator], e.users[account.Volunteer]
	mustStatus(t, e.do(coordinator, "POST", "/api/v1/volunteers", map[string]any{"user_id": vol.id, "name": "Rosa", "phone": "+1 555 0100", "regions": []string{"East"}}),
		http.StatusCreated, "register")
	now := e.throttle.Now()
	grant := map[string]any{"certification": "court_accompaniment", "granted_at": now.Add(-time.Hour)}
	r := e.do(coordinator, "POST", "/api/v1/volunteers/"+vol.id.String()+"/certifications", grant)
	if r.status != http.StatusOK || !strings.Contains(r.body, `"uncovered_work":[]`) {
		t.Fatalf("grant: %d %s", r.status, r.body)
	}
	start := now.Add(72 * time.Hour)
	r = e.do(coordinator, "POST", "/api/v1/shifts", map[string]any{"role": "court watch", "start": start, "end": start.Add(4 * time.Hour),
		"region": "East", "place": "Immigration court", "capacity": 2, "requires": []string{"court_accompaniment"}})
	mustStatus(t, r, http.StatusCreated, "schedule")
	var sh struct {
		ShiftID uuid.UUID `json:"shift_id"`
	}
	decode(t, r.body, &sh)
	mustStatus(t, e.do(vol, "POST", "/api/v1/shifts/"+sh.ShiftID.String()+"/claims/"+vol.id.String(), nil), http.StatusOK, "claim")

	// Renewed to expire before the shift ends: the shift is uncovered.
	grant["expires_at"] = start.Add(time.Hour)
	r = e.do(coordinator, "POST", "/api/v1/volunteers/"+vol.id.String()+"/certifications", grant)
	if r.status != http.StatusOK || !strings.Contains(r.body, `"ref":"`+sh.ShiftID.String()) || !strings.Contains(r.body, `"missing":["court_accompaniment"]`) {
		t.Errorf("renewed with an earlier expiry: %d %s; want the shift named as uncovered", r.status, r.body)
	}
	r = e.do(coordinator, "POST", "/api/v1/volunteers/"+vol.id.String()+"/certifications/court_accompaniment/revoke",
		map[string]string{"reason": "complaint under review"})
	if r.status != http.StatusOK || !strings.Contains(r.body, `"kind":"shift"`) || !strings.Contains(r.body, `"ref":"`+sh.ShiftID.String()) {
		t.Errorf("revoke: %d %s; want the shift named as uncovered", r.status, r.body)
	}
}
