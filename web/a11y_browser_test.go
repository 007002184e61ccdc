//go:build !nobrowser

package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"

	"github.com/presente-dispatch/presente/domain/account"
)

// The accessibility audit: every main screen, in English and in Spanish,
// in a real Chromium, checked for WCAG AA contrast, names on controls,
// the page's structure, and use with the keyboard alone.

// auditJS installs window.__a11y: the checks that run inside the page.
// Colours are composited as the browser paints them: a text's colour over
// the backgrounds of its ancestors up to the first opaque one, with each
// ancestor's opacity applied to its whole subtree, over the white canvas.
const auditJS = `(() => {
const WHITE = {r: 255, g: 255, b: 255, a: 1}, CLEAR = {r: 0, g: 0, b: 0, a: 0};
let unsupported = [];
// parse reads a computed colour; one it cannot read is reported, never
// passed over.
const parse = (s, where) => {
  let m = /^rgba?\(([^)]*)\)$/.exec(s || '');
  let scale = 1;
  if (!m) { m = /^color\(srgb ([^)]*)\)$/.exec(s || ''); scale = 255; }
  if (!m) { if (where) unsupported.push('the colour ' + s + ' at ' + path(where)); return null; }
  const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
  return {r: p[0] * scale, g: p[1] * scale, b: p[2] * scale, a: p.length > 3 ? p[3] : 1};
};
const over = (top, bottom) => {
  const a = top.a + bottom.a * (1 - top.a);
  if (a === 0) return CLEAR;
  const ch = (k) => (top[k] * top.a + bottom[k] * bottom.a * (1 - top.a)) / a;
  return {r: ch('r'), g: ch('g'), b: ch('b'), a};
};
const hex = (c) => '#' + [c.r, c.g, c.b].map((v) => Math.round(v).toString(16).padStart(2, '0')).join('');
const lum = (c) => {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
};
const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
// paint is what colour top, painted inside el, shows as on the screen.
const paint = (el, top) => {
  for (let e = el; e; e = e.parentElement) {
    const cs = getComputedStyle(e);
    if (cs.backgroundImage !== 'none') unsupported.push('a background image at ' + path(e));
    top = over(top, parse(cs.backgroundColor, e) || CLEAR);
    const o = Number(cs.opacity);
    if (o < 1) top = {...top, a: top.a * o};
  }
  return over(top, WHITE);
};
const path = (el) => {
  const parts = [];
  for (let e = el; e && e !== document.documentElement; e = e.parentElement) {
    if (e.id) { parts.unshift('#' + CSS.escape(e.id)); break; }
    let s = e.localName + [...e.classList].map((c) => '.' + CSS.escape(c)).join('');
    const same = e.parentElement ? [...e.parentElement.children].filter((c) => c.localName === e.localName) : [];
    if (same.length > 1) s += ':nth-of-type(' + (same.indexOf(e) + 1) + ')';
    parts.unshift(s);
  }
  return parts.join(' > ');
};
// shown: rendered, not clipped away (the visually-hidden pattern), not
// moved off the page (the skip link until focused).
const shown = (el) => {
  if (!el.checkVisibility({visibilityProperty: true, opacityProperty: true})) return false;
  for (let e = el; e; e = e.parentElement) {
    const cs = getComputedStyle(e);
    if (cs.clip !== 'auto' || cs.clipPath !== 'none') return false;
  }
  return true;
};
const onPage = (rect) => rect.width >= 1 && rect.height >= 1 && rect.right + scrollX > 0 && rect.bottom + scrollY > 0;
const large = (cs) => { const px = parseFloat(cs.fontSize), w = parseInt(cs.fontWeight, 10); return px >= 24 || (px >= 18.66 && w >= 700); };

// contrast checks every visible run of text, and the text of form controls.
const contrast = () => {
  const bad = [];
  let n = 0;
  const check = (el, fg, what, cs) => {
    n++;
    const bg = paint(el, CLEAR);
    const shownFg = paint(el, fg);
    const r = ratio(shownFg, bg), need = large(cs) ? 3 : 4.5;
    if (r < need - 0.005) bad.push({selector: path(el), text: what.slice(0, 40), fg: hex(shownFg), bg: hex(bg), ratio: Math.round(r * 100) / 100, need});
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.data.trim();
    const el = node.parentElement;
    if (!text || !el || el.closest('script, style, noscript, option, datalist, title, select, textarea, :disabled')) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    if (![...range.getClientRects()].some(onPage) || !shown(el)) continue;
    const cs = getComputedStyle(el);
    const fg = el instanceof SVGElement ? parse(cs.fill, el) : parse(cs.color, el);
    if (!fg) continue;
    const key = el;
    if (seen.has(key)) continue;
    seen.add(key);
    check(el, fg, text, cs);
  }
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.matches(':disabled, [type=hidden], [type=checkbox], [type=radio], [type=range], [type=color]') || !shown(el) || !onPage(el.getBoundingClientRect())) continue;
    const cs = getComputedStyle(el);
    const fg = parse(cs.color, el);
    if (!fg) continue;
    if (el.localName === 'select') check(el, fg, el.selectedOptions[0] ? el.selectedOptions[0].text : '', cs);
    else if (el.value) check(el, fg, el.value, cs);
    else if (el.placeholder) {
      const ph = getComputedStyle(el, '::placeholder'), pfg = parse(ph.color, el);
      if (pfg) check(el, pfg, el.placeholder, ph);
    }
    // A field's edge is how one finds it: its border or its own fill, 3:1
    // against what is around it.
    const around = paint(el.parentElement, CLEAR), fill = paint(el, CLEAR);
    const edge = parseFloat(cs.borderTopWidth) > 0 && parse(cs.borderTopColor, el) ? over(parse(cs.borderTopColor), around) : around;
    const r = ratio(edge, around);
    if (r < 2.995 && ratio(fill, around) < 2.995) {
      bad.push({selector: path(el), text: '(the field\'s border)', fg: hex(edge), bg: hex(around), ratio: Math.round(r * 100) / 100, need: 3});
    }
  }
  return {n, bad};
};

// nameOf is a control's accessible name, as assistive technology reads it.
const textOf = (el, without) => {
  const c = el.cloneNode(true);
  c.querySelectorAll('select, textarea, input' + (without ? ', button' : '')).forEach((x) => x.remove());
  c.querySelectorAll('[aria-hidden=true]').forEach((x) => x.remove());
  let s = c.textContent;
  for (const img of el.querySelectorAll('img[alt]')) s += ' ' + img.alt;
  return s.trim();
};
const nameOf = (el) => {
  const ids = (el.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean);
  const byIds = ids.map((id) => document.getElementById(id)).filter(Boolean).map((x) => x.textContent.trim()).join(' ').trim();
  if (byIds) return byIds;
  const aria = (el.getAttribute('aria-label') || '').trim();
  if (aria) return aria;
  const labels = el.labels ? [...el.labels].map((l) => textOf(l, true)).join(' ').trim() : '';
  if (labels) return labels;
  if (el.localName === 'button' || el.localName === 'a' || el.localName === 'summary') { const s = textOf(el); if (s) return s; }
  if (el.localName === 'input' && ['submit', 'button', 'reset'].includes(el.type)) return el.value.trim();
  return (el.getAttribute('title') || '').trim();
};

const structure = (lang) => {
  const bad = [];
  let controls = 0;
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href], summary, [role=button], [role=checkbox], [role=switch], [role=tab]')) {
    controls++;
    if (!nameOf(el)) bad.push('no accessible name: ' + path(el) + ' (' + el.outerHTML.slice(0, 80) + ')');
  }
  for (const el of document.querySelectorAll('img:not([alt]), input[type=image]:not([alt])')) bad.push('image without alt: ' + path(el));
  for (const el of document.querySelectorAll('[role=img]')) if (!nameOf(el)) bad.push('image without a name: ' + path(el));
  for (const el of document.querySelectorAll('svg:not([role]):not([aria-hidden=true])')) bad.push('svg neither an image with a name nor hidden: ' + path(el));
  const h1s = [...document.querySelectorAll('h1')].filter((h) => h.checkVisibility());
  if (h1s.length !== 1) bad.push(h1s.length + ' visible h1 headings, want exactly one: ' + h1s.map((h) => h.textContent.trim()).join(' | '));
  const mains = document.querySelectorAll('main, [role=main]');
  if (mains.length !== 1) bad.push(mains.length + ' main landmarks, want one');
  const ids = new Map();
  for (const el of document.querySelectorAll('[id]')) ids.set(el.id, (ids.get(el.id) || 0) + 1);
  for (const [id, n] of ids) if (n > 1) bad.push('the id "' + id + '" is on ' + n + ' elements');
  for (const l of document.querySelectorAll('label[for]')) {
    const target = document.getElementById(l.htmlFor);
    if (!target || !target.labels) bad.push('label for "' + l.htmlFor + '" names no form control: ' + path(l));
  }
  for (const attr of ['aria-labelledby', 'aria-describedby', 'aria-controls']) {
    for (const el of document.querySelectorAll('[' + attr + ']')) {
      for (const id of el.getAttribute(attr).split(/\s+/).filter(Boolean)) if (!document.getElementById(id)) bad.push(attr + ' names the missing id "' + id + '": ' + path(el));
    }
  }
  for (const el of document.querySelectorAll('[tabindex]')) if (el.tabIndex > 0) bad.push('a positive tabindex reorders the keyboard: ' + path(el));
  if (document.documentElement.lang !== lang) bad.push('the page says lang="' + document.documentElement.lang + '", want "' + lang + '"');
  if (!document.title.trim()) bad.push('the page has no title');
  // On a phone the page reflows: nothing needs scrolling sideways.
  if (innerWidth <= 400 && document.documentElement.scrollWidth > innerWidth + 1) {
    const wide = [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > innerWidth + 1 && shown(el)).slice(0, 5).map(path);
    bad.push('the page is ' + document.documentElement.scrollWidth + 'px wide on a ' + innerWidth + 'px screen: ' + wide.join('; '));
  }
  return {controls, bad};
};

// tabbable lists, in document order, every enabled interactive control the
// keyboard should reach, and keeps how each looks unfocused.
const ring = (el) => { const cs = getComputedStyle(el); return {outline: cs.outlineStyle === 'none' ? 'none' : cs.outlineStyle + ' ' + cs.outlineWidth + ' ' + cs.outlineColor, shadow: cs.boxShadow}; };
let unfocused = new Map();
const tabbable = () => {
  unfocused = new Map();
  const out = [];
  const radios = new Set();
  for (const el of document.querySelectorAll('a[href], button, input, select, textarea, summary, [tabindex], [contenteditable=""], [contenteditable=true]')) {
    if (el.matches(':disabled, [type=hidden]') || el.tabIndex < 0 || el.closest('[inert]') || !el.checkVisibility({visibilityProperty: true})) continue;
    if (el.type === 'radio' && el.name) {
      if (radios.has(el.name)) continue;
      const group = [...document.querySelectorAll('input[type=radio]')].filter((r) => r.name === el.name && r.form === el.form);
      if ((group.find((r) => r.checked) || group[0]) !== el) continue;
      radios.add(el.name);
    }
    const p = path(el);
    unfocused.set(p, ring(el));
    out.push(p);
  }
  return out;
};
// top puts the keyboard at the start of the page, as after loading it.
const top = () => {
  const b = document.body;
  b.setAttribute('tabindex', '-1');
  b.focus({preventScroll: true});
  b.removeAttribute('tabindex');
  return document.activeElement === b;
};
// focused describes the focused element: whether it looks different from
// unfocused, and the contrast of its outline with what is around it.
const focused = () => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return {selector: ''};
  const p = path(el), now = ring(el), was = unfocused.get(p);
  const cs = getComputedStyle(el);
  let ringRatio = 0, ringFg = '', ringBg = '';
  if (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0) {
    const around = parseFloat(cs.outlineOffset) >= 0 ? el.parentElement : el;
    const bg = paint(around, CLEAR);
    const fg = over(parse(cs.outlineColor, el) || CLEAR, bg);
    ringRatio = Math.round(ratio(fg, bg) * 100) / 100;
    ringFg = hex(fg); ringBg = hex(bg);
  }
  return {selector: p, changed: !was || was.outline !== now.outline || was.shadow !== now.shadow, outline: now.outline, shadow: now.shadow,
    ringRatio, ringFg, ringBg, known: unfocused.has(p)};
};
const audit = (lang) => {
  unsupported = [];
  const c = contrast(), s = structure(lang);
  return {texts: c.n, contrast: c.bad, controls: s.controls, structure: s.bad, unsupported: [...new Set(unsupported)]};
};
window.__a11y = {audit, tabbable, top, focused};
return true;
})()`

