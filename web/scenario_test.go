package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/infra/dispatch"
	"github.com/presente-dispatch/presente/infra/eventstore"
	infraprivacy "github.com/presente-dispatch/presente/infra/privacy"
)

// TestADayOnTheBoard walks the scenario of DOMAIN.md through HTTP, each
// role with its own real session.
func TestADayOnTheBoard(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator, dispatcher := e.users[account.Coordinator], e.users[account.Dispatcher]
	now := time.Now().UTC()

	// The network: three trained responders in East who speak Spanish,
	// each signed in on their phone, and one in West.
	var responders []*user
	for i, region := range []string{"East", "East", "East", "West"} {
		u := e.newUser(account.Volunteer)
		r := e.do(coordinator, "POST", "/api/v1/volunteers", map[string]any{"user_id": u.id, "name": "Responder " + string(rune('A'+i)),
			"phone": "+1 555 010" + string(rune('0'+i)), "languages": []map[string]string{{"code": "es", "level": "native"}},
			"regions": []string{region}, "prior_assignments": 4})
		mustStatus(t, r, http.StatusCreated, "register a responder")
		mustStatus(t, e.do(coordinator, "POST", "/api/v1/volunteers/"+u.id.String()+"/certifications",
			map[string]any{"certification": "rapid_response", "granted_at": now.AddDate(-1, 0, 0)}), http.StatusOK, "certify")
		mustStatus(t, e.do(u, "POST", "/api/v1/volunteers/"+u.id.String()+"/on-call", map[string]bool{"on_call": true}), http.StatusOK, "go on call")
		responders = append(responders, u)
	}

	// 1. 06:40: the hotline gets a report; the dispatcher enters it.
	r := e.do(dispatcher, "POST", "/api/v1/requests", map[string]any{"kind": "rapid_response", "region": "East", "languages": []string{"es"},
		"certifications": []string{"rapid_response"}, "needed": 2, "meeting_point": "Loading dock, 5th and Main",
		"person": map[string]string{"name": "Reporter Xochitl", "phone": "+1 555 0199"}}, "Idempotency-Key", "call-0640")
	mustStatus(t, r, http.StatusCreated, "receive the report")
	var report struct {
		RequestID uuid.UUID `json:"request_id"`
		Priority  string    `json:"priority"`
	}
	decode(t, r.body, &report)
	if report.Priority != "urgent" {
		t.Errorf("a rapid-response report is %s, want urgent by default", report.Priority)
	}
	base := "/api/v1/requests/" + report.RequestID.String()
	if r := e.do(dispatcher, "GET", "/api/v1/requests", nil); !strings.Contains(r.body, report.RequestID.String()) || strings.Contains(r.body, "Xochitl") {
		t.Errorf("the open requests: %s; want the report, without the person's name", r.body)
	}
	if r := e.do(dispatcher, "GET", "/api/v1/volunteers", nil); strings.Count(r.body, `"volunteer_id"`) != 4 {
		t.Errorf("the volunteers: %s; want the four responders", r.body)
	}

	// 2. The board proposes the on-call responders in East, with reasons.
	r = e.do(dispatcher, "GET", base+"/matches", nil)
	mustStatus(t, r, http.StatusOK, "matches")
	var matches struct {
		Matches []struct {
			VolunteerID uuid.UUID `json:"volunteer_id"`
		} `json:"matches"`
	}
	decode(t, r.body, &matches)
	if len(matches.Matches) != 3 || strings.Contains(r.body, responders[3].id.String()) {
		t.Fatalf("matches = %s, want the three East responders only", r.body)
	}

	// 3. The dispatcher assigns two; each accepts on their phone, goes en
	// route and arrives.
	var assignments []struct {
		AssignmentID uuid.UUID `json:"assignment_id"`
		VolunteerID  uuid.UUID `json:"volunteer_id"`
	}
	for _, m := range matches.Matches[:2] {
		mustStatus(t, e.do(dispatcher, "POST", base+"/assignments", map[string]any{"volunteer_id": m.VolunteerID}), http.StatusCreated, "assign")
	}
	r = e.do(dispatcher, "GET", base, nil)
	var full struct {
		Assignments []struct {
			AssignmentID uuid.UUID `json:"assignment_id"`
			VolunteerID  uuid.UUID `json:"volunteer_id"`
		} `json:"assignments"`
	}
	decode(t, r.body, &full)
	assignments = full.Assignments
	phone := map[uuid.UUID]*user{}
	for _, u := range responders {
		phone[u.id] = u
	}
	third := matches.Matches[2].VolunteerID
	if r := e.do(phone[third], "POST", base+"/assignments/"+assignments[0].AssignmentID.String()+"/status",
		map[string]string{"status": "accepted"}); r.status != http.StatusForbidden {
		t.Errorf("a volunteer moving someone else's assignment: %d, want 403", r.status)
	}
	for _, a := range assignments {
		for _, st := range []string{"accepted", "en_route", "arrived"} {
			mustStatus(t, e.do(phone[a.VolunteerID], "POST", base+"/assignments/"+a.AssignmentID.String()+"/status",
				map[string]string{"status": st}), http.StatusNoContent, "the volunteer reports "+st)
		}
	}
	r = e.do(dispatcher, "GET", base, nil)
	if !strings.Contains(r.body, `"status":"in_progress"`) || strings.Count(r.body, `"status":"arrived"`) != 2 {
		t.Errorf("the board's view of the request: %s", r.body)
	}

	// 4. 07:05: a verifier confirms; only then the region is alerted.
	if r := e.do(dispatcher, "POST", base+"/alert", nil); r.status != http.StatusConflict || r.errorCode() != "not_confirmed" {
		t.Errorf("an alert before confirmation: %d %s", r.status, r.body)
	}
	mustStatus(t, e.do(dispatcher, "POST", base+"/verify", map[string]string{"outcome": "confirmed"}), http.StatusOK, "confirm")
	r = e.do(dispatcher, "POST", base+"/alert", nil)
	mustStatus(t, r, http.StatusOK, "alert")
	if !strings.Contains(r.body, `"alerted":true`) {
		t.Errorf("after the alert: %s", r.body)
	}

	// 5. A volunteer claims the last slot of Thursday's court watch; a
	// second lands on the waitlist and is promoted when the first releases.
	thursday := now.AddDate(0, 0, 3).Truncate(time.Hour)
	r = e.do(coordinator, "POST", "/api/v1/shifts", map[string]any{"role": "court watch", "start": thursday, "end": thursday.Add(4 * time.Hour),
		"region": "East", "place": "Immigration court", "capacity": 1})
	mustStatus(t, r, http.StatusCreated, "schedule the court watch")
	var sh struct {
		ShiftID uuid.UUID `json:"shift_id"`
	}
	decode(t, r.body, &sh)
	first, second := responders[2], responders[3]
	shiftPath := "/api/v1/shifts/" + sh.ShiftID.String()
	if r := e.do(first, "GET", "/api/v1/shifts", nil); !strings.Contains(r.body, sh.ShiftID.String()) || !strings.Contains(r.body, `"open":1`) {
		t.Errorf("the week's shifts: %s; want the court watch with its open slot", r.body)
	}
	mustStatus(t, e.do(first, "POST", shiftPath+"/claims/"+first.id.String(), nil), http.StatusOK, "claim the last slot")
	if r := e.do(second, "POST", shiftPath+"/claims/"+second.id.String(), nil); !strings.Contains(r.body, `"waitlist_position":1`) {
		t.Fatalf("the second claim: %s, want waitlist position 1", r.body)
	}
	mustStatus(t, e.do(first, "POST", shiftPath+"/claims/"+first.id.String()+"/release", nil), http.StatusOK, "release")
	if r := e.do(second, "GET", shiftPath, nil); !strings.Contains(r.body, `"mine":"claimed"`) {
		t.Errorf("the waitlisted volunteer was not promoted: %s", r.body)
	}

	// 6. The request is resolved and closed; 30 days later the person's
	// name and phone are shredded, and the timeline is still there.
	mustStatus(t, e.do(dispatcher, "POST", base+"/resolve", map[string]string{"outcome": "verified_no_action"}), http.StatusOK, "resolve")
	mustStatus(t, e.do(dispatcher, "POST", base+"/close", nil), http.StatusOK, "close")
	later := func() time.Time { return time.Now().AddDate(0, 0, 31) }
	ret, err := infraprivacy.NewRetention(e.pool, e.store, infraprivacy.RetentionOptions{Clock: later,
		Sources: []infraprivacy.Source{{Name: "closed requests", Due: dispatch.New(e.store, dispatch.Options{}).ClosedRequestPeople}}})
	if err != nil {
		t.Fatal(err)
	}
	if run, err := ret.Run(context.Background()); err != nil || len(run.Forgotten) != 1 {
		t.Fatalf("the retention run = %+v, %v; want the reporter forgotten", run, err)
	}
	r = e.do(coordinator, "GET", base, nil) // weeks later, the coordinator audits it
	if strings.Contains(r.body, "Xochitl") || strings.Contains(r.body, "0199") || !strings.Contains(r.body, eventstore.Forgotten) {
		t.Errorf("after retention the request reads %s; want the person's details shredded", r.body)
	}
	if strings.Count(r.body, `"status":"arrived"`) != 2 || !strings.Contains(r.body, `"status":"closed"`) {
		t.Errorf("after retention the timeline is gone: %s", r.body)
	}
}

