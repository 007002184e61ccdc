// The coordinator's screens: a request's timeline, the response-time
// dashboard with volunteer hours, coverage gaps, expiring certifications,
// the audit chain's state and forgetting a person. Charts are inline SVG
// built node by node; each has a table with the same figures beside it,
// and series differ by shape and label, never by colour alone.
import { h, replace, announce } from '../dom.js';
import { t, plural, num, dateTime, date } from '../i18n.js';
import { get, post } from '../api.js';
import { errorText, field, certLabel, kindLabel } from './common.js';

// The SVG namespace, spelled without a URL literal (the app holds none).
const SVG = ['http:', '', 'www.w3.org', '2000', 'svg'].join('/');

// s builds an SVG element: attributes are set as they are, children are
// nodes or text.
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// minutes formats a duration in nanoseconds as minutes (or hours).
function minutes(ns) {
  const m = ns / 6e10;
  if (m >= 120) return t('duration.hours', { n: num(Math.round(m / 6) / 10) });
  return t('duration.minutes', { n: num(Math.round(m * 10) / 10) });
}

// csvLink offers a report as a CSV download.
function csvLink(path) {
  const sep = path.includes('?') ? '&' : '?';
  return h('a', { class: 'button secondary', href: `${path}${sep}format=csv`, download: '' }, t('report.csv'));
}

function isoDate(d) { return d.toISOString().slice(0, 10); }

function weekLabel(w) { return t('report.week', { week: w.week, year: w.year }); }

// actorName names who caused an event as the API does: staff and
// volunteers by name with their role, the system as itself.
function actorName(e) {
  if (!e.actor || !e.actor.startsWith('user:')) return e.actor ? t('timeline.system') : '—';
  const role = e.actor_role ? h('span', { class: 'muted' }, ' · ', t(`role.${e.actor_role}`)) : null;
  return [e.actor_name || t('timeline.former_staff'), role];
}

// eventLabel names an event of a request's timeline and what it says.
function eventLabel(e) {
  const k = `event.${e.type}`;
  const name = t(k) === k ? e.type : t(k);
  if (!e.status || e.type === 'AssignmentOffered') return name;
  for (const prefix of ['assignment', 'priority', 'verification', 'outcome']) {
    const sk = `${prefix}.${e.status}`;
    if (t(sk) !== sk) return `${name}: ${t(sk)}`;
  }
  return `${name}: ${e.status}`;
}

// timelineScreen shows every step of a request, who and when, and the
// response times it adds up to.
export async function timelineScreen(el, [id]) {
  const message = h('p', { class: 'error', role: 'alert' });
  const path = `/api/v1/requests/${id}/timeline`;
  replace(el, h('p', { class: 'back' }, h('a', { href: `#/requests/${id}` }, '← ', t('timeline.back'))),
    h('h1', {}, t('timeline.title')), message);
  let tl;
  try { tl = await get(path); } catch (err) { message.textContent = errorText(err); return null; }
  const entries = tl.entries;
  const received = entries.length ? new Date(entries[0].recorded_at).getTime() : 0;
  const when = (e) => new Date(e.happened_at || e.recorded_at).getTime();
  const first = (status) => entries.find((e) => e.type === 'AssignmentChanged' && e.status === status);
  const summary = [['accepted', 'timeline.to_assign'], ['arrived', 'timeline.to_arrival']].map(([st, key]) => {
    const e = first(st);
    return [h('dt', {}, t(key)), h('dd', {}, e ? minutes((when(e) - received) * 1e6) : '—')];
  });
  el.append(
    h('dl', { class: 'summary' }, summary),
    h('p', {}, csvLink(path)),
    h('table', { class: 'report' },
      h('caption', {}, plural('timeline.steps', entries.length)),
      h('thead', {}, h('tr', {}, ['timeline.when', 'timeline.step', 'timeline.who', 'timeline.volunteer', 'timeline.reason']
        .map((k) => h('th', { scope: 'col' }, t(k))))),
      h('tbody', {}, entries.map((e) => h('tr', {},
        h('td', {}, dateTime(e.happened_at || e.recorded_at), ' ',
          h('span', { class: 'muted' }, t('timeline.after', { t: minutes((when(e) - received) * 1e6) }))),
        h('td', {}, eventLabel(e)),
        h('td', {}, actorName(e)),
        h('td', {}, e.volunteer_id ? (e.volunteer_name || t('request.volunteer_unknown')) : '—'),
        h('td', {}, e.reason || '—'))))));
  return null;
}

