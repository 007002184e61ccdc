// Messages, dates and numbers in the user's language. Every string the app
// shows comes from a catalog (i18n/<lang>.json); adding a language is
// adding one catalog file, whose "language.name" names it in the menu (the
// server lists the catalogs in i18n/languages.json).

export const LANGUAGES = { en: 'English' };

// loadLanguages reads which catalogs the server has.
export async function loadLanguages() {
  const res = await fetch('/assets/i18n/languages.json', { credentials: 'same-origin' });
  if (res.ok) Object.assign(LANGUAGES, await res.json());
}
const KEY = 'presente.language';

let lang = 'en';
let messages = {};
let zone = 'UTC';

// language returns the language in use.
export function language() { return lang; }

// chosen is the language the user picked on this device, else the
// browser's if we have it, else English.
export function chosen() {
  const saved = localStorage.getItem(KEY);
  if (saved && LANGUAGES[saved]) return saved;
  for (const l of navigator.languages || []) {
    const base = l.slice(0, 2).toLowerCase();
    if (LANGUAGES[base]) return base;
  }
  return 'en';
}

// load fetches a catalog and makes it current; remember keeps the choice.
export async function load(l, remember = false) {
  if (!LANGUAGES[l]) l = 'en';
  const res = await fetch(`/assets/i18n/${l}.json`, { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`catalog ${l}: ${res.status}`);
  messages = await res.json();
  lang = l;
  document.documentElement.lang = l;
  if (remember) localStorage.setItem(KEY, l);
}

// setZone sets the organization's time zone for dates and times.
export function setZone(z) { zone = z || 'UTC'; }

// zoneName is the organization's time zone (an IANA name such as
// America/Chicago), which every time shown or typed is in.
export function zoneName() { return zone; }

// wall returns the date and time an instant shows on a clock in the
// organization's zone, as numbers (month 1-12).
function wall(ms) {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric',
    day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' }).formatToParts(new Date(ms));
  const n = (type) => Number(parts.find((p) => p.type === type).value);
  return { y: n('year'), mo: n('month'), d: n('day'), h: n('hour'), mi: n('minute'), s: n('second') };
}

// offset is how far the organization's clocks are ahead of UTC at ms.
function offset(ms) {
  const w = wall(ms);
  return Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s) - Math.floor(ms / 1000) * 1000;
}

// zoneInput writes an instant as a datetime-local field's value
// ("2026-12-01T09:00") on the organization's clocks, not the browser's.
export function zoneInput(d) {
  const w = wall(new Date(d).getTime());
  const p = (x) => String(x).padStart(2, '0');
  return `${String(w.y).padStart(4, '0')}-${p(w.mo)}-${p(w.d)}T${p(w.h)}:${p(w.mi)}`;
}

// fromZoneInput reads a datetime-local field's value as a time on the
// organization's clocks and returns the instant in UTC (RFC 3339); '' for
// an empty or malformed value. A time that a daylight-saving change skips
// is read with the offset before the change (02:30 becomes 03:30, as
// clocks read after it); one it repeats, as the first of the two.
export function fromZoneInput(v) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(v || '');
  if (!m) return '';
  const asUTC = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  // The offset at the guess, then at the instant it gives: they differ
  // only near a change, where the second is the one in force.
  const first = asUTC - offset(asUTC - offset(asUTC));
  const earlier = asUTC - offset(first - 3600e3);
  const candidates = [earlier, first].filter((ms) => zoneInput(ms) === v).sort((a, b) => a - b);
  return new Date(candidates.length ? candidates[0] : Math.max(earlier, first)).toISOString();
}

// zoneDaysFrom returns the date n days after today on the organization's
// clocks at hour:00, as a datetime-local value.
export function zoneDaysFrom(n, hour) {
  const w = wall(Date.now());
  const day = new Date(Date.UTC(w.y, w.mo - 1, w.d + n));
  const p = (x) => String(x).padStart(2, '0');
  return `${day.getUTCFullYear()}-${p(day.getUTCMonth() + 1)}-${p(day.getUTCDate())}T${p(hour)}:00`;
}

// t returns the message for key with {name} placeholders filled. A
// missing key shows as itself, so it is caught in review and by the
// catalog test, never as a blank.
export function t(key, params = {}) {
  const m = messages[key];
  if (m === undefined) return key;
  return m.replace(/\{(\w+)\}/g, (_, k) => (params[k] === undefined ? `{${k}}` : String(params[k])));
}

// plural picks key.one or key.other for n (Intl.PluralRules), with {n}.
export function plural(key, n, params = {}) {
  const rule = new Intl.PluralRules(lang).select(n);
  const k = messages[`${key}.${rule}`] !== undefined ? `${key}.${rule}` : `${key}.other`;
  return t(k, { n: num(n), ...params });
}

export function num(n) { return new Intl.NumberFormat(lang).format(n); }

function fmt(d, opts) {
  return new Intl.DateTimeFormat(lang, { timeZone: zone, ...opts }).format(new Date(d));
}

// dateTime: "Thu 26 Nov, 14:00" in the user's language and the org's zone.
export function dateTime(d) { return fmt(d, { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' }); }
export function time(d) { return fmt(d, { hour: '2-digit', minute: '2-digit' }); }
export function date(d) { return fmt(d, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' }); }

// age: how long ago, "12 min", "3 h 5 min", "2 d".
export function age(from, now = Date.now()) {
  const mins = Math.max(0, Math.floor((now - new Date(from).getTime()) / 60000));
  if (mins < 60) return t('age.minutes', { n: num(mins) });
  if (mins < 48 * 60) return t('age.hours', { h: num(Math.floor(mins / 60)), m: num(mins % 60) });
  return t('age.days', { n: num(Math.floor(mins / 1440)) });
}
