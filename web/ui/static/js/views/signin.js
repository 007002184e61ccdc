import { h, replace } from '../dom.js';
import { t } from '../i18n.js';
import { post } from '../api.js';
import { errorText } from './common.js';

// signInScreen asks for an email and password.
export function signInScreen(el, done) {
  const email = h('input', { id: 'email', name: 'email', type: 'email', autocomplete: 'username', required: true });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'error', role: 'alert', id: 'signin-error' });
  const button = h('button', { type: 'submit' }, t('signin.submit'));
  const form = h('form', { class: 'card narrow', onsubmit: async (e) => {
    e.preventDefault();
    button.disabled = true;
    error.textContent = '';
    try {
      await post('/api/v1/session', { email: email.value, password: password.value });
      await done();
    } catch (err) {
      error.textContent = errorText(err);
      password.select();
    } finally {
      button.disabled = false;
    }
  } },
  h('h1', {}, t('signin.title')),
  h('label', { for: 'email' }, t('signin.email')), email,
  h('label', { for: 'password' }, t('signin.password')), password,
  error, button);
  replace(el, form);
  email.focus();
}
