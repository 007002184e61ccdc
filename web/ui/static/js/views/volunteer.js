// A volunteer's screens, for a cheap phone: my assignments and shifts
// (live), open shifts to claim (live), my trainings, my profile.
import { h, replace } from '../dom.js';
import { t, dateTime, date } from '../i18n.js';
import { get, post } from '../api.js';
import { LiveView } from '../live.js';
import { kindLabel, connectionBadge, errorText, certLabel, field } from './common.js';

// myWork is #/me: my assignments and my shifts, live.
export function myWork(el, _, me) {
  const conn = connectionBadge();
  const msg = h('p', { class: 'error', role: 'alert' });
  const assignments = h('ul', { class: 'list' });
  const shifts = h('ul', { class: 'list' });
  replace(el, h('div', { class: 'board-head' }, h('h1', {}, t('me.title')), conn.el), msg,
    h('section', { 'aria-labelledby': 'my-assignments' }, h('h2', { id: 'my-assignments' }, t('me.assignments')), assignments),
    h('section', { 'aria-labelledby': 'my-shifts' }, h('h2', { id: 'my-shifts' }, t('me.shifts')), shifts));

  const act = async (fn) => {
    msg.textContent = '';
    try { await fn(); } catch (err) { msg.textContent = errorText(err); }
  };
  const STEPS = { offered: ['accepted', 'declined'], accepted: ['en_route'], en_route: ['arrived'], arrived: ['done'] };

  function render(data) {
    replace(assignments, data.assignments.length === 0 ? h('li', { class: 'muted' }, t('me.no_assignments')) : null,
      data.assignments.map((a) => {
        const reason = h('input', { type: 'text', 'aria-label': t('me.decline_reason'), placeholder: t('me.decline_reason') });
        return h('li', { class: 'card' },
          h('div', { class: 'kind' }, kindLabel(a.kind, a.sub_kind)),
          h('div', {}, `${dateTime(a.start)} – ${dateTime(a.end)} · ${a.region}`),
          a.meeting_point ? h('div', {}, t('me.meeting_point'), ': ', h('strong', {}, a.meeting_point)) : h('div', { class: 'muted' }, t('me.details_later')),
          a.first_name ? h('div', {}, t('me.meet'), ': ', h('strong', {}, a.first_name)) : null,
          h('div', {}, t('me.status'), ': ', t(`assignment.${a.status}`)),
          (STEPS[a.status] || []).includes('declined') ? reason : null,
          h('div', { class: 'buttons' }, (STEPS[a.status] || []).map((to) => h('button', { type: 'button',
            class: to === 'declined' ? 'secondary' : '',
            onclick: () => act(() => post(`/api/v1/requests/${a.request_id}/assignments/${a.assignment_id}/status`,
              { status: to, reason: to === 'declined' ? reason.value : '' })) }, t(`step.${to}`)))));
      }));
    replace(shifts, data.shifts.length === 0 ? h('li', { class: 'muted' }, t('me.no_shifts')) : null,
      data.shifts.map((s) => shiftItem(s, me, act, true)));
  }

  const live = new LiveView('/api/v1/live/mine', { onSnapshot: render, onDelta: render, onState: (s) => conn.set(s) }).start();
  return () => live.stop();
}

// shiftItem is a shift on a volunteer's list: when, where, slots, and
// what they can do with it.
function shiftItem(s, me, act, mine) {
  const base = `/api/v1/shifts/${s.shift_id}/claims/${me}`;
  const reason = h('input', { type: 'text', 'aria-label': t('shifts.release_reason'), placeholder: t('shifts.release_reason'), hidden: true });
  const now = Date.now();
  const during = new Date(s.start).getTime() - 3600e3 <= now && now < new Date(s.end).getTime();
  let place = null;
  if (s.mine === 'claimed') place = h('strong', {}, t('shifts.claimed'));
  else if (s.mine === 'waitlisted') place = h('strong', {}, t('shifts.waitlisted', { n: s.waitlist_position }));
  const release = () => act(async () => {
    try {
      await post(`${base}/release`, reason.value ? { reason: reason.value } : undefined);
    } catch (err) {
      if (err.code === 'late_release_needs_reason') { reason.hidden = false; reason.focus(); }
      throw err;
    }
  });
  return h('li', { class: `card shift${s.cancelled ? ' cancelled' : ''}`, dataset: { id: s.shift_id } },
    h('div', { class: 'kind' }, s.role, s.cancelled ? ` · ${t('shifts.cancelled')}` : ''),
    h('div', {}, `${dateTime(s.start)} – ${dateTime(s.end)}`),
    h('div', {}, [s.place, s.region].filter(Boolean).join(' · ')),
    h('div', {}, t('shifts.slots', { open: s.open, capacity: s.capacity }), s.waitlist ? ` · ${t('shifts.waitlist', { n: s.waitlist })}` : ''),
    s.requires.length ? h('div', {}, s.requires.map((c) => h('span', { class: 'tag' }, certLabel(c)))) : null,
    place ? h('div', {}, place) : null,
    reason,
    s.cancelled ? null : h('div', { class: 'buttons' },
      !s.mine ? h('button', { type: 'button', class: 'claim', onclick: () => act(() => post(base)) },
        s.open > 0 ? t('shifts.claim') : t('shifts.join_waitlist')) : null,
      s.mine ? h('button', { type: 'button', class: 'secondary', onclick: release },
        s.mine === 'claimed' ? t('shifts.release') : t('shifts.leave_waitlist')) : null,
      mine && s.mine === 'claimed' && during && !s.checked_in_at ? h('button', { type: 'button', onclick: () => act(() => post(`${base}/check-in`)) }, t('shifts.check_in')) : null,
      mine && s.mine === 'claimed' && s.checked_in_at && !s.checked_out_at ? h('button', { type: 'button', onclick: () => act(() => post(`${base}/check-out`)) }, t('shifts.check_out')) : null));
}

