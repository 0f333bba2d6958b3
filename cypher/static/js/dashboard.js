// The dashboard: this account's live sessions, with revoke buttons and log out (everywhere).
import { $, device, pageReady, when } from "./dom.js";
import { announce, authed, logout, startSessionManager } from "./session.js";


function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

async function loadSessions() {
  const { sessions } = await authed("/api/sessions", { method: "GET" });
  $("sessions").replaceChildren(...sessions.map((session) => {
    const row = document.createElement("tr");
    row.dataset.sessionId = session.id;
    const name = cell(device(session.userAgent));
    if (session.current) {
      const badge = document.createElement("span");
      badge.className = "badge text-bg-primary ms-2";
      badge.textContent = "This device";
      name.append(badge);
    }
    const actions = document.createElement("td");
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.className = "btn btn-sm btn-outline-danger";
    revoke.textContent = session.current ? "Log out" : "Revoke";
    revoke.setAttribute("aria-label", `${revoke.textContent}: ${device(session.userAgent)}, ${session.ip ?? ""}`);
    revoke.addEventListener("click", () => (session.current ? logout() : revokeSession(session.id)));
    actions.append(revoke);
    row.append(name, cell(session.ip ?? "unknown"), cell(when(session.createdAt)), cell(when(session.lastSeenAt)), actions);
    return row;
  }));
  announce(`${sessions.length} live session${sessions.length === 1 ? "" : "s"}.`);
}

async function revokeSession(id) {
  await authed(`/api/sessions/${encodeURIComponent(id)}`, { method: "DELETE" });
  await loadSessions();
}

$("logout").addEventListener("click", () => logout());
$("logout-all").addEventListener("click", () => logout(true));
pageReady();
try {
  await startSessionManager();
  await loadSessions();
} catch (error) {
  $("dashboard-error").textContent = error.message;
  $("dashboard-error").classList.remove("d-none");
}
