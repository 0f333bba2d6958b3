// The registration page: OPAQUE registration (in a worker), then TOTP enrolment and the
// recovery codes, each step shown as it happens.
import { api, opaqueConfig } from "./api.js";
import { $, USERNAME, pageReady, show, showError, submitAtSixDigits } from "./dom.js";
import { normalisePassword, opaqueCall } from "./opaque-client.js";
import { attachMeter, problemWith } from "./password-strength.js";
import { Steps } from "./steps.js";

const steps = new Steps();
const configPromise = opaqueConfig();
let enrollment = null;  // {username, token}: held in memory only, for the TOTP steps

async function register(event) {
  event.preventDefault();
  showError("register-error", "");
  steps.reset();
  $("register-submit").disabled = true;
  try {
    const { username, password, confirmation } = await steps.run("password-input", async () => ({
      username: $("username").value.trim(),
      password: normalisePassword($("password").value),
      confirmation: normalisePassword($("password-confirm").value),
    }));
    await steps.run("validation", async () => {
      if (!USERNAME.test(username)) throw new Error("A username is 3 to 64 letters, digits, or . _ - @");
      const problem = problemWith(password, [username]);
      if (problem) throw new Error(problem);
      if (password !== confirmation) throw new Error("The two passwords differ.");
    });
    const config = await configPromise;
    const { clientRegistrationState, registrationRequest } = await steps.run("blind", () =>
      opaqueCall("startRegistration", { password }));
    const init = await steps.run("send-request", () =>
      api("/register/init", { body: { username, registrationRequest } }));
    await steps.run("server-response", async () => {
      if (!init.registrationResponse || !init.registrationId) throw new Error("The server sent no registration response.");
    });
    const { registrationRecord } = await steps.run("envelope", () =>
      opaqueCall("finishRegistration", {
        clientRegistrationState,
        registrationResponse: init.registrationResponse,
        password,
        identifiers: { client: init.username, server: init.serverId },
        keyStretching: config.keyStretching,
      }));
    const finished = await steps.run("send-record", () =>
      api("/register/finish", { body: { username: init.username, registrationId: init.registrationId, registrationRecord } }));
    enrollment = { username: finished.username, token: finished.enrollmentToken };
    const setup = await steps.run("totp-setup", () =>
      api("/totp/setup", { body: {}, headers: { Authorization: `Bearer ${enrollment.token}` } }));
    $("totp-qr").src = setup.qrCode;
    $("totp-secret").textContent = setup.secret;
    show($("register-form"), false);
    show($("totp-section"), true);
    steps.start("totp-verify");
    $("totp-code").focus();
  } catch (error) {
    showError("register-error", error.message);
  } finally {
    $("register-submit").disabled = false;
  }
}

async function verifyTotp(event) {
  event.preventDefault();
  showError("totp-error", "");
  steps.start("totp-verify");
  try {
    const result = await api("/totp/verify-setup", {
      body: { code: $("totp-code").value.trim() },
      headers: { Authorization: `Bearer ${enrollment.token}` },
    });
    steps.done("totp-verify");
    enrollment = null;
    showRecoveryCodes(result.username, result.recoveryCodes);
  } catch (error) {
    steps.fail("totp-verify", error.message);
    showError("totp-error", error.message);
    $("totp-code").value = "";
  }
}

function showRecoveryCodes(username, codes) {
  $("recovery-codes").replaceChildren(...codes.map((code) => {
    const item = document.createElement("li");
    item.textContent = code;
    return item;
  }));
  show($("totp-section"), false);
  show($("recovery-section"), true);
  $("recovery-title").focus?.();
  $("copy-codes").onclick = async () => {
    await navigator.clipboard.writeText(codes.join("\n"));
    $("status").textContent = "Recovery codes copied.";
  };
  $("download-codes").onclick = () => {
    const file = new Blob([`Cypher recovery codes for ${username}\n\n${codes.join("\n")}\n`], { type: "text/plain" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(file);
    link.download = `cypher-recovery-codes-${username}.txt`;
    link.click();
    URL.revokeObjectURL(link.href);
  };
}

attachMeter($("password"), () => [$("username").value]);
$("register-form").addEventListener("submit", register);
$("totp-form").addEventListener("submit", verifyTotp);
submitAtSixDigits($("totp-code"), $("totp-form"));
pageReady();
