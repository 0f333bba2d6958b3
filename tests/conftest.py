"""Fixtures in the shape of Flask's tutorial: app, client, runner, and helpers that act like a user.

Every test that uses `app` runs once on SQLite and once on PostgreSQL when
CYPHER_TEST_DATABASE_URL is set (`.ci/run` sets it). Each PostgreSQL run gets its own schema.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from cypher import create_app
from cypher.domain import STATUS_ACTIVE, STATUS_PENDING
from cypher.services.clock import ManualClock
from cypher.store import Store
from cypher.store.migrate import upgrade
from cypher.wiring import Services
from tests.auth_actions import AuthActions, Enrolled
from tests.opaque_client import OpaqueActions

SERVER_ID = "cypher.test"
PARTNER = "https://app.example.com"  # another site, listed in CYPHER_ALLOWED_ORIGINS where a test needs one
POSTGRES_URL = os.environ.get("CYPHER_TEST_DATABASE_URL")


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cypher.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL: set CYPHER_TEST_DATABASE_URL (make test does when PostgreSQL answers)")
    schema = f"test_{secrets.token_hex(6)}"
    plain_url = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield _with_search_path(POSTGRES_URL, schema)
    finally:
        with psycopg.connect(plain_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated store on its own, without the application."""
    store = Store(database_url)
    upgrade(store.engine)
    yield store
    store.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def instance_path(tmp_path: Path) -> Path:
    path = tmp_path / "instance"
    path.mkdir()
    return path


@pytest.fixture
def app_config(database_url: str, instance_path: Path, clock: ManualClock) -> dict[str, object]:
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "KEYS_FILE": str(instance_path / "keys.json"),
        "SERVER_ID": SERVER_ID,
        "COOKIE_SECURE": False,
        "CLOCK": clock,
        # Tests send hundreds of requests from one address; tests/test_ratelimit.py turns it on.
        "RATELIMIT_ENABLED": False,
    }


@pytest.fixture
def app(app_config: dict[str, object]) -> Iterator[Flask]:
    app = create_app(app_config)
    yield app
    app.extensions["cypher"].store.dispose()


@pytest.fixture
def make_app(app_config: dict[str, object]) -> Iterator[Callable[..., Flask]]:
    """create_app with these settings on top of the test app's; every store closed afterwards."""
    made: list[Flask] = []

    def make(**settings: object) -> Flask:
        made.append(create_app({**app_config, **settings}))
        return made[-1]

    yield make
    for app in made:
        app.extensions["cypher"].store.dispose()


@pytest.fixture
def partner_app(make_app: Callable[..., Flask]) -> Flask:
    """The test app with PARTNER's origin allowed (CORS, and the Origin check)."""
    return make_app(ALLOWED_ORIGINS=[PARTNER])


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def services(app: Flask) -> Services:
    return app.extensions["cypher"]


@pytest.fixture
def auth(client: FlaskClient) -> OpaqueActions:
    return OpaqueActions(client)


@pytest.fixture
def actions(client: FlaskClient, clock: ManualClock) -> AuthActions:
    return AuthActions(client, clock)


@pytest.fixture
def user(actions: AuthActions) -> Enrolled:
    """An active account with TOTP enrolled: alice."""
    return actions.enrol("alice", "correct horse battery staple")


@pytest.fixture
def activate(services: Services, clock: ManualClock):  # type: ignore[no-untyped-def]
    """Mark an account active, as TOTP enrolment does when it succeeds."""

    def _activate(username: str) -> None:
        with services.store.transaction() as tx:
            user = tx.users.by_name(username)
            assert user is not None and user.status == STATUS_PENDING
            tx.users.set_status(user.id, STATUS_ACTIVE, clock())

    return _activate


def pytest_report_header() -> list[str]:
    redis_url = os.environ.get("CYPHER_TEST_REDIS_URL")
    return [
        f"PostgreSQL tests: {'on, ' + POSTGRES_URL if POSTGRES_URL else 'off (set CYPHER_TEST_DATABASE_URL)'}",
        f"Redis tests: {'on, ' + redis_url if redis_url else 'off (set CYPHER_TEST_REDIS_URL)'}",
    ]
