// Accounts and invitations: an admin changes roles, closes and reopens
// accounts and ends their sessions; admins and coordinators invite people
// and revoke invitations. Nothing here shows the people served.
import { h, replace } from '../dom.js';
import { t, dateTime } from '../i18n.js';
import { get, post } from '../api.js';
import { errorText, field } from './common.js';

const ROLES = ['admin', 'coordinator', 'dispatcher', 'volunteer'];

function roleSelect(id, value, roles = ROLES) {
  return h('select', { id }, roles.map((r) => h('option', { value: r, selected: r === value }, t(`role.${r}`))));
}

// accountsScreen lists every account with what an admin may do to it.
export async function accountsScreen(el, _params, me) {
  const message = h('p', { class: 'error', role: 'alert' });
  const done = h('p', { class: 'muted', role: 'status' });
  const list = h('div');
  replace(el, h('h1', {}, t('accounts.title')), h('p', {}, h('a', { href: '#/invitations' }, t('nav.invitations'))), message, done, list);

  async function act(path, body, what) {
    message.textContent = '';
    done.textContent = '';
    try {
      await post(path, body);
      done.textContent = what;
      await load();
    } catch (err) { message.textContent = errorText(err); }
  }

  async function load() {
    let res;
    try { res = await get('/api/v1/accounts'); } catch (err) { message.textContent = errorText(err); return; }
    const rows = res.accounts.slice().sort((a, b) => a.email.localeCompare(b.email));
    replace(list, h('table', { class: 'report' },
      h('caption', {}, t('accounts.caption')),
      h('thead', {}, h('tr', {}, ['accounts.email', 'accounts.role', 'accounts.state', 'accounts.actions'].map((k) => h('th', { scope: 'col' }, t(k))))),
      h('tbody', {}, rows.map((a) => {
        const self = a.user_id === me;
        const sel = roleSelect(`role-${a.user_id}`, a.role);
        return h('tr', {},
          h('th', { scope: 'row' }, a.email),
          h('td', {}, h('label', { for: sel.id, class: 'visually-hidden' }, t('accounts.role_of', { email: a.email })), sel,
            ' ', h('button', { type: 'button', class: 'small', disabled: self, onclick: () => act(`/api/v1/accounts/${a.user_id}/role`, { role: sel.value }, t('accounts.role_changed')) }, t('accounts.change_role'))),
          h('td', {}, a.active ? t('accounts.active') : h('span', { class: 'badge' }, h('span', { 'aria-hidden': 'true' }, '⊘ '), t('accounts.inactive'))),
          h('td', { class: 'actions' },
            self ? h('span', { class: 'muted' }, t('accounts.you')) : [
              a.active ? h('button', { type: 'button', class: 'small danger', onclick: () => act(`/api/v1/accounts/${a.user_id}/deactivate`, {}, t('accounts.deactivated')) }, t('accounts.deactivate'))
                : h('button', { type: 'button', class: 'small', onclick: () => act(`/api/v1/accounts/${a.user_id}/reactivate`, {}, t('accounts.reactivated')) }, t('accounts.reactivate')),
              ' ', h('button', { type: 'button', class: 'small secondary', onclick: () => act(`/api/v1/accounts/${a.user_id}/revoke-sessions`, {}, t('accounts.signed_out')) }, t('accounts.revoke'))]));
      }))));
  }
  await load();
  return null;
}

// invitationsScreen invites someone with a role and lists the invitations.
export async function invitationsScreen(el, _params, _me, _email, role) {
  const email = h('input', { type: 'email', autocomplete: 'off', required: true });
  const roles = role === 'admin' ? ROLES : ['coordinator', 'dispatcher', 'volunteer'];
  const sel = roleSelect('invite-role', 'volunteer', roles);
  const message = h('p', { class: 'error', role: 'alert' });
  const created = h('div', { 'aria-live': 'polite' });
  const list = h('div');
  const form = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    message.textContent = '';
    try {
      const inv = await post('/api/v1/invitations', { email: email.value, role: sel.value });
      const link = h('input', { type: 'text', readonly: true, value: inv.link, id: 'invite-link' });
      replace(created, h('div', { class: 'card', role: 'status' }, h('p', {}, t('invitations.created', { email: inv.email })),
        field('invite-link', t('invitations.link'), link, t('invitations.link_hint'))));
      link.select();
      email.value = '';
      await load();
    } catch (err) { message.textContent = errorText(err); }
  } },
  h('h2', {}, t('invitations.new')),
  field('invite-email', t('invitations.email'), email), field('invite-role', t('invitations.role'), sel),
  h('button', { type: 'submit' }, t('invitations.send')));
  replace(el, h('h1', {}, t('invitations.title')), form, message, created, list);

  async function load() {
    let res;
    try { res = await get('/api/v1/invitations'); } catch (err) { message.textContent = errorText(err); return; }
    replace(list, res.invitations.length === 0 ? h('p', { class: 'muted' }, t('invitations.none')) : h('table', { class: 'report' },
      h('caption', {}, t('invitations.caption')),
      h('thead', {}, h('tr', {}, ['invitations.email', 'invitations.role', 'invitations.status', 'invitations.expires', 'accounts.actions']
        .map((k) => h('th', { scope: 'col' }, t(k))))),
      h('tbody', {}, res.invitations.map((i) => h('tr', {},
        h('th', { scope: 'row' }, i.email), h('td', {}, t(`role.${i.role}`)), h('td', {}, t(`invitation.${i.status}`)),
        h('td', {}, dateTime(i.expires_at)),
        h('td', {}, i.status === 'pending' ? h('button', { type: 'button', class: 'small danger', onclick: async () => {
          message.textContent = '';
          try { await post(`/api/v1/invitations/${i.invitation_id}/revoke`, {}); await load(); } catch (err) { message.textContent = errorText(err); }
        } }, t('invitations.revoke')) : '—'))))));
  }
  await load();
  return null;
}