// contrastFailure is one element whose text is too faint.
type contrastFailure struct {
	Selector string  `json:"selector"`
	Text     string  `json:"text"`
	FG       string  `json:"fg"`
	BG       string  `json:"bg"`
	Ratio    float64 `json:"ratio"`
	Need     float64 `json:"need"`
}

// auditReport is what __a11y.audit finds on one screen.
type auditReport struct {
	Texts       int               `json:"texts"`
	Contrast    []contrastFailure `json:"contrast"`
	Controls    int               `json:"controls"`
	Structure   []string          `json:"structure"`
	Unsupported []string          `json:"unsupported"`
}

// focusState is the focused element as __a11y.focused describes it.
type focusState struct {
	Selector  string  `json:"selector"`
	Changed   bool    `json:"changed"`
	Outline   string  `json:"outline"`
	Shadow    string  `json:"shadow"`
	RingRatio float64 `json:"ringRatio"`
	RingFG    string  `json:"ringFg"`
	RingBG    string  `json:"ringBg"`
	Known     bool    `json:"known"`
}

// a11yTally counts what the audit checked, for the summary.
type a11yTally struct {
	screens, texts, controls, stops, problems int
	langs                                     map[string]int
}

// auditScreen runs every check on the screen tb shows, in lang, and
// reports each problem as an error naming the screen.
func auditScreen(t *testing.T, tb *tab, screen, lang string, tally *a11yTally) {
	t.Helper()
	rep, stops, problems := auditPage(tb, lang)
	if len(problems) > 0 {
		t.Errorf("%s in %s: %d accessibility problems:\n  %s", screen, lang, len(problems), strings.Join(problems, "\n  "))
	}
	tally.screens++
	tally.langs[lang]++
	tally.texts += rep.Texts
	tally.controls += rep.Controls
	tally.stops += stops
	tally.problems += len(problems)
}

