"""Housekeeping: delete what has expired (run by `flask --app cypher purge`, e.g. from cron)."""

from __future__ import annotations

from datetime import timedelta

from cypher.services.clock import Clock
from cypher.store import Store


class MaintenanceService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        pending_ttl: timedelta,
        regulation_memory: timedelta,
        audit_retention: timedelta,
    ) -> None:
        self._store = store
        self._clock = clock
        self._pending_ttl = pending_ttl
        self._regulation_memory = regulation_memory  # how long a quiet login count is kept
        self._audit_retention = audit_retention

    def purge(self) -> dict[str, int]:
        """Delete expired pending accounts, protocol state, pass-auth records, ended sessions,
        login counts that went quiet (no attempt and no ban for the longest ban's time), and audit
        events older than the retention."""
        now = self._clock()
        with self._store.transaction() as tx:
            return {
                "pending_accounts": tx.users.delete_pending_created_before(now - self._pending_ttl),
                "registration_states": tx.registrations.delete_expired(now),
                "spent_logins": tx.spent_logins.delete_expired(now),
                "pass_auth_records": tx.pass_auth_uses.delete_expired(now),
                "ended_sessions": tx.sessions.delete_ended(now),
                "login_counts": tx.regulation.delete_quiet(now - self._regulation_memory),
                "audit_events": tx.audit.delete_before(now - self._audit_retention),
            }
