"""The production path: real nginx (deploy/nginx/cypher.conf as shipped, TLS) in front of real
gunicorn (three workers, production mode), guarding another application with auth_request.
Register, enrol TOTP, log in, reach the guarded app, refresh, log out, be refused; and every
static file served with a type a browser accepts. tests/e2e/test_through_nginx.py does the same
journey in Chromium."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from tests.nginx_server import Stack, cypher_behind_nginx, nginx_missing
from tests.opaque_client import OpaqueActions
from tests.static_types import STATIC, acceptable_type, static_files

pytestmark = pytest.mark.skipif(nginx_missing() is not None, reason=nginx_missing() or "")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with cypher_behind_nginx(tmp_path) as stack:
        yield stack


def test_through_nginx_over_tls_with_the_auth_request_gate(stack: Stack) -> None:
    browser = stack.client()
    outside = browser.get("/app/")
    assert outside.status_code == 302 and outside.headers["Location"].endswith("/login?reason=login-required")

    registered = OpaqueActions(browser).register("Alice", "correct horse battery staple")  # type: ignore[arg-type]
    assert registered.status_code == 201, registered.get_json()
    bearer = {"Authorization": f"Bearer {registered.get_json()['enrollmentToken']}"}
    secret = browser.post("/totp/setup", json={}, headers=bearer).get_json()["secret"]
    totp = pyotp.TOTP(secret)
    assert browser.post("/totp/verify-setup", json={"code": totp.now()}, headers=bearer).status_code == 200

    login = OpaqueActions(browser).login("alice", "correct horse battery staple")  # type: ignore[arg-type]
    assert login is not None and login.status_code == 200
    pass_auth_cookie = login.headers["Set-Cookie"]
    assert pass_auth_cookie.startswith("__Host-cypher_pass_auth=") and "Domain=" not in pass_auth_cookie
    assert {"Secure", "HttpOnly", "Path=/"} <= set(pass_auth_cookie.split("; "))
    # The pass-auth cookie goes back by itself; the browser's Origin passes the check.
    session = browser.post("/totp/verify-login", json={"code": totp.at(time.time() + 30)})
    assert session.status_code == 200, session.get_json()
    assert session.headers["Strict-Transport-Security"].startswith("max-age=")

    inside = browser.get("/app/")
    assert inside.status_code == 200 and inside.body == b"hello alice"
    sessions = browser.get("/api/sessions").get_json()["sessions"]
    assert sessions[0]["ip"] == "127.0.0.1"  # the client as nginx saw it (CYPHER_TRUSTED_PROXIES=1)

    assert browser.post("/api/refresh-token", json={}).status_code == 200
    assert browser.get("/app/").status_code == 200
    assert browser.post("/api/logout", json={}).status_code == 200
    assert browser.get("/app/").status_code == 302


def test_the_guarded_app_never_sees_cyphers_credentials(stack: Stack) -> None:
    browser = stack.client()
    registered = OpaqueActions(browser).register("Bob", "correct horse battery staple")  # type: ignore[arg-type]
    bearer = {"Authorization": f"Bearer {registered.get_json()['enrollmentToken']}"}
    totp = pyotp.TOTP(browser.post("/totp/setup", json={}, headers=bearer).get_json()["secret"])
    assert browser.post("/totp/verify-setup", json={"code": totp.now()}, headers=bearer).status_code == 200
    assert OpaqueActions(browser).login("bob", "correct horse battery staple") is not None  # type: ignore[arg-type]
    session = browser.post("/totp/verify-login", json={"code": totp.at(time.time() + 30)}).get_json()
    access, refresh = (
        f"__Host-cypher_access={session['accessToken']}",
        f"__Host-cypher_refresh={session['refreshToken']}",
    )
    pass_auth = "__Host-cypher_pass_auth=v4.local.pending"
    for cookies, left in (
        (access, "(none)"),
        (f"{access}; theme=dark", "theme=dark"),
        (f"theme=dark; {access}", "theme=dark"),
        (f"theme=dark; {access}; lang=fr", "theme=dark; lang=fr"),
        (f"my_cypher_access=keep; {access}", "my_cypher_access=keep"),
        # In production all three are __Host- cookies on Path=/: the browser sends them all here.
        (f"{access}; {refresh}; {pass_auth}", "(none)"),
        (f"{refresh}; theme=dark; {access};lang=fr; {pass_auth}", "theme=dark;lang=fr"),
        # Every spelling goes: a bare one left from before, a __Secure- one from a cookie domain.
        (f"cypher_refresh=r; theme=dark; __Secure-cypher_access=a; {access}", "theme=dark"),
        (
            f"{access}; x__Host-cypher_access=keep; __Host-cypher_accessory=keep",
            "x__Host-cypher_access=keep; __Host-cypher_accessory=keep",
        ),
        # More than four at once: the app gets no cookies at all rather than one token.
        (f"theme=dark; {access}; {refresh}; {pass_auth}; cypher_access=a; cypher_refresh=r", "(none)"),
    ):
        fresh = Stack(stack.base, stack.tls).client()  # no cookie jar of its own in the way
        inside = fresh.request("GET", "/app/", headers={"Cookie": cookies})
        assert inside.status_code == 200 and inside.body == b"hello bob", cookies
        assert inside.headers["X-Seen-Cookie"] == left
        assert inside.headers["X-Seen-Authorization"] == "(none)"
    bearer = {"Authorization": f"Bearer {session['accessToken']}"}
    by_bearer = Stack(stack.base, stack.tls).client().request("GET", "/app/", headers=bearer)
    assert by_bearer.status_code == 200 and by_bearer.headers["X-Seen-Authorization"] == "(none)"
    # A bare cypher_access, as a sibling subdomain could plant it, is no session in production.
    planted = (
        Stack(stack.base, stack.tls).client().request("GET", "/app/", headers={"Cookie": access[len("__Host-") :]})
    )
    assert planted.status_code == 302


def test_a_host_cypher_does_not_serve_is_refused_through_nginx(stack: Stack) -> None:
    """DNS rebinding: nginx passes the browser's Host on ($host), to the gate's subrequest too."""
    client = stack.client()
    for path in ("/login", "/api/opaque-config"):
        refused = client.request("GET", path, headers={"Host": "attacker.example"})
        assert refused.status_code == 400 and refused.get_json()["code"] == "invalid_host", path
    # The gate refuses the subrequest, so nginx lets nobody through (it answers 500, not the app).
    assert client.request("GET", "/app/", headers={"Host": "attacker.example"}).status_code == 500
    assert client.get("/login").status_code == 200


def test_every_static_file_has_a_type_the_browser_accepts(stack: Stack) -> None:
    client = stack.client()
    files = static_files()
    assert any(path.suffix == ".mjs" for path in files)  # the modules Debian's mime.types has no type for
    for path in files:
        response = client.get(f"/static/{path.relative_to(STATIC).as_posix()}")
        assert response.status_code == 200, path
        assert acceptable_type(path, response.headers["Content-Type"]), (path, response.headers["Content-Type"])
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.body == path.read_bytes()