// auditPage runs every check on the page tb shows, in lang: what it
// checked, how many controls the keyboard reached, and the problems.
func auditPage(tb *tab, lang string) (auditReport, int, []string) {
	tb.t.Helper()
	var installed bool
	var raw string
	tb.run("run the audit", chromedp.Evaluate(auditJS, &installed),
		chromedp.Evaluate(`JSON.stringify(__a11y.audit(`+jsString(lang)+`))`, &raw))
	var rep auditReport
	if err := json.Unmarshal([]byte(raw), &rep); err != nil {
		tb.t.Fatalf("the audit's answer %q: %v", raw, err)
	}
	var problems []string
	for _, f := range rep.Contrast {
		problems = append(problems, fmt.Sprintf("contrast %.2f:1 < %.1f:1 at %s (%s on %s) %q", f.Ratio, f.Need, f.Selector, f.FG, f.BG, f.Text))
	}
	problems = append(problems, rep.Structure...)
	for _, s := range rep.Unsupported {
		problems = append(problems, "the contrast check cannot read "+s)
	}
	stops, keyboard := tabThrough(tb)
	problems = append(problems, keyboard...)
	if rep.Texts == 0 || rep.Controls == 0 || stops == 0 {
		problems = append(problems, fmt.Sprintf("the audit found %d texts, %d controls and %d keyboard stops: it saw no screen", rep.Texts, rep.Controls, stops))
	}
	return rep, stops, problems
}

