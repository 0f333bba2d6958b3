"""Request ids, JSON-lines logs and Prometheus metrics.

Metrics: request latency by endpoint, password and second-factor outcomes, requests rate-limited
per process for want of Redis, and live sessions (counted at scrape time, left out while the
database does not answer). Under gunicorn set PROMETHEUS_MULTIPROC_DIR (deploy/gunicorn.conf.py
does) so that one scrape sums every worker. /metrics answers `Authorization: Bearer
<CYPHER_METRICS_TOKEN>` when a token is set (from loopback too: behind a proxy on the same machine,
every client is loopback), else loopback clients only. Logs never carry a token or a secret: only the
request id, method, endpoint, status and duration are added.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask, Response, current_app, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from cypher.http import WsgiApp, error_response
from cypher.request_auth import bearer_from
from cypher.wiring import services

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
LOOPBACK = {"127.0.0.1", "::1"}
# Which endpoints are login steps, for the outcome counter.
LOGIN_STEPS = {"opaque.login_finish": "password", "totp.verify_login": "second_factor"}
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Set in the WSGI environ by whichever layer answered: the endpoint's name, for metrics and logs.
ENDPOINT_KEY = "cypher.endpoint"

log = logging.getLogger("cypher.requests")


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line, with the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ("request_id", "method", "endpoint", "status", "duration_ms"):
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class LiveSessions(Collector):
    """cypher_active_sessions, counted in the database when scraped."""

    def __init__(self, app: Flask) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        try:
            with self._app.app_context():
                count = services().admin.count_live_sessions()
        except SQLAlchemyError as error:
            # The other metrics still matter most while the database is down: this one is left out.
            logging.getLogger(__name__).warning("active sessions not counted: %s", type(error).__name__)
            return
        yield GaugeMetricFamily("cypher_active_sessions", "Live (not revoked, not expired) sessions", value=count)


class Metrics:
    def __init__(self, app: Flask) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "cypher_http_request_duration_seconds",
            "Time to answer a request",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.logins = Counter(
            "cypher_login_steps",
            "Login steps by outcome: the password (OPAQUE KE3) and the second factor",
            ["step", "result"],
            registry=self.registry,
        )
        self.ratelimit_fallbacks = Counter(
            "cypher_ratelimit_fallback_requests",
            "Requests whose rate limits were counted in one process because Redis did not answer",
            registry=self.registry,
        )
        self.sessions = LiveSessions(app)
        self.registry.register(self.sessions)
        # labels() validates and locks on every call; its children are looked up here instead.
        self._latency_by_labels: dict[tuple[str, str, int], Histogram] = {}
        self._logins_by_labels: dict[tuple[str, str], Counter] = {}

    def record(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        """One answered request: its latency, and the outcome when it was a login step."""
        method = method if method in KNOWN_METHODS else "other"  # no label per invented method
        key = (method, endpoint, status)
        latency = self._latency_by_labels.get(key)
        if latency is None:
            latency = self._latency_by_labels[key] = self.latency.labels(method, endpoint, str(status))
        latency.observe(seconds)
        step = LOGIN_STEPS.get(endpoint)
        if step is not None:
            outcome = (step, "success" if status == 200 else "failure")
            logins = self._logins_by_labels.get(outcome)
            if logins is None:
                logins = self._logins_by_labels[outcome] = self.logins.labels(*outcome)
            logins.inc()

    def exposition(self) -> bytes:
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            return generate_latest(self.registry)
        registry = CollectorRegistry()  # every gunicorn worker's counters, summed
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated upstream
        registry.register(self.sessions)
        return generate_latest(registry)


class RequestObserver:
    """WSGI middleware around everything: a request id on every response, its latency in the
    metrics, and one log line (when INFO is on).

    At the WSGI edge rather than in Flask's hooks, so that the responses answered before Flask (the
    nginx gateway, forward_auth.py) are observed like all others. Whichever layer answered leaves
    the endpoint's name in the environ (ENDPOINT_KEY).
    """

    def __init__(self, wsgi_app: WsgiApp, metrics: Metrics) -> None:
        self._wsgi_app = wsgi_app
        self._metrics = metrics

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)
        statuses: list[str] = []

        def start_with_request_id(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(status)
            headers.append(("X-Request-ID", request_id))
            return start_response(status, headers, exc_info)

        try:
            return self._wsgi_app(environ, start_with_request_id)
        finally:  # counted and logged even if a layer below raised (the server then answers 500)
            self._observe(environ, request_id, int(statuses[-1][:3]) if statuses else 500, started)

    def _observe(self, environ: dict[str, Any], request_id: str, status: int, started: float) -> None:
        seconds = time.perf_counter() - started
        method, endpoint = environ.get("REQUEST_METHOD", ""), environ.get(ENDPOINT_KEY) or "unmatched"
        self._metrics.record(method, endpoint, status, seconds)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "endpoint": endpoint,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )


def install_observability(app: Flask) -> Metrics:
    """Log format, the /metrics endpoint and endpoint names. The caller wraps the WSGI app in
    RequestObserver with the metrics returned (create_app)."""
    if app.config["LOG_FORMAT"] == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonLinesFormatter())
        logging.getLogger("cypher").handlers[:] = [handler]
        logging.getLogger("cypher").setLevel(logging.INFO)
    metrics = Metrics(app)

    @app.after_request
    def _name_endpoint(response: Response) -> Response:
        request.environ[ENDPOINT_KEY] = request.endpoint
        return response

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        token: str = current_app.config["METRICS_TOKEN"]
        if token:
            # Header values are latin-1 strings (PEP 3333): compared as bytes, any byte is a refusal.
            presented = (bearer_from(request.headers.get("Authorization", "")) or "").encode("latin-1", "replace")
            allowed = hmac.compare_digest(presented, token.encode())
        else:
            allowed = request.remote_addr in LOOPBACK
        if not allowed:
            return error_response(
                403, "forbidden", "Metrics need the metrics token (or, without one, a loopback client)."
            )
        return Response(metrics.exposition(), mimetype="text/plain; version=0.0.4")

    return metrics
