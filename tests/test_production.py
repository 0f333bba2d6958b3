"""CYPHER_ENV=production refuses insecure setups, and adds HSTS."""

from __future__ import annotations

from pathlib import Path

import pytest

from cypher import create_app
from cypher.config import ConfigError

SECURE = {
    "CYPHER_ENV": "production",
    "SERVER_ID": "login.example.com",
    "ALLOWED_ORIGINS": ["https://login.example.com"],
    "ALLOWED_HOSTS": ["login.example.com"],
    "COOKIE_SECURE": True,
    "RATELIMIT_ENABLED": False,
}


@pytest.fixture
def production_config(tmp_path: Path) -> dict[str, object]:
    return {**SECURE, "DATABASE_URL": f"sqlite:///{tmp_path / 'cypher.db'}", "KEYS_FILE": str(tmp_path / "keys.json")}


def test_a_secure_setup_starts_and_sends_hsts(production_config: dict[str, object]) -> None:
    app = create_app(production_config)
    response = app.test_client().get("/healthz", base_url="https://login.example.com")
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert response.headers["X-Frame-Options"] == "DENY"
    app.extensions["cypher"].store.dispose()


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"COOKIE_SECURE": False}, "cookies would not be Secure"),
        ({"SERVER_ID": "localhost"}, "CYPHER_SERVER_ID is not set"),
        ({"ALLOWED_ORIGINS": []}, "CYPHER_ALLOWED_ORIGINS is empty"),
        ({"ALLOWED_HOSTS": []}, "CYPHER_ALLOWED_HOSTS is empty: list the public host name"),
        (
            {"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE": "memory://", "SERVING_PROCESSES": 4},
            "counted per process .* while 4 processes serve",
        ),
    ],
)
def test_each_insecure_setup_is_refused(
    production_config: dict[str, object], change: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint):
        create_app({**production_config, **change})


def test_per_process_rate_limits_are_fine_with_one_process_or_redis(production_config: dict[str, object]) -> None:
    for change in (
        {"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE": "memory://", "SERVING_PROCESSES": 1},
        {"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE": "redis://127.0.0.1:1/0", "SERVING_PROCESSES": 4},
    ):  # Redis is not asked at start, so a port where none listens will do
        create_app({**production_config, **change}).extensions["cypher"].store.dispose()


def test_a_keys_file_others_can_read_is_refused(production_config: dict[str, object]) -> None:
    create_app(production_config).extensions["cypher"].store.dispose()  # creates the keys file, 0600
    Path(str(production_config["KEYS_FILE"])).chmod(0o644)
    with pytest.raises(ConfigError, match="can be read by others"):
        create_app(production_config)


def test_development_tolerates_what_production_refuses(tmp_path: Path) -> None:
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'db'}", "KEYS_FILE": str(tmp_path / "keys.json")})
    assert app.config["CYPHER_ENV"] == "development" and not app.config["COOKIE_SECURE"]
    assert not app.config["ALLOWED_HOSTS"]
    assert "Strict-Transport-Security" not in app.test_client().get("/healthz").headers
    app.extensions["cypher"].store.dispose()
