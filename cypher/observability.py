"""Request ids, JSON-lines logs and Prometheus metrics.

Metrics: request latency by endpoint, password and second-factor outcomes, and live sessions
(counted at scrape time). Under gunicorn set PROMETHEUS_MULTIPROC_DIR (deploy/gunicorn.conf.py
does) so that one scrape sums every worker. /metrics answers loopback clients, or anyone with
`Authorization: Bearer <CYPHER_METRICS_TOKEN>`. Logs never carry a token or a secret: only the
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
from collections.abc import Iterator

from flask import Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cypher.http import error_response
from cypher.wiring import services

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
LOOPBACK = {"127.0.0.1", "::1"}
# Which endpoints are login steps, for the outcome counter.
LOGIN_STEPS = {"opaque.login_finish": "password", "totp.verify_login": "second_factor"}

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
        with self._app.app_context():
            count = services().admin.count_live_sessions()
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
        self.sessions = LiveSessions(app)
        self.registry.register(self.sessions)

    def exposition(self) -> bytes:
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            return generate_latest(self.registry)
        registry = CollectorRegistry()  # every gunicorn worker's counters, summed
        multiprocess.MultiProcessCollector(registry)
        registry.register(self.sessions)
        return generate_latest(registry)


def install_observability(app: Flask) -> None:
    if app.config["LOG_FORMAT"] == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonLinesFormatter())
        logging.getLogger("cypher").handlers[:] = [handler]
        logging.getLogger("cypher").setLevel(logging.INFO)
    metrics = Metrics(app)

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        endpoint = request.endpoint or "unmatched"
        duration = time.perf_counter() - g.get("started", time.perf_counter())
        metrics.latency.labels(request.method, endpoint, str(response.status_code)).observe(duration)
        if endpoint in LOGIN_STEPS:
            result = "success" if response.status_code == 200 else "failure"
            metrics.logins.labels(LOGIN_STEPS[endpoint], result).inc()
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if log.isEnabledFor(logging.INFO):
            log.info(
                "request",
                extra={
                    "request_id": g.get("request_id"),
                    "method": request.method,
                    "endpoint": endpoint,
                    "status": response.status_code,
                    "duration_ms": round(duration * 1000, 2),
                },
            )
        return response

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        token = current_app.config["METRICS_TOKEN"]
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        allowed = hmac.compare_digest(presented, token) if token else request.remote_addr in LOOPBACK
        if not allowed:
            return error_response(403, "forbidden", "Metrics are for loopback clients or the metrics token.")
        return Response(metrics.exposition(), mimetype="text/plain; version=0.0.4")
