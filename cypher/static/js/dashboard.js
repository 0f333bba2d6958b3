// The dashboard: this account's live sessions, with revoke buttons and log out (everywhere).
import { $, pageReady, when } from "./dom.js";
import { announce, authed, logout, startSessionManager } from "./session.js";

function cell(text, className = "") {
  const td = document.createElement("td");
  td.textContent = text;
  td.className = className;
  return td;
}

// On a phone only the device and its button keep columns; address and last seen go under the name.
const WIDE_ONLY = "d-none d-sm-table-cell";

async function loadSessions() {
  const { sessions } = await authed("/api/sessions", { method: "GET" });
  $("sessions").replaceChildren(...sessions.map((session) => {
    const row = document.createElement("tr");
    row.dataset.sessionId = session.id;
    const name = cell(session.device, "text-break");
    if (session.current) {
      const badge = document.createElement("span");
      badge.className = "badge text-bg-primary ms-2";
      badge.textContent = "This device";
      name.append(" ", badge);  // the space keeps "This device" a word of its own for screen readers
    }
    const narrow = document.createElement("div");
    narrow.className = "small text-body-secondary d-sm-none";
    narrow.textContent = `${session.ip ?? "unknown address"} · last seen ${when(session.lastSeenAt)}`;
    name.append(narrow);
    const actions = document.createElement("td");
    actions.className = "text-end";
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.className = "btn btn-sm btn-outline-danger";
    revoke.textContent = session.current ? "Log out" : "Revoke";
    revoke.setAttribute("aria-label", `${revoke.textContent}: ${session.device}, ${session.ip ?? ""}`);
    revoke.addEventListener("click", () => (session.current ? logout() : revokeSession(session.id)));
    actions.append(revoke);
    row.append(
      name,
      cell(session.ip ?? "unknown", WIDE_ONLY),
      cell(when(session.createdAt), "d-none d-md-table-cell"),
      cell(when(session.lastSeenAt), WIDE_ONLY),
      actions,
    );
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
