"""Per-client-address rate limits on every authentication endpoint, on the `limits` library.

Each limit of `CYPHER_RATELIMIT_AUTH` (limits notation, e.g. `10 per minute; 100 per hour`) is a
moving window per client address and endpoint. Counters live in `CYPHER_RATELIMIT_STORAGE`:
`memory://` for one process, `redis://...` when several workers or machines serve, so that a limit
reached through one holds on all. A request past a limit is answered `429 rate_limited` with
`Retry-After` (cypher/http.py), before its view runs.

`limits` itself rather than Flask-Limiter, its Flask extension: Flask-Limiter resolves, parses and
builds every limit again on every request, and with its headers on asks the storage a second time
for every response, where Cypher needs one `hit` per limit. The keys are the ones Flask-Limiter
wrote (`LIMITER/<prefix>/<address>/<endpoint>/<amount>/<multiples>/<period>`, under the Redis
storage's `LIMITS:`), so counters in Redis carry over.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Protocol

from flask import Blueprint, Flask, request
from limits import RateLimitItem, WindowStats, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

IN_PROCESS = "memory://"


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


class AddressLimits:
    """The configured limits, each counted per (client address, endpoint) in a moving window."""

    def __init__(self, storage_uri: str, limits: str, key_prefix: str) -> None:
        self.items: list[RateLimitItem] = parse_many(limits)  # ValueError at start on bad notation
        self._window: MovingWindow = (
            InProcessMovingWindow(longest_window=max(item.get_expiry() for item in self.items))
            if storage_uri == IN_PROCESS
            else MovingWindowRateLimiter(storage_from_string(storage_uri))
        )
        self._key_prefix = key_prefix

    def hit(self, address: str, endpoint: str) -> int | None:
        """Count one request: None while it is within every limit, else the whole seconds until
        the limit it broke lets another through (for Retry-After, at least 1)."""
        for item in self.items:  # in the order written; the first limit broken refuses
            if not self._window.hit(item, self._key_prefix, address, endpoint):
                stats = self._window.get_window_stats(item, self._key_prefix, address, endpoint)
                return max(1, math.ceil(stats.reset_time - time.time()))
        return None

    def check(self, address: str, endpoint: str) -> None:
        """Count one request; TooManyRequests, with its Retry-After, when it breaks a limit."""
        retry_after = self.hit(address, endpoint)
        if retry_after is not None:
            raise TooManyRequests(retry_after=retry_after)


def install_rate_limits(app: Flask, blueprints: list[Blueprint]) -> None:
    """Check the limits before every request to `blueprints`, unless CYPHER_RATELIMIT_ENABLED is off."""
    if not app.config["RATELIMIT_ENABLED"]:
        return
    limits = AddressLimits(
        app.config["RATELIMIT_STORAGE"], app.config["RATELIMIT_AUTH"], app.config["RATELIMIT_KEY_PREFIX"]
    )
    limited = frozenset(blueprint.name for blueprint in blueprints)

    @app.before_request
    def check_rate_limits() -> None:
        if request.blueprint in limited:
            # remote_addr is the client's own behind a trusted proxy (ProxyFix, TRUSTED_PROXIES),
            # and the connecting address otherwise.
            limits.check(request.remote_addr or "", request.endpoint or "")
