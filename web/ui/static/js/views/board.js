// The dispatcher's live board: requests in columns by status, urgent ones
// unmissable, a running age on each card, needs against assigned, each
// assignment's status; beside it, the volunteers on shift or on call now.
import { h, replace, announce } from '../dom.js';
import { t, age, time, plural } from '../i18n.js';
import { LiveView } from '../live.js';
import { priorityBadge, kindLabel, connectionBadge, certLabel } from './common.js';

const COLUMNS = ['received', 'triaged', 'assigned', 'in_progress', 'resolved'];
const ACTIVE = ['offered', 'accepted', 'en_route', 'arrived', 'done'];
const SOUND = 'presente.sound';

export function boardScreen(el) {
  const requests = new Map();
  const volunteers = new Map();
  let seeded = false;
  const conn = connectionBadge();
  const sound = h('input', { type: 'checkbox', id: 'sound', checked: localStorage.getItem(SOUND) === 'on',
    onchange: (e) => localStorage.setItem(SOUND, e.target.checked ? 'on' : 'off') });
  const alertBox = h('div', { class: 'urgent-alert', role: 'alert', hidden: true });
  const columns = h('div', { class: 'columns' });
  const panel = h('aside', { class: 'panel', 'aria-labelledby': 'available-title' });
  replace(el,
    h('div', { class: 'board-head' },
      h('h1', {}, t('board.title')), conn.el,
      h('label', { class: 'inline', for: 'sound' }, sound, ' ', t('board.sound')),
      h('a', { class: 'button', href: '#/intake' }, t('board.new_request'))),
    alertBox,
    h('div', { class: 'board' }, columns, panel));

  function render() {
    const now = Date.now();
    const byStatus = Object.fromEntries(COLUMNS.map((c) => [c, []]));
    for (const r of requests.values()) (byStatus[r.status] || byStatus.received).push(r);
    replace(columns, COLUMNS.map((c) => {
      const list = byStatus[c].sort(order);
      return h('section', { class: 'column', 'aria-labelledby': `col-${c}` },
        h('h2', { id: `col-${c}` }, t(`status.${c}`), ' ', h('span', { class: 'count' }, String(list.length))),
        h('ul', { class: 'cards' }, list.map((r) => h('li', {}, card(r, now)))));
    }));
    const avail = [...volunteers.values()].map((v) => availability(v, now)).filter((v) => v.onCall || v.onShift);
    avail.sort((a, b) => b.onShift - a.onShift || a.load - b.load);
    replace(panel,
      h('h2', { id: 'available-title' }, t('board.available'), ' ', h('span', { class: 'count' }, String(avail.length))),
      avail.length === 0 ? h('p', { class: 'muted' }, t('board.nobody_available')) : null,
      h('ul', { class: 'people' }, avail.map((v) => h('li', { class: 'person' },
        h('span', { class: 'who' }, v.onShift ? t('board.on_shift') : t('board.on_call')),
        ' ', h('span', { class: 'langs' }, v.languages.map((l) => `${l.code.toUpperCase()} (${t(`level.${l.level}`)})`).join(', ')),
        h('div', { class: 'certs' }, v.certs.map((c) => h('span', { class: 'tag' }, certLabel(c)))),
        h('div', { class: 'muted' }, v.regions.join(', '), ' · ', plural('board.load', v.load))))));
  }

  function card(r, now) {
    const active = r.assignments.filter((a) => ACTIVE.includes(a.status));
    const urgent = r.priority === 'urgent';
    return h('a', { class: `card request${urgent ? ' urgent' : ''}`, href: `#/requests/${r.request_id}`, dataset: { id: r.request_id } },
      h('div', { class: 'card-top' }, priorityBadge(r.priority), h('span', { class: 'age', title: time(r.received_at) }, age(r.received_at, now))),
      h('div', { class: 'kind' }, kindLabel(r.kind, r.sub_kind)),
      h('div', {}, r.region, r.languages.length ? ` · ${r.languages.map((l) => l.toUpperCase()).join(', ')}` : ''),
      r.verification ? h('div', { class: 'verification' }, t(`verification.${r.verification}`)) : null,
      h('div', { class: active.length < r.needed ? 'needs short' : 'needs' }, t('board.needs', { assigned: active.length, needed: r.needed })),
      active.length ? h('ul', { class: 'assignments' }, active.map((a) => h('li', {}, t(`assignment.${a.status}`)))) : null);
  }

  const live = new LiveView('/api/v1/live/board', {
    onSnapshot(data) {
      requests.clear();
      volunteers.clear();
      for (const r of data.requests) requests.set(r.request_id, r);
      for (const v of data.volunteers) volunteers.set(v.volunteer_id, v);
      seeded = true;
      render();
    },
    onDelta(data) {
      for (const r of data.requests || []) {
        if (seeded && !requests.has(r.request_id) && r.priority === 'urgent') newUrgent(r);
        requests.set(r.request_id, r);
      }
      for (const id of data.requests_removed || []) requests.delete(id);
      for (const v of data.volunteers || []) volunteers.set(v.volunteer_id, v);
      for (const id of data.volunteers_removed || []) volunteers.delete(id);
      render();
    },
    onState: (s) => conn.set(s),
  }).start();

  function newUrgent(r) {
    const text = t('board.new_urgent', { kind: kindLabel(r.kind, r.sub_kind), region: r.region });
    alertBox.hidden = false;
    replace(alertBox, h('span', { 'aria-hidden': 'true' }, '⚠ '), text, ' ',
      h('a', { href: `#/requests/${r.request_id}` }, t('board.open')));
    announce(text);
    if (sound.checked) beep();
  }

  // Ages run; who is on shift changes as shifts start and end.
  const tick = setInterval(render, 30000);
  const keys = (e) => {
    if (e.target.closest('input, select, textarea') || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === 'n') { e.preventDefault(); location.hash = '#/intake'; }
  };
  document.addEventListener('keydown', keys);
  return () => { live.stop(); clearInterval(tick); document.removeEventListener('keydown', keys); };
}

const RANK = { urgent: 0, high: 1, normal: 2 };
function order(a, b) {
  return (RANK[a.priority] ?? 3) - (RANK[b.priority] ?? 3) || a.received_at.localeCompare(b.received_at);
}

// availability works out, at now, whether a volunteer is on a shift or on
// call, which certifications are valid, and their load.
export function availability(v, now) {
  const within = (c) => new Date(c.start).getTime() <= now && now < new Date(c.end).getTime();
  return {
    id: v.volunteer_id,
    onCall: v.on_call,
    onShift: v.commitments.some((c) => c.kind === 'shift' && within(c)),
    languages: v.languages || [],
    regions: v.regions || [],
    certs: v.certifications.filter((c) => new Date(c.granted_at).getTime() <= now &&
      (!c.expires_at || now < new Date(c.expires_at).getTime())).map((c) => c.certification),
    load: v.commitments.filter((c) => now < new Date(c.end).getTime()).length,
  };
}

function beep() {
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    osc.frequency.value = 880;
    osc.connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.4);
  } catch { /* no audio */ }
}
