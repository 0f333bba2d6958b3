"""The production server: real gunicorn with three workers starting together on a fresh instance
folder (one keys file, migrations once), serving the protocol, logging no token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http_client import HttpClient
from tests.opaque_client import OpaqueActions

REPO = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[tuple[HttpClient, Path, subprocess.Popen[bytes]]]:
    port = _free_port()
    log_path = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "CYPHER_INSTANCE_PATH": str(tmp_path / "instance"),
        "CYPHER_BIND": f"127.0.0.1:{port}",
        "CYPHER_WORKERS": "3",
        "CYPHER_RATELIMIT_ENABLED": "false",
        "CYPHER_DATABASE_URL": "",
        "CYPHER_KEYS_FILE": "",
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(GUNICORN), "-c", "deploy/gunicorn.conf.py", "wsgi:app"], cwd=REPO, env=env, stdout=log, stderr=log
        )
    client = HttpClient(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "gunicorn did not answer within 60 s:\n" + log_path.read_text()
            time.sleep(0.2)
        yield client, log_path, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_three_workers_start_together_and_serve(gunicorn: tuple[HttpClient, Path, subprocess.Popen[bytes]]) -> None:
    client, log_path, _process = gunicorn
    instance = log_path.parent / "instance"
    assert sorted(path.name for path in instance.glob("keys*")) == ["keys.json"]
    # Requests spread over the workers: every one of them reads the same keys and database.
    actions = OpaqueActions(client)  # type: ignore[arg-type]
    registered = actions.register("gunicorn.user", "correct horse battery staple")
    assert registered.status_code == 201, registered.get_json()
    for _ in range(6):
        login = actions.login("gunicorn.user", "correct horse battery staple")
        assert login is not None and login.status_code == 403  # pending: TOTP not enrolled
        assert login.get_json()["code"] == "account_pending"
    metrics = client.get("/metrics")  # from loopback: allowed; summed over the three workers
    assert metrics.status_code == 200
    text = metrics.body.decode()
    # The six logins (403: pending) went to several workers; the scrape sums them all.
    assert 'cypher_login_steps_total{result="failure",step="password"} 6.0' in text
    assert "cypher_active_sessions 0.0" in text
    assert 'endpoint="opaque.login_finish"' in text
    log = log_path.read_text()
    assert log.count("Booting worker") == 3
    assert "v4.local." not in log and "enrollmentToken" not in log  # no token in the access log
