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

// keyAfter is the Idempotency-Key for the next try after err. The server
// keeps a final refusal (400, 403, 404, 422…) under its key, so a corrected
// form sent with it would be refused as "already sent with other data":
// after one, a new key. After anything else (offline, 409 while the first
// try still runs, 429, 5xx) the first try may yet count, so the same key.
export function keyAfter(err, key) {
  const s = err && err.status;
  return s >= 400 && s < 500 && s !== 409 && s !== 425 && s !== 429 ? crypto.randomUUID() : key;
}

export const get = (path) => call('GET', path);
export const post = (path, body, key) => call('POST', path, body, key);
export const put = (path, body, key) => call('PUT', path, body, key);
export const del = (path) => call('DELETE', path);
