package web

import (
	"net/http"
	"strings"
	"testing"

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
