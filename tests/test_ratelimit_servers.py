"""Rate limits with the real servers (issue 16, defect 6): gunicorn's workers share one count in
Redis, production refuses per-process counts when several workers serve, and a Redis that stops
leaves every request answered, limited per process, until it answers again."""

from __future__ import annotations

import os
import re
import secrets
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from tests.gunicorn_server import gunicorn, refused_start
from tests.private_servers import private_redis

REDIS_URL = os.environ.get("CYPHER_TEST_REDIS_URL")
PRODUCTION = {
    "CYPHER_ENV": "production",
    "CYPHER_SERVER_ID": "cypher.test",
    "CYPHER_ALLOWED_ORIGINS": "https://cypher.test",
    "CYPHER_ALLOWED_HOSTS": "127.0.0.1",  # the name the tests reach gunicorn by
    "CYPHER_RATELIMIT_ENABLED": "true",
}
LOGIN_INIT = "/login/init"  # an empty body is a 400, counted like any other request


def _statuses(client: object, count: int) -> Counter[int]:
    answers: Counter[int] = Counter()
    for _ in range(count):
        response = client.post(LOGIN_INIT, json={})  # type: ignore[attr-defined]
        assert response.status_code in (400, 429), response.body
        if response.status_code == 429:
            assert response.get_json()["code"] == "rate_limited" and int(response.headers["Retry-After"]) > 0
        answers[response.status_code] += 1
    return answers


def test_production_refuses_per_process_counts_with_several_workers(tmp_path: Path) -> None:
    log = refused_start(tmp_path, {**PRODUCTION, "CYPHER_RATELIMIT_STORAGE": "memory://"}, workers=4)
    assert "rate limits would be counted per process (CYPHER_RATELIMIT_STORAGE=memory://) while 4 processes" in log
    with gunicorn(tmp_path / "one", {**PRODUCTION, "CYPHER_RATELIMIT_STORAGE": "memory://"}, workers=1) as one:
        assert one.client.get("/readyz").status_code == 200  # one worker: its own count is the count


@pytest.mark.skipif(not REDIS_URL, reason="Redis: set CYPHER_TEST_REDIS_URL (.ci/run does when Redis answers)")
def test_thirty_per_minute_admits_thirty_across_four_workers(tmp_path: Path) -> None:
    settings = {
        **PRODUCTION,
        "CYPHER_RATELIMIT_STORAGE": str(REDIS_URL),
        "CYPHER_RATELIMIT_KEY_PREFIX": f"workers-{secrets.token_hex(4)}",
        "CYPHER_RATELIMIT_AUTH": "30 per minute",
    }
    with gunicorn(tmp_path, settings, workers=4) as server:
        assert _statuses(server.client, 60) == {400: 30, 429: 30}
        log = server.log()
    assert log.count("Booting worker") == 4


def test_a_stopped_redis_leaves_per_process_limits_until_it_answers_again(tmp_path: Path) -> None:
    with private_redis(tmp_path / "redis") as private:
        settings = {
            "CYPHER_RATELIMIT_ENABLED": "true",
            "CYPHER_RATELIMIT_STORAGE": private.url,
            "CYPHER_RATELIMIT_AUTH": "5 per minute",
        }
        with gunicorn(tmp_path / "cypher", settings, workers=2) as server:
            counters = redis.Redis.from_url(private.url)
            assert _statuses(server.client, 3) == {400: 3}
            assert counters.keys("LIMITS:*") != []  # counted in Redis
            counters.close()

            private.stop()
            # Each worker counts on its own now: at least the limit, at most one limit per worker.
            during = _statuses(server.client, 20)
            assert 5 <= during[400] <= 10 and during[400] + during[429] == 20
            degraded = server.client.get("/readyz")  # still serving: a load balancer must keep it
            assert degraded.status_code == 200 and degraded.get_json() == {
                "status": "degraded",
                "database": "up",
                "redis": "down",
            }
            assert server.client.get("/healthz").status_code == 200
            metrics = server.client.get("/metrics").body.decode()
            assert "cypher_ratelimit_fallback_requests_total 20.0" in metrics  # summed over both workers
            outage_lines = [line for line in server.log().splitlines() if "rate-limit storage does not answer" in line]
            assert 1 <= len(outage_lines) <= 2  # once per worker that saw it, not once per request
            assert all(str(private.port) not in line for line in outage_lines)

            private.start()  # empty, as after a crash without persistence
            restarted = time.monotonic()
            counters = redis.Redis.from_url(private.url)
            while not counters.keys("LIMITS:*"):  # a worker asks Redis again within SHARED_RETRY_SECONDS
                server.client.post(LOGIN_INIT, json={})
                assert time.monotonic() - restarted < 60, "counting did not move back to Redis"
                time.sleep(0.2)
            recovery = time.monotonic() - restarted
            counters.close()
            # A worker that met the outage says so on its next request after Redis is back; the
            # keys above may have come from another worker.
            while not re.search(r"rate-limit storage answers again", server.log()):
                server.client.post(LOGIN_INIT, json={})
                assert time.monotonic() - restarted < 60, "no worker said Redis answers again"
                time.sleep(0.2)
            print(f"\nRedis restarted: rate limits counted in Redis again after {recovery:.2f} s")
            ready = server.client.get("/readyz")
            assert ready.status_code == 200 and ready.get_json() == {"status": "ready", "database": "up", "redis": "up"}
