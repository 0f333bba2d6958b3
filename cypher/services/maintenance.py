"""Housekeeping: delete what has expired (run by `flask --app cypher purge`, e.g. from cron)."""

from __future__ import annotations

from datetime import timedelta

from cypher.services.clock import Clock
from cypher.store import Store


class MaintenanceService:
    def __init__(self, store: Store, clock: Clock, pending_ttl: timedelta) -> None:
        self._store = store
        self._clock = clock
        self._pending_ttl = pending_ttl

    def purge(self) -> dict[str, int]:
        """Delete expired pending accounts, protocol state, pass-auth records and ended sessions."""
        now = self._clock()
        counts = self._store.accounts.purge(now, pending_cutoff=now - self._pending_ttl)
        counts["pass_auth_records"] = self._store.second_factor.purge_attempts(now)
        counts["ended_sessions"] = self._store.sessions.purge(now)
        return counts
