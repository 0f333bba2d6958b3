"""Reading the store as a test checks it, outside any service."""

from __future__ import annotations

from cypher.store import Store, UserRecord


def find_user(store: Store, username: str) -> UserRecord | None:
    with store.transaction(readonly=True) as tx:
        return tx.users.by_name(username)
