//go:build !nobrowser

package web

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/presente-dispatch/presente/domain/account"
)

// chooseLanguage picks lang in the top bar's language menu, as a user does.
func chooseLanguage(tb *tab, lang string) {
	tb.t.Helper()
	tb.run("choose "+lang, chromedp.WaitVisible("#language", chromedp.ByID),
		chromedp.Evaluate(`(() => { const s = document.getElementById('language'); s.value = '`+lang+`';
			s.dispatchEvent(new Event('change')); })()`, nil),
		chromedp.WaitVisible(`html[lang="`+lang+`"]`, chromedp.ByQuery))
}

func TestTheLanguageChosenInOneBrowserFollowsTheUserToAnother(t *testing.T) {
	e := newEnv(t, envOptions{browser: true})
	dispatcher := e.users[account.Dispatcher]
	desk := e.newTab(t, 1280, 900)
	e.signIn(desk, dispatcher, "en")
	chooseLanguage(desk, "es")
	until(t, "the account holds Spanish", func() bool {
		return strings.Contains(e.do(dispatcher, "GET", "/api/v1/session", nil).body, `"language":"es"`)
	})

	// Another browser, whose own default is English: after signing in,
	// the account's Spanish.
	phone := e.newTab(t, 375, 667)
	e.signIn(phone, dispatcher, "en")
	var lang, nav string
	phone.run("read the page's language", chromedp.WaitVisible(`html[lang="es"]`, chromedp.ByQuery),
		chromedp.Evaluate(`document.documentElement.lang`, &lang),
		chromedp.Text("#top nav", &nav, chromedp.ByQuery))
	if lang != "es" || !strings.Contains(nav, "Tablero") || strings.Contains(nav, "Board") {
		t.Errorf("the second browser shows lang %q and the menu %q, want Spanish", lang, nav)
	}
	// Back to English there: the first browser gets it at its next sign-in.
	chooseLanguage(phone, "en")
	until(t, "the account holds English", func() bool {
		return strings.Contains(e.do(dispatcher, "GET", "/api/v1/session", nil).body, `"language":"en"`)
	})
	// Someone else on the same device keeps their own language.
	coordinator := e.users[account.Coordinator]
	mustStatus(t, e.do(coordinator, "PUT", "/api/v1/me/language", map[string]string{"language": "es"}), http.StatusOK, "the coordinator picks Spanish")
	phone.run("sign out", chromedp.Click(`//button[text()="Sign out"]`, chromedp.BySearch), chromedp.WaitVisible("#email", chromedp.ByID))
	e.signIn(phone, coordinator, "en")
	phone.run("the coordinator's Spanish", chromedp.WaitVisible(`html[lang="es"]`, chromedp.ByQuery))
}

