"""Faults with the real servers (issue 16): a PostgreSQL stopped under load, a SQLite file that
cannot be written, a gunicorn worker killed in the middle of logins, and a full restart. Each
test prints the recovery time it measured (pytest -s shows them)."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cypher.domain import STATUS_ACTIVE, STATUS_PENDING
from cypher.services.clock import ManualClock
from cypher.store import Store
from cypher.store.models import PassAuthUse, RecoveryCode, User, UserSession
from tests.auth_actions import AuthActions
from tests.gunicorn_server import gunicorn, worker_pids
from tests.http_client import HttpClient, HttpResponse
from tests.opaque_client import OpaqueActions, b64, start_login
from tests.private_servers import private_postgres

PASSWORD = "correct horse battery staple"
WAIT_SECONDS = 60  # the longest any step may take before the test gives up


def _actions(client: HttpClient) -> AuthActions:
    # AuthActions moves its clock 30 s before each TOTP code: the first code is for now, the next
    # for the following step, both within the server's drift window.
    return AuthActions(client, ManualClock(datetime.now(UTC) - timedelta(seconds=30)))  # type: ignore[arg-type]


def _assert_unavailable(response: HttpResponse) -> None:
    assert response.status_code == 503, response.body
    body = response.get_json()
    assert set(body) == {"error", "code"} and body["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0


def _wait_until(condition: Callable[[], bool], what: str) -> float:
    """Poll until `condition` holds; the moment it did (time.monotonic())."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)
    return time.monotonic()


@dataclass
class Answer:
    at: float  # time.monotonic() when it arrived
    path: str
    response: HttpResponse


class RequestStream:
    """One client sending /login/init and /auth/verify in turn, without pause, on its own thread."""

    def __init__(self, client: HttpClient, username: str, access_token: str) -> None:
        self._requests = [
            ("POST", "/login/init", {"username": username, "startLoginRequest": b64(start_login(PASSWORD).ke1)}, {}),
            ("GET", "/auth/verify", None, {"Authorization": f"Bearer {access_token}"}),
        ]
        self._client = client
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.answers: list[Answer] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            for method, path, body, headers in self._requests:
                response = self._client.request(method, path, body, headers)
                self.answers.append(Answer(time.monotonic(), path, response))

    def first(self, status: int, since: float) -> float | None:
        return next((a.at for a in list(self.answers) if a.at >= since and a.response.status_code == status), None)

    def answering(self, since: float) -> set[str]:
        """The paths answered 200 since `since`."""
        return {a.path for a in list(self.answers) if a.at >= since and a.response.status_code == 200}

    def count(self, status: int, since: float) -> int:
        return sum(1 for a in list(self.answers) if a.at >= since and a.response.status_code == status)

    @contextmanager
    def running(self) -> Iterator[RequestStream]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=WAIT_SECONDS)