func mustStatus(t *testing.T, a answer, want int, what string) {
	t.Helper()
	if a.status != want {
		t.Fatalf("%s: %d %s, want %d", what, a.status, a.body, want)
	}
}

func TestAVolunteerSeesWhereToGoOnlyWhenTheyNeedTo(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator, dispatcher, vol := e.users[account.Coordinator], e.users[account.Dispatcher], e.users[account.Volunteer]
	mustStatus(t, e.do(coordinator, "POST", "/api/v1/volunteers", map[string]any{"user_id": vol.id, "name": "Rosa", "phone": "+1 555 0100",
		"languages": []map[string]string{{"code": "es", "level": "native"}}, "regions": []string{"East"}, "prior_assignments": 3}),
		http.StatusCreated, "register")
	start := e.throttle.Now().Add(24 * time.Hour)
	r := e.do(dispatcher, "POST", "/api/v1/requests", map[string]any{"kind": "accompaniment", "sub_kind": "ice_checkin", "start": start,
		"end": start.Add(2 * time.Hour), "region": "East", "languages": []string{"es"}, "needed": 1, "meeting_point": "Field office lobby",
		"person": map[string]string{"name": "Juana Pérez López", "phone": "+1 555 0177", "address": "12 Elm St"}})
	mustStatus(t, r, http.StatusCreated, "receive")
	var req struct {
		RequestID uuid.UUID `json:"request_id"`
	}
	decode(t, r.body, &req)
	mustStatus(t, e.do(dispatcher, "POST", "/api/v1/requests/"+req.RequestID.String()+"/assignments", map[string]any{"volunteer_id": vol.id}),
		http.StatusCreated, "assign")

	mine := "/api/v1/volunteers/" + vol.id.String() + "/assignments"
	e.throttle.Advance(23*time.Hour + 30*time.Minute)
	r = e.do(vol, "GET", mine, nil)
	if strings.Contains(r.body, "Field office") {
		t.Errorf("offered, not yet accepted: %s; want no meeting point", r.body)
	}
	var list struct {
		Assignments []struct {
			AssignmentID uuid.UUID `json:"assignment_id"`
		} `json:"assignments"`
	}
	decode(t, r.body, &list)
	if len(list.Assignments) != 1 {
		t.Fatalf("assignments = %s", r.body)
	}
	mustStatus(t, e.do(vol, "POST", "/api/v1/requests/"+req.RequestID.String()+"/assignments/"+list.Assignments[0].AssignmentID.String()+"/status",
		map[string]string{"status": "accepted"}), http.StatusNoContent, "accept")
	e.throttle.Advance(-23*time.Hour - 30*time.Minute)
	r = e.do(vol, "GET", mine, nil)
	if !strings.Contains(r.body, req.RequestID.String()) || strings.Contains(r.body, "Field office") || strings.Contains(r.body, "Juana") {
		t.Errorf("a day ahead: %s; want the assignment without where to go or whom to meet", r.body)
	}
	e.throttle.Advance(23*time.Hour + 30*time.Minute)
	r = e.do(vol, "GET", mine, nil)
	if !strings.Contains(r.body, "Field office lobby") || !strings.Contains(r.body, `"first_name":"Juana"`) {
		t.Errorf("half an hour before: %s; want the meeting point and the first name", r.body)
	}
	for _, never := range []string{"Pérez", "0177", "Elm"} {
		if strings.Contains(r.body, never) {
			t.Errorf("the volunteer sees %q: only the first name and the meeting point are theirs to know", never)
		}
	}
	if r := e.do(e.newUser(account.Volunteer), "GET", mine, nil); r.status != http.StatusForbidden {
		t.Errorf("another volunteer reading these assignments: %d, want 403", r.status)
	}
}
