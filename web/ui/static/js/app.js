// Presente's web app: signs the user in, then routes by the URL's
// fragment to the screens of their role.
import { h, replace, announce } from './dom.js';
import * as i18n from './i18n.js';
import { t } from './i18n.js';
import { get, put, call, ApiError } from './api.js';
import { errorText } from './views/common.js';
import { signInScreen } from './views/signin.js';
import { boardScreen } from './views/board.js';
import { intakeScreen } from './views/intake.js';
import { requestScreen } from './views/request.js';
import { myWork, openShifts, trainings, profile } from './views/volunteer.js';
import { timelineScreen, dashboardScreen, coverageScreen, expiringScreen, auditScreen, forgetScreen } from './views/coordinator.js';
import { accountsScreen, invitationsScreen } from './views/admin.js';
import { shiftsScheduleScreen, trainingScheduleScreen } from './views/schedule.js';
import { retentionScreen, settingsScreen } from './views/settings.js';

const main = () => document.getElementById('main');

// The signed-in user ({user_id, role, email, language}) and the
// organization's settings, once known.
export const session = { who: null, settings: null };

const STAFF = ['coordinator', 'dispatcher'];
const COORDINATOR = ['coordinator'];
const ADMIN = ['admin'];

// Screens by route; each takes (main element, params) and may return a
// function that stops it (closing its live view) when the route changes.
const routes = [
  { path: /^#\/board$/, roles: STAFF, screen: boardScreen },
  { path: /^#\/intake$/, roles: STAFF, screen: intakeScreen },
  { path: /^#\/requests\/([0-9a-f-]{36})$/, roles: STAFF, screen: requestScreen },
  { path: /^#\/requests\/([0-9a-f-]{36})\/timeline$/, roles: STAFF, screen: timelineScreen },
  { path: /^#\/reports$/, roles: COORDINATOR, screen: dashboardScreen },
  { path: /^#\/coverage$/, roles: COORDINATOR, screen: coverageScreen },
  { path: /^#\/expiring$/, roles: COORDINATOR, screen: expiringScreen },
  { path: /^#\/audit$/, roles: COORDINATOR, screen: auditScreen },
  { path: /^#\/forget(?:\/([0-9a-f-]{36}))?$/, roles: COORDINATOR, screen: forgetScreen },
  { path: /^#\/schedule$/, roles: COORDINATOR, screen: shiftsScheduleScreen },
  { path: /^#\/training$/, roles: COORDINATOR, screen: trainingScheduleScreen },
  { path: /^#\/retention$/, roles: COORDINATOR, screen: retentionScreen },
  { path: /^#\/accounts$/, roles: ADMIN, screen: accountsScreen },
  { path: /^#\/settings$/, roles: ADMIN, screen: settingsScreen },
  { path: /^#\/invitations$/, roles: ['admin', 'coordinator'], screen: invitationsScreen },
  { path: /^#\/me$/, roles: ['volunteer'], screen: myWork },
  { path: /^#\/shifts$/, roles: ['volunteer'], screen: openShifts },
  { path: /^#\/trainings$/, roles: ['volunteer'], screen: trainings },
  { path: /^#\/profile$/, roles: ['volunteer'], screen: profile },
];

function home(role) {
  return { volunteer: '#/me', admin: '#/accounts' }[role] || '#/board';
}

let stop = null;
let routed = 0;

async function route() {
  if (stop) { stop(); stop = null; }
  const turn = ++routed;
  // Each screen draws into a box of its own: one still loading when the
  // route changes then draws into a box no longer on the page.
  const el = h('div', { class: 'screen' });
  replace(main(), el);
  if (!session.who) { signInScreen(el, onSignedIn); return; }
  const hash = location.hash || home(session.who.role);
  for (const r of routes) {
    const m = hash.match(r.path);
    if (!m) continue;
    if (!r.roles.includes(session.who.role)) break;
    const stopper = (await r.screen(el, m.slice(1), session.who.user_id, session.who.email, session.who.role)) || null;
    if (turn !== routed) { if (stopper) stopper(); return; } // left while it loaded
    stop = stopper;
    if (!main().contains(document.activeElement)) main().focus({ preventScroll: true }); // never take the focus from a field being typed in
    return;
  }
  if (hash !== home(session.who.role)) { location.hash = home(session.who.role); return; }
  replace(el, h('p', { class: 'notice' }, t('app.no_screen')));
}

async function onSignedIn() {
  await loadSession();
  header();
  const to = await landing();
  if (location.hash !== to) location.hash = to;
  else route();
}

// landing is where a user starts: their role's home, or the registration
// form for a volunteer who joined through an invitation and has no record.
async function landing() {
  if (session.who.role === 'volunteer') {
    try { await get(`/api/v1/volunteers/${session.who.user_id}`); } catch (err) { if (err.status === 404) return '#/profile'; }
  }
  return location.hash || home(session.who.role);
}

async function loadSession() {
  try {
    session.who = await get('/api/v1/session');
    session.settings = await get('/api/v1/settings');
    i18n.setZone(session.settings.time_zone);
    // The account's language wins over this device's: it follows the
    // user to every device, and becomes this device's default too.
    const lang = session.who.language;
    if (lang && i18n.LANGUAGES[lang] && lang !== i18n.language()) {
      await i18n.load(lang, true);
      translatePage();
    }
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    session.who = null;
  }
}

// header draws the top bar: the product, the screens of the role, the
// language and signing out.
export function header() {
  const top = document.getElementById('top');
  const lang = h('select', { id: 'language', 'aria-label': t('app.language'), onchange: async (e) => {
    const chosen = e.target.value;
    await i18n.load(chosen, true);
    translatePage();
    header();
    route();
    if (!session.who) return; // before sign-in the choice stays on this device
    try {
      session.who = await put('/api/v1/me/language', { language: chosen });
      announce(t('app.language_saved'));
    } catch (err) {
      const status = document.getElementById('language-error');
      if (status) status.textContent = `${t('app.language_not_saved')} ${errorText(err)}`;
    }
  } }, Object.entries(i18n.LANGUAGES).map(([code, name]) => h('option', { value: code, selected: code === i18n.language() }, name)));
  const nav = [];
  if (session.who && STAFF.includes(session.who.role)) {
    nav.push(h('a', { href: '#/board' }, t('nav.board')), h('a', { href: '#/intake', accesskey: 'n' }, t('nav.intake')));
  }
  if (session.who && session.who.role === 'coordinator') {
    nav.push(h('a', { href: '#/schedule' }, t('nav.schedule')), h('a', { href: '#/training' }, t('nav.training')),
      h('a', { href: '#/reports' }, t('nav.reports')), h('a', { href: '#/coverage' }, t('nav.coverage')),
      h('a', { href: '#/expiring' }, t('nav.expiring')), h('a', { href: '#/audit' }, t('nav.audit')),
      h('a', { href: '#/invitations' }, t('nav.invitations')), h('a', { href: '#/forget' }, t('nav.forget')),
      h('a', { href: '#/retention' }, t('nav.retention')));
  }
  if (session.who && session.who.role === 'admin') {
    nav.push(h('a', { href: '#/accounts' }, t('nav.accounts')), h('a', { href: '#/invitations' }, t('nav.invitations')),
      h('a', { href: '#/settings' }, t('nav.settings')));
  }
  if (session.who && session.who.role === 'volunteer') {
    nav.push(h('a', { href: '#/me' }, t('nav.me')), h('a', { href: '#/shifts' }, t('nav.shifts')),
      h('a', { href: '#/trainings' }, t('nav.trainings')), h('a', { href: '#/profile' }, t('nav.profile')));
  }
  replace(top,
    h('span', { class: 'brand' }, 'Presente'),
    h('nav', { 'aria-label': t('nav.label') }, nav),
    h('span', { class: 'spacer' }),
    h('label', { class: 'lang' }, lang),
    h('span', { id: 'language-error', class: 'error', role: 'alert' }),
    session.who ? h('button', { type: 'button', class: 'link', onclick: signOut }, t('app.sign_out')) : null);
}

async function signOut() {
  try { await call('DELETE', '/api/v1/session'); } catch { /* signed out anyway */ }
  session.who = null;
  header();
  location.hash = '';
  route();
}

// translatePage translates the parts of index.html outside the screens.
function translatePage() {
  const skip = document.querySelector('.skip');
  if (skip) skip.textContent = t('app.skip');
  document.title = t('app.title');
}

async function boot() {
  await i18n.loadLanguages();
  await i18n.load(i18n.chosen());
  translatePage();
  await loadSession();
  header();
  window.addEventListener('hashchange', route);
  route();
}

boot().catch((err) => {
  replace(main(), h('p', { class: 'error', role: 'alert' }, t('app.failed'), ' ', String(err.message || err)));
});
