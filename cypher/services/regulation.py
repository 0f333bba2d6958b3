"""Login regulation, adapted to OPAQUE.

An OPAQUE server never sees a wrong password: the client finds it wrong and sends nothing more.
So each KE2 answered for a name is one online guess, and regulation counts the password logins
started and not completed, per account name (existing or not) within a window. Past the budget
the name is banned for a while, doubling with each ban in a row: its /login/init answers from
the fake record, which the client takes for a wrong password, so a ban reveals nothing about the
account. A login that completes forgets the counts; a KE3 that does not verify (only a modified
client sends one) counts as one more guess.

Anyone can spend a name's budget, so the budget is counted twice: for the name and one client
address (small), and for the name from everywhere (large). An attacker at one address bans only
that pair, and stops adding to the name's count while it is banned; banning the name for everyone
takes many addresses. IPv6 clients count by their /64, which one machine usually holds whole.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum

from cypher.store import RegulationCount, Transaction

NAME_COUNT = ""  # the address of a name's count from everywhere
MAX_ADDRESS = 64
# Beyond this many bans in a row the ban stays at its longest; keeps 2**bans small.
MAX_DOUBLINGS = 30


@dataclass(frozen=True)
class RegulationPolicy:
    window: timedelta
    attempts_per_address: int  # per name and client address, in one window
    attempts_per_name: int  # per name from every address together, in one window
    ban: timedelta  # the first ban; each ban in a row doubles it
    longest_ban: timedelta  # the cap, and the quiet time after a ban that forgives the doubling


class Verdict(Enum):
    ADMITTED = "admitted"
    BANNED = "banned"  # banned before this attempt
    BAN_STARTED = "ban_started"  # this attempt went past the budget


@dataclass(frozen=True)
class Admission:
    verdict: Verdict
    scope: str | None = None  # "address" or "name": which count refused
    banned_until: datetime | None = None

    @property
    def admitted(self) -> bool:
        return self.verdict is Verdict.ADMITTED


def address_key(address: str | None) -> str:
    """The address a client is counted by: an IPv4 address, or an IPv6 address's /64."""
    if not address:
        return "unknown"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:MAX_ADDRESS]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class LoginRegulation:
    def __init__(self, policy: RegulationPolicy) -> None:
        self._policy = policy

    def admit(self, tx: Transaction, username: str, address: str | None, now: datetime) -> Admission:
        """Count one password login started for the name from the address; not admitted while
        the pair or the name is banned, or when this attempt goes past a budget."""
        key = address_key(address)
        counts = tx.regulation.lock(username, [NAME_COUNT, key], now)
        pair, verdict = self._counted(counts[key], self._policy.attempts_per_address, now)
        changed, admission = [pair], Admission(verdict, "address", pair.banned_until)
        if verdict is Verdict.ADMITTED:
            # A pair already refused adds nothing to the name's count, so that one address cannot
            # ban the name for everyone.
            name, verdict = self._counted(counts[NAME_COUNT], self._policy.attempts_per_name, now)
            changed.append(name)
            admission = (
                Admission(verdict) if verdict is Verdict.ADMITTED else Admission(verdict, "name", name.banned_until)
            )
        tx.regulation.save(changed, now)
        return admission

    def forgive(self, tx: Transaction, username: str, address: str | None) -> None:
        """A login completed: the name's count and this address's start again."""
        tx.regulation.forget(username, [NAME_COUNT, address_key(address)])

    def _counted(self, count: RegulationCount, budget: int, now: datetime) -> tuple[RegulationCount, Verdict]:
        if count.banned_until is not None and count.banned_until > now:
            return count, Verdict.BANNED
        window_started_at, attempts, bans = count.window_started_at, count.attempts, count.bans
        if window_started_at + self._policy.window <= now:
            window_started_at, attempts = now, 0
        if count.banned_until is not None and count.banned_until + self._policy.longest_ban <= now:
            bans = 0
        attempts += 1
        if attempts <= budget:
            return replace(count, window_started_at=window_started_at, attempts=attempts, bans=bans), Verdict.ADMITTED
        ban = min(self._policy.ban * 2 ** min(bans, MAX_DOUBLINGS), self._policy.longest_ban)
        banned = replace(count, window_started_at=now, attempts=0, banned_until=now + ban, bans=bans + 1)
        return banned, Verdict.BAN_STARTED
