// One request: what it needs, who is on it, the actions its status
// allows, and the ranked candidates to assign — a click to assign, a
// second to confirm an override, and the blocking rule named when an
// assignment is refused.
import { h, replace } from '../dom.js';
import { t, dateTime } from '../i18n.js';
import { get, post } from '../api.js';
import { priorityBadge, kindLabel, statusLabel, errorText, certLabel } from './common.js';

const OUTCOMES = ['accompanied', 'person_released', 'person_detained', 'hearing_postponed', 'no_show', 'verified_no_action', 'other'];
const DISPATCHER_MOVES = { offered: ['withdrawn'], accepted: ['en_route', 'withdrawn'], en_route: ['arrived', 'withdrawn'], arrived: ['done'] };

export async function requestScreen(el, [id], _me, _email, role) {
  const base = `/api/v1/requests/${id}`;
  const message = h('p', { class: 'error', role: 'alert' });
  const body = h('div');
  replace(el, h('p', { class: 'back' }, h('a', { href: '#/board' }, '← ', t('nav.board')), ' · ',
    h('a', { href: `#/requests/${id}/timeline`, id: 'timeline-link' }, t('request.timeline'))), message, body);
  let names = new Map();
  try {
    const list = await get('/api/v1/volunteers');
    names = new Map(list.volunteers.map((v) => [v.volunteer_id, v.name]));
  } catch { /* names are a convenience */ }
  const who = (vid) => names.get(vid) || t('request.volunteer_unknown');

  async function act(path, payload, key) {
    message.textContent = '';
    try {
      await post(path, payload, key);
      await load();
    } catch (err) {
      message.textContent = errorText(err);
    }
  }

  async function load() {
    let r;
    try { r = await get(base); } catch (err) { message.textContent = errorText(err); return; }
    replace(body,
      h('article', { class: `card detail${r.priority === 'urgent' ? ' urgent' : ''}` },
        h('h1', {}, kindLabel(r.kind, r.sub_kind), ' ', priorityBadge(r.priority)),
        h('dl', {},
          h('dt', {}, t('request.status')), h('dd', {}, statusLabel(r.status)),
          r.verification ? [h('dt', {}, t('request.verification')), h('dd', {}, t(`verification.${r.verification}`))] : null,
          h('dt', {}, t('request.when')), h('dd', {}, `${dateTime(r.start)} – ${dateTime(r.end)}`),
          h('dt', {}, t('request.region')), h('dd', {}, r.region),
          h('dt', {}, t('request.meeting_point')), h('dd', {}, r.meeting_point || '—'),
          h('dt', {}, t('request.languages')), h('dd', {}, r.languages.map((l) => l.toUpperCase()).join(', ') || '—'),
          h('dt', {}, t('request.certifications')), h('dd', {}, [...r.certifications, ...r.team_certifications].map(certLabel).join(', ') || '—'),
          h('dt', {}, t('request.person')), h('dd', {}, [r.person.name, r.person.phone].filter(Boolean).join(' · ') || '—',
            role === 'coordinator' ? [' ', h('a', { href: `#/forget/${r.person_id}`, id: 'forget-link' }, t('request.forget'))] : null),
          h('dt', {}, t('request.notes')), h('dd', { class: 'notes' }, r.notes || '—')),
        actions(r)),
      h('section', { class: 'card' }, h('h2', {}, t('request.team'), ' ', t('board.needs', {
        assigned: r.assignments.filter((a) => !['declined', 'withdrawn'].includes(a.status)).length, needed: r.needed })),
      r.assignments.length === 0 ? h('p', { class: 'muted' }, t('request.nobody_yet')) : null,
      h('ul', { class: 'team' }, r.assignments.map((a) => h('li', {},
        h('strong', {}, who(a.volunteer_id)), ' — ', t(`assignment.${a.status}`), ' ',
        (DISPATCHER_MOVES[a.status] || []).map((to) => h('button', { type: 'button', class: 'small',
          onclick: () => act(`${base}/assignments/${a.assignment_id}/status`, { status: to }) }, t(`move.${to}`))))))),
      ['closed', 'cancelled', 'resolved'].includes(r.status) ? null : await candidates(r));
  }

  function actions(r) {
    const reason = h('input', { type: 'text', id: 'reason', autocomplete: 'off' });
    const outcome = h('select', { id: 'outcome' }, OUTCOMES.map((o) => h('option', { value: o }, t(`outcome.${o}`))));
    const b = (label, path, payload) => h('button', { type: 'button', onclick: () => act(`${base}/${path}`, payload()) }, label);
    const rr = r.kind === 'rapid_response';
    const open = !['closed', 'cancelled'].includes(r.status);
    return h('div', { class: 'actions' },
      r.status === 'received' ? b(t('action.triage'), 'triage', () => ({ priority: r.priority })) : null,
      rr && open && !['confirmed', 'false_alarm', 'could_not_verify'].includes(r.verification) ? [
        b(t('action.confirm'), 'verify', () => ({ outcome: 'confirmed' })),
        b(t('action.false_alarm'), 'verify', () => ({ outcome: 'false_alarm' })),
        b(t('action.could_not_verify'), 'verify', () => ({ outcome: 'could_not_verify' }))] : null,
      rr && r.verification === 'confirmed' && !r.alerted ? h('button', { type: 'button', class: 'danger',
        onclick: () => act(`${base}/alert`, {}) }, t('action.alert')) : null,
      rr && r.alerted ? h('p', { class: 'badge' }, t('request.alerted')) : null,
      open && r.status !== 'resolved' ? [h('label', { for: 'outcome' }, t('request.outcome')), outcome,
        b(t('action.resolve'), 'resolve', () => ({ outcome: outcome.value }))] : null,
      r.status === 'resolved' ? b(t('action.close'), 'close', () => ({})) : null,
      [h('label', { for: 'reason' }, t('request.reason')), reason],
      open ? b(t('action.cancel'), 'cancel', () => ({ reason: reason.value })) : b(t('action.reopen'), 'reopen', () => ({ reason: reason.value })));
  }

  async function candidates(r) {
    const section = h('section', { class: 'card', 'aria-labelledby': 'cand-title' }, h('h2', { id: 'cand-title' }, t('request.candidates')));
    let res;
    try { res = await get(`${base}/matches`); } catch (err) { section.append(h('p', { class: 'error' }, errorText(err))); return section; }
    if (res.matches.length === 0) {
      section.append(h('p', { class: 'muted' }, t('request.no_candidates')),
        h('ul', {}, Object.entries(res.without_filter || {}).map(([f, n]) => h('li', {}, t('request.without_filter', { filter: t(`filter.${f}`), n })))));
      return section;
    }
    section.append(h('ol', { class: 'candidates' }, res.matches.map((m, i) => {
      const key = crypto.randomUUID();
      let confirmOverride = false;
      const note = h('span', { class: 'error', role: 'alert' });
      const button = h('button', { type: 'button', accesskey: i < 9 ? String(i + 1) : null, onclick: async () => {
        note.textContent = '';
        try {
          await post(`${base}/assignments`, { volunteer_id: m.volunteer_id, override: confirmOverride }, key);
          await load();
        } catch (err) {
          note.textContent = errorText(err);
          if (err.code === 'team_full' && !confirmOverride) {
            confirmOverride = true;
            button.textContent = t('request.assign_override');
          }
        }
      } }, t('request.assign'));
      return h('li', { class: 'candidate' },
        h('div', {}, h('strong', {}, who(m.volunteer_id)), ' ', button, ' ', note),
        h('ul', { class: 'reasons' }, m.reasons.map((x) => h('li', { class: x.met ? 'met' : 'unmet' },
          h('span', { 'aria-hidden': 'true' }, x.met ? '✓ ' : '✗ '), t(`reason.${x.code}.${x.met ? 'met' : 'unmet'}`)))));
    })));
    return section;
  }

  await load();
  return null;
}