// openShifts is #/shifts: the shift board as volunteers see it, live,
// with their own place from their own view.
export function openShifts(el, _, me) {
  const conn = connectionBadge();
  const msg = h('p', { class: 'error', role: 'alert' });
  const list = h('ul', { class: 'list' });
  const board = new Map();
  let mine = new Map();
  replace(el, h('div', { class: 'board-head' }, h('h1', {}, t('shifts.title')), conn.el), msg, list);
  const act = async (fn) => {
    msg.textContent = '';
    try { await fn(); } catch (err) { msg.textContent = errorText(err); }
  };
  function render() {
    const now = Date.now();
    const shifts = [...board.values()].filter((s) => new Date(s.end).getTime() > now && !s.cancelled)
      .sort((a, b) => a.start.localeCompare(b.start));
    replace(list, shifts.length === 0 ? h('li', { class: 'muted' }, t('shifts.none')) : null,
      shifts.map((s) => shiftItem({ ...s, ...(mine.get(s.shift_id) || { mine: '' }) }, me, act, false)));
  }
  const shiftsLive = new LiveView('/api/v1/live/shifts', {
    onSnapshot(data) { board.clear(); for (const s of data.shifts) board.set(s.shift_id, s); render(); },
    onDelta(data) { for (const s of data.shifts) board.set(s.shift_id, s); render(); },
    onState: (s) => conn.set(s),
  }).start();
  const own = (data) => {
    mine = new Map(data.shifts.map((s) => [s.shift_id, { mine: s.mine, waitlist_position: s.waitlist_position }]));
    render();
  };
  const mineLive = new LiveView('/api/v1/live/mine', { onSnapshot: own, onDelta: own }).start();
  return () => { shiftsLive.stop(); mineLive.stop(); };
}

// trainings is #/trainings: my sessions and certifications, and upcoming
// sessions to enroll in.
export async function trainings(el, _, me) {
  const msg = h('p', { class: 'error', role: 'alert' });
  const body = h('div');
  replace(el, h('h1', {}, t('trainings.title')), msg, body);
  async function load() {
    let mineData;
    let upcoming;
    try {
      mineData = await get(`/api/v1/volunteers/${me}/trainings`);
      upcoming = await get('/api/v1/sessions');
    } catch (err) { msg.textContent = errorText(err); return; }
    const enrolled = new Set(mineData.sessions.map((s) => s.session_id));
    replace(body,
      h('section', {}, h('h2', {}, t('trainings.certifications')),
        mineData.certifications.length === 0 ? h('p', { class: 'muted' }, t('trainings.no_certifications')) : null,
        h('ul', { class: 'list' }, mineData.certifications.map((c) => h('li', {}, certLabel(c.certification), ' — ',
          c.expires_at ? t('trainings.expires', { date: date(c.expires_at) }) : t('trainings.never_expires'))))),
      h('section', {}, h('h2', {}, t('trainings.mine')),
        h('ul', { class: 'list' }, mineData.sessions.map((s) => h('li', { class: 'card' },
          h('div', { class: 'kind' }, s.course_name), h('div', {}, `${dateTime(s.start)} · ${s.place}`),
          s.cancelled ? h('div', {}, t('trainings.cancelled')) : null,
          s.you && s.you.certified ? h('div', {}, t('trainings.certified')) : null,
          s.you && s.you.enrolled && !s.cancelled && new Date(s.start).getTime() > Date.now()
            ? h('button', { type: 'button', class: 'secondary', onclick: () => act(() => post(`/api/v1/sessions/${s.session_id}/enrollments/${me}/withdraw`)) }, t('trainings.withdraw'))
            : null)))),
      h('section', {}, h('h2', {}, t('trainings.upcoming')),
        h('ul', { class: 'list' }, upcoming.sessions.filter((s) => !s.cancelled && !enrolled.has(s.session_id)).map((s) => h('li', { class: 'card' },
          h('div', { class: 'kind' }, s.course_name), h('div', {}, `${dateTime(s.start)} · ${s.place}`),
          h('div', {}, t('trainings.seats', { n: s.seats_left })),
          s.seats_left > 0 ? h('button', { type: 'button', onclick: () => act(() => post(`/api/v1/sessions/${s.session_id}/enrollments/${me}`)) }, t('trainings.enroll')) : null)))));
  }
  const act = async (fn) => {
    msg.textContent = '';
    try { await fn(); await load(); } catch (err) { msg.textContent = errorText(err); }
  };
  await load();
  return null;
}

