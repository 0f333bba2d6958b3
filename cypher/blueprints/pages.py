"""The pages a person sees: server-rendered shells whose ES modules speak the JSON API."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from cypher.blueprints.authn import ACCESS_COOKIE
from cypher.services.errors import CypherError
from cypher.services.sessions import Principal
from cypher.wiring import services

bp = Blueprint("pages", __name__)

# Served on every HTML page: only our own scripts and styles; WebAssembly for OPAQUE's Argon2;
# data: images for the TOTP QR code.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# The original service's page addresses.
LEGACY_PATHS = {"/api/login": "pages.login", "/api/register": "pages.register", "/api/totp": "pages.register"}


def _principal() -> Principal | None:
    token = request.cookies.get(ACCESS_COOKIE)
    if not token:
        return None
    try:
        return services().sessions.verify(token)
    except CypherError:
        return None


SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
# Served over TLS only (nginx terminates it): browsers must never try plain HTTP.
STRICT_TRANSPORT_SECURITY = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")


@bp.after_app_request
def security_headers(response: Response) -> Response:
    """On every response; a header a view set itself is left as it is."""
    headers = [*SECURITY_HEADERS]
    if response.mimetype == "text/html":
        headers.append(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
    if current_app.config["CYPHER_ENV"] == "production":
        headers.append(STRICT_TRANSPORT_SECURITY)
    # One pass over the response's headers instead of one lookup per header: this runs on
    # every request, the nginx gateway's included.
    present = {name.lower() for name, _ in response.headers}
    for name, value in headers:
        if name.lower() not in present:
            response.headers.add(name, value)
    return response


@bp.get("/")
def index() -> str:
    principal = _principal()
    if principal is None:
        return render_template("index.html")
    return render_template("dashboard.html", username=principal.username)


@bp.get("/register")
def register() -> str:
    return render_template("register.html")


@bp.get("/login")
def login() -> str:
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