// barChart draws one bar per item (value in the unit of fmt) and, when
// given, an outlined bar behind for a second value (the 90th percentile).
function barChart(label, items, fmt) {
  const W = 560, H = 180, pad = 34, top = 10;
  const max = Math.max(1, ...items.map((i) => Math.max(i.value, i.back || 0)));
  const bw = Math.max(6, Math.min(40, (W - pad) / Math.max(1, items.length) - 6));
  const y = (v) => top + (H - top - 24) * (1 - v / max);
  const bars = items.map((it, i) => {
    const x = pad + i * (bw + 6);
    return s('g', {},
      it.back ? s('rect', { class: 'bar-back', x, y: y(it.back), width: bw, height: H - 24 - y(it.back) },
        s('title', {}, `${it.label}: ${t('report.p90')} ${fmt(it.back)}`)) : null,
      s('rect', { class: 'bar', x: x + bw / 4, y: y(it.value), width: bw / 2, height: H - 24 - y(it.value) },
        s('title', {}, `${it.label}: ${fmt(it.value)}`)),
      s('text', { x: x + bw / 2, y: H - 8, 'text-anchor': 'middle', class: 'axis' }, it.short));
  });
  return s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: 'chart' },
    s('line', { x1: pad - 4, y1: H - 24, x2: W, y2: H - 24, class: 'axis-line' }),
    s('text', { x: 0, y: top + 8, class: 'axis' }, fmt(max)),
    bars);
}

const METRICS = [['time_to_assign', 'report.to_assign'], ['time_to_arrival', 'report.to_arrival'], ['time_to_resolve', 'report.to_resolve']];

