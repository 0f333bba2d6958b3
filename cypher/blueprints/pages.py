"""The pages a person sees: server-rendered shells whose ES modules speak the JSON API."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from cypher.request_auth import session_cookies
from cypher.services.errors import CypherError
from cypher.services.sessions import Principal
from cypher.wiring import services

bp = Blueprint("pages", __name__)

# The original service's page addresses.
LEGACY_PATHS = {"/api/login": "pages.login", "/api/register": "pages.register", "/api/totp": "pages.register"}


def _principal() -> Principal | None:
    token = request.cookies.get(session_cookies().access.name)
    if not token:
        return None
    try:
        return services().sessions.verify(token)
    except CypherError:
        return None


@bp.get("/")
def index() -> str:
    principal = _principal()
    if principal is None:
        return render_template("index.html")
    return render_template("dashboard.html", username=principal.username)


@bp.after_request
def not_stored(response: BaseResponse) -> BaseResponse:
    # A page may show an account's data (the dashboard at / shares its address with the landing
    # page): Back after logging out must ask the server again, not show the browser's copy.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/register")
def register() -> str | BaseResponse:
    if _principal() is not None:
        return redirect(url_for("pages.index"))
    return render_template("register.html")


@bp.get("/login")
def login() -> str | BaseResponse:
    if _principal() is not None:
        return redirect(url_for("pages.index"))
    return render_template("login.html", reason=request.args.get("reason", ""))


@bp.get("/account")
def account() -> str:
    # Rendered even when the access token has lapsed: the page's session manager refreshes it,
    # or sends the person to /login.
    principal = _principal()
    return render_template("account.html", username=principal.username if principal else "")


def _legacy_redirect() -> BaseResponse:
    return redirect(url_for(LEGACY_PATHS[request.path]), code=301)


for legacy_path in LEGACY_PATHS:
    bp.add_url_rule(legacy_path, f"legacy{legacy_path.replace('/', '_')}", _legacy_redirect, methods=["GET"])
