// Calls to Presente's JSON API (web/openapi.yaml). State-changing calls
// carry an Idempotency-Key, kept across retries of the same action, so a
// lost answer never makes a command run twice.

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'http_' + status;
    this.field = e.field || '';
  }
}

// call sends a request and returns the decoded answer (null for 204). A
// retry of the same action passes the same key.
export async function call(method, path, body, key) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && path !== '/api/v1/session') headers['Idempotency-Key'] = key || crypto.randomUUID();
  let res;
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, { error: { code: 'offline', message: '' } });
  }
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const get = (path) => call('GET', path);
export const post = (path, body, key) => call('POST', path, body, key);
export const put = (path, body, key) => call('PUT', path, body, key);
export const del = (path) => call('DELETE', path);
