"""CYPHER_ALLOWED_HOSTS against DNS rebinding: a page on attacker.example that points its own name
at Cypher's address still sends `Host: attacker.example`, and gets a 400 in the API's error shape
on every path (pages, static files, the API and the gateway) instead of an answer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from cypher.config import ConfigError, load_config
from tests.gunicorn_server import gunicorn
from tests.http_client import HttpResponse
from tests.test_opaque_api import _error

# One of each kind of path: a page, a static file, the API, the gateway, operations, no route at all.
PATHS = ("/login", "/static/js/login.js", "/api/opaque-config", "/auth/verify", "/healthz", "/no-such-path")


def _refused(response: HttpResponse) -> None:
    assert response.headers["Content-Type"] == "application/json", response.body
    _error(response, 400, "invalid_host")
    assert "attacker" not in response.body.decode()  # the name is not echoed back


def test_production_refuses_a_host_it_does_not_serve_through_gunicorn(tmp_path: Path) -> None:
    settings = {
        "CYPHER_ENV": "production",
        "CYPHER_SERVER_ID": "login.example.com",
        "CYPHER_ALLOWED_ORIGINS": "https://login.example.com",
        "CYPHER_ALLOWED_HOSTS": "login.example.com, 127.0.0.1",
        "CYPHER_TRUSTED_PROXIES": "1",
    }
    with gunicorn(tmp_path, settings, workers=1) as server:
        client = server.client
        for path in PATHS:
            _refused(client.request("GET", path, headers={"Host": "attacker.example"}))
            # Behind the trusted proxy, the host is the one the proxy names.
            _refused(
                client.request(
                    "GET", path, headers={"Host": "login.example.com", "X-Forwarded-Host": "attacker.example"}
                )
            )
        _refused(client.request("POST", "/login/init", {}, headers={"Host": "attacker.example:443"}))
        head = client.request("HEAD", "/auth/verify", headers={"Host": "attacker.example"})
        assert head.status_code == 400 and head.body == b""

        assert client.request("GET", "/healthz", headers={"Host": "login.example.com"}).status_code == 200
        assert client.request("GET", "/login", headers={"Host": "login.example.com:8443"}).status_code == 200
        # The gateway too judges the host the proxy names, not the one it connected to.
        behind_proxy = {"Host": "cypher.internal", "X-Forwarded-Host": "login.example.com"}
        _error(client.request("GET", "/auth/verify", headers=behind_proxy), 401, "invalid_token")
        assert client.request("GET", "/healthz", headers=behind_proxy).status_code == 200
        assert "Traceback" not in server.log()


def test_development_answers_only_local_names_by_default(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    for base_url in ("http://localhost", "http://127.0.0.1:5000"):
        assert client.get("/healthz", base_url=base_url).status_code == 200
    for path in PATHS:
        response = client.get(path, base_url="http://attacker.example")
        _error(response, 400, "invalid_host")
        assert response.headers["X-Content-Type-Options"] == "nosniff"  # still answered at the edge


def test_a_leading_dot_allows_every_subdomain(make_app: Callable[..., Flask]) -> None:
    client = make_app(ALLOWED_HOSTS=[".example.com"]).test_client()
    for allowed in ("http://example.com", "http://login.example.com"):
        assert client.get("/healthz", base_url=allowed).status_code == 200
    for refused in ("http://localhost", "http://example.com.attacker.example", "http://attacker-example.com"):
        _error(client.get("/healthz", base_url=refused), 400, "invalid_host")


def test_the_allowed_hosts_setting(tmp_path: Path) -> None:
    raw = " Login.Example.com , 127.0.0.1:8443,.example.org "
    hosts = load_config(tmp_path, {"CYPHER_ALLOWED_HOSTS": raw})["ALLOWED_HOSTS"]
    assert hosts == ["login.example.com", "127.0.0.1:8443", ".example.org"]
    assert load_config(tmp_path, {})["ALLOWED_HOSTS"] == []


@pytest.mark.parametrize("raw", ["https://login.example.com", "*", "login.example.com/", "[::1]", "a b.example"])
def test_an_allowed_host_that_is_not_a_host_name_is_refused(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigError, match="CYPHER_ALLOWED_HOSTS"):
        load_config(tmp_path, {"CYPHER_ALLOWED_HOSTS": raw})
