"""Rate limits per client address on the authentication endpoints: 429 rate_limited with
Retry-After, in memory for one process and in Redis across several (when CYPHER_TEST_REDIS_URL
is set; `.ci/run` sets it when Redis answers)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from flask import Flask

from cypher import create_app
from tests.test_opaque_api import _error

REDIS_URL = os.environ.get("CYPHER_TEST_REDIS_URL")


@pytest.fixture
def limited(app_config: dict[str, object]) -> Iterator[Flask]:
    app = create_app({**app_config, "RATELIMIT_ENABLED": True, "RATELIMIT_AUTH": "3 per minute"})
    yield app
    app.extensions["cypher"].store.dispose()


def test_the_fourth_request_in_a_minute_is_refused(limited: Flask) -> None:
    client = limited.test_client()
    for _ in range(3):
        assert client.post("/login/init", json={}).status_code == 400  # counted, whatever the outcome
    refused = client.post("/login/init", json={})
    _error(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) > 0
    # Each endpoint has its own count, and other addresses their own.
    assert client.post("/register/init", json={}).status_code == 400
    other = client.post("/login/init", json={}, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 400
    assert client.get("/healthz").status_code == 200  # operations are not limited


def test_the_gateway_and_pages_are_never_limited_and_spend_nothing(limited: Flask) -> None:
    client = limited.test_client()
    for _ in range(10):
        assert client.get("/auth/verify").status_code == 401  # no session, but never 429
        assert client.get("/login").status_code == 200
        assert "Retry-After" not in client.get("/auth/verify").headers
    for _ in range(3):  # the auth endpoints' budget is untouched, and still enforced
        assert client.post("/login/init", json={}).status_code == 400
    _error(client.post("/login/init", json={}), 429, "rate_limited")


@pytest.mark.skipif(not REDIS_URL, reason="Redis: set CYPHER_TEST_REDIS_URL (.ci/run does when Redis answers)")
def test_a_limit_reached_through_one_worker_holds_on_another(app_config: dict[str, object]) -> None:
    shared = {
        **app_config,
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_AUTH": "2 per minute",
        "RATELIMIT_STORAGE": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": f"cypher-test-{secrets.token_hex(4)}",  # this test's own counters
    }
    first, second = create_app(shared), create_app(shared)
    try:
        for _ in range(2):
            assert first.test_client().post("/login/init", json={}).status_code == 400
        _error(second.test_client().post("/login/init", json={}), 429, "rate_limited")
    finally:
        for app in (first, second):
            app.extensions["cypher"].store.dispose()


@pytest.mark.parametrize("trusted", [0, 1])
def test_forwarded_addresses_count_only_behind_a_trusted_proxy(app_config: dict[str, object], trusted: int) -> None:
    app = create_app(
        {**app_config, "RATELIMIT_ENABLED": True, "RATELIMIT_AUTH": "1 per minute", "TRUSTED_PROXIES": trusted}
    )
    try:
        client = app.test_client()
        for address in ("198.51.100.1", "198.51.100.2"):
            response = client.post("/login/init", json={}, headers={"X-Forwarded-For": address})
            # Behind a trusted proxy each client has its own count; otherwise the header is a lie
            # anyone can tell, and every request counts against the connecting address.
            expected = 400 if trusted or address.endswith(".1") else 429
            assert response.status_code == expected
    finally:
        app.extensions["cypher"].store.dispose()
