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
