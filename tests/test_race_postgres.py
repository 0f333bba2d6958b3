"""Decisions on an account row under real concurrency: gunicorn with several workers on
PostgreSQL, where each request has its own connection and READ COMMITTED lets two transactions
read the same row at once unless it is locked (SELECT ... FOR UPDATE). Runs when
CYPHER_TEST_DATABASE_URL is set; SQLite serialises every writer and needs no such test.

- Wrong TOTP codes fired at once over several pass-auth tokens: no more than the lockout's limit
  are judged, and the row counts exactly those.
- A pass-auth token from before a password change, or from before `users disable`, raced against
  it: no session it opens outlives the change's or the disable's commit.
- Operators disabling one account at once (AdminService in threads, no server needed): one
  disables it, the others find it no longer active.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pyotp
import pytest

from cypher.domain import STATUS_ACTIVE, SealedValue
from cypher.services.admin import AdminService
from cypher.services.audit import AuditTrail
from cypher.services.client_info import ClientInfo
from cypher.services.clock import system_clock
from cypher.services.totp import LOCKOUT_FAILURES, MAX_ATTEMPTS_PER_PASS_AUTH
from cypher.services.totp_codes import TOTP_PERIOD_SECONDS
from cypher.store import Store
from tests.concurrency import race
from tests.gunicorn_server import Gunicorn, gunicorn
from tests.http_client import HttpClient, HttpResponse
from tests.opaque_client import OpaqueActions, b64, finish_registration, start_registration, unb64
from tests.records import find_user

PASSWORD = "correct horse battery staple"
WORKERS = 6
PASS_AUTH_TOKENS = 4
ATTEMPTS_PER_TOKEN = MAX_ATTEMPTS_PER_PASS_AUTH  # 4 x 5: twice the lockout's limit, none over a token's
# Each race: one password change or disable against this many logins' second steps.
RIVAL_LOGINS = 3
STAGGERED_LOGINS, STAGGER_SECONDS = 6, 0.005
ADMINS = 8
ROUNDS = 10
T = TypeVar("T")

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

OPERATOR = ClientInfo(ip=None, user_agent="race test")


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Gunicorn]:
    with gunicorn(tmp_path, {"CYPHER_DATABASE_URL": database_url}, workers=WORKERS) as served:
        yield served


@pytest.fixture
def served_store(server: Gunicorn, database_url: str) -> Iterator[Store]:
    """The server's database, read and administered from the test (after gunicorn migrated it)."""
    opened = Store(database_url)
    yield opened
    opened.dispose()


class Account:
    """An active account, enrolled through the API, with its TOTP secret and recovery codes."""

    def __init__(self, client: HttpClient, username: str) -> None:
        self.client = client
        self.username = username
        registered = OpaqueActions(client).register(username, PASSWORD)
        assert registered.status_code == 201, registered.get_json()
        bearer = {"Authorization": f"Bearer {registered.get_json()['enrollmentToken']}"}
        self.secret = client.request("POST", "/totp/setup", {}, bearer).get_json()["secret"]
        verified = client.request("POST", "/totp/verify-setup", {"code": pyotp.TOTP(self.secret).now()}, bearer)
        assert verified.status_code == 200, verified.get_json()
        self.recovery_codes: list[str] = verified.get_json()["recoveryCodes"]

    def pass_auth(self) -> str:
        finished = OpaqueActions(self.client).login(self.username, PASSWORD)
        assert finished is not None and finished.status_code == 200, finished and finished.get_json()
        return str(finished.get_json()["passAuthToken"])

    def second_step(self, pass_auth: str, **code: str) -> HttpResponse:
        return self.client.post("/totp/verify-login", json={"passAuthToken": pass_auth, **code})

    def session(self) -> str:
        """A new session (opened with a recovery code, so no TOTP step is used); its access token."""
        opened = self.second_step(self.pass_auth(), recoveryCode=self.recovery_codes.pop())
        assert opened.status_code == 200, opened.get_json()
        return str(opened.get_json()["accessToken"])

    def next_code(self) -> str:
        """The code of the next step: fresh, whatever step the account accepted last."""
        return pyotp.TOTP(self.secret).at(time.time() + TOTP_PERIOD_SECONDS)

    def wrong_code(self) -> str:
        """A code that no step near now accepts."""
        near = {pyotp.TOTP(self.secret).at(time.time() + drift * TOTP_PERIOD_SECONDS) for drift in range(-3, 4)}
        return next(code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in near)


def _together(works: Sequence[Callable[[], T]]) -> list[T]:
    """Each piece of work in a thread of its own, released together; what each returned, in order."""
    pending = list(enumerate(works))

    def run_one() -> tuple[int, T]:
        index, work = pending.pop()
        return index, work()

    outcomes = race(len(pending), run_one)
    done: dict[int, T] = {}
    for outcome in outcomes:
        assert not isinstance(outcome, Exception), outcome
        done[outcome[0]] = outcome[1]
    return [done[index] for index in range(len(works))]


def _after(seconds: float, work: Callable[[], T]) -> T:
    time.sleep(seconds)
    return work()


def _codes(responses: list[HttpResponse]) -> list[tuple[int, Any]]:
    return sorted((response.status_code, (response.get_json() or {}).get("code")) for response in responses)