func TestShiftAndSessionTimesAreTypedInTheOrganizationsZoneNotTheBrowsers(t *testing.T) {
	e := newEnv(t, envOptions{browser: true})
	admin, coordinator := e.users[account.Admin], e.users[account.Coordinator]
	mustStatus(t, e.do(admin, "POST", "/api/v1/settings/time-zone", map[string]string{"time_zone": "America/Chicago"}), http.StatusOK, "set the zone")
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	// A coordinator travelling in Tokyo: the browser's clocks are 15 hours
	// ahead of the organization's.
	tb := e.newTab(t, 1280, 900)
	var browserZone string
	tb.run("the browser in Tokyo", emulation.SetTimezoneOverride("Asia/Tokyo"),
		chromedp.Evaluate(`Intl.DateTimeFormat().resolvedOptions().timeZone`, &browserZone))
	if browserZone != "Asia/Tokyo" {
		t.Fatalf("the browser's zone is %q: the emulation did not take, so this test would prove nothing", browserZone)
	}
	e.signIn(tb, coordinator, "en")

	day := time.Now().In(chicago).AddDate(0, 0, 3)
	field := func(hour int) string {
		return fmt.Sprintf("%04d-%02d-%02dT%02d:00", day.Year(), day.Month(), day.Day(), hour)
	}
	want := func(hour int) time.Time {
		return time.Date(day.Year(), day.Month(), day.Day(), hour, 0, 0, 0, chicago).UTC()
	}

	var note, def string
	tb.run("schedule a shift at 9 in Chicago", chromedp.Navigate(e.ts.URL+"/#/schedule"),
		chromedp.WaitVisible(`//p[text()="No shifts in the next four weeks."]`, chromedp.BySearch),
		chromedp.Text("#sh-zone", &note, chromedp.ByID),
		chromedp.Value("#sh-start", &def, chromedp.ByID),
		chromedp.SendKeys("#sh-region", "East", chromedp.ByID),
		chromedp.SetValue("#sh-start", field(9), chromedp.ByID),
		chromedp.SetValue("#sh-end", field(13), chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//table[contains(@class,"report")]//td[contains(., "court watch")]`, chromedp.BySearch))
	if !strings.Contains(note, "America/Chicago") {
		t.Errorf("beside the time fields: %q, want the zone America/Chicago named", note)
	}
	if tomorrow := time.Now().In(chicago).AddDate(0, 0, 1).Format("2006-01-02") + "T09:00"; def != tomorrow {
		t.Errorf("the start field first holds %q, want tomorrow at 9 in Chicago, %q", def, tomorrow)
	}
	var shifts struct {
		Shifts []struct {
			Start time.Time `json:"start"`
			End   time.Time `json:"end"`
		} `json:"shifts"`
	}
	decode(t, e.do(coordinator, "GET", "/api/v1/shifts?to="+time.Now().Add(10*24*time.Hour).UTC().Format(time.RFC3339), nil).body, &shifts)
	if len(shifts.Shifts) != 1 || !shifts.Shifts[0].Start.Equal(want(9)) || !shifts.Shifts[0].End.Equal(want(13)) {
		t.Fatalf("the shift is stored as %+v, want %s to %s (9 to 13 in Chicago)", shifts.Shifts, want(9), want(13))
	}
	var row string
	tb.run("read the shift's row", chromedp.Text(`table.report tbody tr td`, &row, chromedp.ByQuery))
	if !strings.Contains(row, "09:00") || !strings.Contains(row, "01:00") {
		t.Errorf("the shift shows as %q, want 09:00 to 01:00 PM on Chicago's clocks", row)
	}

	// A training session, the same way.
	tb.run("schedule a session at 18 in Chicago", chromedp.Navigate(e.ts.URL+"/#/training"),
		chromedp.WaitVisible(`//p[text()="No courses yet."]`, chromedp.BySearch),
		chromedp.WaitVisible("#se-zone", chromedp.ByID),
		chromedp.SendKeys("#co-name", "Know your rights", chromedp.ByID),
		chromedp.SendKeys("#co-cert", "know_your_rights", chromedp.ByID),
		chromedp.Click(`//button[text()="Add the course"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//table//th[text()="Know your rights"]`, chromedp.BySearch),
		chromedp.SendKeys("#se-place", "Community hall", chromedp.ByID),
		chromedp.SetValue("#se-start", field(18), chromedp.ByID),
		chromedp.SetValue("#se-end", field(20), chromedp.ByID),
		chromedp.Click(`//button[text()="Schedule the session"]`, chromedp.BySearch),
		chromedp.WaitVisible(`ul.list li.card h3`, chromedp.ByQuery),
		chromedp.Text("#se-zone", &note, chromedp.ByID))
	if !strings.Contains(note, "America/Chicago") {
		t.Errorf("beside the session's time fields: %q, want America/Chicago", note)
	}
	var sessions struct {
		Sessions []struct {
			Start time.Time `json:"start"`
		} `json:"sessions"`
	}
	decode(t, e.do(coordinator, "GET", "/api/v1/sessions?to="+time.Now().Add(10*24*time.Hour).UTC().Format(time.RFC3339), nil).body, &sessions)
	if len(sessions.Sessions) != 1 || !sessions.Sessions[0].Start.Equal(want(18)) {
		t.Errorf("the session is stored as %+v, want it to start at %s (18:00 in Chicago)", sessions.Sessions, want(18))
	}

	// Around the daylight-saving changes, in the browser's own Intl: a
	// skipped time reads as clocks show it after the change, a repeated
	// one as the first of the two.
	var got []string
	tb.run("convert around the changes", chromedp.Evaluate(`import('/assets/js/i18n.js').then((m) => {
		const out = [];
		for (const [z, v] of [['America/Chicago', '2026-03-08T02:30'], ['America/Chicago', '2026-11-01T01:30'],
			['Europe/Madrid', '2026-10-25T02:30'], ['Asia/Kolkata', '2026-01-01T00:00'], ['America/Chicago', '2026-12-01T09:00']]) {
			m.setZone(z); out.push(m.fromZoneInput(v), m.zoneInput(m.fromZoneInput(v)));
		}
		m.setZone('America/Chicago');
		return out;
	})`, &got, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	wantConv := []string{"2026-03-08T08:30:00.000Z", "2026-03-08T03:30", "2026-11-01T06:30:00.000Z", "2026-11-01T01:30",
		"2026-10-25T00:30:00.000Z", "2026-10-25T02:30", "2025-12-31T18:30:00.000Z", "2026-01-01T00:00",
		"2026-12-01T15:00:00.000Z", "2026-12-01T09:00"}
	if strings.Join(got, " ") != strings.Join(wantConv, " ") {
		t.Errorf("conversions in the browser:\n got %v\nwant %v", got, wantConv)
	}
}

func TestAnAdminSetsTheTimeZoneAndACoordinatorPlacesAndLiftsALegalHold(t *testing.T) {
	e := newEnv(t, envOptions{browser: true})
	admin, coordinator := e.users[account.Admin], e.users[account.Coordinator]
	english := englishOnly(t)
	noEnglish := func(tb *tab, screen string) {
		t.Helper()
		var text string
		tb.run("read "+screen, chromedp.Text("body", &text, chromedp.ByQuery))
		for _, s := range english {
			if regexp.MustCompile(`\b` + regexp.QuoteMeta(s) + `\b`).MatchString(text) {
				t.Errorf("the Spanish %s screen shows the English %q:\n%s", screen, s, text)
			}
		}
	}

	// The admin, in Spanish, from the menu.
	at := e.newTab(t, 1280, 900)
	e.signIn(at, admin, "es")
	var zone string
	at.run("open the settings", chromedp.Click(`//nav//a[text()="Ajustes"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//p[@id="zone-now"][contains(., "UTC")]`, chromedp.BySearch),
		chromedp.Value("#settings-zone", &zone, chromedp.ByID))
	if zone != "UTC" {
		t.Errorf("the zone field first holds %q, want UTC", zone)
	}
	noEnglish(at, "settings")
	at.run("a zone that does not exist", chromedp.SetValue("#settings-zone", "Mars/Olympus_Mons", chromedp.ByID),
		chromedp.Click(`//button[text()="Guardar la zona horaria"]`, chromedp.BySearch),
		chromedp.WaitVisible(`p.error[role="alert"]:not(:empty)`, chromedp.ByQuery))
	noEnglish(at, "settings after an error")
	at.run("Chicago", chromedp.SetValue("#settings-zone", "America/Chicago", chromedp.ByID),
		chromedp.Click(`//button[text()="Guardar la zona horaria"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//p[@role="status"][text()="La zona horaria ahora es America/Chicago."]`, chromedp.BySearch),
		chromedp.WaitVisible(`//p[@id="zone-now"][contains(., "America/Chicago")]`, chromedp.BySearch))
	screenshot(at, "admin-settings-es")
	if r := e.do(coordinator, "GET", "/api/v1/settings", nil); !strings.Contains(r.body, `"time_zone":"America/Chicago"`) {
		t.Errorf("the settings after saving: %s", r.body)
	}

	// The coordinator pauses retention for a legal hold, then lifts it.
	ct := e.newTab(t, 1280, 900)
	e.signIn(ct, coordinator, "en")
	ct.run("open retention", chromedp.Click(`//nav//a[text()="Retention"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//p[@id="retention-state"][contains(., "running")]`, chromedp.BySearch),
		chromedp.WaitVisible(`//p[contains(., "30 days after their request closes")]`, chromedp.BySearch))
	// The reason is required: an empty one is stopped in the page.
	var valid bool
	ct.run("no reason", chromedp.Click(`//button[text()="Place the hold"]`, chromedp.BySearch),
		chromedp.Evaluate(`document.getElementById('retention-reason').checkValidity()`, &valid))
	if valid {
		t.Error("an empty matter reference passes the form's check")
	}
	if r := e.do(coordinator, "GET", "/api/v1/retention", nil); !strings.Contains(r.body, `"on_hold":false`) {
		t.Fatalf("retention after an empty reason: %s, want not on hold", r.body)
	}
	ct.run("place the hold", chromedp.SendKeys("#retention-reason", "Matter 2026-114", chromedp.ByID),
		chromedp.Click(`//button[text()="Place the hold"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//p[@id="retention-state"][contains(., "Paused by a legal hold since")]`, chromedp.BySearch),
		chromedp.WaitVisible(`//p[@role="status"][contains(., "The legal hold is in place")]`, chromedp.BySearch))
	screenshot(ct, "coordinator-retention-en")
	if r := e.do(coordinator, "GET", "/api/v1/retention", nil); !strings.Contains(r.body, `"on_hold":true`) {
		t.Errorf("retention after placing the hold: %s", r.body)
	}
	ct.run("lift it", chromedp.WaitVisible(`//button[text()="Lift the hold"]`, chromedp.BySearch),
		chromedp.Click(`//button[text()="Lift the hold"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//p[@id="retention-state"][contains(., "running")]`, chromedp.BySearch),
		chromedp.WaitVisible(`//p[@role="status"][contains(., "The legal hold is lifted")]`, chromedp.BySearch))
	if r := e.do(coordinator, "GET", "/api/v1/retention", nil); !strings.Contains(r.body, `"on_hold":false`) {
		t.Errorf("retention after lifting the hold: %s", r.body)
	}
	// The same screen in Spanish holds no English.
	ct.run("to Spanish", chromedp.Navigate(e.ts.URL+"/#/retention"))
	chooseLanguage(ct, "es")
	ct.run("the Spanish retention screen", chromedp.WaitVisible(`//button[text()="Establecer la retención"]`, chromedp.BySearch))
	noEnglish(ct, "retention")
	if foreign := append(e.foreign(at), e.foreign(ct)...); len(foreign) > 0 {
		t.Errorf("the settings screens asked other origins: %v", foreign)
	}
}
