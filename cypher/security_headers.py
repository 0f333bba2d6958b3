"""The security headers every response carries, added at the WSGI edge.

One place for every response: Flask's, the error handlers', and the nginx gateway's, which is
answered before Flask (forward_auth.py). A header a view set itself is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from cypher.http import WsgiApp

# Served on every HTML page: only our own scripts and styles; WebAssembly for OPAQUE's Argon2;
# data: images for the TOTP QR code.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
ALWAYS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
# Served over TLS only (nginx terminates it): browsers must never try plain HTTP.
STRICT_TRANSPORT_SECURITY = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")


class SecurityHeaders:
    """WSGI middleware adding the security headers (HSTS in production, CSP on HTML pages)."""

    def __init__(self, wsgi_app: WsgiApp, production: bool) -> None:
        self._wsgi_app = wsgi_app
        self._always = (*ALWAYS, STRICT_TRANSPORT_SECURITY) if production else ALWAYS

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start_with_headers(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            self._add(headers)
            return start_response(status, headers, exc_info)

        return self._wsgi_app(environ, start_with_headers)

    def _add(self, headers: list[tuple[str, str]]) -> None:
        present = set()
        html = False
        for name, value in headers:
            lowered = name.lower()
            present.add(lowered)
            if lowered == "content-type":
                html = value.startswith("text/html")
        for name, value in self._always:
            if name.lower() not in present:
                headers.append((name, value))
        if html and "content-security-policy" not in present:
            headers.append(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
