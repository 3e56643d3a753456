// api.js — the only place that talks HTTP to the gateway. Sends JSON, adds the bearer
// token kept in localStorage (the HttpOnly session cookie rides along as well, so the
// cookie alone is enough), and turns {"error": {"code", "message"}} into an ApiError.
// Its message is the server's, for developers; what a person reads comes from the
// catalogue by the error's code (describeError in i18n.js).

const TOKEN_KEY = 'floorbell.token';

export class ApiError extends Error {
  constructor(status, code, message, details = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status; // 0 when the server could not be reached
    this.code = code;
    this.details = details;
  }
  get offline() { return this.status === 0; }
}

export function getToken() {
  try { return localStorage.getItem(TOKEN_KEY); } catch { return null; }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch { /* storage unavailable: the cookie still authenticates */ }
}

let unauthorizedHandler = null;
/** Called once per 401 on an authenticated request (session expired or revoked). */
export function onUnauthorized(fn) { unauthorizedHandler = fn; }

/**
 * api(path, {method, body, headers, signal, auth401})
 * body: a plain object (sent as JSON) or FormData (sent as multipart).
 * auth401: false to handle 401 yourself (login form, session probe).
 * Resolves with the parsed JSON (or null for an empty body).
 */
export async function api(path, options = {}) {
  const { method = 'GET', body, headers = {}, signal, auth401 = true } = options;
  const init = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json', ...headers },
    signal,
  };
  const token = getToken();
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }

  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw new ApiError(0, 'network_error', 'The server could not be reached.');
  }

  const text = await response.text().catch(() => '');
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }

  if (!response.ok) {
    const err = data && typeof data === 'object' ? data.error : null;
    const code = (err && err.code) || `http_${response.status}`;
    const message = (err && err.message) || `HTTP ${response.status}`;
    const error = new ApiError(response.status, code, message, err);
    if (response.status === 401 && auth401 && unauthorizedHandler) unauthorizedHandler(error);
    throw error;
  }
  return data;
}
