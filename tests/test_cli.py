"""Admin commands through Flask's CLI runner."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskCliRunner

from cypher.store.migrate import head_revision


def test_init_reports_keys_and_database(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["init"])
    assert result.exit_code == 0, result.output
    assert f"keys: {app.config['KEYS_FILE']}" in result.output
    assert "database: " in result.output


def test_db_upgrade_and_current(runner: FlaskCliRunner) -> None:
    upgraded = runner.invoke(args=["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"database at revision {head_revision()}" in upgraded.output
    current = runner.invoke(args=["db", "current"])
    assert current.output.strip() == f"applied: {head_revision()}; newest: {head_revision()}"
