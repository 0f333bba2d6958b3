"""The production path: real nginx (deploy/nginx/cypher.conf, TLS with a certificate made here) in
front of real gunicorn (three workers, production mode), guarding another application with
auth_request. Register, enrol TOTP, log in, reach the guarded app, refresh, log out, be refused."""

from __future__ import annotations

import http.cookiejar
import os
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.gunicorn_server import REPO, free_port, gunicorn
from tests.http_client import HttpClient
from tests.opaque_client import OpaqueActions

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = pytest.mark.skipif(
    not os.access(NGINX, os.X_OK) or shutil.which("openssl") is None,
    reason="needs Debian's nginx and openssl (as root: apt-get install nginx-light openssl)",
)


def _wait_for(url: str, context: ssl.SSLContext | None = None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2, context=context)  # noqa: S310 - loopback only
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s")


class GuardedApp(BaseHTTPRequestHandler):
    """The application behind auth_request: it trusts X-Cypher-User because only nginx sets it."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = f"hello {self.headers.get('X-Cypher-User')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def tls_browser(base: str, context: ssl.SSLContext) -> HttpClient:
    """HTTPS with a cookie jar, no automatic redirects, and the Origin header a browser sends."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        urllib.request.HTTPSHandler(context=context),
        NoRedirect(),
    )
    return HttpClient(base, opener, {"Origin": base})


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[HttpClient]:
    https_port = free_port()
    base = f"https://127.0.0.1:{https_port}"
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )  # fmt: skip
    guarded = ThreadingHTTPServer(("127.0.0.1", 0), GuardedApp)
    threading.Thread(target=guarded.serve_forever, daemon=True).start()
    production = {
        "CYPHER_ENV": "production",
        "CYPHER_SERVER_ID": "cypher.test",
        "CYPHER_ALLOWED_ORIGINS": base,
        "CYPHER_TRUSTED_PROXIES": "1",
    }
    with gunicorn(tmp_path, production) as cypher:
        site = (REPO / "deploy" / "nginx" / "cypher.conf").read_text()
        for shipped, here in [
            ("127.0.0.1:8000", f"127.0.0.1:{cypher.port}"),
            ("127.0.0.1:9000", f"127.0.0.1:{guarded.server_address[1]}"),
            ("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl"),
            ("/etc/ssl/cypher/fullchain.pem", str(certificate)),
            ("/etc/ssl/cypher/privkey.pem", str(key)),
            ("/srv/cypher/cypher/static/", f"{REPO / 'cypher' / 'static'}/"),
        ]:
            assert shipped in site, shipped
            site = site.replace(shipped, here)
        (tmp_path / "cypher.conf").write_text(site)
        temp_paths = "".join(
            f"  {name}_temp_path {tmp_path / name};\n" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (tmp_path / "nginx.conf").write_text(
            f"worker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
            f"http {{\n  access_log {tmp_path}/access.log;\n{temp_paths}"
            "  types { text/css css; application/javascript js; }\n"
            f"  include {tmp_path}/cypher.conf;\n}}\n"
        )
        nginx = subprocess.Popen(
            [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        context = ssl.create_default_context(cafile=str(certificate))
        try:
            _wait_for(f"{base}/healthz", context)
            yield tls_browser(base, context)
        finally:
            nginx.terminate()
            nginx.wait(timeout=30)
            guarded.shutdown()


def test_through_nginx_over_tls_with_the_auth_request_gate(stack: HttpClient) -> None:
    browser = stack
    assert browser.get("/static/css/cypher.css").status_code == 200  # served by nginx from disk
    outside = browser.get("/app/")
    assert outside.status_code == 302 and outside.headers["Location"].endswith("/login?reason=login-required")

    registered = OpaqueActions(browser).register("Alice", "correct horse battery staple")  # type: ignore[arg-type]
    assert registered.status_code == 201, registered.get_json()
    bearer = {"Authorization": f"Bearer {registered.get_json()['enrollmentToken']}"}
    secret = browser.post("/totp/setup", json={}, headers=bearer).get_json()["secret"]
    totp = pyotp.TOTP(secret)
    assert browser.post("/totp/verify-setup", json={"code": totp.now()}, headers=bearer).status_code == 200

    login = OpaqueActions(browser).login("alice", "correct horse battery staple")  # type: ignore[arg-type]
    assert login is not None and login.status_code == 200
    assert "Secure" in login.headers["Set-Cookie"] and "HttpOnly" in login.headers["Set-Cookie"]
    # The pass-auth cookie (Path=/totp) goes back by itself; the browser's Origin passes the check.
    session = browser.post("/totp/verify-login", json={"code": totp.at(time.time() + 30)})
    assert session.status_code == 200, session.get_json()
    assert session.headers["Strict-Transport-Security"].startswith("max-age=")

    inside = browser.get("/app/")
    assert inside.status_code == 200 and inside.body == b"hello alice"
    sessions = browser.get("/api/sessions").get_json()["sessions"]
    assert sessions[0]["ip"] == "127.0.0.1"  # the client as nginx saw it (CYPHER_TRUSTED_PROXIES=1)

    assert browser.post("/api/refresh-token", json={}).status_code == 200
    assert browser.get("/app/").status_code == 200
    assert browser.post("/api/logout", json={}).status_code == 200
    assert browser.get("/app/").status_code == 302
