"""The session cookies in production: `__Host-` names (Secure, Path=/, no Domain), which a sibling
subdomain can neither set nor shadow, read and cleared under that spelling only; `__Secure-` for
the access cookie when CYPHER_COOKIE_DOMAIN shares it with sibling subdomains."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cypher.config import ConfigError, load_config
from cypher.services.clock import ManualClock
from tests.auth_actions import AuthActions, Enrolled
from tests.test_opaque_api import _error

ORIGIN = "https://login.example.com"
PRODUCTION = {
    "CYPHER_ENV": "production",
    "COOKIE_SECURE": True,
    "ALLOWED_ORIGINS": [ORIGIN],
    "ALLOWED_HOSTS": ["login.example.com"],
    # The test client then speaks to https://login.example.com, as a browser would.
    "SERVER_NAME": "login.example.com",
    "PREFERRED_URL_SCHEME": "https",
}
PASSWORD = "correct horse battery staple"


def set_cookies(response: Any) -> dict[str, set[str]]:
    """Each Set-Cookie header by cookie name: its `name=value` and attributes, as a set."""
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        parts = header.split("; ")
        cookies[parts[0].split("=", 1)[0]] = set(parts)
    return cookies


def host_only_secure(attributes: set[str]) -> bool:
    """What a browser demands of a `__Host-` cookie, with our HttpOnly and SameSite=Strict."""
    return {"Secure", "HttpOnly", "Path=/", "SameSite=Strict"} <= attributes and not any(
        attribute.startswith("Domain=") for attribute in attributes
    )


@pytest.fixture
def production(make_app: Callable[..., Flask]) -> Flask:
    return make_app(**PRODUCTION)


@pytest.fixture
def browser(production: Flask) -> FlaskClient:
    return production.test_client()


@pytest.fixture
def browser_actions(browser: FlaskClient, clock: ManualClock) -> AuthActions:
    return AuthActions(browser, clock)


def test_production_cookies_are_host_prefixed_secure_on_the_root_without_domain(
    browser: FlaskClient, browser_actions: AuthActions
) -> None:
    user = browser_actions.enrol("alice", PASSWORD)
    password_step = browser_actions.opaque.login(user.username, user.password)
    assert password_step is not None and password_step.status_code == 200
    pass_auth = set_cookies(password_step)
    assert list(pass_auth) == ["__Host-cypher_pass_auth"]
    assert host_only_secure(pass_auth["__Host-cypher_pass_auth"])

    # The second step takes the pass-auth cookie back, under its prefixed name.
    second_step = browser.post(
        "/totp/verify-login", json={"code": browser_actions.code(user.secret)}, headers={"Origin": ORIGIN}
    )
    assert second_step.status_code == 200, second_step.get_json()
    session = set_cookies(second_step)
    assert set(session) == {"__Host-cypher_access", "__Host-cypher_refresh", "__Host-cypher_pass_auth"}
    assert all(host_only_secure(attributes) for attributes in session.values())
    assert "Max-Age=0" in session["__Host-cypher_pass_auth"]  # cleared with the attributes it was set with

    refreshed = browser.post("/api/refresh-token", headers={"Origin": ORIGIN})  # by the refresh cookie
    assert refreshed.status_code == 200, refreshed.get_json()
    assert set(set_cookies(refreshed)) == {"__Host-cypher_access", "__Host-cypher_refresh"}
    assert browser.get("/auth/verify").headers["X-Cypher-User"] == "alice"

    logout = browser.post("/api/logout", headers={"Origin": ORIGIN})
    assert logout.status_code == 200, logout.get_json()
    cleared = set_cookies(logout)
    assert set(cleared) == {"__Host-cypher_access", "__Host-cypher_refresh"}
    # A browser drops a __Host- deletion that lacks Secure or Path=/, and would keep the token.
    assert all(host_only_secure(attributes) and "Max-Age=0" in attributes for attributes in cleared.values())
    _error(browser.get("/auth/verify"), 401, "invalid_token")


def test_a_cookie_planted_without_the_host_prefix_is_no_session(
    production: Flask, browser_actions: AuthActions
) -> None:
    """evil.example.com can set `cypher_access=<a token of its choosing>; Domain=example.com` (or
    `__Secure-cypher_access`, over HTTPS) for login.example.com; Cypher must not read it."""
    tokens = browser_actions.session(browser_actions.enrol("mallory", PASSWORD))
    access, refresh = tokens["accessToken"], tokens["refreshToken"]
    planted = production.test_client(use_cookies=False)
    for name in ("cypher_access", "__Secure-cypher_access"):
        cookie = {"Cookie": f"{name}={access}", "Origin": ORIGIN}
        _error(planted.get("/auth/verify", headers=cookie), 401, "invalid_token")
        _error(planted.get("/api/sessions", headers=cookie), 401, "invalid_token")
        _error(planted.post("/api/logout", headers=cookie), 401, "invalid_token")
        verify = planted.post("/api/verify-access", headers=cookie)
        assert verify.status_code == 401 and verify.get_json()["valid"] is False
        assert "mallory" not in planted.get("/", headers=cookie).text  # the signed-out page
    for name in ("cypher_refresh", "__Secure-cypher_refresh"):
        refused = planted.post("/api/refresh-token", headers={"Cookie": f"{name}={refresh}", "Origin": ORIGIN})
        _error(refused, 401, "invalid_token")

    # The same token under the __Host- name, which only login.example.com itself can set, is the session.
    genuine = {"Cookie": f"__Host-cypher_access={access}"}
    assert planted.get("/auth/verify", headers=genuine).headers["X-Cypher-User"] == "mallory"
    assert "mallory" in planted.get("/", headers=genuine).text


def test_a_cookie_domain_shares_only_the_access_cookie_as_secure_prefixed(
    make_app: Callable[..., Flask], clock: ManualClock
) -> None:
    app = make_app(**PRODUCTION, COOKIE_DOMAIN="example.com")
    browser = app.test_client()
    actions = AuthActions(browser, clock)
    login = actions.login(actions.enrol("alice", PASSWORD))
    assert login.status_code == 200, login.get_json()
    cookies = set_cookies(login)
    assert {"Secure", "HttpOnly", "Path=/", "Domain=example.com", "SameSite=Strict"} <= cookies[
        "__Secure-cypher_access"
    ]
    assert host_only_secure(cookies["__Host-cypher_refresh"])  # the refresh token stays at home

    # A guarded app on app.example.com: its nginx asks the gate with the browser's cookies for it.
    sibling = app.test_client(use_cookies=False)
    access = login.get_json()["accessToken"]
    shared = sibling.get("/auth/verify", headers={"Cookie": f"__Secure-cypher_access={access}"})
    assert shared.status_code == 200 and shared.headers["X-Cypher-User"] == "alice"
    _error(sibling.get("/auth/verify", headers={"Cookie": f"cypher_access={access}"}), 401, "invalid_token")

    cleared = set_cookies(browser.post("/api/logout", headers={"Origin": ORIGIN}))
    assert {"Domain=example.com", "Secure", "Max-Age=0"} <= cleared["__Secure-cypher_access"]


@pytest.mark.parametrize(
    ("raw", "domain"), [("example.com", "example.com"), (".Example.COM", "example.com"), ("", None)]
)
def test_the_cookie_domain_setting(tmp_path: Path, raw: str, domain: str | None) -> None:
    assert load_config(tmp_path, {"CYPHER_COOKIE_DOMAIN": raw})["COOKIE_DOMAIN"] == domain


@pytest.mark.parametrize("raw", ["com", "https://example.com", "example.com/", "*.example.com", "exa mple.com"])
def test_a_cookie_domain_that_is_not_a_parent_domain_is_refused(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigError, match="CYPHER_COOKIE_DOMAIN"):
        load_config(tmp_path, {"CYPHER_COOKIE_DOMAIN": raw})


def test_development_over_plain_http_keeps_the_bare_path_scoped_names(
    client: FlaskClient, actions: AuthActions, user: Enrolled
) -> None:
    cookies = set_cookies(actions.login(user))
    assert {"Path=/", "HttpOnly"} <= cookies["cypher_access"] and "Secure" not in cookies["cypher_access"]
    assert "Path=/api/refresh-token" in cookies["cypher_refresh"]
    assert "Path=/totp" in cookies["cypher_pass_auth"]