// dashboardScreen: response times per ISO week (p50 and p90), by region,
// kind or sub-kind, and volunteer hours per week.
export async function dashboardScreen(el) {
  const now = new Date();
  const from = h('input', { type: 'date', value: isoDate(new Date(now.getTime() - 84 * 864e5)) });
  const to = h('input', { type: 'date', value: isoDate(new Date(now.getTime() + 864e5)) });
  const by = h('select', {}, ['', 'region', 'kind', 'sub_kind'].map((b) => h('option', { value: b }, t(`report.by.${b || 'all'}`))));
  const message = h('p', { class: 'error', role: 'alert' });
  const out = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); load(); } },
    field('rep-from', t('report.from'), from), field('rep-to', t('report.to'), to), field('rep-by', t('report.by'), by),
    h('button', { type: 'submit' }, t('report.show')));
  replace(el, h('h1', {}, t('report.title')), form, message, out);

  async function load() {
    message.textContent = '';
    const q = `from=${from.value}&to=${to.value}`;
    const rtPath = `/api/v1/reports/response-times?${q}${by.value ? `&by=${by.value}` : ''}`;
    const hoursPath = `/api/v1/reports/volunteer-hours?${q}`;
    let rt, hours;
    try { [rt, hours] = await Promise.all([get(rtPath), get(hoursPath)]); } catch (err) { message.textContent = errorText(err); return; }
    const groupName = (g) => (by.value === 'kind' ? t(`kind.${g}`) : by.value === 'sub_kind' ? (g ? kindLabel('accompaniment', g) : t('report.no_sub_kind')) : g);
    const groups = [...new Set(rt.weeks.map((w) => w.group))];
    const sections = METRICS.map(([key, label]) => h('section', { class: 'card', 'aria-labelledby': `h-${key}` },
      h('h2', { id: `h-${key}` }, t(label)),
      h('p', { class: 'muted' }, t('report.legend')),
      groups.map((g) => {
        const weeks = rt.weeks.filter((w) => w.group === g && w[key].n > 0);
        const title = by.value ? groupName(g) : t('report.by.all');
        return h('figure', {}, h('figcaption', {}, title),
          weeks.length ? barChart(`${t(label)} — ${title}`, weeks.map((w) => ({ label: weekLabel(w), short: `${w.week}`, value: w[key].p50, back: w[key].p90 })), minutes)
            : h('p', { class: 'muted' }, t('report.none')));
      })));
    const table = h('table', { class: 'report' },
      h('caption', {}, t('report.table')),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('report.week_col')), by.value ? h('th', { scope: 'col' }, t(`report.by.${by.value}`)) : null,
        h('th', { scope: 'col' }, t('report.received')),
        METRICS.map(([, label]) => [h('th', { scope: 'col' }, `${t(label)} · ${t('report.p50')}`), h('th', { scope: 'col' }, `${t(label)} · ${t('report.p90')}`)]))),
      h('tbody', {}, rt.weeks.map((w) => h('tr', {}, h('th', { scope: 'row' }, weekLabel(w)), by.value ? h('td', {}, groupName(w.group)) : null,
        h('td', {}, num(w.received)),
        METRICS.map(([key]) => [h('td', {}, w[key].n ? minutes(w[key].p50) : '—'), h('td', {}, w[key].n ? minutes(w[key].p90) : '—')])))));
    // Hours: the week's total as bars, and each volunteer's in a table.
    const perWeek = new Map();
    for (const x of hours.hours) {
      const k = `${x.year}-${x.week}`;
      const w = perWeek.get(k) || { label: weekLabel(x), short: `${x.week}`, value: 0 };
      w.value += x.minutes;
      perWeek.set(k, w);
    }
    const hoursFmt = (m) => t('duration.hours', { n: num(Math.round(m / 6) / 10) });
    replace(out,
      h('p', { class: 'muted' }, t('report.zone', { zone: rt.time_zone }), ' ', csvLink(rtPath)),
      rt.weeks.length === 0 ? h('p', { class: 'notice' }, t('report.none')) : [sections, table],
      h('section', { class: 'card', 'aria-labelledby': 'h-hours' },
        h('h2', { id: 'h-hours' }, t('report.hours')), h('p', {}, csvLink(hoursPath)),
        perWeek.size ? barChart(t('report.hours'), [...perWeek.values()], hoursFmt) : h('p', { class: 'muted' }, t('report.none')),
        h('table', { class: 'report' },
          h('caption', {}, t('report.hours_table')),
          h('thead', {}, h('tr', {}, ['report.week_col', 'report.volunteer', 'report.shifts', 'report.assignments', 'report.total']
            .map((k) => h('th', { scope: 'col' }, t(k))))),
          h('tbody', {}, hours.hours.map((x) => h('tr', {}, h('th', { scope: 'row' }, weekLabel(x)),
            h('td', {}, x.name || t('request.volunteer_unknown')),
            h('td', {}, `${num(x.shifts)} · ${hoursFmt(x.shift_minutes)}`),
            h('td', {}, `${num(x.assignments)} · ${hoursFmt(x.assignment_minutes)}`),
            h('td', {}, hoursFmt(x.minutes))))))));
  }
  await load();
  return null;
}

