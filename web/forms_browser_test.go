//go:build !nobrowser

package web

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/presente-dispatch/presente/domain/account"
)

// A form the server refused, once corrected, is a new action: it is not
// refused as "already sent with other data" under the first try's key.
func TestACorrectedFormIsSentAgainAfterARefusal(t *testing.T) {
	e := newEnv(t, envOptions{browser: true})
	coordinator := e.users[account.Coordinator]
	tb := e.newTab(t, 1280, 900)
	e.signIn(tb, coordinator, "en")
	day := time.Now().UTC().AddDate(0, 0, 2)
	at := func(hour int) string {
		return fmt.Sprintf("%04d-%02d-%02dT%02d:00", day.Year(), day.Month(), day.Day(), hour)
	}
	var refusal string
	tb.run("a shift ending before it starts", chromedp.Navigate(e.ts.URL+"/#/schedule"),
		chromedp.WaitVisible(`//p[text()="No shifts in the next four weeks."]`, chromedp.BySearch),
		chromedp.SendKeys("#sh-region", "East", chromedp.ByID),
		chromedp.SetValue("#sh-start", at(13), chromedp.ByID),
		chromedp.SetValue("#sh-end", at(9), chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`p.error[role="alert"]:not(:empty)`, chromedp.ByQuery),
		chromedp.Text(`p.error[role="alert"]`, &refusal, chromedp.ByQuery))
	var text string
	tb.run("corrected", chromedp.SetValue("#sh-end", at(17), chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`//table[contains(@class,"report")]//td[contains(., "court watch")]`, chromedp.BySearch),
		chromedp.Text("body", &text, chromedp.ByQuery))
	if strings.Contains(text, "other data") {
		t.Errorf("the corrected form was refused as a replay:\n%s", text)
	}
	t.Logf("first refused with %q, then scheduled", refusal)
}
