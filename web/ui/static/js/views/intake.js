// Fast intake for a hotline call: keyboard first, sensible defaults (a
// rapid-response report, urgent, two verifiers, Spanish), Enter moves to
// the next field and Ctrl+Enter sends it. A report is on the board in
// seconds.
import { h, replace } from '../dom.js';
import { t, fromZoneInput, zoneName } from '../i18n.js';
import { post, keyAfter } from '../api.js';
import { field, errorText } from './common.js';

const SUBKINDS = ['ice_checkin', 'court_hearing', 'legal_appointment', 'medical_appointment', 'welcome_center', 'other'];
const LAST_REGION = 'presente.intake.region';

export function intakeScreen(el) {
  let key = crypto.randomUUID(); // one key per request being entered: a retry sends it once
  const kind = h('select', {}, h('option', { value: 'rapid_response' }, t('kind.rapid_response')),
    h('option', { value: 'accompaniment' }, t('kind.accompaniment')));
  const sub = h('select', {}, SUBKINDS.map((s) => h('option', { value: s }, t(`subkind.${s}`))));
  const region = h('input', { type: 'text', required: true, autocomplete: 'off', value: localStorage.getItem(LAST_REGION) || '' });
  const meeting = h('input', { type: 'text', autocomplete: 'off' });
  const languages = h('input', { type: 'text', value: 'es', autocomplete: 'off' });
  const needed = h('input', { type: 'number', min: 1, max: 20, value: 2 });
  const priority = h('select', {}, ['urgent', 'high', 'normal'].map((p) => h('option', { value: p }, t(`priority.${p}`))));
  const start = h('input', { type: 'datetime-local', 'aria-describedby': 'in-zone' });
  const end = h('input', { type: 'datetime-local', 'aria-describedby': 'in-zone' });
  const certs = h('input', { type: 'text', autocomplete: 'off', value: 'rapid_response' });
  const name = h('input', { type: 'text', autocomplete: 'off' });
  const phone = h('input', { type: 'tel', autocomplete: 'off' });
  const notes = h('textarea', { rows: 3 });
  const error = h('p', { class: 'error', role: 'alert' });
  const when = h('div', { class: 'when', hidden: true },
    field('in-start', t('intake.start'), start), field('in-end', t('intake.end'), end),
    h('p', { class: 'hint zone', id: 'in-zone' }, t('schedule.zone', { zone: zoneName() })),
    field('in-sub', t('intake.sub_kind'), sub));

  kind.addEventListener('change', () => {
    const rr = kind.value === 'rapid_response';
    when.hidden = rr;
    needed.value = rr ? 2 : 1;
    priority.value = rr ? 'urgent' : 'normal';
    certs.value = rr ? 'rapid_response' : '';
    start.required = end.required = !rr;
  });

  const list = (s) => s.split(/[\s,]+/).map((x) => x.trim().toLowerCase()).filter(Boolean);
  const submit = h('button', { type: 'submit' }, t('intake.submit'));
  const form = h('form', { class: 'card intake', onsubmit: async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.textContent = '';
    const rr = kind.value === 'rapid_response';
    const body = {
      kind: kind.value, region: region.value.trim(), meeting_point: meeting.value.trim(), languages: list(languages.value),
      certifications: list(certs.value), needed: Number(needed.value), priority: priority.value, notes: notes.value,
      person: { name: name.value.trim(), phone: phone.value.trim() },
    };
    if (!rr) Object.assign(body, { sub_kind: sub.value, start: iso(start.value), end: iso(end.value) });
    try {
      const created = await post('/api/v1/requests', body, key);
      localStorage.setItem(LAST_REGION, body.region);
      location.hash = `#/requests/${created.request_id}`;
    } catch (err) {
      key = keyAfter(err, key);
      error.textContent = errorText(err);
      const bad = err.field && form.querySelector(`[data-field="${err.field}"]`);
      (bad || region).focus();
    } finally {
      submit.disabled = false;
    }
  }, onkeydown: nextOrSend },
  h('h1', {}, t('intake.title')),
  h('p', { class: 'hint' }, t('intake.hint')),
  field('in-kind', t('intake.kind'), kind),
  when,
  field('in-region', t('intake.region'), tag(region, 'region')),
  field('in-meeting', t('intake.meeting_point'), tag(meeting, 'meeting_point'), t('intake.meeting_point_hint')),
  field('in-languages', t('intake.languages'), tag(languages, 'languages'), t('intake.languages_hint')),
  field('in-needed', t('intake.needed'), tag(needed, 'needed')),
  field('in-priority', t('intake.priority'), priority),
  field('in-certs', t('intake.certifications'), tag(certs, 'certifications'), t('intake.certifications_hint')),
  h('fieldset', {}, h('legend', {}, t('intake.person')),
    h('p', { class: 'hint' }, t('intake.person_hint')),
    field('in-name', t('intake.person_name'), name), field('in-phone', t('intake.person_phone'), phone)),
  field('in-notes', t('intake.notes'), tag(notes, 'notes'), t('intake.notes_hint')),
  error, submit);
  replace(el, form);
  region.value ? meeting.focus() : region.focus();
}

// nextOrSend: Ctrl+Enter sends the form from anywhere; Enter in a field
// moves to the next one, as the hint says (in the notes it is a new line,
// on the button it sends), so a half-typed call is never sent by mistake.
function nextOrSend(e) {
  if (e.key !== 'Enter' || e.isComposing) return;
  const form = e.currentTarget;
  if (e.ctrlKey || e.metaKey) { e.preventDefault(); form.requestSubmit(); return; }
  if (!e.target.matches('input, select')) return;
  e.preventDefault();
  const fields = [...form.elements].filter((x) => x.matches('input, select, textarea, button') && !x.disabled && x.checkVisibility());
  const next = fields[fields.indexOf(e.target) + 1];
  if (next) next.focus();
}

function tag(control, apiField) { control.dataset.field = apiField; return control; }

// iso reads a datetime-local value as a time on the organization's
// clocks, whatever the browser's zone.
function iso(v) { return fromZoneInput(v) || undefined; }