def _live_sessions(store: Store, username: str) -> list[str]:
    user = find_user(store, username)
    assert user is not None
    with store.transaction(readonly=True) as tx:
        return [session.id for session in tx.sessions.list_live(datetime.now(UTC), user_id=user.id)]


def test_wrong_codes_at_once_over_several_tokens_are_judged_up_to_the_limit(
    server: Gunicorn, served_store: Store
) -> None:
    account = Account(server.client, "race.lockout")
    tokens = [account.pass_auth() for _ in range(PASS_AUTH_TOKENS)]
    wrong = account.wrong_code()
    guesses = [partial(account.second_step, token, code=wrong) for token in tokens for _ in range(ATTEMPTS_PER_TOKEN)]
    outcomes = _codes(_together(guesses))
    judged = outcomes.count((401, "invalid_totp"))
    # Each token stays within its own attempts, so only the account's lockout refuses: as many
    # judged as the limit, the rest refused unjudged.
    assert (judged, outcomes.count((429, "too_many_attempts"))) == (LOCKOUT_FAILURES, len(guesses) - judged), outcomes
    user = find_user(served_store, account.username)
    assert user is not None and user.totp_failures == LOCKOUT_FAILURES
    assert user.totp_locked_until is not None and user.totp_locked_until > datetime.now(UTC)


def _refused_or_revoked(server: Gunicorn, logins: list[HttpResponse]) -> tuple[int, int]:
    """Each second step either was refused as from before the change, or opened a session that
    no longer works. How many of each."""
    revoked = 0
    for response in logins:
        if response.status_code == 200:
            revoked += 1
            verified = server.client.post(
                "/api/verify-access", json={"accessToken": response.get_json()["accessToken"]}
            )
            assert verified.status_code == 401, verified.get_json()
        else:
            assert (response.status_code, response.get_json()["code"]) == (401, "pass_auth_expired"), _codes(logins)
    return len(logins) - revoked, revoked


def test_no_session_from_before_a_password_change_outlives_it(server: Gunicorn, served_store: Store) -> None:
    refused = revoked = 0
    for round_number in range(ROUNDS):
        account = Account(server.client, f"race.password{round_number}")
        access = {"Authorization": f"Bearer {account.session()}"}
        # The change commits only after its code's own transaction, later than a login sent with
        # it would; logins sent a little later and further apart meet its commit.
        logins = [
            partial(_after, number * STAGGER_SECONDS, partial(account.second_step, token, recoveryCode=code))
            for number, (token, code) in enumerate(
                (account.pass_auth(), account.recovery_codes.pop()) for _ in range(STAGGERED_LOGINS)
            )
        ]
        start = start_registration(PASSWORD + " changed")
        init = server.client.request(
            "POST", "/account/password/init", {"registrationRequest": b64(start.request)}, access
        )
        assert init.status_code == 200, init.get_json()
        body = init.get_json()
        record = finish_registration(start, unb64(body["registrationResponse"]), body["username"], body["serverId"])
        change = {"registrationRecord": b64(record), "code": account.next_code()}
        finish = partial(server.client.request, "POST", "/account/password/finish", change, access)
        *seconds, changed = _together([*logins, finish])
        assert changed.status_code == 200, changed.get_json()
        # The caller's own session stays; any that the old password opened meanwhile is revoked.
        assert len(_live_sessions(served_store, account.username)) == 1, _codes(seconds)
        refused, revoked = map(sum, zip((refused, revoked), _refused_or_revoked(server, seconds), strict=True))
    print(f"\npassword change races: {revoked} sessions opened then revoked, {refused} logins refused")


def test_no_session_from_before_a_disable_outlives_it(server: Gunicorn, served_store: Store) -> None:
    admin = AdminService(served_store, system_clock, AuditTrail(served_store, system_clock))
    refused = revoked = 0
    for round_number in range(ROUNDS):
        account = Account(server.client, f"race.disable{round_number}")
        works: list[Callable[[], HttpResponse | int]] = [
            partial(account.second_step, account.pass_auth(), recoveryCode=account.recovery_codes.pop())
            for _ in range(RIVAL_LOGINS)
        ]
        works.append(partial(admin.disable, account.username, OPERATOR))
        *seconds, _ = _together(works)
        responses = [response for response in seconds if isinstance(response, HttpResponse)]
        assert _live_sessions(served_store, account.username) == [], _codes(responses)
        refused, revoked = map(sum, zip((refused, revoked), _refused_or_revoked(server, responses), strict=True))
    print(f"\ndisable races: {revoked} sessions opened then revoked, {refused} logins refused")


def test_of_concurrent_disables_one_disables_and_the_others_find_it_disabled(store: Store) -> None:
    with store.transaction() as tx:
        user = tx.users.add_pending("race.admin", SealedValue("key", b"record"), datetime.now(UTC))
        tx.users.set_status(user.id, STATUS_ACTIVE, datetime.now(UTC))
    admin = AdminService(store, system_clock, AuditTrail(store, system_clock))
    outcomes = race(ADMINS, lambda: admin.disable("race.admin", OPERATOR))
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["NotFound"] * (ADMINS - 1) + ["int"], outcomes
