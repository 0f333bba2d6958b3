"""Real gunicorn (deploy/gunicorn.conf.py, wsgi:app) in a subprocess on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.http_client import HttpClient

REPO = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
START_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Gunicorn:
    port: int
    client: HttpClient
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text()


def _environment(workdir: Path, settings: dict[str, str], workers: int, port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "CYPHER_INSTANCE_PATH": str(workdir / "instance"),
        "CYPHER_DATABASE_URL": "",
        "CYPHER_KEYS_FILE": "",
        "CYPHER_RATELIMIT_ENABLED": "false",
        **settings,
        "CYPHER_BIND": f"127.0.0.1:{port}",
    }
    if workers:
        env["CYPHER_WORKERS"] = str(workers)
    else:
        env.pop("CYPHER_WORKERS", None)
    return env


@contextmanager
def gunicorn(workdir: Path, settings: dict[str, str], workers: int = 3, app: str = "wsgi:app") -> Iterator[Gunicorn]:
    """Serve `app` (Cypher by default) with `settings` (CYPHER_* variables) until the block ends.

    workers=0 keeps deploy/gunicorn.conf.py's own count (2 x cores + 1)."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"gunicorn-{port}.log"
    env = _environment(workdir, settings, workers, port)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(GUNICORN), "-c", "deploy/gunicorn.conf.py", app], cwd=REPO, env=env, stdout=log, stderr=log
        )
    server = Gunicorn(port, HttpClient(f"http://127.0.0.1:{port}"), log_path, process)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                if server.client.get("/healthz").status_code in (200, 404):  # 404: an app without it
                    break
            except OSError:
                pass
            assert process.poll() is None, server.log()
            assert time.monotonic() < deadline, "gunicorn did not answer in time:\n" + server.log()
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def refused_start(workdir: Path, settings: dict[str, str], workers: int) -> str:
    """Start gunicorn with `settings` expecting it to refuse: its log, once it has exited."""
    workdir.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [str(GUNICORN), "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
        cwd=REPO,
        env=_environment(workdir, settings, workers, free_port()),
        capture_output=True,
        timeout=START_TIMEOUT_SECONDS,
    )
    log = (completed.stdout + completed.stderr).decode(errors="replace")
    assert completed.returncode != 0, log
    return log


def worker_pids(server: Gunicorn) -> set[int]:
    """The pids of the master's live worker processes."""
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    return {int(pid) for pid in children if _alive(int(pid))}


def _alive(pid: int) -> bool:
    try:  # the state follows the parenthesised name; Z is a zombie the master has not reaped yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
