// The session manager of a logged-in page. Tokens live only in HttpOnly cookies; the page knows
// only when the access token expires (a time, no secret). One tab refreshes at a time (Web Locks);
// BroadcastChannel tells every tab about refreshes and logouts.
import { api, ApiError } from "./api.js";

const EXPIRES_AT = "cypher.accessExpiresAt";
const LIFETIME = "cypher.accessLifetime";
// When the refresh token, and so the session, runs out: a refusal before then means the session
// was ended elsewhere (logged out everywhere, revoked, a password change), not that it ran out.
const SESSION_ENDS_AT = "cypher.sessionEndsAt";
const channel = new BroadcastChannel("cypher-session");
let timer;

export function rememberTokens({ expiresIn, refreshExpiresIn }) {
  localStorage.setItem(EXPIRES_AT, String(Date.now() + expiresIn * 1000));
  localStorage.setItem(LIFETIME, String(expiresIn * 1000));
  if (refreshExpiresIn) localStorage.setItem(SESSION_ENDS_AT, String(Date.now() + refreshExpiresIn * 1000));
}

export function forget() {
  localStorage.removeItem(EXPIRES_AT);
  localStorage.removeItem(LIFETIME);
  localStorage.removeItem(SESSION_ENDS_AT);
}

// Why a session this browser held is gone, as the login page's reason: ran out, or ended elsewhere.
export function lostReason() {
  const endsAt = Number(localStorage.getItem(SESSION_ENDS_AT) || 0);
  return endsAt > Date.now() ? "ended-elsewhere" : "expired";
}

// Leave for the login page because the session could not be kept.
export function sessionLost() {
  return endSession(lostReason());
}

export function hadSession() {
  return localStorage.getItem(EXPIRES_AT) !== null;
}

// Refresh this long before expiry: a minute, or a quarter of a short lifetime.
function leadTime() {
  return Math.min(60_000, Number(localStorage.getItem(LIFETIME) || 60_000) / 4);
}

function expiresAt() {
  return Number(localStorage.getItem(EXPIRES_AT) || 0);
}

// Leave for the login page. The returned promise never settles: nothing after it should run
// while the browser navigates away.
export function endSession(reason) {
  forget();
  window.location.assign(`/login?reason=${encodeURIComponent(reason)}`);
  return new Promise(() => {});
}

// Refresh unless another tab just did (or always, when forced); true when the session lives on.
export async function refresh({ force = false } = {}) {
  if (force) localStorage.removeItem(EXPIRES_AT);  // the session's end stays known, for lostReason()
  return navigator.locks.request("cypher-refresh", async () => {
    if (expiresAt() - Date.now() > leadTime()) return true;  // another tab was faster
    try {
      rememberTokens(await api("/api/refresh-token", { body: {} }));
      channel.postMessage({ type: "refreshed" });
      return true;
    } catch {
      return false;
    }
  });
}

function schedule() {
  clearTimeout(timer);
  const delay = Math.max(0, expiresAt() - Date.now() - leadTime());
  timer = setTimeout(async () => {
    if (await refresh()) schedule();
    else await sessionLost();
  }, delay);
}

// An API call with the access cookie: one silent refresh and a retry when it has lapsed.
export async function authed(path, options = {}) {
  try {
    return await api(path, options);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401 || error.code !== "invalid_token") throw error;
    if (!(await refresh({ force: true }))) return sessionLost();
    schedule();
    return api(path, options);
  }
}

// End the session in every tab of this browser, each showing `reason` on the login page. The
// message goes through this module's own channel, which does not hear itself: the tab that sent it
// keeps its own reason.
export function endEverywhere(reason) {
  channel.postMessage({ type: "logout", reason });
  return endSession(reason);
}

export async function logout(everywhere = false) {
  try {
    await authed(everywhere ? "/api/logout-all" : "/api/logout", { body: {} });
  } finally {
    endEverywhere(everywhere ? "logged-out-everywhere" : "logged-out");
  }
}

// Start keeping the session alive; resolves with the session's username.
export async function startSessionManager() {
  channel.onmessage = ({ data }) => {
    if (data.type === "logout") endSession(data.reason ?? "logged-out");
    else if (data.type === "refreshed") schedule();
  };
  const navLogout = document.getElementById("nav-logout");
  navLogout?.addEventListener("click", () => logout());
  if (!hadSession()) return endSession("login-required");  // never logged in from this browser
  const session = await authed("/api/verify-access", { body: {} });
  schedule();
  return session.username;
}

export function announce(text) {
  const status = document.getElementById("status");
  if (status) status.textContent = text;
}
