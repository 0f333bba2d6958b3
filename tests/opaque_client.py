"""An OPAQUE client for tests, on libopaque's own client functions.

It speaks the HTTP API exactly as the browser does (base64url without padding, the canonical
username from the server as the client identity) and gives access to the raw messages, so tests
can tamper with them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Protocol

import opaque


class JsonPoster(Protocol):
    def post(self, path: str, *, json: dict[str, Any]) -> Any: ...


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ids(username: str, server_id: str) -> opaque.Ids:
    return opaque.Ids(username.encode(), server_id.encode())


@dataclass
class RegistrationStart:
    secret: bytes
    request: bytes


@dataclass
class LoginStart:
    secret: bytes
    ke1: bytes


def start_registration(password: str) -> RegistrationStart:
    secret, request = opaque.CreateRegistrationRequest(password.encode())
    return RegistrationStart(secret=secret, request=request)


def finish_registration(start: RegistrationStart, response: bytes, username: str, server_id: str) -> bytes:
    record, _export_key = opaque.FinalizeRequest(start.secret, response, ids(username, server_id))
    return record


def start_login(password: str) -> LoginStart:
    ke1, secret = opaque.CreateCredentialRequest(password.encode())
    return LoginStart(secret=secret, ke1=ke1)


def finish_login(start: LoginStart, ke2: bytes, username: str, server_id: str) -> bytes | None:
    """KE3 for the server, or None when the password is wrong (the client detects it)."""
    try:
        _session_key, ke3, _export_key = opaque.RecoverCredentials(ke2, start.secret, b"", ids(username, server_id))
    except ValueError:
        return None
    return ke3


class OpaqueActions:
    """Register and log in with OPAQUE through the HTTP API, like the browser does."""

    def __init__(self, client: JsonPoster) -> None:
        self._client = client

    def register(self, username: str, password: str) -> Any:
        """/register/init then /register/finish; returns the finish response."""
        start = start_registration(password)
        init = self._client.post(
            "/register/init", json={"username": username, "registrationRequest": b64(start.request)}
        )
        assert init.status_code == 200, init.get_json()
        body = init.get_json()
        record = finish_registration(start, unb64(body["registrationResponse"]), body["username"], body["serverId"])
        return self._client.post(
            "/register/finish",
            json={
                "username": body["username"],
                "registrationId": body["registrationId"],
                "registrationRecord": b64(record),
            },
        )

    def login_init(self, username: str, password: str) -> tuple[LoginStart, Any]:
        start = start_login(password)
        response = self._client.post("/login/init", json={"username": username, "startLoginRequest": b64(start.ke1)})
        return start, response

    def login(self, username: str, password: str) -> Any:
        """/login/init then /login/finish; returns the finish response, or None when the client
        found the password wrong (it then sends nothing, as serenity-kit does)."""
        start, init = self.login_init(username, password)
        assert init.status_code == 200, init.get_json()
        body = init.get_json()
        ke3 = finish_login(start, unb64(body["loginResponse"]), body["username"], body["serverId"])
        if ke3 is None:
            return None
        return self._client.post("/login/finish", json={"loginId": body["loginId"], "finishLoginRequest": b64(ke3)})
