"""The production server: real gunicorn with three workers starting together on a fresh instance
folder (one keys file, migrations once), serving the protocol, logging no token."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gunicorn_server import gunicorn
from tests.opaque_client import OpaqueActions


def test_three_workers_start_together_and_serve(tmp_path: Path) -> None:
    with gunicorn(tmp_path, {}) as server:
        instance = tmp_path / "instance"
        assert sorted(path.name for path in instance.glob("keys*")) == ["keys.json"]
        # Requests spread over the workers: every one of them reads the same keys and database.
        actions = OpaqueActions(server.client)  # type: ignore[arg-type]
        registered = actions.register("gunicorn.user", "correct horse battery staple")
        assert registered.status_code == 201, registered.get_json()
        for _ in range(6):
            login = actions.login("gunicorn.user", "correct horse battery staple")
            assert login is not None and login.status_code == 403  # pending: TOTP not enrolled
            assert login.get_json()["code"] == "account_pending"
        metrics = server.client.get("/metrics")  # from loopback: allowed; summed over the three workers
        assert metrics.status_code == 200
        text = metrics.body.decode()
        # The six logins (403: pending) went to several workers; the scrape sums them all.
        assert 'cypher_login_steps_total{result="failure",step="password"} 6.0' in text
        assert "cypher_active_sessions 0.0" in text
        log = server.log()
    assert log.count("Booting worker") == 3
    assert "v4.local." not in log and "enrollmentToken" not in log  # no token in the access log


def test_no_control_socket_that_two_instances_would_share(tmp_path: Path) -> None:
    home, runtime = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    runtime.mkdir()
    places = {"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}  # where gunicorn would put it
    with gunicorn(tmp_path / "one", places, workers=1), gunicorn(tmp_path / "two", places, workers=1) as second:
        assert second.client.get("/healthz").status_code == 200
        assert list(home.rglob("*.ctl")) == [] and list(runtime.rglob("*.ctl")) == []


def test_the_metrics_directory_it_made_is_gone_after_it_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"  # gunicorn's temporary directories go here
    scratch.mkdir()
    settings = {"TMPDIR": str(scratch)}
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)  # deploy/gunicorn.conf.py makes its own
    with gunicorn(tmp_path, settings, workers=1) as server:
        assert server.client.get("/healthz").status_code == 200
        assert [path.name.startswith("cypher-metrics-") for path in scratch.iterdir()] == [True]
    assert list(scratch.iterdir()) == []
