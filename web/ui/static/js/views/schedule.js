// Scheduling for coordinators: shifts (one, or the same one weekly as a
// series) with the coming ones and their cancellation; courses, their
// sessions, enrolling volunteers and recording attendance with the
// certification it grants.
import { h, replace } from '../dom.js';
import { t, plural, dateTime, fromZoneInput, zoneDaysFrom, zoneName } from '../i18n.js';
import { get, post, keyAfter } from '../api.js';
import { errorText, field, certLabel } from './common.js';

const ROLES = ['hotline', 'on_call', 'court_watch', 'welcome_center'];
const CERTS = ['rapid_response', 'court_accompaniment', 'checkin_accompaniment', 'know_your_rights', 'de_escalation', 'interpreting'];

// codes splits "es, ht" into ["es", "ht"].
const codes = (s) => s.split(/[\s,]+/).map((x) => x.trim().toLowerCase()).filter(Boolean);

// Date-time fields hold times on the organization's clocks, whatever the
// browser's own zone: at turns one into an instant, tomorrowAt makes one.
const at = fromZoneInput;
const tomorrowAt = (hour) => zoneDaysFrom(1, hour);

// zoneNote names the zone the date-time fields beside it are in.
function zoneNote(id) {
  return h('p', { class: 'hint zone', id }, t('schedule.zone', { zone: zoneName() }));
}

function certChecks(prefix) {
  return h('fieldset', {}, h('legend', {}, t('schedule.requires')),
    CERTS.map((c) => h('label', { class: 'inline' }, h('input', { type: 'checkbox', value: c, name: `${prefix}-cert` }), ' ', certLabel(c))));
}

// shiftsScheduleScreen is #/schedule.
export async function shiftsScheduleScreen(el) {
  const role = h('input', { type: 'text', list: 'roles', value: 'court_watch', required: true, autocomplete: 'off' });
  const roles = h('datalist', { id: 'roles' }, ROLES.map((r) => h('option', { value: r })));
  const region = h('input', { type: 'text', required: true, autocomplete: 'off' });
  const place = h('input', { type: 'text', autocomplete: 'off' });
  const start = h('input', { type: 'datetime-local', value: tomorrowAt(9), required: true, 'aria-describedby': 'sh-zone' });
  const end = h('input', { type: 'datetime-local', value: tomorrowAt(13), required: true, 'aria-describedby': 'sh-zone' });
  const capacity = h('input', { type: 'number', min: 1, max: 500, value: 2, required: true });
  const languages = h('input', { type: 'text', autocomplete: 'off' });
  const weeks = h('input', { type: 'number', min: 1, max: 52, value: 1 });
  const certs = certChecks('shift');
  const message = h('p', { class: 'error', role: 'alert' });
  const done = h('p', { class: 'muted', role: 'status' });
  const list = h('div');
  let key = crypto.randomUUID();
  const form = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    message.textContent = '';
    done.textContent = '';
    try {
      const res = await post('/api/v1/shifts', { role: role.value.trim(), region: region.value.trim(), place: place.value.trim(),
        start: at(start.value), end: at(end.value), capacity: Number(capacity.value), languages: codes(languages.value),
        requires: [...certs.querySelectorAll('input:checked')].map((c) => c.value), repeat_weeks: Number(weeks.value) || 1 }, key);
      key = crypto.randomUUID();
      done.textContent = plural('schedule.scheduled', res.shifts ? res.shifts.length : 1);
      await load();
    } catch (err) { key = keyAfter(err, key); message.textContent = errorText(err); }
  } },
  h('h2', {}, t('schedule.new_shift')),
  field('sh-role', t('schedule.role'), role, t('schedule.role_hint')), roles,
  field('sh-region', t('schedule.region'), region), field('sh-place', t('schedule.place'), place),
  h('div', { class: 'times' }, field('sh-start', t('schedule.start'), start), field('sh-end', t('schedule.end'), end), zoneNote('sh-zone')),
  field('sh-capacity', t('schedule.capacity'), capacity),
  field('sh-languages', t('schedule.languages'), languages, t('schedule.languages_hint')),
  certs,
  field('sh-weeks', t('schedule.weeks'), weeks, t('schedule.weeks_hint')),
  h('button', { type: 'submit' }, t('schedule.add_shift')));
  replace(el, h('h1', {}, t('schedule.shifts_title')), h('p', {}, h('a', { href: '#/training' }, t('nav.training'))), form, message, done,
    h('h2', {}, t('schedule.coming')), list);

  async function load() {
    let res;
    const from = new Date().toISOString();
    const to = new Date(Date.now() + 28 * 864e5).toISOString();
    try { res = await get(`/api/v1/shifts?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`); } catch (err) { message.textContent = errorText(err); return; }
    const shifts = res.shifts.slice().sort((a, b) => a.start.localeCompare(b.start));
    replace(list, shifts.length === 0 ? h('p', { class: 'muted' }, t('schedule.no_shifts')) : h('table', { class: 'report' },
      h('caption', {}, t('schedule.coming_caption')),
      h('thead', {}, h('tr', {}, ['coverage.when', 'coverage.role', 'coverage.region', 'coverage.filled', 'accounts.actions'].map((k) => h('th', { scope: 'col' }, t(k))))),
      h('tbody', {}, shifts.map((s) => h('tr', {},
        h('td', {}, `${dateTime(s.start)} – ${dateTime(s.end)}`),
        h('td', {}, s.role.replace(/_/g, ' '), s.cancelled ? [' ', h('span', { class: 'badge' }, t('shifts.cancelled'))] : null),
        h('td', {}, [s.place, s.region].filter(Boolean).join(' · ')),
        h('td', {}, t('coverage.slots', { claimed: s.capacity - s.open, capacity: s.capacity }), s.waitlist ? ` · ${t('shifts.waitlist', { n: s.waitlist })}` : ''),
        h('td', {}, s.cancelled ? '—' : h('button', { type: 'button', class: 'small danger', onclick: async () => {
          message.textContent = '';
          try { await post(`/api/v1/shifts/${s.shift_id}/cancel`, {}); await load(); } catch (err) { message.textContent = errorText(err); }
        } }, t('schedule.cancel_shift'))))))));
  }
  await load();
  return null;
}

