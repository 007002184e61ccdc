package web

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/infra/eventstore"
)

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
	if strings.Contains(text, "Xochitl") {
		t.Errorf("the timeline shows the person's name:\n%s", text)
	}

	// The dashboard: a chart per figure, with the table beside it.
	text = check("#/reports", "svg.chart")
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
	tb.run("ask to forget", chromedp.Navigate(e.ts.URL+"/#/forget"), chromedp.WaitVisible("#forget-subject", chromedp.ByID),
		chromedp.SendKeys("#forget-subject", req.PersonID.String(), chromedp.ByID),
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