// coverageScreen: the next week's shifts short of volunteers or of a
// language.
export async function coverageScreen(el) {
  const days = h('select', {}, [7, 14, 31].map((d) => h('option', { value: d }, plural('coverage.days', d))));
  const message = h('p', { class: 'error', role: 'alert' });
  const out = h('div', { 'aria-live': 'polite' });
  replace(el, h('h1', {}, t('coverage.title')),
    h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); load(); } }, field('cov-days', t('coverage.within'), days),
      h('button', { type: 'submit' }, t('report.show'))), message, out);
  async function load() {
    const path = `/api/v1/reports/coverage?days=${days.value}`;
    let c;
    try { c = await get(path); } catch (err) { message.textContent = errorText(err); return; }
    replace(out, h('p', {}, csvLink(path)),
      c.languages.length ? h('section', { class: 'card', 'aria-labelledby': 'h-langs' }, h('h2', { id: 'h-langs' }, t('coverage.languages')),
        h('ul', {}, c.languages.map((l) => h('li', {}, h('strong', {}, l.language.toUpperCase()), ' — ', plural('coverage.shifts', l.shifts))))) : null,
      c.shifts.length === 0 ? h('p', { class: 'notice' }, t('coverage.none')) : h('table', { class: 'report' },
        h('caption', {}, plural('coverage.short', c.shifts.length)),
        h('thead', {}, h('tr', {}, ['coverage.when', 'coverage.role', 'coverage.region', 'coverage.filled', 'coverage.missing']
          .map((k) => h('th', { scope: 'col' }, t(k))))),
        h('tbody', {}, c.shifts.map((x) => h('tr', {},
          h('td', {}, dateTime(x.start)), h('td', {}, x.role.replace(/_/g, ' ')), h('td', {}, x.region),
          h('td', {}, t('coverage.slots', { claimed: num(x.claimed), capacity: num(x.capacity) }),
            x.open > 0 ? [' ', h('span', { class: 'badge warn' }, h('span', { 'aria-hidden': 'true' }, '⚠ '), plural('coverage.open', x.open))] : null),
          h('td', {}, x.missing_languages.length ? x.missing_languages.map((l) => l.toUpperCase()).join(', ') : '—'))))));
  }
  await load();
  return null;
}

// expiringScreen: certifications that expire soon, soonest first.
export async function expiringScreen(el) {
  const within = h('select', {}, [30, 60, 90, 180].map((d) => h('option', { value: d, selected: d === 60 }, plural('coverage.days', d))));
  const message = h('p', { class: 'error', role: 'alert' });
  const out = h('div', { 'aria-live': 'polite' });
  replace(el, h('h1', {}, t('expiring.title')),
    h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); load(); } }, field('exp-within', t('expiring.within'), within),
      h('button', { type: 'submit' }, t('report.show'))), message, out);
  async function load() {
    const path = `/api/v1/reports/expiring?within_days=${within.value}`;
    let x;
    try { x = await get(path); } catch (err) { message.textContent = errorText(err); return; }
    replace(out, h('p', {}, csvLink(path)),
      x.certifications.length === 0 ? h('p', { class: 'notice' }, t('expiring.none')) : h('table', { class: 'report' },
        h('caption', {}, plural('expiring.count', x.certifications.length)),
        h('thead', {}, h('tr', {}, ['expiring.volunteer', 'expiring.certification', 'expiring.expires']
          .map((k) => h('th', { scope: 'col' }, t(k))))),
        h('tbody', {}, x.certifications.map((c) => h('tr', {},
          h('td', {}, c.name || t('request.volunteer_unknown')), h('td', {}, certLabel(c.certification)), h('td', {}, date(c.expires_at)))))));
  }
  await load();
  return null;
}

