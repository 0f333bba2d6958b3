"""Device names from User-Agents (ua-parser's maintained patterns), in the sessions API."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from cypher.services.client_info import device_name
from tests.auth_actions import AuthActions, Enrolled

ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
WINDOWS_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.mark.parametrize(
    ("user_agent", "name"),
    [
        (ANDROID_CHROME, "Chrome Mobile on Android"),  # not "Chrome on Linux"
        (WINDOWS_EDGE, "Edge on Windows"),  # not "Chrome"
        (IPHONE_SAFARI, "Mobile Safari on iOS"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
        ("curl/8.5.0", "curl"),
        ("", "Unknown device"),
        (None, "Unknown device"),
    ],
)
def test_a_user_agent_is_named_as_a_person_names_the_device(user_agent: str | None, name: str) -> None:
    assert device_name(user_agent) == name


def test_the_sessions_api_names_each_device(client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
    client.environ_base["HTTP_USER_AGENT"] = ANDROID_CHROME
    tokens = actions.session(user)
    sessions = client.get("/api/sessions", headers={"Authorization": f"Bearer {tokens['accessToken']}"}).get_json()
    assert [session["device"] for session in sessions["sessions"]] == ["Chrome Mobile on Android"]
