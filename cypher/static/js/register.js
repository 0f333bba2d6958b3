// The registration page: OPAQUE registration (in a worker), then TOTP enrolment and the
// recovery codes, each step shown as it happens.
import { api, ApiError, opaqueConfig, plainWords } from "./api.js";
import { $, USERNAME, holdFor, pageReady, show, showError, submitAtSixDigits } from "./dom.js";
import { normalisePassword, opaqueCall } from "./opaque-client.js";
import { attachMeter, problemWith } from "./password-strength.js";
import { showRecoveryCodes } from "./recovery-codes.js";
import { rememberTokens } from "./session.js";
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
    // One round trip: sending the blinded password and the server's OPRF evaluation.
    const init = await steps.run("server-response", async () => {
      const answer = await api("/register/init", { body: { username, registrationRequest } });
      if (!answer.registrationResponse || !answer.registrationId) throw new Error("The server sent no registration response.");
      return answer;
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
    steps.awaitInput("totp-verify", "Waiting for the code from your authenticator app");
    $("totp-code").focus();
  } catch (error) {
    showError("register-error", registrationError(error));
    $("password").focus();  // the button was disabled under the focus
  } finally {
    $("register-submit").disabled = false;
  }
}

function registrationError(error) {
  if (error instanceof ApiError && error.code === "username_taken") {
    return "This username is taken. If you began registering it yourself and did not finish, "
      + "the name becomes free again a few minutes after you started: try again then.";
  }
  return plainWords(error);
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
    rememberTokens(result);  // enrolment logged this browser in
    showAccountReady(result.username, result.recoveryCodes);
  } catch (error) {
    const message = plainWords(error);
    steps.fail("totp-verify", message);
    showError("totp-error", message);
    $("totp-code").value = "";
    if (error instanceof ApiError) holdFor(error.retryAfter, $("totp-code"));
    $("totp-code").focus();
  }
}

function showAccountReady(username, codes) {
  showRecoveryCodes(username, codes, { list: "recovery-codes", copy: "copy-codes", download: "download-codes" });
  show($("totp-section"), false);
  show($("recovery-section"), true);
  $("recovery-title").focus();
}

attachMeter($("password"), () => [$("username").value]);
$("register-form").addEventListener("submit", register);
$("totp-form").addEventListener("submit", verifyTotp);
submitAtSixDigits($("totp-code"), $("totp-form"));
pageReady();
