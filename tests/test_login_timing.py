"""Enumeration by timing: the login's first step costs the server the same for a name with an
account and for one without (RFC 9807 section 10.9), judged by a statistical test over thousands
of paired calls, never against a wall-time limit.

What is timed is what an attacker would aim at: LoginService.start_login with a KE1 whose
blinded element is no group element, so libopaque refuses it at once, after the name's read and
the choice of record (the only steps that depend on the name) and before its constant-time
crypto, which would only add noise. The view around it does the same for every name (the same
fields parsed, the same answer), and a request's own cost through Flask is noise of several
times the differences looked for here. Time is the thread's CPU time, so that the other
processes of a busy machine cost the samples only their cache misses, not their time slices.

Calls for the two names come in pairs, in a random order within each pair, so that drift falls
on both alike; each pair's difference is one sample.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

from cypher.services.client_info import ClientInfo
from cypher.services.errors import InvalidMessage
from cypher.services.login import LoginService
from cypher.wiring import Services
from tests.opaque_client import OpaqueActions, start_login

PASSWORD = "correct horse battery staple"
KNOWN, UNKNOWN = "timing.known", "timing.other"  # of one length: hashing the name costs alike
WARMUP_PAIRS = 300
PAIRS = 4000
# Two-sided 99.9% for the confidence interval: the test runs in every suite, so a false alarm
# must be rare.
Z_999 = 3.29
# The paths' own work still differs by about a microsecond (the database fetches the found
# row), which a test of "no difference at all" would find on any quiet machine. So the test asks
# for equivalence instead: the interval of the median difference inside a margin of a few per
# cent of the call's cost, out of reach of a remote attacker's averaging; the old code's
# difference was several times that.
MARGIN_OF_COST = 0.03
# And the estimate small beside the spread of one call's time.
MAX_SHIFT_OF_SPREAD = 0.25

# Not a ristretto255 encoding: libopaque refuses it before any work that depends on the record.
INVALID_BLINDED_ELEMENT = b"\xff" * 32
CLIENT = ClientInfo(ip="192.0.2.1", user_agent="timing")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the thread's CPU time sees all of its work, not PostgreSQL's in its server."""
    return f"sqlite:///{tmp_path / 'cypher.db'}"


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """Login regulation out of the way: thousands of logins of one name would ban it, and a banned
    name is answered as an unknown one."""
    return make_app(LOGIN_ATTEMPTS_PER_ADDRESS=10**9, LOGIN_ATTEMPTS_PER_NAME=10**9)


@dataclass(frozen=True)
class PairedComparison:
    pairs: int
    median_shift_ns: float  # known minus unknown
    interval_ns: tuple[float, float]  # 99.9% for the median shift, distribution-free
    sign_z: float  # the sign test's statistic against no shift at all, for the record
    median_cost_ns: float  # of one call, both names together
    spread_ns: float  # interquartile range of one call's cost, both names together

    def __str__(self) -> str:
        low, high = self.interval_ns
        return (
            f"known - unknown over {self.pairs} pairs: median {self.median_shift_ns / 1000:+.2f} us, "
            f"99.9% interval [{low / 1000:+.2f}, {high / 1000:+.2f}] us, sign-test z {self.sign_z:+.2f}; "
            f"one call: median {self.median_cost_ns / 1000:.1f} us, spread (IQR) {self.spread_ns / 1000:.1f} us"
        )


def compare(known_ns: list[int], unknown_ns: list[int]) -> PairedComparison:
    shifts = sorted(k - u for k, u in zip(known_ns, unknown_ns, strict=True))
    n = len(shifts)
    # The sign test inverted: the order statistics that bound the median at this confidence.
    reach = Z_999 * math.sqrt(n) / 2
    low, high = shifts[math.floor(n / 2 - reach)], shifts[math.ceil(n / 2 + reach) - 1]
    positive, negative = sum(s > 0 for s in shifts), sum(s < 0 for s in shifts)
    costs = known_ns + unknown_ns
    quartiles = statistics.quantiles(costs, n=4)
    return PairedComparison(
        pairs=n,
        median_shift_ns=statistics.median(shifts),
        interval_ns=(low, high),
        sign_z=(positive - negative) / math.sqrt(positive + negative),
        median_cost_ns=statistics.median(costs),
        spread_ns=quartiles[2] - quartiles[0],
    )


def cost_ns(login: LoginService, username: str, ke1: bytes) -> int:
    started = time.thread_time_ns()
    try:
        login.start_login(username, ke1, CLIENT)
    except InvalidMessage:
        pass
    else:
        raise AssertionError("the KE1 was meant to be refused")
    return time.thread_time_ns() - started


def test_login_init_costs_the_same_for_a_known_and_an_unknown_name(
    auth: OpaqueActions, services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    assert auth.register(KNOWN, PASSWORD).status_code == 201
    ke1 = INVALID_BLINDED_ELEMENT + start_login(PASSWORD).ke1[32:]
    login = services.login
    order = random.Random(12)
    known_ns: list[int] = []
    unknown_ns: list[int] = []
    for pair in range(WARMUP_PAIRS + PAIRS):
        if order.random() < 0.5:
            known = cost_ns(login, KNOWN, ke1)
            unknown = cost_ns(login, UNKNOWN, ke1)
        else:
            unknown = cost_ns(login, UNKNOWN, ke1)
            known = cost_ns(login, KNOWN, ke1)
        if pair >= WARMUP_PAIRS:
            known_ns.append(known)
            unknown_ns.append(unknown)
    result = compare(known_ns, unknown_ns)
    with capsys.disabled():
        print(f"\nstart_login timing, {result}")
    margin = MARGIN_OF_COST * result.median_cost_ns
    assert -margin < result.interval_ns[0] and result.interval_ns[1] < margin, (str(result), margin)
    assert abs(result.median_shift_ns) < MAX_SHIFT_OF_SPREAD * result.spread_ns, str(result)