// tabThrough presses Tab from the top of the page until the focus leaves
// the last control, checking that it meets every enabled control in
// document order, that each shows where the focus is, and that nothing
// holds the focus. It returns how many controls it reached.
func tabThrough(tb *tab) (int, []string) {
	tb.t.Helper()
	var want []string
	var atTop bool
	tb.run("list the controls", chromedp.Evaluate(`__a11y.top()`, &atTop), chromedp.Evaluate(`__a11y.tabbable()`, &want))
	if !atTop {
		return 0, []string{"could not put the keyboard at the top of the page"}
	}
	var problems []string
	var got []string
	same := 0
	// Date and time fields take a Tab per part (day, month, year, hour…).
	for press := 0; press < 8*len(want)+10; press++ {
		var f focusState
		tb.run("press Tab", chromedp.KeyEvent(kb.Tab), chromedp.Evaluate(`__a11y.focused()`, &f))
		if f.Selector == "" {
			if len(got) > 0 {
				break // past the last control: the focus left the page
			}
			continue
		}
		if len(got) > 0 && got[len(got)-1] == f.Selector {
			if same++; same > 8 {
				problems = append(problems, "keyboard trap: Tab stays on "+f.Selector)
				break
			}
			continue
		}
		same = 0
		if len(got) > 0 && f.Selector == got[0] {
			break // wrapped around to the first control
		}
		got = append(got, f.Selector)
		switch {
		case !f.Known:
			problems = append(problems, "Tab reaches "+f.Selector+", which is not an enabled, visible control")
		case !f.Changed:
			problems = append(problems, "no visible focus indicator on "+f.Selector+" (outline "+f.Outline+", shadow "+f.Shadow+")")
		case f.Outline != "none" && f.RingRatio < 3:
			problems = append(problems, fmt.Sprintf("focus outline contrast %.2f:1 < 3:1 on %s (%s around it on %s)", f.RingRatio, f.Selector, f.RingFG, f.RingBG))
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		reached := map[string]bool{}
		for _, s := range got {
			reached[s] = true
		}
		var missed []string
		for _, s := range want {
			if !reached[s] {
				missed = append(missed, s)
			}
		}
		if len(missed) > 0 {
			problems = append(problems, "Tab never reaches: "+strings.Join(missed, "; "))
		} else {
			problems = append(problems, "Tab reaches the controls out of document order:\n    got  "+strings.Join(got, "\n         ")+
				"\n    want "+strings.Join(want, "\n         "))
		}
	}
	return len(got), problems
}

// press presses a key as a keyboard does: one key-down that also types
// text, so a page that cancels the key-down cancels the typing
// (chromedp.KeyEvent sends the typing as an event of its own, which lands
// wherever the key-down moved the focus).
func press(key, code string, keyCode int64, text string, modifiers input.Modifier) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		down := input.DispatchKeyEvent(input.KeyDown).WithKey(key).WithCode(code).WithWindowsVirtualKeyCode(keyCode).
			WithNativeVirtualKeyCode(keyCode).WithModifiers(modifiers)
		if text != "" {
			down = down.WithText(text).WithUnmodifiedText(text)
		}
		if err := down.Do(ctx); err != nil {
			return err
		}
		return input.DispatchKeyEvent(input.KeyUp).WithKey(key).WithCode(code).WithWindowsVirtualKeyCode(keyCode).
			WithNativeVirtualKeyCode(keyCode).WithModifiers(modifiers).Do(ctx)
	})
}

