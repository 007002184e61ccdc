import { h } from '../dom.js';
import { t, language } from '../i18n.js';

// errorText says what went wrong in the user's language: the API's own
// message names the rule or field to fix; a known code gets a translated
// sentence instead.
export function errorText(err) {
  // In English the server's own sentence for a field is the most precise.
  if (err.code === 'invalid_field' && language() === 'en' && err.message) return err.message;
  const known = `error.${err.code}`;
  const translated = t(known, { field: err.field || '' });
  if (translated !== known) return translated;
  return language() === 'en' && err.message ? err.message : t('error.unknown');
}

// field is a labelled form control.
export function field(id, label, control, hint) {
  control.id = id;
  if (hint) control.setAttribute('aria-describedby', `${id}-hint`);
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    control,
    hint ? h('small', { id: `${id}-hint`, class: 'hint' }, hint) : null);
}

// statusLabel is a request status in words.
export function statusLabel(s) { return t(`status.${s}`); }

// priorityBadge shows a priority with an icon and words, never colour
// alone.
export function priorityBadge(p) {
  const icon = { urgent: '⚠', high: '▲', normal: '●', low: '▽' }[p] || '●';
  return h('span', { class: `badge priority-${p}` }, h('span', { 'aria-hidden': 'true' }, icon, ' '), t(`priority.${p}`));
}

// kindLabel is a request's kind and sub-kind in words.
export function kindLabel(kind, sub) {
  return sub ? `${t(`kind.${kind}`)} · ${t(`subkind.${sub}`)}` : t(`kind.${kind}`);
}

// connection shows a live view's state: live, reconnecting, resynced.
export function connectionBadge() {
  const el = h('span', { class: 'conn', role: 'status', 'aria-live': 'polite' });
  return {
    el,
    set(state) {
      el.className = `conn conn-${state}`;
      el.textContent = t(`conn.${state}`);
    },
  };
}

// certLabel names a certification: from the catalog for the usual ones,
// else its code in words (coordinators add courses with their own codes).
export function certLabel(code) {
  const k = `cert.${code}`;
  const s = t(k);
  return s === k ? code.replace(/_/g, ' ') : s;
}
