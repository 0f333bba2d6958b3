"""Flask serves every file under cypher/static/ with a type a browser accepts, whether or not the
machine has an /etc/mime.types (Python 3.11's own table knows no .mjs)."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from cypher import create_app
from tests.static_types import STATIC, acceptable_type, static_files


@pytest.fixture(params=["system types", "python's own types"])
def client(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlaskClient]:
    if request.param == "python's own types":
        monkeypatch.setattr(mimetypes, "knownfiles", [])  # as on a machine without /etc/mime.types
        mimetypes.init()
    try:
        app = create_app(
            {
                "DATABASE_URL": f"sqlite:///{tmp_path / 'cypher.db'}",
                "KEYS_FILE": str(tmp_path / "keys.json"),
                "SERVER_ID": "cypher.test",
            }
        )
        yield app.test_client()
        app.extensions["cypher"].store.dispose()
    finally:
        monkeypatch.undo()
        mimetypes.init()


def test_every_static_file_has_a_type_the_browser_accepts(client: FlaskClient) -> None:
    files = static_files()
    assert {".js", ".mjs", ".css", ".woff2"} <= {path.suffix for path in files}
    for path in files:
        with client.get(f"/static/{path.relative_to(STATIC).as_posix()}") as response:
            assert response.status_code == 200, path
            assert acceptable_type(path, response.content_type), (path, response.content_type)
            assert response.headers["X-Content-Type-Options"] == "nosniff"
