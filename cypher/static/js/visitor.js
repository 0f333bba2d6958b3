// The landing page: a visitor whose access token lapsed while the refresh token lives is still
// logged in; refresh silently and show the dashboard.
import { pageReady } from "./dom.js";
import { hadSession, refresh } from "./session.js";

pageReady();
if (hadSession() && (await refresh({ force: true }))) window.location.reload();
