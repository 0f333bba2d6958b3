"""Request ids, JSON logs without secrets, and /metrics."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cypher import create_app
from cypher.observability import JsonLinesFormatter
from tests.auth_actions import AuthActions, Enrolled


def test_every_response_carries_a_request_id(client: FlaskClient) -> None:
    assert len(client.get("/healthz").headers["X-Request-ID"]) == 16
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    assert client.get("/healthz", headers={"X-Request-ID": "bad id;x"}).headers["X-Request-ID"] != "bad id;x"


def test_metrics_count_login_steps_and_sessions(client: FlaskClient, actions: AuthActions, user: Enrolled) -> None:
    actions.session(user)
    actions.login(user, code="000000")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'cypher_login_steps_total{result="success",step="password"} 2.0' in text
    assert 'cypher_login_steps_total{result="success",step="second_factor"} 1.0' in text
    assert 'cypher_login_steps_total{result="failure",step="second_factor"} 1.0' in text
    assert "cypher_active_sessions 1.0" in text
    assert (
        'cypher_http_request_duration_seconds_count{endpoint="totp.verify_login",method="POST",status="200"} 1.0'
        in text
    )


def test_metrics_need_the_token_when_one_is_set(app_config: dict[str, object]) -> None:
    app = create_app({**app_config, "METRICS_TOKEN": "s3cret-metrics-token"})
    try:
        client = app.test_client()
        for address in ("203.0.113.9", "127.0.0.1"):  # behind a proxy on the machine, everyone is loopback
            remote = {"REMOTE_ADDR": address}
            assert client.get("/metrics", environ_base=remote).status_code == 403
            wrong = client.get("/metrics", environ_base=remote, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 403
            # A byte that is not ASCII (the environ holds latin-1) is a refusal, not a crash.
            odd = client.get("/metrics", environ_base={**remote, "HTTP_AUTHORIZATION": "Bearer \xe9"})
            assert odd.status_code == 403 and odd.get_json()["code"] == "forbidden"
            token = {"Authorization": "Bearer s3cret-metrics-token"}
            assert client.get("/metrics", environ_base=remote, headers=token).status_code == 200
    finally:
        app.extensions["cypher"].store.dispose()


def test_metrics_without_a_token_are_for_loopback_only(client: FlaskClient) -> None:
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 403


def test_json_logs_carry_the_request_but_no_token(
    app: Flask, client: FlaskClient, actions: AuthActions, user: Enrolled, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cypher.requests")
    tokens = actions.session(user)
    formatter = JsonLinesFormatter()
    lines = [json.loads(formatter.format(record)) for record in caplog.records if record.name == "cypher.requests"]
    verify = next(line for line in lines if line["endpoint"] == "totp.verify_login")
    assert verify["status"] == 200 and verify["method"] == "POST" and len(verify["request_id"]) == 16
    everything = "\n".join(formatter.format(record) for record in caplog.records)
    assert tokens["accessToken"] not in everything and "v4.local." not in everything
    assert user.password not in everything


def test_invented_methods_share_one_label(client: FlaskClient) -> None:
    """A client cannot grow the metrics with a label per method it makes up."""
    for method in ("BREW", "WHEN", "PROPFIND"):
        assert client.open("/healthz", method=method).status_code == 405
    text = client.get("/metrics").get_data(as_text=True)
    assert 'method="other"' in text and "BREW" not in text and "PROPFIND" not in text
