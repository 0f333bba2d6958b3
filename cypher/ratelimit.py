"""Per-client-address rate limits on every authentication endpoint, on the `limits` library.

Each limit of `CYPHER_RATELIMIT_AUTH` (limits notation, e.g. `10 per minute; 100 per hour`) is a
moving window per client address and endpoint. Counters live in `CYPHER_RATELIMIT_STORAGE`:
`memory://` for one process, `redis://...` when several workers or machines serve, so that a limit
reached through one holds on all (production refuses `memory://` with several processes: each
would admit the whole limit). A request past a limit is answered `429 rate_limited` with
`Retry-After` (cypher/http.py), before its view runs.

When Redis does not answer, requests are counted in this process instead, so logins go on with
per-process limits rather than failing: the outage is logged once when it starts and once when it
ends, and every request counted here is counted in `cypher_ratelimit_fallback_requests_total`.
Redis is asked again at most every SHARED_RETRY_SECONDS, so a dead Redis costs one timeout per
interval, not one per request.

`limits` itself rather than Flask-Limiter, its Flask extension: Flask-Limiter resolves, parses and
builds every limit again on every request, and with its headers on asks the storage a second time
for every response, where Cypher needs one `hit` per limit. The keys are the ones Flask-Limiter
wrote (`LIMITER/<prefix>/<address>/<endpoint>/<amount>/<multiples>/<period>`, under the Redis
storage's `LIMITS:`), so counters in Redis carry over.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from flask import Blueprint, Flask, request
from limits import RateLimitItem, WindowStats, parse_many
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

IN_PROCESS = "memory://"
EXTENSION_NAME = "cypher.rate_limits"  # app.extensions: the AddressLimits, for /readyz
SHARED_RETRY_SECONDS = 5.0
# A Redis that does not answer must not hold a worker for the OS's TCP timeout (minutes); a query
# string in CYPHER_RATELIMIT_STORAGE (socket_timeout=...) overrides these.
REDIS_TIMEOUTS = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}

log = logging.getLogger(__name__)


class MovingWindow(Protocol):
    """The two calls of `limits.strategies.MovingWindowRateLimiter` that Cypher makes."""

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool: ...

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats: ...


class InProcessMovingWindow:
    """The moving window of `limits`, in this process's memory, for `memory://`.

    limits' own MemoryStorage expires entries from a timer thread that it starts again shortly
    after the last one ended, so nearly every request to a quiet server would start a thread.
    Here a key's old entries go when the key is next hit, and every SWEEP_EVERY hits drop the
    keys that went quiet, so addresses that came once do not stay.
    """

    SWEEP_EVERY = 1024

    def __init__(self, longest_window: int) -> None:
        self._longest_window = longest_window  # seconds, of the longest limit counted here
        self._hits: dict[str, deque[float]] = {}  # per key, the accepted hits' times, oldest first
        self._lock = threading.Lock()  # gthread workers serve requests on several threads
        self._hits_since_sweep = 0

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        """Accept and count a hit unless `item.amount` were accepted in the last window."""
        key, now, window = item.key_for(*identifiers), time.time(), item.get_expiry()
        with self._lock:
            self._hits_since_sweep += 1
            if self._hits_since_sweep >= self.SWEEP_EVERY:
                self._sweep(now)
            hits = self._hits.get(key)
            if hits is None:  # not setdefault: that would build a deque on every hit
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= item.amount:
                return False
            hits.append(now)
            return True

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        """When the oldest hit in the window leaves it, and how many more it would accept now."""
        key, now, window = item.key_for(*identifiers), time.time(), item.get_expiry()
        with self._lock:
            live = [moment for moment in self._hits.get(key, ()) if moment > now - window]
        reset_time = live[0] + window if live else now
        return WindowStats(reset_time, item.amount - len(live))

    def _sweep(self, now: float) -> None:
        """Drop the keys whose newest hit has left even the longest window (the lock is held)."""
        quiet = [key for key, hits in self._hits.items() if not hits or hits[-1] <= now - self._longest_window]
        for key in quiet:
            del self._hits[key]
        self._hits_since_sweep = 0


class SharedStorageOutage:
    """Whether the shared storage is taken for down, and when to ask it again (thread-safe)."""

    def __init__(self, retry_seconds: float) -> None:
        self._retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._down = False
        self._retry_at = 0.0  # time.monotonic() from which the storage is asked again

    @property
    def down(self) -> bool:
        return self._down

    def worth_asking(self) -> bool:
        return not self._down or time.monotonic() >= self._retry_at

    def failed(self, error: StorageError) -> None:
        with self._lock:
            self._retry_at = time.monotonic() + self._retry_seconds
            started, self._down = not self._down, True
        if started:  # once per outage: the class of the error only, its text names hosts
            log.warning(
                "rate-limit storage does not answer (%s): counting per process until it does",
                type(error.storage_error).__name__,
            )

    def answered(self) -> None:
        if not self._down:
            return
        with self._lock:
            ended, self._down = self._down, False
        if ended:
            log.warning("rate-limit storage answers again: counting there")


class AddressLimits:
    """The configured limits, each counted per (client address, endpoint) in a moving window:
    in the shared storage when one is configured and answers, else in this process."""

    def __init__(
        self,
        storage_uri: str,
        limits: str,
        key_prefix: str,
        count_fallback: Callable[[], object] = lambda: None,
    ) -> None:
        self.items: list[RateLimitItem] = parse_many(limits)  # ValueError at start on bad notation
        self._local = InProcessMovingWindow(longest_window=max(item.get_expiry() for item in self.items))
        self.storage: Storage | None = None
        self._shared: MovingWindow | None = None
        if storage_uri != IN_PROCESS:
            storage = storage_from_string(storage_uri, wrap_exceptions=True, **REDIS_TIMEOUTS)
            if not isinstance(storage, Storage):  # an async:// scheme: Cypher's workers are synchronous
                raise ValueError(f"CYPHER_RATELIMIT_STORAGE: {storage_uri.split(':')[0]}: is an asyncio storage")
            self.storage = storage
            self._shared = MovingWindowRateLimiter(storage)
        self.outage = SharedStorageOutage(SHARED_RETRY_SECONDS)
        self._count_fallback = count_fallback
        self._key_prefix = key_prefix

    def hit(self, address: str, endpoint: str) -> int | None:
        """Count one request: None while it is within every limit, else the whole seconds until
        the limit it broke lets another through (for Retry-After, at least 1)."""
        if self._shared is None:
            return self._hit(self._local, address, endpoint)
        if self.outage.worth_asking():
            try:
                retry_after = self._hit(self._shared, address, endpoint)
            except StorageError as error:
                self.outage.failed(error)
            else:
                self.outage.answered()
                return retry_after
        self._count_fallback()
        return self._hit(self._local, address, endpoint)

    def shared_storage_answers(self) -> bool | None:
        """Whether the shared storage answers a ping now; None without one (`memory://`)."""
        return None if self.storage is None else self.storage.check()

    def _hit(self, window: MovingWindow, address: str, endpoint: str) -> int | None:
        for item in self.items:  # in the order written; the first limit broken refuses
            if not window.hit(item, self._key_prefix, address, endpoint):
                stats = window.get_window_stats(item, self._key_prefix, address, endpoint)
                return max(1, math.ceil(stats.reset_time - time.time()))
        return None

    def check(self, address: str, endpoint: str) -> None:
        """Count one request; TooManyRequests, with its Retry-After, when it breaks a limit."""
        retry_after = self.hit(address, endpoint)
        if retry_after is not None:
            raise TooManyRequests(retry_after=retry_after)


def install_rate_limits(app: Flask, blueprints: list[Blueprint], count_fallback: Callable[[], object]) -> None:
    """Check the limits before every request to `blueprints`, unless CYPHER_RATELIMIT_ENABLED is off.
    `count_fallback` is called for every request counted in this process for want of Redis."""
    if not app.config["RATELIMIT_ENABLED"]:
        return
    if app.config["RATELIMIT_STORAGE"] == IN_PROCESS and app.config["SERVING_PROCESSES"] > 1:
        # Production refuses this (config.production_problems); elsewhere it is only said.
        log.warning(
            "rate limits are counted per process (memory://) and %d processes serve: each admits the whole "
            "limit; set CYPHER_RATELIMIT_STORAGE to a Redis",
            app.config["SERVING_PROCESSES"],
        )
    limits = AddressLimits(
        app.config["RATELIMIT_STORAGE"],
        app.config["RATELIMIT_AUTH"],
        app.config["RATELIMIT_KEY_PREFIX"],
        count_fallback,
    )
    app.extensions[EXTENSION_NAME] = limits
    limited = frozenset(blueprint.name for blueprint in blueprints)

    @app.before_request
    def check_rate_limits() -> None:
        if request.blueprint in limited:
            # remote_addr is the client's own behind a trusted proxy (ProxyFix, TRUSTED_PROXIES),
            # and the connecting address otherwise.
            limits.check(request.remote_addr or "", request.endpoint or "")
