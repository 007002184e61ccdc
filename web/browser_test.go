//go:build !nobrowser

package web

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
	"github.com/presente-dispatch/presente/web/feed"
	"github.com/presente-dispatch/presente/web/ui"
)

// The app in a real headless Chromium (Debian's chromium, installed by
// .ci/run), against a real server, database and websockets.

// chromium finds the browser: PRESENTE_CHROMIUM, else chromium on PATH.
// Missing, the tests fail: they never skip.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PRESENTE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium for the browser tests: install Debian's chromium (apt-get install chromium) or set PRESENTE_CHROMIUM")
	return ""
}

// tab is one browser (its own cookies) with one page, and every URL the
// page asked for.
type tab struct {
	t    *testing.T
	ctx  context.Context
	mu   sync.Mutex
	urls []string
}

// newTab starts a browser with a viewport of width×height.
func (e *env) newTab(t *testing.T, width, height int) *tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox,
		chromedp.WindowSize(width, height), chromedp.Flag("disable-gpu", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser; it must be on ctx itself, as a
	// browser started under a shorter-lived context dies with it.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start %s: %v", chromium(t), err)
	}
	tb := &tab{t: t, ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			tb.mu.Lock()
			tb.urls = append(tb.urls, ev.Request.URL)
			tb.mu.Unlock()
		case *network.EventWebSocketCreated:
			tb.mu.Lock()
			tb.urls = append(tb.urls, ev.URL)
			tb.mu.Unlock()
		}
	})
	tb.run("start", network.Enable(), chromedp.EmulateViewport(int64(width), int64(height)))
	return tb
}

// run runs actions, bounded by 20 seconds, failing the test with what.
func (tb *tab) run(what string, actions ...chromedp.Action) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var text string
		_ = chromedp.Run(tb.ctx, chromedp.Text("body", &text, chromedp.ByQuery))
		tb.t.Fatalf("%s: %v\nthe page shows:\n%s", what, err, text)
	}
}

