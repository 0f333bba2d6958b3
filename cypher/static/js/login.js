// The login page: OPAQUE (in a worker), then TOTP or a recovery code, each step shown as it happens.
import { api, ApiError, opaqueConfig, plainWords } from "./api.js";
import { $, USERNAME, holdFor, pageReady, show, showError, submitAtSixDigits } from "./dom.js";
import { normalisePassword, opaqueCall } from "./opaque-client.js";
import { rememberTokens } from "./session.js";
import { Steps } from "./steps.js";

const steps = new Steps();
const configPromise = opaqueConfig();
const secondStepControls = () => [
  $("totp-code"), $("recovery-code"), ...document.querySelectorAll("#totp-section button"),
];

function backToPassword(message) {
  show($("totp-section"), false);
  show($("login-form"), true);
  showError("login-error", message);
  $("password").value = "";
  $("password").focus();
}

// The second step, fresh: no code from an earlier attempt is left in its fields.
function openSecondStep() {
  $("totp-code").value = "";
  $("recovery-code").value = "";
  showError("totp-error", "");
  steps.awaitInput("totp", "Password proven. Waiting for the code from your authenticator app");
  show($("login-form"), false);
  show($("totp-section"), true);
  (document.querySelector("#totp-section form:not(.d-none) input") ?? $("totp-code")).focus();
}

async function passwordStep(event) {
  event.preventDefault();
  showError("login-error", "");
  show($("login-reason"), false);
  steps.reset();
  $("login-submit").disabled = true;
  let wait = null;
  try {
    const { username, password } = await steps.run("password-input", async () => ({
      username: $("username").value.trim(),
      password: normalisePassword($("password").value),
    }));
    await steps.run("validation", async () => {
      if (!USERNAME.test(username)) throw new Error("Enter your username (3 to 64 letters, digits, . _ - @).");
      if (!password) throw new Error("Enter your password.");
    });
    const config = await configPromise;
    const { clientLoginState, startLoginRequest } = await steps.run("ke1", () =>
      opaqueCall("startLogin", { password }));
    // One round trip: the server's work and the network together (the server's own time alone
    // would tell an onlooker whether the name has an account).
    const init = await steps.run("ke2", async () => {
      const answer = await api("/login/init", { body: { username, startLoginRequest } });
      if (!answer.loginResponse) throw new Error("The server sent no KE2.");
      return answer;
    });
    const login = await steps.run("verify-server", async () => {
      const result = await opaqueCall("finishLogin", {
        clientLoginState,
        loginResponse: init.loginResponse,
        password,
        identifiers: { client: init.username, server: init.serverId },
        keyStretching: config.keyStretching,
      });
      // The same answer for a wrong password and an unknown user: nothing tells them apart.
      if (!result) throw new Error("Invalid username or password.");
      return result;
    });
    await steps.run("send-ke3", () =>
      api("/login/finish", { body: { loginId: init.loginId, finishLoginRequest: login.finishLoginRequest } }));
    openSecondStep();
  } catch (error) {
    showError("login-error", plainWords(error));
    wait = error instanceof ApiError ? error.retryAfter : null;
    $("password").focus();  // the button was disabled under the focus: give it somewhere to be
  } finally {
    $("login-submit").disabled = false;
  }
  holdFor(wait, $("login-submit"));
}

async function secondStep(body) {
  showError("totp-error", "");
  steps.start("totp");
  try {
    const tokens = await api("/totp/verify-login", { body });
    steps.done("totp");
    steps.start("success");
    rememberTokens(tokens);
    steps.done("success");
    window.location.assign("/");
  } catch (error) {
    const message = plainWords(error);
    steps.fail("totp", message);
    const locked = error instanceof ApiError && error.code === "too_many_attempts" && error.retryAfter;
    if (!locked && error instanceof ApiError && (error.code === "pass_auth_expired" || error.code === "too_many_attempts")) {
      backToPassword(message);
      return;
    }
    // The account rests for a while: the password again would not help; the wait is the answer.
    showError("totp-error", message);
    $("totp-code").value = "";
    $("recovery-code").value = "";
    if (error instanceof ApiError) holdFor(error.retryAfter, ...secondStepControls());
    (document.querySelector("#totp-section form:not(.d-none) input") ?? $("totp-code")).focus();
  }
}

$("login-form").addEventListener("submit", passwordStep);
$("totp-form").addEventListener("submit", (event) => {
  event.preventDefault();
  secondStep({ code: $("totp-code").value.trim() });
});
submitAtSixDigits($("totp-code"), $("totp-form"));
$("recovery-form").addEventListener("submit", (event) => {
  event.preventDefault();
  secondStep({ recoveryCode: $("recovery-code").value.trim() });
});
$("toggle-recovery").addEventListener("click", () => {
  const useRecovery = $("recovery-form").classList.contains("d-none");
  show($("recovery-form"), useRecovery);
  show($("totp-form"), !useRecovery);
  $("toggle-recovery").textContent = useRecovery ? "Use a code from your app" : "Use a recovery code";
  (useRecovery ? $("recovery-code") : $("totp-code")).focus();
});
pageReady();