def test_postgresql_stopped_under_load_is_503_and_comes_back_without_a_restart(tmp_path: Path) -> None:
    with private_postgres() as database, gunicorn(tmp_path, {"CYPHER_DATABASE_URL": database.url}, workers=2) as server:
        actions = _actions(server.client)
        user = actions.enrol("outage.user", PASSWORD)
        access = actions.session(user)["accessToken"]
        with RequestStream(server.client, user.username, access).running() as stream:
            _wait_until(lambda: stream.count(200, since=0) >= 4, "answers before the outage")
            stopping = time.monotonic()
            database.stop()  # fast: every session ended, as `systemctl stop postgresql` does
            stopped = time.monotonic()
            _wait_until(lambda: stream.count(503, since=stopped) >= 4, "503s while the database is down")
            assert server.client.get("/healthz").status_code == 200  # the process answers
            not_ready = server.client.get("/readyz")
            assert not_ready.status_code == 503 and not_ready.get_json() == {
                "error": "Not ready: the database does not answer.",
                "code": "not_ready",
            }
            database.start()  # returns once PostgreSQL accepts connections
            started = time.monotonic()
            back = _wait_until(lambda: stream.answering(since=started) == {"/login/init", "/auth/verify"}, "both back")
        first_503 = stream.first(503, since=stopping)
        assert first_503 is not None
        print(
            f"\nPostgreSQL stopped: first 503 after {first_503 - stopping:.2f} s; started again: both endpoints "
            f"answer 200 after {back - started:.2f} s, without restarting Cypher"
        )
        for answer in stream.answers:  # never a 500 nor a dropped connection: 200, or the 503 shape
            if answer.response.status_code != 200:
                _assert_unavailable(answer.response)
        assert server.client.get("/readyz").get_json() == {"status": "ready", "database": "up"}
        assert "database unavailable on" in server.log() and "Traceback" not in server.log()


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("runuser") is None, reason="needs runuser")
def test_a_sqlite_file_that_cannot_be_written_is_503_on_writes(tmp_path: Path) -> None:
    """The database file restored from a backup by root: the service user reads it but cannot write."""
    # root ignores file permissions: the workers run as the postgres user, in a folder it owns.
    workdir = Path(tempfile.mkdtemp(prefix="cypher-sqlite-"))
    metrics = workdir / "metrics"
    metrics.mkdir()
    service_user = {"PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    if os.geteuid() == 0:
        service_user["GUNICORN_CMD_ARGS"] = "--user postgres --group postgres"
        for path in (workdir, metrics):
            shutil.chown(path, "postgres", "postgres")
    database = workdir / "instance" / "cypher.db"
    try:
        with gunicorn(workdir, service_user, workers=2) as server:
            assert OpaqueActions(server.client).register("before.user", PASSWORD).status_code == 201  # type: ignore[arg-type]
        owner = database.stat()
        database.chmod(0o444)
        if os.geteuid() == 0:
            os.chown(database, 0, 0)
        with gunicorn(workdir, {**service_user, "CYPHER_MIGRATE_ON_START": "false"}, workers=2) as server:
            opaque = OpaqueActions(server.client)  # type: ignore[arg-type]

            # /register/init only reads; /register/finish writes the account.
            _assert_unavailable(opaque.register("during.user", PASSWORD))
            # /login/init reads the account and writes the name's login count.
            _start, login_init = opaque.login_init("before.user", PASSWORD)
            _assert_unavailable(login_init)
            assert server.client.get("/healthz").status_code == 200
            assert server.client.get("/readyz").status_code == 200  # it answers; it only cannot write

            log = server.log()
        assert "Traceback" not in log and "database unavailable on POST /register/finish" in log
        # Fixed, then restarted: a process that opened the file read-only keeps SQLite's descriptor.
        # SQLite made its -shm file read-only like the database: every file of it needs fixing.
        for path in database.parent.glob("cypher.db*"):
            path.chmod(0o644)
            if os.geteuid() == 0:
                os.chown(path, owner.st_uid, owner.st_gid)
        fixed = time.monotonic()
        with gunicorn(workdir, service_user, workers=2) as server:
            writable = time.monotonic() - fixed
            assert OpaqueActions(server.client).register("after.user", PASSWORD).status_code == 201  # type: ignore[arg-type]
        print(f"\nSQLite file writable again: Cypher restarted and writing after {writable:.2f} s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Journey:
    """One client's way through the API, as far as it got."""

    username: str
    stage: str = "started"  # registered, enrolled, session, refreshed
    dropped: BaseException | None = None  # the connection its worker took with it
    refresh_token: str = ""
    recovery_codes: int = 0
    failure: BaseException | None = None


@dataclass
class Clients:
    base: HttpClient
    journeys: list[Journey] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, name: str) -> None:
        number = 0
        while not self.stop.is_set():
            journey = Journey(f"kill.{name}.{number}")
            self.journeys.append(journey)
            number += 1
            try:
                actions = _actions(self.base)
                enrolled = actions.enrol(journey.username, PASSWORD)
                journey.stage, journey.recovery_codes = "enrolled", len(enrolled.recovery_codes)
                tokens = actions.session(enrolled)
                journey.stage = "session"
                refreshed = self.base.post("/api/refresh-token", json={"refreshToken": tokens["refreshToken"]})
                assert refreshed.status_code == 200, refreshed.body
                journey.stage, journey.refresh_token = "refreshed", refreshed.get_json()["refreshToken"]
            except (OSError, http.client.HTTPException) as error:  # the worker died mid-request or mid-answer
                journey.dropped = error
            except BaseException as error:  # noqa: BLE001 - anything else fails the test, reported below
                journey.failure = error

    def finished(self) -> int:
        return sum(1 for journey in list(self.journeys) if journey.stage == "refreshed")


def test_a_worker_killed_in_the_middle_of_logins_leaves_nothing_half_written(tmp_path: Path, database_url: str) -> None:
    with gunicorn(tmp_path, {"CYPHER_DATABASE_URL": database_url}, workers=3) as server:
        clients = Clients(server.client)
        threads = [threading.Thread(target=clients.run, args=(str(n),), daemon=True) for n in range(5)]
        for thread in threads:
            thread.start()
        replaced_after: list[float] = []
        try:
            _wait_until(lambda: clients.finished() >= 3, "logins before the first kill")
            for _ in range(15):  # until a kill has caught a request in flight
                victim = sorted(worker_pids(server))[0]
                os.kill(victim, signal.SIGKILL)
                killed = time.monotonic()
                _wait_until(
                    lambda: len(pids := worker_pids(server)) == 3 and victim not in pids,  # noqa: B023
                    "the master to replace the killed worker",
                )
                replaced_after.append(time.monotonic() - killed)
                done = clients.finished()
                _wait_until(lambda: clients.finished() > done, "a login after the kill")  # noqa: B023
                if any(journey.dropped for journey in clients.journeys):
                    break
        finally:
            clients.stop.set()
            for thread in threads:
                thread.join(timeout=WAIT_SECONDS)
        print(
            f"\n{len(replaced_after)} worker(s) killed; each replaced after "
            + ", ".join(f"{seconds:.2f} s" for seconds in replaced_after)
        )
        journeys = clients.journeys
        assert [journey.failure for journey in journeys if journey.failure] == []  # finished, or dropped
        assert any(journey.dropped for journey in journeys)
        for journey in journeys:  # every session finished before or after a kill still works
            if journey.stage == "refreshed":
                refreshed = server.client.post("/api/refresh-token", json={"refreshToken": journey.refresh_token})
                assert refreshed.status_code == 200, refreshed.body
        log = server.log()
    assert "was sent SIGKILL" in log and log.count("Booting worker") == 3 + len(replaced_after)
    _assert_consistent(database_url, journeys)


def _assert_consistent(database_url: str, journeys: list[Journey]) -> None:
    """No account, code or session written in part: what each client was told is in the database,
    and whatever a dropped request may have written is whole."""
    store = Store(database_url)
    try:
        with store.engine.connect() as connection:
            users = {row.username: row for row in connection.execute(select(User)).all()}
            codes = dict(
                connection.execute(select(RecoveryCode.user_id, func.count()).group_by(RecoveryCode.user_id)).all()
            )  # type: ignore[arg-type]
            # Enrolment's own session is logged out at once (AuthActions.enrol): live ones count.
            session_users = (
                connection.execute(select(UserSession.user_id).where(UserSession.revoked_at.is_(None))).scalars().all()
            )
            pass_auth_users = connection.execute(select(PassAuthUse.user_id)).scalars().all()
    finally:
        store.dispose()
    by_name = {journey.username: journey for journey in journeys}
    assert set(users) <= set(by_name)  # nobody else
    codes_per_account = {journey.recovery_codes for journey in journeys if journey.recovery_codes}
    assert len(codes_per_account) == 1
    for username, user in users.items():
        assert user.status in (STATUS_ACTIVE, STATUS_PENDING)
        if user.status == STATUS_ACTIVE:  # enrolment is one transaction: secret, codes and status
            assert user.totp_secret is not None and codes.get(user.id) in codes_per_account
        else:
            assert user.id not in codes and by_name[username].stage == "started"
    for journey in journeys:
        if journey.stage != "started":
            assert journey.username in users
        if journey.stage in ("enrolled", "session", "refreshed"):
            assert users[journey.username].status == STATUS_ACTIVE
    ids = {user.id: name for name, user in users.items()}
    assert all(user_id in ids and users[ids[user_id]].status == STATUS_ACTIVE for user_id in session_users)
    assert all(user_id in ids for user_id in pass_auth_users)
    with_session = sum(1 for journey in journeys if journey.stage in ("session", "refreshed"))
    # A request dropped in enrolment (before its logout) or in the login may have left a session.
    dropped_logins = sum(1 for journey in journeys if journey.dropped and journey.stage in ("started", "enrolled"))
    assert with_session <= len(session_users) <= with_session + dropped_logins


def test_a_full_restart_keeps_users_sessions_and_keys(tmp_path: Path, database_url: str) -> None:
    settings = {"CYPHER_DATABASE_URL": database_url}
    with gunicorn(tmp_path, settings, workers=2) as server:
        actions = _actions(server.client)
        user = actions.enrol("restart.user", PASSWORD)
        tokens = actions.session(user)
    keys = (tmp_path / "instance" / "keys.json").read_bytes()
    stopped = time.monotonic()
    with gunicorn(tmp_path, settings, workers=2) as server:
        restart = time.monotonic() - stopped
        assert (tmp_path / "instance" / "keys.json").read_bytes() == keys
        access = {"Authorization": f"Bearer {tokens['accessToken']}"}
        assert server.client.request("POST", "/api/verify-access", {}, access).status_code == 200
        assert server.client.request("GET", "/auth/verify", None, access).status_code == 200
        refreshed = server.client.post("/api/refresh-token", json={"refreshToken": tokens["refreshToken"]})
        assert refreshed.status_code == 200, refreshed.body
        login = OpaqueActions(server.client).login(user.username, PASSWORD)  # type: ignore[arg-type]
        assert login is not None and login.status_code == 200, login and login.body  # the same OPAQUE keys
    print(f"\nfull restart: serving again {restart:.2f} s after the first instance stopped")
