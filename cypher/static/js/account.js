// The account page: change the password (OPAQUE re-registration), new recovery codes, deletion
// (each needs a fresh code from the authenticator), and the account's recent security activity.
import { opaqueConfig, plainWords } from "./api.js";
import { $, pageReady, when } from "./dom.js";
import { normalisePassword, opaqueCall } from "./opaque-client.js";
import { attachMeter, problemWith } from "./password-strength.js";
import { showRecoveryCodes } from "./recovery-codes.js";
import { announce, authed, endEverywhere, startSessionManager } from "./session.js";

const configPromise = opaqueConfig();

function result(id, message, ok) {
  const box = $(id);
  box.textContent = message;
  box.classList.remove("d-none", "alert-success", "alert-danger");
  box.classList.add(ok ? "alert-success" : "alert-danger");
}

// Events a person should look at twice: something was refused or looked like an attack.
const WARNING = /\.(failed|locked|reused|banned)$/;

function activityItem(event) {
  const item = document.createElement("li");
  item.className = "list-group-item px-0";
  item.dataset.event = event.event;
  const what = document.createElement("div");
  what.className = WARNING.test(event.event) ? "fw-semibold text-danger" : "fw-semibold";
  what.textContent = event.description;
  const time = document.createElement("time");
  time.dateTime = event.occurredAt;
  time.textContent = when(event.occurredAt);
  const where = document.createElement("div");
  where.className = "small text-body-secondary text-break";
  const from = event.ip ? `${event.device}, ${event.ip}` : event.device;
  where.append(time, ` · ${from}`);
  if (event.userAgent) where.title = event.userAgent;
  item.append(what, where);
  return item;
}

async function loadActivity() {
  try {
    const { events } = await authed("/api/account/activity", { method: "GET" });
    $("activity").replaceChildren(...events.map(activityItem));
    $("activity-empty").classList.toggle("d-none", events.length > 0);
    $("activity-error").classList.add("d-none");
  } catch (error) {
    $("activity-error").textContent = error.message;
    $("activity-error").classList.remove("d-none");
  }
}

async function changePassword(event) {
  event.preventDefault();
  const password = normalisePassword($("new-password").value);
  const problem = problemWith(password, [$("username").textContent])
    ?? (password !== normalisePassword($("new-password-confirm").value) ? "The two passwords differ." : null);
  if (problem) return result("password-result", problem, false);
  try {
    const config = await configPromise;
    const { clientRegistrationState, registrationRequest } = await opaqueCall("startRegistration", { password });
    const init = await authed("/account/password/init", { body: { registrationRequest } });
    const { registrationRecord } = await opaqueCall("finishRegistration", {
      clientRegistrationState,
      registrationResponse: init.registrationResponse,
      password,
      identifiers: { client: init.username, server: init.serverId },
      keyStretching: config.keyStretching,
    });
    const done = await authed("/account/password/finish", {
      body: { registrationRecord, code: $("password-code").value.trim() },
    });
    event.target.reset();
    $("new-password").dispatchEvent(new Event("input"));  // the emptied field's meter says nothing
    const others = done.revokedSessions;
    result("password-result", `Password changed. ${others} other session${others === 1 ? " was" : "s were"} logged out.`, true);
  } catch (error) {
    result("password-result", plainWords(error), false);
  }
  await loadActivity();
}

async function newRecoveryCodes(event) {
  event.preventDefault();
  try {
    const { recoveryCodes } = await authed("/account/recovery-codes", { body: { code: $("codes-code").value.trim() } });
    showRecoveryCodes($("username").textContent, recoveryCodes, {
      list: "recovery-codes", copy: "copy-codes", download: "download-codes",
    });
    $("new-codes").classList.remove("d-none");
    result("codes-result", "New recovery codes: keep them safe, they are shown only now.", true);
    $("codes-code").value = "";
  } catch (error) {
    result("codes-result", plainWords(error), false);
  }
  await loadActivity();
}

async function deleteAccount(event) {
  event.preventDefault();
  if (!$("delete-confirm").checked) return result("delete-result", "Tick the box to confirm.", false);
  try {
    await authed("/account", { method: "DELETE", body: { code: $("delete-code").value.trim() } });
    endEverywhere("account-deleted");
  } catch (error) {
    result("delete-result", plainWords(error), false);
  }
}

attachMeter($("new-password"), () => [$("username").textContent]);
$("password-form").addEventListener("submit", changePassword);
$("codes-form").addEventListener("submit", newRecoveryCodes);
$("delete-form").addEventListener("submit", deleteAccount);
$("delete-confirm").addEventListener("change", () => {
  if ($("delete-confirm").checked) $("delete-result").classList.add("d-none");  // the box is ticked now
});
pageReady();
const username = await startSessionManager();
$("username").textContent = username;
announce(`Account of ${username}.`);
await loadActivity();