const LEVELS = ['basic', 'conversational', 'fluent', 'native'];

// profile is #/profile: on call, languages, regions, contact; or the
// registration form for a volunteer who joined through an invitation.
export async function profile(el, _, me, email) {
  const msg = h('p', { role: 'status' });
  let v = null;
  try { v = await get(`/api/v1/volunteers/${me}`); } catch (err) { if (err.status !== 404) { replace(el, h('p', { class: 'error' }, errorText(err))); return null; } }
  const name = h('input', { type: 'text', autocomplete: 'name', value: v ? v.name : '' });
  const phone = h('input', { type: 'tel', autocomplete: 'tel', value: v ? v.phone || '' : '' });
  const langs = languageEditor(v ? v.languages : [{ code: 'es', level: 'native' }]);
  const regions = h('input', { type: 'text', value: v ? v.regions.join(', ') : '' });
  const parseLangs = () => langs.value();
  const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);
  const run = async (fn, done) => {
    msg.className = '';
    msg.textContent = '';
    try { await fn(); msg.textContent = done; } catch (err) { msg.className = 'error'; msg.textContent = errorText(err); }
  };
  if (!v) {
    replace(el, h('form', { class: 'card', onsubmit: (e) => { e.preventDefault(); run(async () => {
      await post('/api/v1/volunteers', { name: name.value, phone: phone.value, email, languages: parseLangs(), regions: list(regions.value) });
      location.hash = '#/me';
    }, ''); } },
    h('h1', {}, t('profile.register_title')), h('p', { class: 'hint' }, t('profile.register_hint')),
    field('p-name', t('profile.name'), name), field('p-phone', t('profile.phone'), phone),
    langs.el,
    field('p-regions', t('profile.regions'), regions, t('profile.regions_hint')),
    msg, h('button', { type: 'submit' }, t('profile.register'))));
    return null;
  }
  const onCall = h('input', { type: 'checkbox', id: 'on-call', checked: v.on_call,
    onchange: () => run(() => post(`/api/v1/volunteers/${me}/on-call`, { on_call: onCall.checked }), t('profile.saved')) });
  replace(el, h('h1', {}, t('profile.title')), msg,
    h('div', { class: 'card' }, h('label', { class: 'inline', for: 'on-call' }, onCall, ' ', t('profile.on_call')),
      h('p', { class: 'hint' }, t('profile.on_call_hint'))),
    h('form', { class: 'card', onsubmit: (e) => { e.preventDefault(); run(() => post(`/api/v1/volunteers/${me}/profile`, { languages: parseLangs(), regions: list(regions.value) }), t('profile.saved')); } },
      h('h2', {}, t('profile.languages_regions')),
      langs.el,
      field('p-regions', t('profile.regions'), regions, t('profile.regions_hint')),
      h('button', { type: 'submit' }, t('profile.save'))),
    h('form', { class: 'card', onsubmit: (e) => { e.preventDefault(); run(() => post(`/api/v1/volunteers/${me}/contact`, { name: name.value, phone: phone.value, email: v.email || email }), t('profile.saved')); } },
      h('h2', {}, t('profile.contact')),
      field('p-name', t('profile.name'), name), field('p-phone', t('profile.phone'), phone),
      h('button', { type: 'submit' }, t('profile.save'))));
  return null;
}

// languageEditor edits a list of languages, each a code and a level.
function languageEditor(initial) {
  const rows = h('div', { class: 'langs-edit' });
  const add = (code = '', level = 'conversational') => {
    const n = rows.children.length;
    const codeIn = h('input', { type: 'text', size: 4, maxlength: 8, value: code, 'aria-label': t('profile.language_code'), class: 'code' });
    const levelIn = h('select', { 'aria-label': t('profile.language_level'), class: 'level' },
      LEVELS.map((l) => h('option', { value: l, selected: l === level }, t(`level.${l}`))));
    const row = h('div', { class: 'lang-row', dataset: { n } }, codeIn, levelIn,
      h('button', { type: 'button', class: 'small secondary', onclick: () => row.remove() }, t('profile.remove')));
    rows.append(row);
  };
  for (const l of initial) add(l.code, l.level);
  const el = h('fieldset', {}, h('legend', {}, t('profile.languages')), h('p', { class: 'hint' }, t('profile.languages_hint')), rows,
    h('button', { type: 'button', class: 'small', onclick: () => add() }, t('profile.add_language')));
  return {
    el,
    value: () => [...rows.querySelectorAll('.lang-row')].map((r) => ({
      code: r.querySelector('.code').value.trim().toLowerCase(), level: r.querySelector('.level').value,
    })).filter((l) => l.code),
  };
}
