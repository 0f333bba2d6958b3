// The login page: OPAQUE (in a worker), then TOTP or a recovery code, each step shown as it happens.
import { api, ApiError, opaqueConfig } from "./api.js";
import { $, USERNAME, pageReady, show, showError, submitAtSixDigits } from "./dom.js";
import { normalisePassword, opaqueCall } from "./opaque-client.js";
import { rememberTokens } from "./session.js";
import { Steps } from "./steps.js";

const steps = new Steps();
const configPromise = opaqueConfig();

function backToPassword(message) {
  show($("totp-section"), false);
  show($("login-form"), true);
  showError("login-error", message);
  $("password").value = "";
  $("password").focus();
}

async function passwordStep(event) {
  event.preventDefault();
  showError("login-error", "");
  show($("login-reason"), false);
  steps.reset();
  $("login-submit").disabled = true;
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
    const init = await steps.run("send-ke1", () => api("/login/init", { body: { username, startLoginRequest } }));
    await steps.run("ke2", async () => {
      if (!init.loginResponse) throw new Error("The server sent no KE2.");
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
    steps.start("totp");
    show($("login-form"), false);
    show($("totp-section"), true);
    $("totp-code").focus();
  } catch (error) {
    showError("login-error", error.message);
  } finally {
    $("login-submit").disabled = false;
  }
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
    if (error instanceof ApiError && (error.code === "pass_auth_expired" || error.code === "too_many_attempts")) {
      steps.fail("totp", error.message);
      backToPassword(error.message);
      return;
    }
    steps.fail("totp", error.message);
    showError("totp-error", error.message);
    $("totp-code").value = "";
    $("recovery-code").value = "";
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
