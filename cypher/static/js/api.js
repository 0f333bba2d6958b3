// The JSON API as API.md describes it: JSON in, {error, code} out on failure.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;  // seconds, when the server said how long to wait
  }
}

// "in 40 seconds", "in 15 minutes": how long a person is asked to wait.
export function waitFor(seconds) {
  if (seconds < 90) return `in ${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return `in ${minutes} minutes`;
}

// The API keeps its own wording (clients match on it); a person reads plainer words.
const PLAIN = {
  "Invalid TOTP code": "That is not the code your authenticator app shows now. Check the app and try again.",
  "Invalid recovery code": "That recovery code is not right. Check it and try again.",
};

export function plainWords(error) {
  if (!(error instanceof ApiError)) return error.message;
  if (error.code === "pass_auth_expired") return "The time for the second step ran out. Log in with your password again.";
  if (error.code === "too_many_attempts" && error.retryAfter) {
    return `Too many wrong codes for this account. Try again ${waitFor(error.retryAfter)}.`;
  }
  if (error.code === "rate_limited" && error.retryAfter) {
    return `Too many attempts from this address. Try again ${waitFor(error.retryAfter)}.`;
  }
  return PLAIN[error.message] ?? error.message;
}

export async function api(path, { method = "POST", body, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network_error", "Cannot reach the server. Check your connection.");
  }
  const text = await response.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = {};
  }
  if (!response.ok) {
    const retryAfter = Number(response.headers.get("Retry-After")) || null;
    throw new ApiError(response.status, data.code ?? "http_error", data.error ?? response.statusText, retryAfter);
  }
  return data;
}

export async function opaqueConfig() {
  return api("/api/opaque-config", { method: "GET" });
}
