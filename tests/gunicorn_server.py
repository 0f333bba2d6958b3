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


@contextmanager
def gunicorn(workdir: Path, settings: dict[str, str], workers: int = 3, app: str = "wsgi:app") -> Iterator[Gunicorn]:
    """Serve `app` (Cypher by default) with `settings` (CYPHER_* variables) until the block ends.

    workers=0 keeps deploy/gunicorn.conf.py's own count (2 x cores + 1)."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"gunicorn-{port}.log"
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