// signIn opens the app and signs in as u, in language lang.
func (e *env) signIn(tb *tab, u *user, lang string) {
	tb.t.Helper()
	tb.run("open the app", chromedp.Navigate(e.ts.URL+"/"),
		chromedp.Evaluate(`localStorage.setItem('presente.language', '`+lang+`')`, nil),
		chromedp.Reload(),
		chromedp.WaitVisible("#email", chromedp.ByID),
		chromedp.SendKeys("#email", u.email, chromedp.ByID),
		chromedp.SendKeys("#password", testPassword, chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#top nav a", chromedp.ByQuery))
}

// foreign returns the URLs the tab asked for that are not the server's.
func (e *env) foreign(tb *tab) []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	own := strings.TrimPrefix(e.ts.URL, "http://")
	var out []string
	for _, u := range tb.urls {
		if !strings.HasPrefix(u, "http://"+own+"/") && !strings.HasPrefix(u, "ws://"+own+"/") && !strings.HasPrefix(u, "data:") {
			out = append(out, u)
		}
	}
	return out
}

func TestInTheBrowserTheBoardShowsAnotherSessionsRequestLiveAndAfterTheSocketDrops(t *testing.T) {
	e := newEnv(t, envOptions{browser: true})
	dispatcher, coordinator := e.users[account.Dispatcher], e.users[account.Coordinator]
	tb := e.newTab(t, 1280, 900)
	e.signIn(tb, dispatcher, "en")
	tb.run("the board goes live", chromedp.WaitVisible(".conn-live", chromedp.ByQuery))

	appears := func(what string) time.Duration {
		t.Helper()
		id := e.newRequest(coordinator, "East", 2)
		start := time.Now()
		tb.run(what, chromedp.WaitVisible(`a.card[data-id="`+id+`"]`, chromedp.ByQuery))
		return time.Since(start)
	}
	took := appears("another session's request appears on the board")
	t.Logf("another session's request was on the board %s after its command returned", took)
	if took > time.Second {
		t.Errorf("the request took %s to reach the board, want within a second", took)
	}

	// The server drops the board's socket: the page reconnects by itself,
	// resumes, and shows what came after.
	e.hub.Resync(feed.Board)
	tb.run("the board comes back", chromedp.WaitVisible(".conn-live, .conn-resynced", chromedp.ByQuery))
	took = appears("a request after the drop appears")
	t.Logf("after the socket dropped, a new request was on the board %s after its command returned", took)
	screenshot(tb, "board-en")
	var cards int
	tb.run("count the cards", chromedp.Evaluate(`document.querySelectorAll('a.card').length`, &cards))
	if cards != 2 {
		t.Errorf("after reconnecting the board shows %d requests, want 2", cards)
	}
	if f := e.foreign(tb); len(f) > 0 {
		t.Errorf("the page asked other origins: %v", f)
	}
}

func TestOnAPhoneTwoVolunteersClaimTheLastSlotAtOnceAndOneIsWaitlisted(t *testing.T) {
	e := newEnv(t, envOptions{browser: true})
	coordinator := e.users[account.Coordinator]
	ana, beto := e.users[account.Volunteer], e.newUser(account.Volunteer)
	for _, u := range []*user{ana, beto} {
		mustStatus(t, e.do(coordinator, "POST", "/api/v1/volunteers", map[string]any{"user_id": u.id, "name": "Vol " + u.id.String()[:4],
			"phone": "+1 555 0100", "regions": []string{"East"}}), http.StatusCreated, "register")
	}
	start := time.Now().Add(48 * time.Hour).UTC()
	r := e.do(coordinator, "POST", "/api/v1/shifts", map[string]any{"role": "court watch", "start": start, "end": start.Add(3 * time.Hour),
		"region": "East", "place": "Immigration court", "capacity": 1})
	mustStatus(t, r, http.StatusCreated, "schedule")
	var sh struct {
		ShiftID string `json:"shift_id"`
	}
	decode(t, r.body, &sh)

	tabs := map[*user]*tab{ana: e.newTab(t, 375, 667), beto: e.newTab(t, 375, 667)}
	claim := `li[data-id="` + sh.ShiftID + `"] button.claim`
	for u, tb := range tabs {
		e.signIn(tb, u, "en")
		tb.run("open the shifts", chromedp.Navigate(e.ts.URL+"/#/shifts"), chromedp.WaitVisible(claim, chromedp.ByQuery))
	}
	// Both press "claim" at the same moment.
	var wg sync.WaitGroup
	for _, tb := range tabs {
		wg.Go(func() { tb.run("claim", chromedp.Click(claim, chromedp.ByQuery)) })
	}
	wg.Wait()
	places := map[*user]string{}
	for u, tb := range tabs {
		var text string
		tb.run("see my place", chromedp.WaitVisible(`li[data-id="`+sh.ShiftID+`"] strong`, chromedp.ByQuery),
			chromedp.Text(`li[data-id="`+sh.ShiftID+`"] strong`, &text, chromedp.ByQuery))
		places[u] = text
	}
	screenshot(tabs[beto], "volunteer-shifts-en")
	got := []string{places[ana], places[beto]}
	if !(strings.Contains(strings.Join(got, "|"), "You have a slot") && strings.Contains(strings.Join(got, "|"), "number 1 on the waitlist")) {
		t.Fatalf("after claiming at once: %q; want one slot and one first on the waitlist", got)
	}
	for u, tb := range tabs {
		tb.run("my work", chromedp.Navigate(e.ts.URL+"/#/me"), chromedp.WaitVisible(`#my-shifts`, chromedp.ByID),
			chromedp.WaitVisible(`li[data-id="`+sh.ShiftID+`"]`, chromedp.ByQuery))
		var text string
		tb.run("read my shifts", chromedp.Text(`li[data-id="`+sh.ShiftID+`"]`, &text, chromedp.ByQuery))
		if !strings.Contains(text, places[u]) {
			t.Errorf("my shifts shows %q, want the place %q", text, places[u])
		}
		if u == ana {
			screenshot(tb, "volunteer-me-en")
		}
		if f := e.foreign(tb); len(f) > 0 {
			t.Errorf("the page asked other origins: %v", f)
		}
	}
}

func TestARequestsNotesShowAsTextNeverAsMarkup(t *testing.T) {
	e := newEnv(t, envOptions{browser: true})
	dispatcher := e.users[account.Dispatcher]
	notes := `<script>window.pwned = true</script><img src=x onerror="window.pwned = true"><b>bold</b>`
	r := e.do(dispatcher, "POST", "/api/v1/requests", map[string]any{"kind": "rapid_response", "region": "East", "needed": 1,
		"meeting_point": "<i>corner</i>", "notes": notes})
	mustStatus(t, r, http.StatusCreated, "receive")
	var created struct {
		RequestID string `json:"request_id"`
	}
	decode(t, r.body, &created)
	tb := e.newTab(t, 1280, 900)
	e.signIn(tb, dispatcher, "en")
	var shown string
	var markup, pwned bool
	tb.run("open the request", chromedp.Navigate(e.ts.URL+"/#/requests/"+created.RequestID),
		chromedp.WaitVisible(".notes", chromedp.ByQuery),
		chromedp.Text(".notes", &shown, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector('.notes').children.length > 0 || !!document.querySelector('main b, main i, main img')`, &markup),
		chromedp.Evaluate(`window.pwned === true`, &pwned))
	if shown != notes || markup || pwned {
		t.Errorf("the notes show as %q (markup made: %v, script ran: %v), want the text itself", shown, markup, pwned)
	}
}

// englishOnly lists the English catalog's texts that Spanish words
// differently: none may show on a screen in Spanish.
func englishOnly(t *testing.T) []string {
	t.Helper()
	read := func(lang string) map[string]string {
		raw, err := fs.ReadFile(ui.Assets(), "i18n/"+lang+".json")
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	en, es := read("en"), read("es")
	placeholder := regexp.MustCompile(`\{\w+\}`)
	var out []string
	for k, v := range en {
		// The language menu names each language in itself, on purpose.
		if es[k] == v || k == "language.name" {
			continue
		}
		for _, part := range placeholder.Split(v, -1) {
			if part = strings.TrimSpace(part); len(part) >= 5 && !strings.Contains(es[k], part) {
				out = append(out, part)
			}
		}
	}
	return out
}

func TestTheSpanishAppShowsNoEnglish(t *testing.T) {
	e := newEnv(t, envOptions{browser: true})
	dispatcher, vol := e.users[account.Dispatcher], e.users[account.Volunteer]
	mustStatus(t, e.do(e.users[account.Coordinator], "POST", "/api/v1/volunteers", map[string]any{"user_id": vol.id, "name": "Rosa",
		"phone": "+1 555 0100", "regions": []string{"East"}}), http.StatusCreated, "register")
	id := e.newRequest(dispatcher, "East", 2)
	english := englishOnly(t)
	check := func(tb *tab, screen, ready string, shot string) {
		t.Helper()
		var text string
		tb.run(screen, chromedp.Navigate(e.ts.URL+"/"+screen), chromedp.WaitVisible(ready, chromedp.ByQuery),
			chromedp.Sleep(300*time.Millisecond), // the live views' first sync
			chromedp.Text("body", &text, chromedp.ByQuery))
		if shot != "" {
			screenshot(tb, shot)
		}
		for _, s := range english {
			if regexp.MustCompile(`\b` + regexp.QuoteMeta(s) + `\b`).MatchString(text) {
				t.Errorf("the Spanish %s screen shows the English %q:\n%s", screen, s, text)
			}
		}
	}
	staff := e.newTab(t, 1280, 900)
	e.signIn(staff, dispatcher, "es")
	check(staff, "#/board", ".conn-live", "board-es")
	check(staff, "#/intake", "#in-region", "")
	check(staff, "#/requests/"+id, "#cand-title", "")
	phone := e.newTab(t, 375, 667)
	e.signIn(phone, vol, "es")
	check(phone, "#/me", "#my-shifts", "volunteer-me-es")
	check(phone, "#/shifts", ".conn", "volunteer-shifts-es")
	check(phone, "#/trainings", "main h1", "")
	check(phone, "#/profile", "#on-call", "")
	_ = uuid.Nil
}
