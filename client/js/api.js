// The staff REST API (docs/api.md): JSON in and out, the CSRF token on every change.

let csrf = null;

/** An error answered by the REST API. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || (status === 0 ? "network" : "internal");
    this.field = error.field;
  }
}

/** Call the API; resolves to the JSON body, rejects with ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (csrf && method !== "GET") headers["X-CSRF-Token"] = csrf;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, null);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  if (data && data.csrf_token) csrf = data.csrf_token;
  return data;
}

/** Forget the CSRF token (after logout). */
export function forgetToken() {
  csrf = null;
}
