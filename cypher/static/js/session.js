// The session manager of a logged-in page. Tokens live only in HttpOnly cookies; the page knows
// only when the access token expires (a time, no secret). One tab refreshes at a time (Web Locks);
// BroadcastChannel tells every tab about refreshes and logouts.
import { api, ApiError } from "./api.js";

const EXPIRES_AT = "cypher.accessExpiresAt";
const LIFETIME = "cypher.accessLifetime";
const channel = new BroadcastChannel("cypher-session");
let timer;

export function rememberTokens({ expiresIn }) {
  localStorage.setItem(EXPIRES_AT, String(Date.now() + expiresIn * 1000));
  localStorage.setItem(LIFETIME, String(expiresIn * 1000));
}

function forget() {
  localStorage.removeItem(EXPIRES_AT);
  localStorage.removeItem(LIFETIME);
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
  if (force) forget();
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
    else await endSession("expired");
  }, delay);
}

// An API call with the access cookie: one silent refresh and a retry when it has lapsed.
export async function authed(path, options = {}) {
  try {
    return await api(path, options);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401 || error.code !== "invalid_token") throw error;
    if (!(await refresh({ force: true }))) return endSession("expired");
    schedule();
    return api(path, options);
  }
}

export async function logout(everywhere = false) {
  try {
    await authed(everywhere ? "/api/logout-all" : "/api/logout", { body: {} });
  } finally {
    channel.postMessage({ type: "logout" });
    endSession("logged-out");
  }
}

// Start keeping the session alive; resolves with the session's username.
export async function startSessionManager() {
  channel.onmessage = ({ data }) => {
    if (data.type === "logout") endSession("logged-out");
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