// auditScreen: whether every stream's hash chain is intact.
export async function auditScreen(el) {
  const out = h('div', { 'aria-live': 'polite' });
  const again = h('button', { type: 'button', onclick: () => load(true) }, t('audit.again'));
  replace(el, h('h1', {}, t('audit.title')), h('p', {}, t('audit.explain')), out, h('p', {}, again));
  async function load(fresh) {
    replace(out, h('p', { class: 'muted' }, t('audit.checking')));
    again.disabled = true;
    let v;
    try { v = await get(`/api/v1/audit/verification${fresh ? '?fresh=true' : ''}`); } catch (err) {
      replace(out, h('p', { class: 'error', role: 'alert' }, errorText(err)));
      again.disabled = false;
      return;
    }
    again.disabled = false;
    const status = !v.complete ? h('p', { class: 'badge warn' }, h('span', { 'aria-hidden': 'true' }, '⏱ '), t('audit.incomplete'))
      : v.ok ? h('p', { class: 'badge ok' }, h('span', { 'aria-hidden': 'true' }, '✓ '), t('audit.ok'))
        : h('p', { class: 'badge danger' }, h('span', { 'aria-hidden': 'true' }, '✗ '), plural('audit.broken', v.breaks.length));
    replace(out, status,
      h('dl', {},
        h('dt', {}, t('audit.checked_at')), h('dd', {}, dateTime(v.checked_at)),
        v.complete ? [h('dt', {}, t('audit.streams')), h('dd', {}, num(v.streams)), h('dt', {}, t('audit.events')), h('dd', {}, num(v.events)),
          h('dt', {}, t('audit.digest')), h('dd', { class: 'mono' }, v.digest)] : null),
      v.breaks.length ? h('table', { class: 'report' }, h('caption', {}, t('audit.breaks')),
        h('thead', {}, h('tr', {}, ['audit.stream', 'audit.version', 'audit.problem'].map((k) => h('th', { scope: 'col' }, t(k))))),
        h('tbody', {}, v.breaks.map((b) => h('tr', {}, h('td', { class: 'mono' }, b.stream_id), h('td', {}, num(b.stream_version)), h('td', {}, b.problem))))) : null);
    announce(status.textContent);
  }
  await load(false);
  return null;
}

const REASONS = ['asked', 'retention', 'legal', 'mistake'];

// forgetScreen destroys a person's data key, after a confirmation that
// says what cannot be undone.
export async function forgetScreen(el, [prefill]) {
  const subject = h('input', { type: 'text', autocomplete: 'off', spellcheck: false, value: prefill || '' });
  const reason = h('select', {}, REASONS.map((r) => h('option', { value: r }, t(`forget.reason.${r}`))));
  const message = h('p', { class: 'error', role: 'alert' });
  const step = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card', onsubmit: (e) => { e.preventDefault(); confirm(); } },
    field('forget-subject', t('forget.subject'), subject, t('forget.subject_hint')),
    field('forget-reason', t('forget.reason'), reason),
    h('button', { type: 'submit', class: 'danger' }, t('forget.start')));
  replace(el, h('h1', {}, t('forget.title')), h('p', {}, t('forget.explain')), form, message, step);

  function confirm() {
    message.textContent = '';
    const id = subject.value.trim().toLowerCase();
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) { message.textContent = t('forget.bad_id'); subject.focus(); return; }
    const key = crypto.randomUUID();
    const yes = h('button', { type: 'button', class: 'danger', onclick: async () => {
      yes.disabled = true;
      try {
        const res = await post(`/api/v1/subjects/${id}/forget`, { reason: reason.value }, key);
        replace(step, h('p', { class: 'badge ok', role: 'status' }, h('span', { 'aria-hidden': 'true' }, '✓ '),
          t(res.already_forgotten ? 'forget.already' : 'forget.done')));
        subject.value = '';
      } catch (err) {
        yes.disabled = false;
        message.textContent = errorText(err);
      }
    } }, t('forget.confirm'));
    const no = h('button', { type: 'button', class: 'secondary', onclick: () => { replace(step); subject.focus(); } }, t('forget.back'));
    replace(step, h('section', { class: 'card confirm', role: 'alertdialog', 'aria-labelledby': 'forget-q', 'aria-describedby': 'forget-w' },
      h('h2', { id: 'forget-q' }, t('forget.question', { id })),
      h('p', { id: 'forget-w' }, h('span', { 'aria-hidden': 'true' }, '⚠ '), t('forget.warning')),
      h('div', { class: 'actions' }, yes, no)));
    yes.focus();
  }
  return null;
}
