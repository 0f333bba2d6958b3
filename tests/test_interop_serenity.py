"""Interop: the browser's OPAQUE library, @serenity-kit/opaque, under Node against the live server.

tests/interop/serenity_client.mjs speaks the HTTP API over a real loopback socket, exactly as the
browser does. Each Node run pays for wasm start-up and one Argon2id (64 MiB) per operation, so
every test starts Node as few times as it can and passes it several operations at once.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from cypher.keys import KeyPurpose
from cypher.services.login_state import LoginStateSealer
from cypher.services.sealing import Sealer
from cypher.services.tokens import TokenPurpose
from cypher.store.models import SpentLogin
from cypher.wiring import Services
from tests.conftest import SERVER_ID
from tests.live_server import LiveServer
from tests.opaque_client import OpaqueActions

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tests" / "interop" / "serenity_client.mjs"
LIBRARY = REPO / "cypher" / "static" / "vendor" / "opaque.js"
NODE = shutil.which("node")
NODE_TIMEOUT_SECONDS = 120

KEY_STRETCHING = {"argon2id-custom": {"iterations": 2, "memory": 65536, "parallelism": 1}}
PASSWORD = "correct horse ✓ bätterÿ staple"  # non-ASCII: both clients must send the same UTF-8
WRONG_PASSWORD = "correct horse ✓ bätterÿ stapler"

REGISTER_INIT_KEYS = ["username", "serverId", "registrationResponse", "registrationId"]
REGISTER_FINISH_KEYS = ["username", "enrollmentToken", "expiresIn"]
LOGIN_INIT_KEYS = ["loginId", "username", "serverId", "loginResponse"]
LOGIN_FINISH_KEYS = ["username", "passAuthToken", "expiresIn"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        NODE is None or not LIBRARY.is_file(),
        reason="interop needs `node` on PATH and cypher/static/vendor/opaque.js (`make install` copies it from npm)",
    ),
]

Operation = tuple[str, str, str]  # (register | login, username, password)


@pytest.fixture
def http_server(app: Flask) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server


def run_serenity(server: LiveServer, *operations: Operation) -> list[dict[str, Any]]:
    """Run the operations in one Node process; return its result per operation."""
    assert NODE is not None
    argv = [NODE, str(SCRIPT), server.url, *(word for operation in operations for word in operation)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=NODE_TIMEOUT_SECONDS, check=False)
    assert done.returncode == 0, f"node failed ({done.returncode}):\n{done.stderr}"
    lines = done.stdout.splitlines()
    assert len(lines) == 1, f"expected one JSON line, got:\n{done.stdout}"
    output = json.loads(lines[0])
    assert output["config"] == {"status": 200, "serverId": SERVER_ID, "keyStretching": KEY_STRETCHING}
    results: list[dict[str, Any]] = output["results"]
    assert [(result["op"], result["username"]) for result in results] == [(op, name) for op, name, _ in operations]
    return results


def assert_registered(result: dict[str, Any], username: str) -> None:
    assert result["init"]["status"] == 200, result["init"]
    assert result["init"]["keys"] == REGISTER_INIT_KEYS
    assert result["init"]["body"]["username"] == username
    assert result["init"]["body"]["serverId"] == SERVER_ID
    assert result["messageBytes"] == {"registrationRequest": 32, "registrationResponse": 64, "registrationRecord": 192}
    finish = result["finish"]
    assert finish["status"] == 201, finish
    assert finish["keys"] == REGISTER_FINISH_KEYS
    assert finish["body"]["username"] == username
    assert finish["body"]["enrollmentToken"].startswith("v4.local.")
    assert finish["body"]["expiresIn"] == 300


def assert_login_init(result: dict[str, Any], username: str) -> None:
    assert result["init"]["status"] == 200, result["init"]
    assert result["init"]["keys"] == LOGIN_INIT_KEYS
    assert result["init"]["body"]["username"] == username
    assert result["init"]["body"]["serverId"] == SERVER_ID
    assert result["messageBytes"]["ke1"] == 96
    assert result["messageBytes"]["ke2"] == 320


def assert_logged_in(result: dict[str, Any], username: str, services: Services) -> None:
    """KE3 accepted: 200 with a pass-auth token for `username` and its HttpOnly cookie."""
    assert_login_init(result, username)
    assert result["finishLoginUndefined"] is False
    assert result["messageBytes"]["ke3"] == 64
    assert result["sessionKeyBytes"] == 64
    assert result["exportKeyBytes"] == 64
    finish = result["finish"]
    assert finish["status"] == 200, finish
    assert login_spent(services, result["init"]["body"]["loginId"])
    assert finish["keys"] == LOGIN_FINISH_KEYS
    assert finish["body"]["username"] == username
    assert finish["body"]["expiresIn"] == 180
    claims = services.tokens.parse(finish["body"]["passAuthToken"], TokenPurpose.PASS_AUTH)
    assert claims.subject == username
    [cookie] = finish["setCookie"]
    assert cookie.startswith(f"cypher_pass_auth={finish['body']['passAuthToken']};")
    assert "HttpOnly" in cookie


def assert_refused_at_client(result: dict[str, Any], username: str, services: Services) -> None:
    """finishLogin returned undefined and nothing went to /login/finish: the loginId is unspent."""
    assert_login_init(result, username)
    assert result["finishLoginUndefined"] is True
    assert result["finish"] is None
    assert "sessionKeyBytes" not in result
    assert not login_spent(services, result["init"]["body"]["loginId"])


def login_spent(services: Services, login_id: str) -> bool:
    """Whether /login/finish has used this loginId."""
    opened = LoginStateSealer(Sealer(services.keyring[KeyPurpose.AT_REST])).open(login_id)
    assert opened is not None, "not a loginId of this server"
    with services.store.engine.connect() as session:
        return session.scalar(select(SpentLogin.id).where(SpentLogin.id == opened.spent_key)) is not None


def test_serenity_kit_registers_and_logs_in(
    http_server: LiveServer, services: Services, activate: Callable[[str], None]
) -> None:
    # Mixed case on the way in: the client must use the canonical name the server returns.
    registered, pending = run_serenity(
        http_server, ("register", "Alice.Serenity", PASSWORD), ("login", "alice.serenity", PASSWORD)
    )
    assert_registered(registered, "alice.serenity")
    assert_login_init(pending, "alice.serenity")
    assert pending["finishLoginUndefined"] is False  # the password is right ...
    assert pending["finish"]["status"] == 403  # ... but TOTP enrolment is not done
    assert pending["finish"]["body"]["code"] == "account_pending"
    assert "passAuthToken" not in pending["finish"]["body"]
    assert pending["finish"]["setCookie"] == []

    activate("alice.serenity")
    good, wrong, unknown = run_serenity(
        http_server,
        ("login", "ALICE.serenity", PASSWORD),
        ("login", "alice.serenity", WRONG_PASSWORD),
        ("login", "nobody.here", PASSWORD),
    )
    assert_logged_in(good, "alice.serenity", services)
    assert_refused_at_client(wrong, "alice.serenity", services)
    # An unknown name looks like a known one at /login/init and fails the same way, at the client.
    assert_refused_at_client(unknown, "nobody.here", services)
    assert unknown["init"]["keys"] == good["init"]["keys"]
    assert unknown["messageBytes"] == wrong["messageBytes"]


def test_libopaque_and_serenity_kit_accounts_cross_over(
    http_server: LiveServer, services: Services, auth: OpaqueActions, activate: Callable[[str], None]
) -> None:
    # Registered with libopaque (tests/opaque_client.py), logged in with serenity-kit ...
    response = auth.register("Bob.Libopaque", PASSWORD)
    assert response.status_code == 201, response.get_json()
    activate("bob.libopaque")
    # ... and registered with serenity-kit, logged in with libopaque.
    registered, logged_in = run_serenity(
        http_server, ("register", "carol.serenity", PASSWORD), ("login", "bob.libopaque", PASSWORD)
    )
    assert_registered(registered, "carol.serenity")
    assert_logged_in(logged_in, "bob.libopaque", services)

    activate("carol.serenity")
    response = auth.login("carol.serenity", PASSWORD)
    assert response is not None, "libopaque refused the password of a serenity-kit registration"
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["username"] == "carol.serenity"
    assert auth.login("carol.serenity", WRONG_PASSWORD) is None
