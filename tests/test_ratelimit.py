"""Rate limits per client address on the authentication endpoints: 429 rate_limited with
Retry-After, in memory for one process and in Redis across several (when CYPHER_TEST_REDIS_URL
is set; `.ci/run` sets it when Redis answers)."""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Iterator

import pytest
import redis
from flask import Flask

from cypher import create_app
from cypher.ratelimit import AddressLimits, InProcessMovingWindow
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
    assert 0 < int(refused.headers["Retry-After"]) <= 60  # whole seconds, within the minute
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


@pytest.fixture(params=["memory", "redis"])
def storage_uri(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    if not REDIS_URL:
        pytest.skip("Redis: set CYPHER_TEST_REDIS_URL (.ci/run does when Redis answers)")
    return str(REDIS_URL)


def test_every_limit_written_is_enforced_in_its_own_window(storage_uri: str) -> None:
    limits = AddressLimits(storage_uri, "2 per hour; 3 per day", key_prefix=f"unit-{secrets.token_hex(4)}")
    assert [limits.hit("192.0.2.1", "opaque.login_init") for _ in range(2)] == [None, None]
    retry_after = limits.hit("192.0.2.1", "opaque.login_init")
    assert retry_after is not None and 3590 < retry_after <= 3600  # the hourly limit refused it
    # Another endpoint, or another address, is counted apart.
    assert limits.hit("192.0.2.1", "opaque.login_finish") is None
    assert limits.hit("192.0.2.2", "opaque.login_init") is None


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_in_process_window_moves_and_forgets_quiet_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeTime()
    monkeypatch.setattr(time, "time", clock)
    limits = AddressLimits("memory://", "2 per minute; 5 per hour", key_prefix="unit")
    assert limits.hit("192.0.2.1", "opaque.login_init") is None
    clock.now += 40
    assert limits.hit("192.0.2.1", "opaque.login_init") is None
    assert limits.hit("192.0.2.1", "opaque.login_init") == 20  # the first hit leaves the minute in 20 s
    clock.now += 20
    assert limits.hit("192.0.2.1", "opaque.login_init") is None  # it has left; the hour still counts
    window = limits._local
    assert len(window._hits) == 2  # one key per (address, endpoint, limit)
    clock.now += 3600  # past the longest window: the address has gone quiet
    for _ in range(InProcessMovingWindow.SWEEP_EVERY):  # a busy address brings the sweep round
        limits.hit("192.0.2.9", "opaque.login_finish")
    assert set(window._hits) == {
        item.key_for("unit", "192.0.2.9", "opaque.login_finish") for item in limits.items
    }  # the quiet address's counters were dropped, the busy one's kept


def test_a_limit_in_unknown_notation_stops_the_start(app_config: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        create_app({**app_config, "RATELIMIT_ENABLED": True, "RATELIMIT_AUTH": "thirty a minute"})


@pytest.mark.skipif(not REDIS_URL, reason="Redis: set CYPHER_TEST_REDIS_URL (.ci/run does when Redis answers)")
def test_counters_in_redis_keep_the_keys_flask_limiter_wrote(app_config: dict[str, object]) -> None:
    """Counters of a deployment that ran with Flask-Limiter still count after the upgrade."""
    prefix = f"cypher-test-{secrets.token_hex(4)}"
    app = create_app(
        {
            **app_config,
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_AUTH": "2 per minute",
            "RATELIMIT_STORAGE": REDIS_URL,
            "RATELIMIT_KEY_PREFIX": prefix,
        }
    )
    connection = redis.Redis.from_url(str(REDIS_URL))
    key = f"LIMITS:LIMITER/{prefix}/127.0.0.1/opaque.login_init/2/1/minute"  # the storage adds LIMITS:
    try:
        assert app.test_client().post("/login/init", json={}).status_code == 400
        assert connection.llen(key) == 1  # the moving window is a list of timestamps
        connection.lpush(key, str(time.time()))  # a request counted before the upgrade
        _error(app.test_client().post("/login/init", json={}), 429, "rate_limited")
    finally:
        connection.delete(key)
        connection.close()
        app.extensions["cypher"].store.dispose()


def test_a_redis_that_does_not_answer_is_replaced_by_per_process_counts(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing listens on the port: every request is still answered, limited in this process,
    counted in the fallback metric, and the outage is logged once, without the address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))  # a port that is bound but never listened on refuses connections
        port = probe.getsockname()[1]
        fallbacks: list[None] = []
        limits = AddressLimits(f"redis://127.0.0.1:{port}/0", "2 per minute", "unit", lambda: fallbacks.append(None))
        answers = [limits.hit("192.0.2.1", "opaque.login_init") for _ in range(4)]
    assert answers[:2] == [None, None] and all(isinstance(answer, int) and answer > 0 for answer in answers[2:])
    assert len(fallbacks) == 4 and limits.outage.down
    assert limits.shared_storage_answers() is False
    warnings = [record.getMessage() for record in caplog.records if record.name == "cypher.ratelimit"]
    assert warnings == ["rate-limit storage does not answer (ConnectionError): counting per process until it does"]
