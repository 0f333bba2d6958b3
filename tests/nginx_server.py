"""The production path on one machine: real nginx running deploy/nginx/cypher.conf as shipped (only
the lines marked CHANGE changed, TLS with a certificate made here) in front of real gunicorn in
production mode, guarding another application with auth_request."""

from __future__ import annotations

import http.cookiejar
import os
import shutil
import ssl
import stat
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.gunicorn_server import REPO, free_port, gunicorn
from tests.http_client import HttpClient
from tests.static_types import STATIC

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SHIPPED_CONFIG = REPO / "deploy" / "nginx" / "cypher.conf"
# What Debian's own nginx.conf includes in its http {} block: the shipped file must work beside it.
DISTRIBUTION_TYPES = Path("/etc/nginx/mime.types")


def nginx_missing() -> str | None:
    """Why these tests cannot run here, or None."""
    if not os.access(NGINX, os.X_OK) or shutil.which("openssl") is None:
        return "needs Debian's nginx and openssl (as root: apt-get install nginx-light openssl)"
    return None


class GuardedApp(BaseHTTPRequestHandler):
    """The application behind auth_request: it trusts X-Cypher-User because only nginx sets it."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = f"hello {self.headers.get('X-Cypher-User')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        # What reached it, for the tests to see: which cookies, and whether any Authorization.
        self.send_header("X-Seen-Cookie", self.headers.get("Cookie", "(none)"))
        self.send_header("X-Seen-Authorization", self.headers.get("Authorization", "(none)"))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Stack:
    base: str
    tls: ssl.SSLContext

    def client(self) -> HttpClient:
        """HTTPS with a cookie jar, no automatic redirects, and the Origin header a browser sends."""
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            urllib.request.HTTPSHandler(context=self.tls),
            NoRedirect(),
        )
        return HttpClient(self.base, opener, {"Origin": self.base})


def shipped_site(replacements: dict[str, str]) -> str:
    """deploy/nginx/cypher.conf with each value marked CHANGE replaced, and nothing else."""
    lines = SHIPPED_CONFIG.read_text().splitlines(keepends=True)
    for shipped, here in replacements.items():
        matches = [index for index, line in enumerate(lines) if shipped in line.split("#")[0]]
        assert len(matches) == 1 and "# CHANGE" in lines[matches[0]], f"{shipped!r} is not on one CHANGE line"
        lines[matches[0]] = lines[matches[0]].replace(shipped, here)
    return "".join(lines)


def _readable_copy_of_static(folder: Path) -> Path:
    """cypher/static/ copied where nginx's workers can read it, as an operator deploys it: run as
    root, nginx's workers are `nobody`, who cannot enter a checkout in a 0700 home folder."""
    copy = folder / "static"
    shutil.copytree(STATIC, copy)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))
    return copy


def _wait_for(url: str, context: ssl.SSLContext, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"nginx stopped:\n{log.read_text() if log.exists() else ''}"
        try:
            urllib.request.urlopen(url, timeout=2, context=context)  # noqa: S310 - loopback only
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within 60 s")


@contextmanager
def cypher_behind_nginx(workdir: Path, settings: dict[str, str] | None = None) -> Iterator[Stack]:
    """gunicorn (three workers, production) behind the shipped nginx file over TLS, until the block ends."""
    https_port = free_port()
    base = f"https://127.0.0.1:{https_port}"
    # nginx's own files sit in a folder its workers can enter, wherever the checkout and tmp_path are.
    prefix = Path(tempfile.mkdtemp(prefix="cypher-nginx-"))
    prefix.chmod(0o755)
    certificate, key = prefix / "cert.pem", prefix / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )  # fmt: skip
    static_root = _readable_copy_of_static(prefix)
    guarded = ThreadingHTTPServer(("127.0.0.1", 0), GuardedApp)
    threading.Thread(target=guarded.serve_forever, daemon=True).start()
    production = {
        "CYPHER_ENV": "production",
        "CYPHER_SERVER_ID": "cypher.test",
        "CYPHER_ALLOWED_ORIGINS": base,
        "CYPHER_ALLOWED_HOSTS": "127.0.0.1",  # the name the tests and Chromium reach nginx by
        "CYPHER_TRUSTED_PROXIES": "1",
        **(settings or {}),
    }
    try:
        with gunicorn(workdir, production) as cypher:
            site = shipped_site(
                {
                    "127.0.0.1:8000": f"127.0.0.1:{cypher.port}",
                    "127.0.0.1:9000": f"127.0.0.1:{guarded.server_address[1]}",
                    "listen 443 ssl": f"listen 127.0.0.1:{https_port} ssl",
                    "/etc/ssl/cypher/fullchain.pem": str(certificate),
                    "/etc/ssl/cypher/privkey.pem": str(key),
                    "/srv/cypher/cypher/static/": f"{static_root}/",
                }
            )
            (prefix / "cypher.conf").write_text(site)
            temp_paths = "".join(
                f"  {name}_temp_path {prefix / name};\n"
                for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
            distribution_types = f"  include {DISTRIBUTION_TYPES};\n" if DISTRIBUTION_TYPES.exists() else ""
            (prefix / "nginx.conf").write_text(
                f"worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\nevents {{}}\n"
                f"http {{\n  access_log {prefix}/access.log;\n{temp_paths}{distribution_types}"
                f"  include {prefix}/cypher.conf;\n}}\n"
            )
            nginx = subprocess.Popen(
                [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            tls = ssl.create_default_context(cafile=str(certificate))
            try:
                _wait_for(f"{base}/healthz", tls, nginx, prefix / "error.log")
                yield Stack(base, tls)
            finally:
                nginx.terminate()
                nginx.wait(timeout=30)
    finally:
        guarded.shutdown()
        shutil.rmtree(prefix, ignore_errors=True)