// trainingScheduleScreen is #/training.
export async function trainingScheduleScreen(el) {
  const message = h('p', { class: 'error', role: 'alert' });
  const done = h('p', { class: 'muted', role: 'status' });
  const courses = h('div');
  const sessions = h('div');
  const courseSelect = h('select', { required: true });

  const cName = h('input', { type: 'text', required: true, autocomplete: 'off' });
  const cCert = h('input', { type: 'text', list: 'certs', required: true, autocomplete: 'off' });
  const cValid = h('input', { type: 'number', min: 0, max: 120, value: 12 });
  let courseKey = crypto.randomUUID();
  const courseForm = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    message.textContent = '';
    try {
      await post('/api/v1/courses', { name: cName.value.trim(), certification: cCert.value.trim(), validity_months: Number(cValid.value) }, courseKey);
      courseKey = crypto.randomUUID();
      done.textContent = t('training.course_added');
      cName.value = '';
      await load();
    } catch (err) { courseKey = keyAfter(err, courseKey); message.textContent = errorText(err); }
  } },
  h('h2', {}, t('training.new_course')),
  field('co-name', t('training.course_name'), cName),
  field('co-cert', t('training.certification'), cCert, t('training.certification_hint')),
  h('datalist', { id: 'certs' }, CERTS.map((c) => h('option', { value: c }))),
  field('co-valid', t('training.validity'), cValid, t('training.validity_hint')),
  h('button', { type: 'submit' }, t('training.add_course')));

  const sStart = h('input', { type: 'datetime-local', value: tomorrowAt(18), required: true, 'aria-describedby': 'se-zone' });
  const sEnd = h('input', { type: 'datetime-local', value: tomorrowAt(20), required: true, 'aria-describedby': 'se-zone' });
  const sPlace = h('input', { type: 'text', autocomplete: 'off', required: true, maxlength: 200 });
  const sCapacity = h('input', { type: 'number', min: 1, max: 500, value: 20 });
  let sessionKey = crypto.randomUUID();
  const sessionForm = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    message.textContent = '';
    try {
      await post(`/api/v1/courses/${courseSelect.value}/sessions`, { start: at(sStart.value), end: at(sEnd.value), place: sPlace.value.trim(),
        capacity: Number(sCapacity.value) }, sessionKey);
      sessionKey = crypto.randomUUID();
      done.textContent = t('training.session_added');
      await load();
    } catch (err) { sessionKey = keyAfter(err, sessionKey); message.textContent = errorText(err); }
  } },
  h('h2', {}, t('training.new_session')),
  field('se-course', t('training.course'), courseSelect),
  h('div', { class: 'times' }, field('se-start', t('schedule.start'), sStart), field('se-end', t('schedule.end'), sEnd), zoneNote('se-zone')),
  field('se-place', t('schedule.place'), sPlace), field('se-capacity', t('schedule.capacity'), sCapacity),
  h('button', { type: 'submit' }, t('training.add_session')));

  replace(el, h('h1', {}, t('training.title')), h('p', {}, h('a', { href: '#/schedule' }, t('nav.schedule'))), message, done,
    courseForm, courses, sessionForm, h('h2', {}, t('training.sessions')), sessions);

  const act = async (fn, what) => {
    message.textContent = '';
    done.textContent = '';
    try { await fn(); done.textContent = what; await load(); } catch (err) { message.textContent = errorText(err); }
  };

  async function load() {
    let cs, ss, vs;
    try {
      [cs, ss, vs] = await Promise.all([get('/api/v1/courses'), get('/api/v1/sessions'), get('/api/v1/volunteers')]);
    } catch (err) { message.textContent = errorText(err); return; }
    const names = new Map(vs.volunteers.map((v) => [v.volunteer_id, v.name]));
    const chosen = courseSelect.value;
    replace(courseSelect, cs.courses.filter((c) => !c.retired).map((c) => h('option', { value: c.course_id, selected: c.course_id === chosen }, c.name)));
    replace(courses, cs.courses.length === 0 ? h('p', { class: 'muted' }, t('training.no_courses')) : h('table', { class: 'report' },
      h('caption', {}, t('training.courses')),
      h('thead', {}, h('tr', {}, ['training.course_name', 'training.certification', 'training.validity', 'accounts.actions'].map((k) => h('th', { scope: 'col' }, t(k))))),
      h('tbody', {}, cs.courses.map((c) => h('tr', {},
        h('th', { scope: 'row' }, c.name), h('td', {}, certLabel(c.certification)),
        h('td', {}, c.validity_months ? plural('training.months', c.validity_months) : t('training.no_expiry')),
        h('td', {}, c.retired ? t('training.retired') : h('button', { type: 'button', class: 'small secondary',
          onclick: () => act(() => post(`/api/v1/courses/${c.course_id}/retire`, {}), t('training.course_retired')) }, t('training.retire'))))))));
    const list = ss.sessions.slice().sort((a, b) => a.start.localeCompare(b.start));
    replace(sessions, list.length === 0 ? h('p', { class: 'muted' }, t('training.no_sessions')) : h('ul', { class: 'list' }, list.map((s) => {
      const pick = h('select', { id: `enroll-${s.session_id}` }, vs.volunteers.filter((v) => v.active && !(s.enrolled || []).includes(v.volunteer_id))
        .map((v) => h('option', { value: v.volunteer_id }, v.name)));
      return h('li', { class: `card${s.cancelled ? ' cancelled' : ''}` },
        h('h3', {}, s.course_name, ' · ', dateTime(s.start), s.cancelled ? [' ', h('span', { class: 'badge' }, t('training.cancelled'))] : null),
        h('p', {}, [s.place, t('training.seats', { left: s.seats_left, capacity: s.capacity })].filter(Boolean).join(' · ')),
        (s.enrolled || []).length ? h('table', { class: 'report' },
          h('caption', {}, t('training.enrolled')),
          h('tbody', {}, s.enrolled.map((v) => h('tr', {}, h('th', { scope: 'row' }, names.get(v) || t('request.volunteer_unknown')),
            h('td', { class: 'actions' }, s.cancelled ? null : [
              h('button', { type: 'button', class: 'small', onclick: () => act(() => post(`/api/v1/sessions/${s.session_id}/attendance/${v}`, { attended: true, certify: true }), t('training.certified')) }, t('training.attended_certify')),
              h('button', { type: 'button', class: 'small secondary', onclick: () => act(() => post(`/api/v1/sessions/${s.session_id}/attendance/${v}`, { attended: true }), t('training.recorded')) }, t('training.attended')),
              h('button', { type: 'button', class: 'small secondary', onclick: () => act(() => post(`/api/v1/sessions/${s.session_id}/attendance/${v}`, { attended: false }), t('training.recorded')) }, t('training.absent'))]))))) : null,
        s.cancelled ? null : h('div', { class: 'actions' },
          pick.options.length ? [h('label', { for: pick.id }, t('training.enroll_who')), pick,
            h('button', { type: 'button', class: 'small', onclick: () => act(() => post(`/api/v1/sessions/${s.session_id}/enrollments/${pick.value}`, {}), t('training.enrolled_done')) }, t('training.enroll'))] : null,
          h('button', { type: 'button', class: 'small danger', onclick: () => act(() => post(`/api/v1/sessions/${s.session_id}/cancel`, {}), t('training.session_cancelled')) }, t('training.cancel_session'))));
    })));
  }
  await load();
  return null;
}