// pressEnter presses Enter, typing a return unless a modifier is held.
func pressEnter(modifiers input.Modifier) chromedp.Action {
	text := "\r"
	if modifiers != 0 {
		text = ""
	}
	return press("Enter", "Enter", 13, text, modifiers)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// settledJS waits until the page has not changed for 300 ms (a screen
// still loading, as after signing in, would take the focus away).
const settledJS = `new Promise((done) => {
  let timer = setTimeout(finish, 300);
  const seen = new MutationObserver(() => { clearTimeout(timer); timer = setTimeout(finish, 300); });
  function finish() { seen.disconnect(); done(true); }
  seen.observe(document.getElementById('main'), {childList: true, subtree: true, characterData: true});
})`

// show opens screen (a fragment of the app's URL) and waits for ready.
func (e *env) show(tb *tab, screen, ready string) {
	tb.t.Helper()
	tb.run("open "+screen, chromedp.Navigate(e.ts.URL+"/"+screen), chromedp.WaitVisible(ready, chromedp.ByQuery),
		chromedp.Evaluate(settledJS, nil, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
}

// useLanguage switches the signed-in app to lang, as the menu would.
func (e *env) useLanguage(tb *tab, lang string) {
	tb.t.Helper()
	tb.run("switch to "+lang, chromedp.SetValue("#language", lang, chromedp.ByID),
		chromedp.Evaluate(`document.getElementById('language').dispatchEvent(new Event('change'))`, nil),
		chromedp.WaitVisible(`html[lang="`+lang+`"] #language`, chromedp.ByQuery))
}

// a11yData fills the app with something of everything each screen shows:
// an urgent and a triaged request, volunteers on call with an offer, a
// claimed and an open shift, a training session, an invitation, and a
// resolved request behind the coordinator's reports.
type a11yData struct {
	urgent, resolved string
	rosa             *user
}

func (e *env) a11yData(t *testing.T) a11yData {
	t.Helper()
	coordinator, dispatcher, admin := e.users[account.Coordinator], e.users[account.Dispatcher], e.users[account.Admin]
	sc := e.reportScenario(t)
	rosa := e.users[account.Volunteer]
	mustStatus(t, e.do(coordinator, "POST", "/api/v1/volunteers", map[string]any{"user_id": rosa.id, "name": "Rosa Phone",
		"phone": "+1 555 0100", "languages": []map[string]string{{"code": "es", "level": "native"}, {"code": "en", "level": "fluent"}},
		"regions": []string{"East"}, "prior_assignments": 3}), http.StatusCreated, "register Rosa")
	now := e.throttle.Now()
	mustStatus(t, e.do(coordinator, "POST", "/api/v1/volunteers/"+rosa.id.String()+"/certifications",
		map[string]any{"certification": "rapid_response", "granted_at": now.AddDate(-1, 0, 0), "expires_at": now.AddDate(0, 0, 10)}),
		http.StatusOK, "certify Rosa")
	mustStatus(t, e.do(rosa, "POST", "/api/v1/volunteers/"+rosa.id.String()+"/on-call", map[string]bool{"on_call": true}), http.StatusOK, "on call")

	urgent := e.newRequest(dispatcher, "East", 2)
	offered := e.newRequest(dispatcher, "East", 1)
	mustStatus(t, e.do(dispatcher, "POST", "/api/v1/requests/"+offered+"/triage", map[string]any{"priority": "high"}), http.StatusOK, "triage")
	mustStatus(t, e.do(dispatcher, "POST", "/api/v1/requests/"+offered+"/assignments", map[string]any{"volunteer_id": rosa.id},
		"Idempotency-Key", uuid.NewString()), http.StatusCreated, "offer Rosa")

	start := now.Add(72 * time.Hour)
	for i := range 2 {
		r := e.do(coordinator, "POST", "/api/v1/shifts", map[string]any{"role": "court_watch", "region": "East", "capacity": 2,
			"place": "Immigration court", "start": start.Add(time.Duration(i) * 24 * time.Hour), "end": start.Add(time.Duration(i)*24*time.Hour + 3*time.Hour)})
		mustStatus(t, r, http.StatusCreated, "schedule a shift")
		if i == 0 {
			var sh struct {
				ShiftID string `json:"shift_id"`
			}
			decode(t, r.body, &sh)
			mustStatus(t, e.do(rosa, "POST", "/api/v1/shifts/"+sh.ShiftID+"/claims/"+rosa.id.String(), nil), http.StatusOK, "claim")
		}
	}
	r := e.do(coordinator, "POST", "/api/v1/courses", map[string]any{"name": "Know your rights", "certification": "know_your_rights", "validity_months": 24})
	mustStatus(t, r, http.StatusCreated, "add a course")
	var course struct {
		CourseID string `json:"course_id"`
	}
	decode(t, r.body, &course)
	mustStatus(t, e.do(coordinator, "POST", "/api/v1/courses/"+course.CourseID+"/sessions",
		map[string]any{"start": start, "end": start.Add(2 * time.Hour), "place": "Community hall", "capacity": 12}), http.StatusCreated, "schedule a session")
	mustStatus(t, e.do(admin, "POST", "/api/v1/invitations", map[string]any{"email": "new-" + uuid.NewString()[:8] + "@example.org", "role": "volunteer"}),
		http.StatusCreated, "invite")
	until(t, "the reports hold the resolved request", func() bool {
		r := e.do(coordinator, "GET", "/api/v1/reports/response-times", nil)
		tl := e.do(coordinator, "GET", "/api/v1/requests/"+sc.request.String()+"/timeline", nil)
		return strings.Contains(r.body, `"time_to_arrival":{"n":1`) && strings.Count(tl.body, `"version"`) == 6
	})
	return a11yData{urgent: urgent, resolved: sc.request.String(), rosa: rosa}
}

func TestA11yEveryMainScreenInEnglishAndSpanish(t *testing.T) {
	e := newEnv(t, envOptions{browser: true})
	data := e.a11yData(t)
	tally := &a11yTally{langs: map[string]int{}}
	langs := []string{"en", "es"}

	// Signing in, on a phone.
	phone := e.newTab(t, 375, 667)
	for _, lang := range langs {
		phone.run("open the app in "+lang, chromedp.Navigate(e.ts.URL+"/"),
			chromedp.Evaluate(`localStorage.setItem('presente.language', `+jsString(lang)+`)`, nil),
			chromedp.Reload(), chromedp.WaitVisible(`html[lang="`+lang+`"] #email`, chromedp.ByQuery))
		auditScreen(t, phone, "sign-in", lang, tally)
	}

	// A screen is a path to open, or, with then, a state of the screen
	// just audited that then brings about.
	type screen struct {
		path, ready string
		then        func(tb *tab)
	}
	dispatcher := e.users[account.Dispatcher]
	urgentAlert := func(tb *tab) {
		e.newRequest(dispatcher, "East", 1)
		tb.run("an urgent request arrives", chromedp.WaitVisible(`.urgent-alert a`, chromedp.ByQuery))
	}
	forgetError := func(tb *tab) {
		tb.run("a mistyped id", chromedp.SetValue("#forget-subject", "not-an-id", chromedp.ByID),
			chromedp.Click(`#main form button[type="submit"]`, chromedp.ByQuery),
			chromedp.WaitVisible(`p.error[role="alert"]`, chromedp.ByQuery))
	}
	forgetConfirm := func(tb *tab) {
		tb.run("ask to forget", chromedp.SetValue("#forget-subject", uuid.NewString(), chromedp.ByID),
			chromedp.Click(`#main form button[type="submit"]`, chromedp.ByQuery),
			chromedp.WaitVisible(`[role="alertdialog"] button.danger`, chromedp.ByQuery))
	}
	timeline := data.resolved
	roles := []struct {
		who           *user
		width, height int
		screens       []screen
	}{
		{e.users[account.Dispatcher], 1280, 900, []screen{
			{"#/board", `section.column a.card.urgent`, nil},
			{"with a new urgent request's alert", "", urgentAlert},
			{"#/requests/" + data.urgent, "#cand-title", nil},
			{"#/intake", "#in-region", nil},
		}},
		{data.rosa, 375, 667, []screen{
			{"#/me", `#main ul.list li.card button`, nil},
			{"#/shifts", `#main li.shift strong`, nil}, // Rosa's own place has come: the list is whole
			{"#/trainings", `#main li.card button`, nil},
			{"#/profile", "#on-call", nil},
		}},
		{e.users[account.Coordinator], 1280, 900, []screen{
			{"#/reports", "svg.chart", nil},
			{"#/requests/" + timeline + "/timeline", "table.report tbody tr", nil},
			{"#/coverage", "#main table.report, #main p.muted", nil},
			{"#/expiring", "#main table.report", nil},
			{"#/audit", "#main .badge.ok", nil},
			{"#/schedule", "#main table.report", nil},
			{"#/training", "#main table", nil},
			{"#/forget", "#forget-subject", nil},
			{"with a mistyped id", "", forgetError},
			{"asking to confirm", "", forgetConfirm},
		}},
		{e.users[account.Admin], 1280, 900, []screen{
			{"#/accounts", "#main table.report", nil},
			{"#/invitations", "#main table.report", nil},
		}},
	}
	for _, role := range roles {
		tb := phone
		if role.width != 375 {
			tb = e.newTab(t, role.width, role.height)
		}
		e.signIn(tb, role.who, "en")
		for _, lang := range langs {
			e.useLanguage(tb, lang)
			last := ""
			for _, s := range role.screens {
				if s.then != nil {
					s.then(tb)
					auditScreen(t, tb, last+" "+s.path, lang, tally)
					continue
				}
				last = s.path
				e.show(tb, s.path, s.ready)
				auditScreen(t, tb, s.path, lang, tally)
			}
		}
	}
	t.Logf("accessibility audit: %d screens (%d in English, %d in Spanish); %d text runs checked for contrast, %d controls and links checked for a name, %d keyboard stops checked for order and visible focus; %d problems",
		tally.screens, tally.langs["en"], tally.langs["es"], tally.texts, tally.controls, tally.stops, tally.problems)
}

// The board's and the intake's keyboard shortcuts, as the app documents
// them: N on the board opens the intake (and also Alt+N, the link's access
// key, from anywhere), Ctrl+Enter sends the intake, Alt+1…9 assigns the
// ranked candidates of a request; the skip link moves to the content.
func TestA11yTheKeyboardShortcutsWork(t *testing.T) {
	e := newEnv(t, envOptions{browser: true})
	dispatcher, coordinator, vol := e.users[account.Dispatcher], e.users[account.Coordinator], e.users[account.Volunteer]
	mustStatus(t, e.do(coordinator, "POST", "/api/v1/volunteers", map[string]any{"user_id": vol.id, "name": "Rosa Keys",
		"phone": "+1 555 0100", "languages": []map[string]string{{"code": "es", "level": "native"}}, "regions": []string{"East"}, "prior_assignments": 2}),
		http.StatusCreated, "register")
	mustStatus(t, e.do(coordinator, "POST", "/api/v1/volunteers/"+vol.id.String()+"/certifications",
		map[string]any{"certification": "rapid_response", "granted_at": time.Now().AddDate(-1, 0, 0)}), http.StatusOK, "certify")
	mustStatus(t, e.do(vol, "POST", "/api/v1/volunteers/"+vol.id.String()+"/on-call", map[string]bool{"on_call": true}), http.StatusOK, "on call")
	tb := e.newTab(t, 1280, 900)
	e.signIn(tb, dispatcher, "en")
	e.show(tb, "#/board", ".conn-live")

	// The skip link is the first stop and moves the focus to the content.
	var first, after string
	tb.run("skip to the content", chromedp.Evaluate(auditJS, nil), chromedp.Evaluate(`__a11y.top()`, nil),
		chromedp.KeyEvent(kb.Tab), chromedp.Evaluate(`document.activeElement.className`, &first),
		pressEnter(0), chromedp.Evaluate(`document.activeElement.id`, &after))
	if first != "skip" || after != "main" {
		t.Errorf("the first Tab focuses %q and Enter then %q, want the skip link, then the main content", first, after)
	}

	// N on the board opens the intake; typed in the intake, n is a letter.
	var region, hash string
	tb.run("N opens the intake", press("n", "KeyN", 78, "n", 0), chromedp.WaitVisible("#in-region", chromedp.ByID),
		chromedp.Evaluate(`document.getElementById('in-region').focus()`, nil),
		chromedp.KeyEvent("North"), chromedp.Value("#in-region", &region, chromedp.ByID))
	if region != "North" {
		t.Errorf("typing North in the intake's region gives %q: the board's N still acts", region)
	}

	// Enter moves to the next field, as the form's hint says; it sends
	// nothing.
	var next string
	tb.run("Enter moves on", chromedp.SetValue("#in-region", "East", chromedp.ByID), chromedp.Focus("#in-region", chromedp.ByID),
		pressEnter(0), chromedp.Evaluate(`document.activeElement.id`, &next), chromedp.Location(&hash))
	if next != "in-meeting" || !strings.HasSuffix(hash, "#/intake") {
		t.Errorf("Enter in the region moved to %q at %s, want the meeting point, still on the intake", next, hash)
	}

	// Ctrl+Enter, even in the notes where Enter is a new line, sends it.
	tb.run("Ctrl+Enter sends the intake", chromedp.Focus("#in-notes", chromedp.ByID), chromedp.KeyEvent("caller at the door"),
		pressEnter(input.ModifierCtrl),
		chromedp.WaitVisible("#cand-title", chromedp.ByID), chromedp.Location(&hash))
	id := hash[strings.LastIndex(hash, "/")+1:]
	if _, err := uuid.Parse(id); err != nil {
		t.Fatalf("after Ctrl+Enter the app is at %s, want the new request", hash)
	}
	var req struct {
		Notes  string `json:"notes"`
		Region string `json:"region"`
	}
	decode(t, e.do(dispatcher, "GET", "/api/v1/requests/"+id, nil).body, &req)
	if req.Notes != "caller at the door" || req.Region != "East" {
		t.Errorf("the request sent by Ctrl+Enter: %+v", req)
	}

	// Alt+1 assigns the first ranked candidate.
	tb.run("Alt+1 assigns the first candidate", chromedp.WaitVisible(`button[accesskey="1"]`, chromedp.ByQuery),
		chromedp.KeyEvent("1", chromedp.KeyModifiers(input.ModifierAlt)),
		chromedp.WaitVisible(`//ul[@class="team"]//strong[text()="Rosa Keys"]`, chromedp.BySearch))

	// Alt+N, the intake link's access key, works from any screen.
	tb.run("Alt+N opens the intake", chromedp.KeyEvent("n", chromedp.KeyModifiers(input.ModifierAlt)),
		chromedp.WaitVisible("#in-region", chromedp.ByID))
}

// The audit itself must fail where the page fails: on a page with one of
// each fault, it names each one, and passes large text that needs only 3:1.
func TestA11yTheAuditCatchesEachFault(t *testing.T) {
	e := newEnv(t, envOptions{browser: true, noUsers: true})
	tb := e.newTab(t, 1280, 900)
	tb.run("open the sign-in page", chromedp.Navigate(e.ts.URL+"/"), chromedp.WaitVisible("#email", chromedp.ByID))
	// Built with the DOM, as the page's policy allows no inline style.
	tb.run("add the faults", chromedp.Evaluate(`(() => {
		const main = document.getElementById('main').appendChild(document.createElement('div'));
		main.style.background = '#fff';
		const add = (tag, props, style, parent) => {
			const el = document.createElement(tag);
			Object.assign(el, props);
			Object.assign(el.style, style || {});
			(parent || main).append(el);
			return el;
		};
		add('p', {id: 'faint', textContent: 'faint text'}, {color: 'rgba(0, 0, 0, 0.4)'});
		const dim = add('div', {}, {opacity: '0.5', background: '#fff'});
		add('p', {id: 'dimmed', textContent: 'dimmed text'}, {color: '#000'}, dim);
		add('p', {id: 'big', textContent: 'large grey text'}, {color: '#808080', fontSize: '30px', background: '#fff'});
		const veil = add('div', {}, {background: 'rgba(0, 0, 0, 0.5)'});
		add('p', {id: 'veiled', textContent: 'white on a veil'}, {color: '#fff'}, veil);
		add('input', {id: 'nolabel', type: 'text'});
		const icon = add('button', {id: 'iconbutton', type: 'button'});
		add('span', {textContent: '⚠'}, {}, icon).setAttribute('aria-hidden', 'true');
		add('img', {src: 'data:,'});
		add('span', {id: 'twice', textContent: 'one'});
		add('span', {id: 'twice', textContent: 'two'});
		add('h1', {textContent: 'a second title'});
		add('div', {}).setAttribute('role', 'main');
		add('button', {id: 'ahead', type: 'button', textContent: 'ahead', tabIndex: 2});
		add('button', {id: 'plain', type: 'button', textContent: 'plain'}, {outline: 'none'});
		const pale = add('input', {id: 'pale', type: 'text', value: 'pale edge'}, {borderColor: '#ddd'});
		pale.setAttribute('aria-label', 'pale');
		return true;
	})()`, nil))
	_, _, problems := auditPage(tb, "en")
	all := strings.Join(problems, "\n")
	for _, want := range []string{
		"at #faint (#999999 on #ffffff)",
		"at #dimmed (#808080 on #ffffff)",
		"at #veiled (#ffffff on #808080)",
		"at #pale (#dddddd on #ffffff) \"(the field's border)\"",
		"no accessible name: #nolabel",
		"no accessible name: #iconbutton",
		"image without alt",
		`the id "twice" is on 2 elements`,
		"2 visible h1 headings",
		"2 main landmarks",
		"a positive tabindex reorders the keyboard: #ahead",
		"no visible focus indicator on #plain",
		"Tab never reaches: #ahead", // from the top of the page, Chromium follows the document
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the audit missed %q; it found:\n%s", want, all)
		}
	}
	if strings.Contains(all, "#big") {
		t.Errorf("the audit failed large text at 3.95:1, which needs 3:1:\n%s", all)
	}

	// A field that keeps the focus.
	tb.run("add a trap", chromedp.Evaluate(`(() => {
		document.getElementById('ahead').remove();
		const trap = document.createElement('input');
		trap.id = 'trap';
		trap.addEventListener('keydown', (e) => { if (e.key === 'Tab') e.preventDefault(); });
		document.getElementById('main').append(trap);
		return true;
	})()`, nil))
	if _, problems := tabThrough(tb); !strings.Contains(strings.Join(problems, "\n"), "keyboard trap: Tab stays on #trap") {
		t.Errorf("the audit missed the keyboard trap; it found:\n%s", strings.Join(problems, "\n"))
	}
}
