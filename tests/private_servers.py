"""A PostgreSQL and a Redis of a test's own, on free loopback ports, that the test may stop and
start again: the shared servers the other tests use are never touched.

PostgreSQL will not run as root, so as root its commands run as the `postgres` user (runuser);
its files live in a temporary folder that user owns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.gunicorn_server import free_port

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
REDIS_SERVER = shutil.which("redis-server")
START_TIMEOUT_SECONDS = 60


def _as_postgres_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PrivatePostgres:
    data_dir: Path
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start it and return once it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} -c fsync=off"
        self._pg_ctl("start", "-w", "-t", str(START_TIMEOUT_SECONDS), "-l", str(self.log_path), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """Stop it: `fast` ends every session (as systemd's stop does), `immediate` as a crash would."""
        self._pg_ctl("stop", "-w", "-m", mode)

    def _pg_ctl(self, *arguments: str) -> None:
        command = _as_postgres_user([str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data_dir), *arguments])
        subprocess.run(command, check=True, capture_output=True)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh PostgreSQL 15 cluster (trust authentication, user postgres), running until the block ends."""
    if not (POSTGRES_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15's initdb is not in {POSTGRES_BIN}")
    root = Path(tempfile.mkdtemp(prefix="cypher-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = PrivatePostgres(root / "data", free_port(), root / "postgres.log")
    initdb = [str(POSTGRES_BIN / "initdb"), "-D", str(server.data_dir), "-A", "trust", "-U", "postgres", "--no-sync"]
    subprocess.run(_as_postgres_user(initdb), check=True, capture_output=True)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # the test left it stopped
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class PrivateRedis:
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (empty: nothing is saved) and return once it answers PING."""
        assert REDIS_SERVER is not None
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [*command, "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                pass
            assert self.process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not answer in time"
            time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # as a crash would: no goodbye to the clients
            self.process.wait(timeout=30)


@contextmanager
def private_redis(workdir: Path) -> Iterator[PrivateRedis]:
    """A redis-server of its own, running until the block ends (or the test stops it)."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    server = PrivateRedis(free_port(), workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
