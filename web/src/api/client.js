/**
 * The hub's API from the browser: bearer token from the in-memory session, JSON in and
 * out, every failure an `ApiError` with the status and the service's error code (or API
 * Gateway's own message for its refusals: `{"message": ...}`).
 *
 * Guarantees: a 401 refreshes the session once and retries; a second 401 signs out.
 * Nothing here caches a response (`cache: 'no-store'`): access is decided per request,
 * so revocation shows on the very next action.
 */

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

async function errorOf(response) {
  let code = `http_${response.status}`;
  let message = response.statusText;
  try {
    const body = await response.json();
    if (body?.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    } else if (body?.message) {
      message = body.message;
    }
  } catch {
    // not JSON: keep the status
  }
  return new ApiError(response.status, code, message);
}

export class HubApi {
  /**
   * @param {string} baseUrl the API's base URL (ends without a slash)
   * @param {import('../auth/session.js').AuthSession} session
   */
  constructor(baseUrl, session, fetchImpl = globalThis.fetch.bind(globalThis)) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.session = session;
    this._fetch = fetchImpl;
  }

  async raw(method, path, { body, headers = {}, accept = 'application/json', retry = true } = {}) {
    const token = this.session.accessToken();
    if (!token) throw new ApiError(401, 'not_signed_in', 'Not signed in');
    const init = {
      method,
      cache: 'no-store',
      credentials: 'omit',
      headers: { Authorization: `Bearer ${token}`, Accept: accept, ...headers },
    };
    if (body !== undefined) {
      init.body = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
      if (!init.headers['Content-Type']) init.headers['Content-Type'] = 'application/json';
    }
    const response = await this._fetch(`${this.baseUrl}${path}`, init);
    if (response.status === 401 && retry) {
      try {
        await this.session.refresh();
      } catch {
        this.session.signOut('expired');
        throw await errorOf(response);
      }
      return this.raw(method, path, { body, headers, accept, retry: false });
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  async json(method, path, options) {
    const response = await this.raw(method, path, options);
    return response.status === 204 ? null : response.json();
  }

  get(path, options) {
    return this.json('GET', path, options);
  }

  post(path, body, options = {}) {
    return this.json('POST', path, { ...options, body: body ?? {} });
  }

  del(path, body, options = {}) {
    return this.json('DELETE', path, { ...options, body });
  }
}

/** `?a=1&b=2` from an object, skipping empty values. */
export function query(params) {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '');
  return entries.length ? `?${new URLSearchParams(entries).toString()}` : '';
}
