"""Login regulation: budgets per name and address and per name, bans that double, what a ban
looks like to a client, forgiveness, the operator's unban, purge, and concurrent guesses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from cypher.services.clock import ManualClock
from cypher.services.regulation import NAME_COUNT, address_key
from cypher.wiring import Services
from tests.auth_actions import AuthActions
from tests.concurrency import race
from tests.opaque_client import OpaqueActions, b64, finish_login, unb64
from tests.records import find_user

PASSWORD = "correct horse battery staple"
WRONG = "not the password at all"
PER_ADDRESS, PER_NAME, BAN = 3, 6, 300


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(
        LOGIN_ATTEMPTS_PER_ADDRESS=PER_ADDRESS,
        LOGIN_ATTEMPTS_PER_NAME=PER_NAME,
        LOGIN_WINDOW=900,
        LOGIN_BAN=BAN,
        LOGIN_LONGEST_BAN=3600,
    )


@pytest.fixture
def alice(app: Flask, clock: ManualClock) -> str:
    AuthActions(app.test_client(), clock).enrol("alice", PASSWORD)
    return "alice"


def client_at(app: Flask, address: str) -> OpaqueActions:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return OpaqueActions(client)


def logs_in(app: Flask, address: str, username: str = "alice") -> bool:
    """Whether the right password opens the account from this address (the client finds KE2
    good, and the server accepts KE3)."""
    response = client_at(app, address).login(username, PASSWORD)
    if response is None:
        return False
    assert response.status_code == 200, response.get_json()
    return True


def guess(app: Flask, address: str, times: int = 1, username: str = "alice") -> None:
    for _ in range(times):
        assert client_at(app, address).login(username, WRONG) is None


def counts(services: Services, username: str) -> dict[str, Any]:
    return {count.address: count for count in services.admin.login_counts(username)}


def test_past_the_budget_of_a_name_and_address_the_right_password_looks_wrong(app: Flask, alice: str) -> None:
    guess(app, "192.0.2.1", PER_ADDRESS)
    assert not logs_in(app, "192.0.2.1")  # answered from the fake record: a wrong password
    assert logs_in(app, "192.0.2.2")  # another address is not affected


def test_a_ban_ends_and_the_next_one_in_a_row_is_twice_as_long(
    app: Flask, alice: str, clock: ManualClock, services: Services
) -> None:
    guess(app, "192.0.2.1", PER_ADDRESS + 1)  # the last one starts the ban
    clock.advance(BAN - 1)
    assert not logs_in(app, "192.0.2.1")
    clock.advance(1)
    guess(app, "192.0.2.1", PER_ADDRESS + 1)  # the ban is over; three more, then the second ban
    assert counts(services, "alice")["192.0.2.1"].bans == 2
    clock.advance(2 * BAN - 1)
    assert not logs_in(app, "192.0.2.1")
    clock.advance(1)
    assert logs_in(app, "192.0.2.1")


def test_the_name_budget_bans_the_name_from_everywhere_until_unbanned(
    app: Flask, alice: str, runner: FlaskCliRunner, services: Services
) -> None:
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        guess(app, address, 2)
    guess(app, "192.0.2.4")  # the seventh login of the name in the window starts its ban
    assert counts(services, "alice")[NAME_COUNT].banned_until is not None
    assert not logs_in(app, "203.0.113.9")
    shown = runner.invoke(args=["users", "show", "alice"])
    assert "logins from every address: banned until " in shown.output, shown.output
    unbanned = runner.invoke(args=["users", "unban", "Alice"])
    assert unbanned.exit_code == 0, unbanned.output
    assert unbanned.output == "Alice: 6 login count(s) forgotten; its logins are answered again\n"
    assert counts(services, "alice") == {}
    assert logs_in(app, "203.0.113.9")


def test_a_refused_address_adds_nothing_to_the_name_count(app: Flask, alice: str, services: Services) -> None:
    """One address cannot ban the name for everyone, however long it goes on."""
    guess(app, "192.0.2.1", PER_ADDRESS + 20)
    name_count = counts(services, "alice")[NAME_COUNT]
    assert name_count.attempts == PER_ADDRESS and name_count.banned_until is None
    assert logs_in(app, "192.0.2.2")


def test_a_completed_login_forgets_the_counts(app: Flask, alice: str, services: Services) -> None:
    guess(app, "192.0.2.1", PER_ADDRESS - 1)
    assert logs_in(app, "192.0.2.1")
    assert counts(services, "alice") == {}
    guess(app, "192.0.2.1", PER_ADDRESS)
    assert logs_in(app, "192.0.2.2")


def test_a_name_without_an_account_is_regulated_alike_and_answered_alike(
    app: Flask, alice: str, services: Services
) -> None:
    def init_answer(username: str) -> tuple[int, tuple[str, ...], tuple[int, ...]]:
        _start, response = client_at(app, "192.0.2.1").login_init(username, WRONG)
        body = response.get_json()
        return response.status_code, tuple(body), tuple(len(value) for value in body.values())

    # "bobby" has no account; both names are five characters, so every field has one length.
    answers = {init_answer(username) for username in ("alice", "bobby") for _ in range(PER_ADDRESS + 2)}
    assert len(answers) == 1, answers
    assert counts(services, "bobby")["192.0.2.1"].banned_until is not None
    assert counts(services, "alice")["192.0.2.1"].banned_until is not None
    assert find_user(services.store, "bobby") is None


def test_a_ke3_that_does_not_verify_counts_as_one_more_guess(app: Flask, alice: str) -> None:
    actions = client_at(app, "192.0.2.1")
    guess(app, "192.0.2.1")
    start, init = actions.login_init("alice", PASSWORD)
    body = init.get_json()
    ke3 = finish_login(start, unb64(body["loginResponse"]), body["username"], body["serverId"])
    assert ke3 is not None
    forged = bytes([ke3[0] ^ 1]) + ke3[1:]
    refused = app.test_client().post(
        "/login/finish",
        json={"loginId": body["loginId"], "finishLoginRequest": b64(forged)},
        environ_base={"REMOTE_ADDR": "192.0.2.1"},
    )
    assert refused.status_code == 401
    # One guess, one login started, one KE3 refused: the budget of three is spent.
    assert not logs_in(app, "192.0.2.1")


def test_purge_forgets_counts_that_went_quiet(
    app: Flask, alice: str, clock: ManualClock, runner: FlaskCliRunner, services: Services
) -> None:
    guess(app, "192.0.2.1", PER_ADDRESS + 1)  # the name's count, and the address's, banned
    clock.advance(3600)
    purged = runner.invoke(args=["purge"])
    assert "login_counts: 0" in purged.output, purged.output
    clock.advance(BAN + 1)  # an hour, the longest ban, since the address's ban ended
    purged = runner.invoke(args=["purge"])
    assert "login_counts: 2" in purged.output, purged.output
    assert counts(services, "alice") == {}


def test_concurrent_guesses_are_counted_exactly(app: Flask, alice: str, services: Services) -> None:
    def attempt() -> bool:
        return client_at(app, "192.0.2.1").login("alice", WRONG) is None

    assert all(outcome is True for outcome in race(12, attempt))
    found = counts(services, "alice")
    assert found[NAME_COUNT].attempts == PER_ADDRESS
    assert found["192.0.2.1"].bans == 1 and found["192.0.2.1"].attempts == 0


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        (None, "unknown"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_a_client_counts_by_its_ipv4_address_or_its_ipv6_64(address: str | None, key: str) -> None:
    assert address_key(address) == key


def test_an_ipv6_client_cannot_escape_its_budget_by_changing_address(app: Flask, alice: str) -> None:
    for host in range(PER_ADDRESS):
        guess(app, f"2001:db8:1:2::{host + 1}")
    assert not logs_in(app, "2001:db8:1:2::ff")
    assert logs_in(app, "2001:db8:1:3::1")


def test_a_ban_is_an_audit_event_the_account_owner_sees(app: Flask, alice: str, services: Services) -> None:
    guess(app, "192.0.2.1", PER_ADDRESS + 1)
    guess(app, "192.0.2.1", username="bobby")  # no account: one more guess, no ban yet
    bans = [event for event in services.audit.search(limit=100) if event.event == "login.banned"]
    assert [(event.username, event.ip, event.detail["scope"]) for event in bans] == [("alice", "192.0.2.1", "address")]
    user = find_user(services.store, "alice")
    assert user is not None and bans[0].user_id == user.id
