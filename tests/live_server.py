"""Serve a Flask app over real HTTP on a loopback port, for clients that are not the test client."""

from __future__ import annotations

import threading
from types import TracebackType

from werkzeug.serving import BaseWSGIServer, make_server

from cypher.http import WsgiApp

HOST = "127.0.0.1"
SHUTDOWN_TIMEOUT_SECONDS = 10.0


class LiveServer:
    """A threaded werkzeug server for `app` (a Flask app, or any WSGI app in front of one) on
    127.0.0.1 at a port the OS chooses; use with `with`."""

    def __init__(self, app: WsgiApp) -> None:
        """Bind at once (port 0, so the OS picks a free port); serving starts on `start`."""
        self._server: BaseWSGIServer = make_server(HOST, 0, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"live-server-{self.port}", daemon=True)

    @property
    def port(self) -> int:
        """The port the OS gave the server."""
        return self._server.server_port

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash, e.g. http://127.0.0.1:54321."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        """Serve requests in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, wait for the serving thread, and close the listening socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(SHUTDOWN_TIMEOUT_SECONDS)
        self._server.server_close()

    def __enter__(self) -> LiveServer:
        """Start serving and return the server."""
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Stop serving, whatever happened inside the block."""
        self.stop()
