// Coda dashboard: the HTTP API (`/api/v1`, `/healthz`) and the bearer token the page keeps.

const TOKEN_KEY = "coda.token";

/** An error from the API, with its status and the server's `error.code`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The token saved in this browser, or "". */
export function readToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

/** Saves (or, when empty, forgets) the token. */
export function saveToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Private windows may refuse storage; the token then lasts for this page only.
  }
}

/** The Authorization header for `token`, if any. */
export function authHeaders(token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * Calls `/api/v1{path}` with `token`; throws ApiError on failure. On 401 it calls
 * `unauthorized()` first (the page asks for a token).
 */
export async function request(token, unauthorized, method, path, body) {
  const headers = authHeaders(token);
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, "unreachable", `The server cannot be reached (${e.message}).`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.status === 401) unauthorized();
  if (!res.ok) {
    throw new ApiError(
      res.status,
      data?.error?.code ?? "http_error",
      data?.error?.message ?? `${res.status} ${res.statusText}`,
    );
  }
  return data;
}

/** `GET /healthz`: the server's epoch and latest seq. */
export async function health() {
  const res = await fetch("/healthz", { cache: "no-store" });
  if (!res.ok) throw new ApiError(res.status, "unhealthy", `healthz answered ${res.status}`);
  return res.json();
}
