"""Key material: created once with mode 0600, read back unchanged, malformed files refused clearly."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from cypher import create_app
from cypher.keys import (
    KeyFileError,
    KeyPurpose,
    dump_keyring,
    generate_keyring,
    load_or_create_keyring,
    parse_keyring,
    permissions_too_open,
)


def test_created_once_with_owner_only_permissions(tmp_path: Path) -> None:
    path = tmp_path / "instance" / "keys.json"
    first = load_or_create_keyring(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not permissions_too_open(path)
    second = load_or_create_keyring(path)
    assert second == first
    assert set(first.sets) == set(KeyPurpose)
    # One key per purpose, and no two purposes share a key.
    keys = [key_set.current for key_set in first.sets.values()]
    assert len(set(keys)) == len(keys)
    assert all(len(key) == 32 for key in keys)


def _load_in_child(path: str, queue: multiprocessing.Queue[bytes]) -> None:
    keyring = load_or_create_keyring(Path(path))
    queue.put(dump_keyring(keyring))


def test_workers_starting_together_agree_on_one_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_load_in_child, args=(str(path), queue)) for _ in range(8)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert len(set(results)) == 1
    assert results[0] == path.read_bytes()
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_rotation_keeps_old_keys_verifying(tmp_path: Path) -> None:
    document = json.loads(dump_keyring(generate_keyring()))
    access = document["purposes"]["access"]
    old_id = access["current"]
    access["keys"]["newkey"] = "A" * 43
    access["current"] = "newkey"
    keyring = parse_keyring(json.dumps(document).encode(), "test")
    assert keyring[KeyPurpose.ACCESS].current_key_id == "newkey"
    assert keyring[KeyPurpose.ACCESS].get(old_id) is not None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: "not json", "not valid JSON"),
        (lambda d: {**d, "version": 2}, "version"),
        (lambda d: {k: v for k, v in d.items() if k != "purposes"}, "purposes"),
        (
            lambda d: {**d, "purposes": {k: v for k, v in d["purposes"].items() if k != "refresh"}},
            "'refresh' is missing",
        ),
        (lambda d: _set(d, "enroll", "keys", {"k": "c2hvcnQ"}), "not 32 bytes"),
        (lambda d: _set(d, "enroll", "keys", {"k": "!!!not base64!!!"}), "not 32 bytes"),
        (lambda d: _set(d, "enroll", "keys", {}), "non-empty"),
        (lambda d: _set(d, "access", "current", "nope"), "names no listed key"),
    ],
)
def test_malformed_file_is_refused_with_a_clear_error(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "keys.json"
    document = json.loads(dump_keyring(generate_keyring()))
    mutated = mutate(document)
    path.write_text(mutated if isinstance(mutated, str) else json.dumps(mutated))
    with pytest.raises(KeyFileError, match=message) as raised:
        load_or_create_keyring(path)
    assert str(path) in str(raised.value)


def _set(document: dict, purpose: str, field: str, value: object) -> dict:  # type: ignore[type-arg]
    document["purposes"][purpose][field] = value
    return document


def test_unreadable_path_is_refused(tmp_path: Path) -> None:
    # A directory where the file should be cannot be read as a file, even by root.
    path = tmp_path / "keys.json"
    path.mkdir()
    with pytest.raises(KeyFileError, match="cannot read"):
        load_or_create_keyring(path)


def test_app_reads_cypher_keys_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys_file = tmp_path / "shared" / "keys.json"
    expected = load_or_create_keyring(keys_file)
    monkeypatch.setenv("CYPHER_KEYS_FILE", str(keys_file))
    monkeypatch.setenv("CYPHER_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setenv("CYPHER_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"TESTING": True})
    assert app.extensions["cypher"].keyring == expected
    assert not (tmp_path / "instance" / "keys.json").exists()
    assert stat.S_IMODE((tmp_path / "instance").stat().st_mode) == 0o700
