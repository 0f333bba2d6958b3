// The landing page: a visitor whose access token lapsed while the refresh token lives is still
// logged in; refresh silently and show the dashboard.
import { hadSession, refresh } from "./session.js";

if (hadSession() && (await refresh({ force: true }))) window.location.reload();
