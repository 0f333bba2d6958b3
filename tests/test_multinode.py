"""Two machines' worth of Cypher: two gunicorn instances sharing one PostgreSQL, one Redis and one
keys file. Each step of a login may land on either; a revocation or a rate limit on one holds on
the other. Runs when CYPHER_TEST_DATABASE_URL and CYPHER_TEST_REDIS_URL are set (.ci/run sets them)."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyotp
import pytest

from cypher.keys import load_or_create_keyring
from tests.gunicorn_server import gunicorn
from tests.opaque_client import OpaqueActions, b64, finish_login, start_login, unb64

POSTGRES_URL = os.environ.get("CYPHER_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("CYPHER_TEST_REDIS_URL")
PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.skipif(
    not (POSTGRES_URL and REDIS_URL),
    reason="needs CYPHER_TEST_DATABASE_URL and CYPHER_TEST_REDIS_URL (.ci/run sets them when the services answer)",
)


@pytest.fixture
def shared_schema() -> Iterator[str]:
    assert POSTGRES_URL is not None
    schema = f"nodes_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_two_nodes_share_everything(tmp_path: Path, shared_schema: str) -> None:
    keys_file = tmp_path / "shared" / "keys.json"
    load_or_create_keyring(keys_file)  # provisioned once, copied to every machine
    settings = {
        "CYPHER_DATABASE_URL": shared_schema,
        "CYPHER_KEYS_FILE": str(keys_file),
        "CYPHER_RATELIMIT_ENABLED": "true",
        "CYPHER_RATELIMIT_STORAGE": str(REDIS_URL),
        "CYPHER_RATELIMIT_KEY_PREFIX": f"nodes-{secrets.token_hex(4)}",
        "CYPHER_RATELIMIT_AUTH": "4 per minute",
    }
    with gunicorn(tmp_path / "a", settings, workers=2) as a, gunicorn(tmp_path / "b", settings, workers=2) as b:
        registered = OpaqueActions(a.client).register("nodes.user", PASSWORD)  # type: ignore[arg-type]
        assert registered.status_code == 201, registered.get_json()
        bearer = {"Authorization": f"Bearer {registered.get_json()['enrollmentToken']}"}
        secret = a.client.request("POST", "/totp/setup", {}, bearer).get_json()["secret"]
        activated = b.client.request("POST", "/totp/verify-setup", {"code": pyotp.TOTP(secret).now()}, bearer)
        assert activated.status_code == 200, activated.get_json()

        # /login/init on A, /login/finish on B: the login state lives in the shared database.
        start = start_login(PASSWORD)
        init = a.client.post("/login/init", json={"username": "nodes.user", "startLoginRequest": b64(start.ke1)})
        body = init.get_json()
        ke3 = finish_login(start, unb64(body["loginResponse"]), body["username"], body["serverId"])
        assert ke3 is not None
        finished = b.client.post("/login/finish", json={"loginId": body["loginId"], "finishLoginRequest": b64(ke3)})
        assert finished.status_code == 200, finished.get_json()
        pass_auth = finished.get_json()["passAuthToken"]
        code = pyotp.TOTP(secret).at(time.time() + 30)
        session = a.client.post("/totp/verify-login", json={"passAuthToken": pass_auth, "code": code}).get_json()

        refreshed = b.client.post("/api/refresh-token", json={"refreshToken": session["refreshToken"]})
        assert refreshed.status_code == 200, refreshed.get_json()
        access = {"Authorization": f"Bearer {refreshed.get_json()['accessToken']}"}
        assert b.client.request("POST", "/api/verify-access", {}, access).status_code == 200
        assert a.client.request("POST", "/api/logout", {}, access).status_code == 200  # revoke on A ...
        assert b.client.request("POST", "/api/verify-access", {}, access).status_code == 401  # ... holds on B
        assert b.client.request("GET", "/auth/verify", None, access).status_code == 401

        # A rate limit reached through A holds on B (one Redis counts for both). The
        # registration above was /register/init's first request; two more go to A.
        for _ in range(2):
            assert a.client.post("/register/init", json={}).status_code == 400
        assert b.client.post("/register/init", json={}).status_code == 400  # the 4th of 4 allowed
        limited = b.client.post("/register/init", json={})
        assert limited.status_code == 429 and limited.get_json()["code"] == "rate_limited"
