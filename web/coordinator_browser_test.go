//go:build !nobrowser

package web

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

// screenshot saves the page as name.png in the directory named by
// PRESENTE_SCREENSHOTS, when set (the screenshots the README shows).
func screenshot(tb *tab, name string) {
	tb.t.Helper()
	dir := os.Getenv("PRESENTE_SCREENSHOTS")
	if dir == "" {
		return
	}
	var png []byte
	tb.run("screenshot "+name, chromedp.FullScreenshot(&png, 100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

func TestTheCoordinatorsScreensInSpanishShowNoEnglish(t *testing.T) {
	e := newEnv(t, envOptions{browser: true})
	sc := e.reportScenario(t)
	coordinator := e.users[account.Coordinator]
	until(t, "the timeline and metrics hold the scenario", func() bool {
		r := e.do(coordinator, "GET", "/api/v1/requests/"+sc.request.String()+"/timeline", nil)
		m := e.do(coordinator, "GET", "/api/v1/reports/response-times", nil)
		return strings.Count(r.body, `"version"`) == 6 && strings.Contains(m.body, `"time_to_arrival":{"n":1`)
	})
	english := englishOnly(t)
	tb := e.newTab(t, 1280, 900)
	e.signIn(tb, coordinator, "es")
	check := func(screen, ready string) string {
		t.Helper()
		var text string
		tb.run(screen, chromedp.Navigate(e.ts.URL+"/"+screen), chromedp.WaitVisible(ready, chromedp.ByQuery),
			chromedp.Text("body", &text, chromedp.ByQuery))
		for _, s := range english {
			if regexp.MustCompile(`\b` + regexp.QuoteMeta(s) + `\b`).MatchString(text) {
				t.Errorf("the Spanish %s screen shows the English %q:\n%s", screen, s, text)
			}
		}
		return text
	}

	// The request's page links to its timeline: every step, who, when.
	tb.run("the request's page", chromedp.Navigate(e.ts.URL+"/#/requests/"+sc.request.String()), chromedp.WaitVisible("#timeline-link", chromedp.ByID),
		chromedp.Click("#timeline-link", chromedp.ByID), chromedp.WaitVisible("table.report tbody tr", chromedp.ByQuery))
	text := check("#/requests/"+sc.request.String()+"/timeline", "table.report tbody tr")
	screenshot(tb, "coordinator-timeline-es")
	var rows int
	tb.run("count the steps", chromedp.Evaluate(`document.querySelectorAll('table.report tbody tr').length`, &rows))
	if rows != 6 {
		t.Errorf("the timeline shows %d steps, want 6:\n%s", rows, text)
	}
	for _, want := range []string{"Recibida", "Aceptada", "Llegó", "Responder Amalia", "Tiempo hasta asignar", "3 min", "21 min"} {
		if !strings.Contains(text, want) {
			t.Errorf("the timeline lacks %q:\n%s", want, text)
		}
	}
	// Who received it: the dispatcher by name and role, not an id.
	var who string
	tb.run("who received it", chromedp.Text(`table.report tbody tr:first-child td:nth-child(3)`, &who, chromedp.ByQuery))
	if want := e.users[account.Dispatcher].email + " · Despacho"; who != want {
		t.Errorf("the first step names %q, want %q", who, want)
	}
	if strings.Contains(text, "Xochitl") {
		t.Errorf("the timeline shows the person's name:\n%s", text)
	}

	// The dashboard: a chart per figure, with the table beside it.
	text = check("#/reports", "svg.chart")
	screenshot(tb, "coordinator-dashboard-es")
	if os.Getenv("PRESENTE_SCREENSHOTS") != "" {
		en := e.newTab(t, 1280, 900)
		e.signIn(en, coordinator, "en")
		en.run("the dashboard in English", chromedp.Navigate(e.ts.URL+"/#/reports"), chromedp.WaitVisible("svg.chart", chromedp.ByQuery))
		screenshot(en, "coordinator-dashboard-en")
	}
	var charts int
	tb.run("count the charts", chromedp.Evaluate(`document.querySelectorAll('svg.chart[role="img"][aria-label]').length`, &charts))
	if charts != 3 { // time to assign, to arrival, hours (nothing resolved)
		t.Errorf("the dashboard draws %d labelled charts, want 3:\n%s", charts, text)
	}
	tb.run("group by region", chromedp.SetValue("#rep-by", "region", chromedp.ByID),
		chromedp.Click(`form.filters button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//figcaption[text()="East"]`, chromedp.BySearch))
	check("#/coverage", "table.report")
	check("#/expiring", "table.report")
	text = check("#/audit", ".badge.ok")
	if !strings.Contains(text, "Íntegro") {
		t.Errorf("the audit screen: %s", text)
	}
	check("#/invitations", "#invite-email")
	check("#/schedule", "table.report")
	check("#/training", "#co-name")
	check("#/forget", "#forget-subject")
	if foreign := e.foreign(tb); len(foreign) > 0 {
		t.Errorf("the coordinator's screens asked other origins: %v", foreign)
	}
}

func TestACoordinatorForgetsAPersonAfterConfirming(t *testing.T) {
	e := newEnv(t, envOptions{browser: true})
	coordinator := e.users[account.Coordinator]
	id := e.newRequest(e.users[account.Dispatcher], "East", 1)
	var req struct {
		PersonID uuid.UUID `json:"person_id"`
		Person   struct {
			Name string `json:"name"`
		} `json:"person"`
	}
	decode(t, e.do(coordinator, "GET", "/api/v1/requests/"+id, nil).body, &req)
	if req.Person.Name != "Caller Yolanda" {
		t.Fatalf("the request's person: %+v", req)
	}
	tb := e.newTab(t, 1280, 900)
	e.signIn(tb, coordinator, "en")
	// From the request's page, which fills the person's id in.
	var filled string
	tb.run("ask to forget", chromedp.Navigate(e.ts.URL+"/#/requests/"+id), chromedp.WaitVisible("#forget-link", chromedp.ByID),
		chromedp.Click("#forget-link", chromedp.ByID), chromedp.WaitVisible("#forget-subject", chromedp.ByID),
		chromedp.Value("#forget-subject", &filled, chromedp.ByID))
	if filled != req.PersonID.String() {
		t.Errorf("the forget screen holds %q, want the person's id %s", filled, req.PersonID)
	}
	tb.run("ask to forget",
		chromedp.SetValue("#forget-reason", "asked", chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`[role="alertdialog"]`, chromedp.ByQuery))
	// Nothing is forgotten before the confirmation; going back forgets nothing.
	if r := e.do(coordinator, "GET", "/api/v1/requests/"+id, nil); !strings.Contains(r.body, "Caller Yolanda") {
		t.Fatalf("the person is forgotten before the confirmation: %s", r.body)
	}
	tb.run("go back", chromedp.Click(`[role="alertdialog"] button.secondary`, chromedp.ByQuery),
		chromedp.WaitNotPresent(`[role="alertdialog"]`, chromedp.ByQuery))
	if r := e.do(coordinator, "GET", "/api/v1/requests/"+id, nil); !strings.Contains(r.body, "Caller Yolanda") {
		t.Fatalf("going back forgot the person: %s", r.body)
	}
	var shown string
	tb.run("confirm", chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`[role="alertdialog"] button.danger`, chromedp.ByQuery),
		chromedp.Click(`[role="alertdialog"] button.danger`, chromedp.ByQuery),
		chromedp.WaitVisible(`.badge.ok`, chromedp.ByQuery),
		chromedp.Text(`.badge.ok`, &shown, chromedp.ByQuery))
	if !strings.Contains(shown, "Forgotten") {
		t.Errorf("after confirming, the screen says %q", shown)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := e.do(coordinator, "GET", "/api/v1/requests/"+id, nil)
		if !strings.Contains(r.body, "Yolanda") && strings.Contains(r.body, eventstore.Forgotten) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after confirming, the request still shows: %s", r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A mistyped id is refused in the page, before any call.
	tb.run("a bad id", chromedp.SendKeys("#forget-subject", "not-an-id", chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`p.error[role="alert"]:not(:empty)`, chromedp.ByQuery))
}

func TestACoordinatorSchedulesShiftsAndTrainingsAndAnAdminManagesAccounts(t *testing.T) {
	e := newEnv(t, envOptions{browser: true})
	coordinator, vol := e.users[account.Coordinator], e.users[account.Volunteer]
	mustStatus(t, e.do(coordinator, "POST", "/api/v1/volunteers", map[string]any{"user_id": vol.id, "name": "Rosa Trainee",
		"phone": "+1 555 0100", "regions": []string{"East"}}), http.StatusCreated, "register")
	tb := e.newTab(t, 1280, 900)
	e.signIn(tb, coordinator, "en")

	// A court watch every week for two weeks, as one series.
	tb.run("schedule a weekly shift", chromedp.Navigate(e.ts.URL+"/#/schedule"),
		chromedp.WaitVisible(`//p[text()="No shifts in the next four weeks."]`, chromedp.BySearch),
		chromedp.SendKeys("#sh-region", "East", chromedp.ByID),
		chromedp.SendKeys("#sh-languages", "es, ht", chromedp.ByID),
		chromedp.SetValue("#sh-weeks", "2", chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//table[contains(@class,"report")]//td[contains(., "court watch")]`, chromedp.BySearch))
	var shifts struct {
		Shifts []struct {
			Role      string   `json:"role"`
			Languages []string `json:"languages"`
		} `json:"shifts"`
	}
	decode(t, e.do(coordinator, "GET", "/api/v1/shifts?to="+time.Now().Add(30*24*time.Hour).UTC().Format(time.RFC3339), nil).body, &shifts)
	if len(shifts.Shifts) != 2 || shifts.Shifts[0].Role != "court_watch" || strings.Join(shifts.Shifts[1].Languages, ",") != "es,ht" {
		t.Errorf("after scheduling two weeks: %+v", shifts)
	}

	// A course, a session of it, Rosa enrolled, attending and certified.
	tb.run("add a course and a session", chromedp.Navigate(e.ts.URL+"/#/training"),
		chromedp.WaitVisible(`//p[text()="No courses yet."]`, chromedp.BySearch), // loaded: typing keeps the focus
		chromedp.SendKeys("#co-name", "Know your rights", chromedp.ByID),
		chromedp.SendKeys("#co-cert", "know_your_rights", chromedp.ByID),
		chromedp.Click(`//button[text()="Add the course"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//table//th[text()="Know your rights"]`, chromedp.BySearch), // laid out: the button no longer moves
		chromedp.SendKeys("#se-place", "Community hall", chromedp.ByID),
		chromedp.Click(`//button[text()="Schedule the session"]`, chromedp.BySearch),
		chromedp.WaitVisible(`select[id^="enroll-"]`, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Enroll"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//button[text()="Attended, certify"]`, chromedp.BySearch))
	// Attendance is recorded once the session has started.
	tb.run("too early", chromedp.Click(`//button[text()="Attended, certify"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//p[@role="alert"][text()="Attendance is recorded once the session has started."]`, chromedp.BySearch))
	var sessions struct {
		Sessions []struct {
			Start time.Time `json:"start"`
		} `json:"sessions"`
	}
	decode(t, e.do(coordinator, "GET", "/api/v1/sessions?to="+time.Now().Add(7*24*time.Hour).UTC().Format(time.RFC3339), nil).body, &sessions)
	if len(sessions.Sessions) != 1 {
		t.Fatalf("sessions: %+v", sessions)
	}
	e.throttle.Advance(sessions.Sessions[0].Start.Add(time.Hour).Sub(e.throttle.Now()))
	tb.run("attended", chromedp.Click(`//button[text()="Attended, certify"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//p[@role="status"][contains(., "certification granted")]`, chromedp.BySearch))
	screenshot(tb, "coordinator-training-en")
	if r := e.do(coordinator, "GET", "/api/v1/volunteers/"+vol.id.String(), nil); !strings.Contains(r.body, "know_your_rights") {
		t.Errorf("Rosa after the session: %s, want certified", r.body)
	}

	// An admin starts on the accounts and changes a role.
	admin, dispatcher := e.users[account.Admin], e.users[account.Dispatcher]
	at := e.newTab(t, 1280, 900)
	e.signIn(at, admin, "es")
	sel := "#role-" + dispatcher.id.String()
	at.run("change a role", chromedp.WaitVisible(sel, chromedp.ByID),
		chromedp.SetValue(sel, "coordinator", chromedp.ByID),
		chromedp.Click(`//tr[.//select[@id="role-`+dispatcher.id.String()+`"]]//button[text()="Cambiar rol"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//p[@role="status"][contains(., "El rol se cambió")]`, chromedp.BySearch))
	screenshot(at, "admin-accounts-es")
	if r := e.do(admin, "GET", "/api/v1/accounts/"+dispatcher.id.String(), nil); !strings.Contains(r.body, `"role":"coordinator"`) {
		t.Errorf("the dispatcher after the change: %s", r.body)
	}
}
