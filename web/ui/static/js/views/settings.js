// The organization's settings and its retention of personal data: a
// coordinator pauses automatic forgetting with a legal hold and lifts it;
// an admin sets the time zone every time in Presente is shown and typed in.
import { h, replace, announce } from '../dom.js';
import { t, plural, dateTime, setZone, zoneName } from '../i18n.js';
import { get, post, keyAfter } from '../api.js';
import { errorText, field } from './common.js';

// retentionScreen is #/retention: whether personal data is being forgotten
// on schedule, what the last run did, and the legal hold.
export async function retentionScreen(el) {
  const message = h('p', { class: 'error', role: 'alert' });
  const done = h('p', { class: 'muted', role: 'status' });
  const out = h('div');
  replace(el, h('h1', {}, t('retention.title')), out, message, done);

  async function load() {
    let st;
    try { st = await get('/api/v1/retention'); } catch (err) { message.textContent = errorText(err); return; }
    const status = st.on_hold
      ? h('p', { class: 'badge warn', id: 'retention-state' }, h('span', { 'aria-hidden': 'true' }, '‖ '),
        t('retention.on_hold', { since: dateTime(st.held_since) }))
      : h('p', { class: 'badge ok', id: 'retention-state' }, h('span', { 'aria-hidden': 'true' }, '✓ '), t('retention.running'));
    const reason = h('input', { type: 'text', autocomplete: 'off', maxlength: 2000, required: !st.on_hold });
    let key = crypto.randomUUID();
    const form = h('form', { class: 'card', onsubmit: async (e) => {
      e.preventDefault();
      message.textContent = '';
      done.textContent = '';
      const path = st.on_hold ? '/api/v1/retention/release' : '/api/v1/retention/hold';
      try {
        await post(path, { reason: reason.value.trim() }, key);
        key = crypto.randomUUID();
        const what = t(st.on_hold ? 'retention.lifted' : 'retention.placed');
        await load();
        done.textContent = what;
        announce(what);
      } catch (err) { key = keyAfter(err, key); message.textContent = errorText(err); }
    } },
    h('h2', {}, t(st.on_hold ? 'retention.lift_title' : 'retention.hold_title')),
    h('p', {}, t(st.on_hold ? 'retention.lift_explain' : 'retention.hold_explain')),
    field('retention-reason', t(st.on_hold ? 'retention.lift_reason' : 'retention.hold_reason'), reason, t('retention.reason_hint')),
    h('button', { type: 'submit', class: st.on_hold ? null : 'danger' }, t(st.on_hold ? 'retention.lift' : 'retention.hold')));
    replace(out,
      h('p', {}, plural('retention.explain', Math.round(st.period_days))),
      status,
      h('dl', {},
        h('dt', {}, t('retention.last_run')), h('dd', {}, st.last_run ? dateTime(st.last_run) : t('retention.never')),
        st.last_run ? [h('dt', {}, t('retention.last_result')),
          h('dd', {}, plural('retention.forgotten', st.last_forgotten), st.last_failed ? [' · ', plural('retention.failed', st.last_failed)] : null)] : null),
      form);
  }
  await load();
  return null;
}

// zones lists the time zones the browser knows, for the field's
// suggestions (any IANA name the server knows is accepted).
function zones() {
  try { return Intl.supportedValuesOf('timeZone'); } catch { return []; }
}

// settingsScreen is #/settings: the organization's time zone.
export async function settingsScreen(el) {
  const message = h('p', { class: 'error', role: 'alert' });
  const done = h('p', { class: 'muted', role: 'status' });
  const zone = h('input', { type: 'text', list: 'zones', autocomplete: 'off', required: true, spellcheck: false });
  const now = h('p', { class: 'hint', id: 'zone-now' });
  const show = (z) => { zone.value = z; now.textContent = t('settings.now', { zone: z, time: dateTime(Date.now()) }); };
  let key = crypto.randomUUID();
  const form = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    message.textContent = '';
    done.textContent = '';
    try {
      const res = await post('/api/v1/settings/time-zone', { time_zone: zone.value.trim() }, key);
      key = crypto.randomUUID();
      setZone(res.time_zone);
      show(res.time_zone);
      done.textContent = t('settings.zone_saved', { zone: res.time_zone });
      announce(done.textContent);
    } catch (err) { key = keyAfter(err, key); message.textContent = errorText(err); zone.focus(); }
  } },
  h('h2', {}, t('settings.zone_title')),
  field('settings-zone', t('settings.zone'), zone, t('settings.zone_hint')),
  h('datalist', { id: 'zones' }, zones().map((z) => h('option', { value: z }))),
  now,
  h('button', { type: 'submit' }, t('settings.save_zone')));
  replace(el, h('h1', {}, t('settings.title')), form, message, done);
  try {
    const st = await get('/api/v1/settings');
    setZone(st.time_zone);
    show(st.time_zone);
  } catch (err) { message.textContent = errorText(err); show(zoneName()); }
  return null;
}
