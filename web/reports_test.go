package web

import (
	"encoding/csv"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
)

// until polls check until it holds or five seconds pass: the read models
// apply the log a moment after a command commits.
func until(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 seconds", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readCSV parses a CSV answer, checking its headers.
func readCSV(t *testing.T, a answer, name string) [][]string {
	t.Helper()
	mustStatus(t, a, http.StatusOK, "CSV "+name)
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("%s: Content-Type %q, want text/csv", name, ct)
	}
	if cd := a.header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="presente-`+name) || !strings.HasSuffix(cd, `.csv"`) {
		t.Errorf("%s: Content-Disposition %q", name, cd)
	}
	rows, err := csv.NewReader(strings.NewReader(a.body)).ReadAll()
	if err != nil {
		t.Fatalf("%s: the CSV does not parse: %v\n%s", name, err, a.body)
	}
	return rows
}

// reportScenario is a request answered in known times, a volunteer who
// speaks only Spanish on a shift that wants Haitian Creole too, and a
// certification about to expire.
type reportScenario struct {
	request, volunteer uuid.UUID
	shift              uuid.UUID
}

func (e *env) reportScenario(t *testing.T) reportScenario {
	t.Helper()
	coordinator, dispatcher := e.users[account.Coordinator], e.users[account.Dispatcher]
	// The dispatch clock runs from the real time, as received_at is the
	// log's own time.
	e.throttle.Advance(time.Until(e.throttle.Now()) * -1)
	now := e.throttle.Now()
	vol := e.newUser(account.Volunteer)
	mustStatus(t, e.do(coordinator, "POST", "/api/v1/volunteers", map[string]any{"user_id": vol.id, "name": "Responder Amalia",
		"phone": "+1 555 0101", "languages": []map[string]string{{"code": "es", "level": "native"}}, "regions": []string{"East"}, "prior_assignments": 4}),
		http.StatusCreated, "register")
	mustStatus(t, e.do(coordinator, "POST", "/api/v1/volunteers/"+vol.id.String()+"/certifications",
		map[string]any{"certification": "rapid_response", "granted_at": now.AddDate(-1, 0, 0), "expires_at": now.AddDate(0, 0, 20)}),
		http.StatusOK, "certify")
	mustStatus(t, e.do(vol, "POST", "/api/v1/volunteers/"+vol.id.String()+"/on-call", map[string]bool{"on_call": true}), http.StatusOK, "on call")

	e.throttle.Advance(time.Since(e.throttle.Now())) // in step with the log's clock again
	r := e.do(dispatcher, "POST", "/api/v1/requests", map[string]any{"kind": "rapid_response", "region": "East", "languages": []string{"es"},
		"certifications": []string{"rapid_response"}, "needed": 1, "person": map[string]string{"name": "Reporter Xochitl", "phone": "+1 555 0199"}},
		"Idempotency-Key", "report-1")
	mustStatus(t, r, http.StatusCreated, "receive")
	var req struct {
		RequestID uuid.UUID `json:"request_id"`
	}
	decode(t, r.body, &req)
	base := "/api/v1/requests/" + req.RequestID.String()
	r = e.do(dispatcher, "POST", base+"/assignments", map[string]any{"volunteer_id": vol.id}, "Idempotency-Key", "offer-1")
	mustStatus(t, r, http.StatusCreated, "offer")
	var offer struct {
		Assignments []struct {
			AssignmentID uuid.UUID `json:"assignment_id"`
		} `json:"assignments"`
	}
	decode(t, r.body, &offer)
	if len(offer.Assignments) != 1 {
		t.Fatalf("the offer: %s", r.body)
	}
	status := func(st string, after time.Duration) {
		e.throttle.Advance(after)
		mustStatus(t, e.do(vol, "POST", base+"/assignments/"+offer.Assignments[0].AssignmentID.String()+"/status", map[string]string{"status": st}),
			http.StatusNoContent, st)
	}
	status("accepted", 3*time.Minute)
	status("en_route", time.Minute)
	status("arrived", 17*time.Minute)
	status("done", 60*time.Minute)

	r = e.do(coordinator, "POST", "/api/v1/shifts", map[string]any{"role": "court_watch", "region": "East", "capacity": 2,
		"start": now.Add(48 * time.Hour), "end": now.Add(52 * time.Hour), "languages": []string{"es", "ht"}})
	mustStatus(t, r, http.StatusCreated, "schedule a shift")
	var sh struct {
		Shifts []struct {
			ShiftID uuid.UUID `json:"shift_id"`
		} `json:"shifts"`
		ShiftID uuid.UUID `json:"shift_id"`
	}
	decode(t, r.body, &sh)
	shiftID := sh.ShiftID
	if shiftID == uuid.Nil && len(sh.Shifts) > 0 {
		shiftID = sh.Shifts[0].ShiftID
	}
	mustStatus(t, e.do(vol, "POST", "/api/v1/shifts/"+shiftID.String()+"/claims/"+vol.id.String(), nil), http.StatusOK, "claim")
	return reportScenario{request: req.RequestID, volunteer: vol.id, shift: shiftID}
}

func TestTheTimelineShowsEveryStepWhoAndWhen(t *testing.T) {
	e := newEnv(t, envOptions{})
	sc := e.reportScenario(t)
	path := "/api/v1/requests/" + sc.request.String() + "/timeline"
	var tl struct {
		Entries []struct {
			Type          string     `json:"type"`
			Actor         string     `json:"actor"`
			Status        string     `json:"status"`
			VolunteerName string     `json:"volunteer_name"`
			VolunteerID   *uuid.UUID `json:"volunteer_id"`
			ActorName     string     `json:"actor_name"`
			ActorRole     string     `json:"actor_role"`
		} `json:"entries"`
	}
	until(t, "the timeline holds the six steps", func() bool {
		r := e.do(e.users[account.Coordinator], "GET", path, nil)
		mustStatus(t, r, http.StatusOK, "timeline")
		decode(t, r.body, &tl)
		return len(tl.Entries) == 6
	})
	var statuses []string
	for _, en := range tl.Entries {
		statuses = append(statuses, en.Status)
	}
	if got, want := strings.Join(statuses, " "), "urgent offered accepted en_route arrived done"; got != want {
		t.Errorf("statuses %q, want %q", got, want)
	}
	if got, want := tl.Entries[0].Actor, "user:"+e.users[account.Dispatcher].id.String(); got != want {
		t.Errorf("received by %q, want the dispatcher %q", got, want)
	}
	if got, want := tl.Entries[3].Actor, "user:"+sc.volunteer.String(); got != want {
		t.Errorf("en route by %q, want the volunteer %q", got, want)
	}
	if tl.Entries[1].VolunteerName != "Responder Amalia" {
		t.Errorf("the offer names %q, want the volunteer's name", tl.Entries[1].VolunteerName)
	}
	// Who acted, by name: staff by their account, a volunteer by theirs.
	if e, want := tl.Entries[0], e.users[account.Dispatcher].email; e.ActorName != want || e.ActorRole != "dispatcher" {
		t.Errorf("received by %q (%s), want the dispatcher %q (dispatcher)", e.ActorName, e.ActorRole, want)
	}
	if e := tl.Entries[3]; e.ActorName != "Responder Amalia" || e.ActorRole != "volunteer" {
		t.Errorf("en route by %q (%s), want Responder Amalia (volunteer)", e.ActorName, e.ActorRole)
	}

	r := e.do(e.users[account.Dispatcher], "GET", path+"?format=csv", nil)
	rows := readCSV(t, r, "timeline-")
	if len(rows) != 7 || rows[0][0] != "version" || rows[2][7] != sc.volunteer.String() ||
		rows[0][10] != "actor_name" || rows[1][10] != e.users[account.Dispatcher].email || rows[4][10] != "Responder Amalia" {
		t.Errorf("CSV timeline: %q", rows)
	}
	if strings.Contains(r.body, "Xochitl") || strings.Contains(r.body, "0199") {
		t.Errorf("the timeline carries the person's personal data: %s", r.body)
	}
	// Once the person served is forgotten, the timeline stays whole.
	var req struct {
		PersonID uuid.UUID `json:"person_id"`
	}
	decode(t, e.do(e.users[account.Coordinator], "GET", "/api/v1/requests/"+sc.request.String(), nil).body, &req)
	mustStatus(t, e.do(e.users[account.Coordinator], "POST", "/api/v1/subjects/"+req.PersonID.String()+"/forget", map[string]string{"reason": "asked"}),
		http.StatusOK, "forget the person")
	if r := e.do(e.users[account.Coordinator], "GET", path, nil); strings.Count(r.body, `"version"`) != 6 {
		t.Errorf("the timeline after forgetting the person: %s, want the six steps", r.body)
	}
	// A dispatcher who left and was forgotten is no longer named.
	dispatcher := e.users[account.Dispatcher]
	mustStatus(t, e.do(e.users[account.Admin], "POST", "/api/v1/accounts/"+dispatcher.id.String()+"/deactivate", nil), http.StatusOK, "deactivate")
	mustStatus(t, e.do(e.users[account.Coordinator], "POST", "/api/v1/subjects/"+dispatcher.id.String()+"/forget", map[string]string{"reason": "asked"}),
		http.StatusOK, "forget the dispatcher")
	r = e.do(e.users[account.Coordinator], "GET", path, nil)
	tl.Entries = nil
	decode(t, r.body, &tl)
	if e := tl.Entries[0]; e.ActorName != "" || e.ActorRole != "dispatcher" || strings.Contains(r.body, dispatcher.email) {
		t.Errorf("received by %q (%s) after the dispatcher was forgotten, want no name, the role kept: %s", e.ActorName, e.ActorRole, r.body)
	}
	if r := e.do(e.users[account.Coordinator], "GET", "/api/v1/requests/"+uuid.NewString()+"/timeline", nil); r.status != http.StatusNotFound {
		t.Errorf("an unknown request's timeline: %d %s, want 404", r.status, r.body)
	}
	if r := e.do(e.users[account.Coordinator], "GET", path+"?format=xml", nil); r.status != http.StatusBadRequest || r.errorCode() != "invalid_field" {
		t.Errorf("format=xml: %d %s, want 400 invalid_field", r.status, r.body)
	}
}

func TestTheReportsGiveTheScenariosFigures(t *testing.T) {
	e := newEnv(t, envOptions{})
	sc := e.reportScenario(t)
	coordinator := e.users[account.Coordinator]

	// Response times: 3 minutes to assign, 21 to arrive (received_at is
	// the log's time, a few milliseconds after the clock was set).
	var rt struct {
		TimeZone string `json:"time_zone"`
		Weeks    []struct {
			Group         string                      `json:"group"`
			Received      int                         `json:"received"`
			TimeToAssign  struct{ N, P50, P90 int64 } `json:"time_to_assign"`
			TimeToArrival struct{ N, P50, P90 int64 } `json:"time_to_arrival"`
		} `json:"weeks"`
	}
	until(t, "the metrics hold the arrival", func() bool {
		r := e.do(coordinator, "GET", "/api/v1/reports/response-times?by=region", nil)
		mustStatus(t, r, http.StatusOK, "response times")
		decode(t, r.body, &rt)
		return len(rt.Weeks) == 1 && rt.Weeks[0].TimeToArrival.N == 1
	})
	near := func(what string, got int64, want time.Duration) {
		if math.Abs(float64(time.Duration(got)-want)) > float64(5*time.Second) {
			t.Errorf("%s = %v, want %v", what, time.Duration(got), want)
		}
	}
	w := rt.Weeks[0]
	if w.Group != "East" || w.Received != 1 || w.TimeToAssign.N != 1 || rt.TimeZone != "UTC" {
		t.Errorf("week %+v in %s, want East, one request", w, rt.TimeZone)
	}
	near("p50 to assign", w.TimeToAssign.P50, 3*time.Minute)
	near("p90 to assign", w.TimeToAssign.P90, 3*time.Minute)
	near("p50 to arrival", w.TimeToArrival.P50, 21*time.Minute)
	rows := readCSV(t, e.do(coordinator, "GET", "/api/v1/reports/response-times?by=kind", nil, "Accept", "text/csv"), "response-times")
	if len(rows) != 2 || rows[1][2] != "rapid_response" || rows[1][8] != "3.0" || rows[1][11] != "21.0" {
		t.Errorf("CSV response times: %q", rows)
	}
	if r := e.do(coordinator, "GET", "/api/v1/reports/response-times?by=person", nil); r.status != http.StatusBadRequest || r.errorCode() != "invalid_field" {
		t.Errorf("by=person: %d %s", r.status, r.body)
	}
	if r := e.do(coordinator, "GET", "/api/v1/reports/response-times?from=2026-12-01&to=2026-11-01", nil); r.status != http.StatusBadRequest {
		t.Errorf("from after to: %d %s", r.status, r.body)
	}

	// Hours: an hour from arrival to done.
	var hours struct {
		Hours []struct {
			VolunteerID       uuid.UUID `json:"volunteer_id"`
			Name              string    `json:"name"`
			Assignments       int       `json:"assignments"`
			AssignmentMinutes int       `json:"assignment_minutes"`
			Minutes           int       `json:"minutes"`
		} `json:"hours"`
	}
	r := e.do(coordinator, "GET", "/api/v1/reports/volunteer-hours", nil)
	mustStatus(t, r, http.StatusOK, "hours")
	decode(t, r.body, &hours)
	if len(hours.Hours) != 1 || hours.Hours[0].VolunteerID != sc.volunteer || hours.Hours[0].Name != "Responder Amalia" ||
		hours.Hours[0].Assignments != 1 || hours.Hours[0].Minutes != 60 {
		t.Errorf("hours: %s, want Amalia's hour", r.body)
	}
	rows = readCSV(t, e.do(coordinator, "GET", "/api/v1/reports/volunteer-hours?format=csv", nil), "volunteer-hours")
	if len(rows) != 2 || rows[1][2] != sc.volunteer.String() || rows[1][8] != "60" {
		t.Errorf("CSV hours: %q", rows)
	}

	// Coverage: one slot open of two, and nobody on it speaks Haitian Creole.
	var cov struct {
		Shifts []struct {
			ShiftID          uuid.UUID `json:"shift_id"`
			Open             int       `json:"open"`
			MissingLanguages []string  `json:"missing_languages"`
		} `json:"shifts"`
		Languages []struct {
			Language string `json:"language"`
			Shifts   int    `json:"shifts"`
		} `json:"languages"`
	}
	until(t, "the shift board holds the claim", func() bool {
		r := e.do(coordinator, "GET", "/api/v1/reports/coverage?days=7", nil)
		mustStatus(t, r, http.StatusOK, "coverage")
		decode(t, r.body, &cov)
		return len(cov.Shifts) == 1 && cov.Shifts[0].Open == 1
	})
	if c := cov.Shifts[0]; c.ShiftID != sc.shift || strings.Join(c.MissingLanguages, ",") != "ht" ||
		len(cov.Languages) != 1 || cov.Languages[0].Language != "ht" || cov.Languages[0].Shifts != 1 {
		t.Errorf("coverage: %+v, want the shift short of one volunteer and of Haitian Creole", cov)
	}
	if r := e.do(coordinator, "GET", "/api/v1/reports/coverage?days=1", nil); strings.Contains(r.body, sc.shift.String()) {
		t.Errorf("the shift in two days is in tomorrow's coverage: %s", r.body)
	}
	rows = readCSV(t, e.do(coordinator, "GET", "/api/v1/reports/coverage?format=csv", nil), "coverage")
	if len(rows) != 2 || rows[1][0] != sc.shift.String() || rows[1][10] != "ht" {
		t.Errorf("CSV coverage: %q", rows)
	}
	if r := e.do(coordinator, "GET", "/api/v1/reports/coverage?days=0", nil); r.status != http.StatusBadRequest {
		t.Errorf("days=0: %d", r.status)
	}

	// Expiring: the certification in 20 days, not within 10.
	r = e.do(coordinator, "GET", "/api/v1/reports/expiring?within_days=60", nil)
	mustStatus(t, r, http.StatusOK, "expiring")
	if !strings.Contains(r.body, sc.volunteer.String()) || !strings.Contains(r.body, "Responder Amalia") || !strings.Contains(r.body, "rapid_response") {
		t.Errorf("expiring in 60 days: %s", r.body)
	}
	if r := e.do(coordinator, "GET", "/api/v1/reports/expiring?within_days=10", nil); strings.Contains(r.body, sc.volunteer.String()) {
		t.Errorf("expiring in 10 days: %s", r.body)
	}
	rows = readCSV(t, e.do(coordinator, "GET", "/api/v1/reports/expiring?format=csv", nil), "expiring")
	if len(rows) != 2 || rows[1][1] != "Responder Amalia" || rows[1][2] != "rapid_response" {
		t.Errorf("CSV expiring: %q", rows)
	}

	// No report carries the person served.
	for _, p := range []string{"/api/v1/reports/response-times?format=csv", "/api/v1/reports/volunteer-hours", "/api/v1/reports/coverage", "/api/v1/reports/expiring"} {
		if r := e.do(coordinator, "GET", p, nil); strings.Contains(r.body, "Xochitl") || strings.Contains(r.body, "0199") {
			t.Errorf("%s carries the person's data: %s", p, r.body)
		}
	}
	// Dispatchers read timelines, not reports.
	if r := e.do(e.users[account.Dispatcher], "GET", "/api/v1/reports/coverage", nil); r.status != http.StatusForbidden {
		t.Errorf("a dispatcher reading coverage: %d", r.status)
	}
}

func TestAuditVerificationReportsAnIntactChainThenABreak(t *testing.T) {
	e := newEnv(t, envOptions{})
	coordinator := e.users[account.Coordinator]
	var v struct {
		OK       bool `json:"ok"`
		Complete bool `json:"complete"`
		Streams  int  `json:"streams"`
		Breaks   []struct {
			StreamID uuid.UUID `json:"stream_id"`
			Problem  string    `json:"problem"`
		} `json:"breaks"`
	}
	r := e.do(coordinator, "GET", "/api/v1/audit/verification", nil)
	mustStatus(t, r, http.StatusOK, "verification")
	decode(t, r.body, &v)
	if !v.OK || !v.Complete || v.Streams == 0 || len(v.Breaks) != 0 {
		t.Fatalf("an untouched log: %s", r.body)
	}
	// Someone with the table owner's rights edits history.
	ctx := t.Context()
	if _, err := e.pool.Exec(ctx, `ALTER TABLE events DISABLE TRIGGER events_append_only`); err != nil {
		t.Fatal(err)
	}
	var stream uuid.UUID
	if err := e.pool.QueryRow(ctx, `UPDATE events SET metadata = jsonb_set(metadata, '{reason}', '"edited"')
WHERE position = (SELECT min(position) FROM events) RETURNING stream_id`).Scan(&stream); err != nil {
		t.Fatal(err)
	}
	// The last result is reused within the minute; fresh=true walks again.
	if r := e.do(coordinator, "GET", "/api/v1/audit/verification", nil); !strings.Contains(r.body, `"ok":true`) {
		t.Errorf("a second look within the minute: %s, want the kept result", r.body)
	}
	r = e.do(coordinator, "GET", "/api/v1/audit/verification?fresh=true", nil)
	mustStatus(t, r, http.StatusOK, "fresh verification")
	decode(t, r.body, &v)
	if v.OK || len(v.Breaks) == 0 || v.Breaks[0].StreamID != stream {
		t.Errorf("after an edit: %s, want a break in stream %s", r.body, stream)
	}
}

func TestWithoutItsReadModelsAServerSaysReportsAreUnavailable(t *testing.T) {
	e := newEnv(t, envOptions{edit: func(c *Config) { c.ReadModels, c.Verify = nil, nil }})
	coordinator := e.users[account.Coordinator]
	for _, p := range []string{"/api/v1/reports/coverage", "/api/v1/reports/expiring", "/api/v1/audit/verification",
		"/api/v1/requests/" + uuid.NewString() + "/timeline"} {
		if r := e.do(coordinator, "GET", p, nil); r.status != http.StatusServiceUnavailable || r.errorCode() != "unavailable" {
			t.Errorf("%s without read models: %d %s, want 503 unavailable", p, r.status, r.body)
		}
	}
}
