// The landing page: a visitor whose access token lapsed while the refresh token lives is still
// logged in; refresh silently and show the dashboard. The landing content stays hidden until that
// is decided, so a returning person never sees it flash past.
import { $, pageReady } from "./dom.js";
import { endSession, forget, hadSession, lostReason, refresh } from "./session.js";

pageReady();
if (hadSession()) {
  if (await refresh({ force: true })) {
    window.location.reload();
    await new Promise(() => {});  // the dashboard is on its way
  }
  // Ended on another device: say so. Merely ran out: this is a visitor again.
  if (lostReason() === "ended-elsewhere") await endSession("ended-elsewhere");
  forget();
}
$("landing").classList.remove("landing-pending");
