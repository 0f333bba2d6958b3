"""docs/openapi.yaml against the code, so the two cannot drift apart.

The document must be OpenAPI 3.1, list exactly the (path, method) pairs the app answers (Flask's
routes and the gateway answered before them), resolve every `$ref`, and give each error response
only `code` values the server really uses, under the status the server sends them with. The
server's codes are read from the code itself: the error classes of cypher/services/errors.py with
their statuses, `cypher.http.HTTP_ERROR_CODES` (werkzeug's errors), the refused Host's code, and
the literal codes passed to `error_response(` anywhere in cypher/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from flask import Flask

from cypher import forward_auth
from cypher.http import HOST_REFUSED_CODE, HTTP_ERROR_CODES
from cypher.services import errors
from tests.auth_actions import AuthActions, Enrolled

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "docs" / "openapi.yaml"
SOURCE_DIR = ROOT / "cypher"
ERROR_SCHEMA_REF = "#/components/schemas/Error"

OPENAPI_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
IGNORED_FLASK_METHODS = {"HEAD", "OPTIONS"}  # Flask adds these to every route by itself
FLASK_PARAMETER = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")  # <id> or <int:id>
LITERAL_ERROR_RESPONSE = re.compile(r'error_response\(\s*(\d{3})\s*,\s*"([a-z_]+)"')

Operation = tuple[str, str]  # (OpenAPI path, lower-case method)


def load_spec() -> dict[str, Any]:
    document = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{SPEC_PATH} is not a YAML mapping"
    return document


SPEC = load_spec()


def documented_operations(spec: dict[str, Any]) -> set[Operation]:
    return {
        (path, method) for path, item in spec.get("paths", {}).items() for method in item if method in OPENAPI_METHODS
    }


def routed_operations(app: Flask) -> set[Operation]:
    operations: set[Operation] = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("pages."):  # HTML, not the API
            continue
        path = FLASK_PARAMETER.sub(r"{\1}", rule.rule)
        operations |= {(path, method.lower()) for method in rule.methods or () if method not in IGNORED_FLASK_METHODS}
    # Answered before Flask's routing (cypher/forward_auth.py); HEAD as Flask would.
    operations |= {(forward_auth.PATH, method.lower()) for method in forward_auth.METHODS if method != "HEAD"}
    return operations


def server_statuses_by_code() -> dict[str, set[int]]:
    """Every error code the server can send, with the statuses it sends it under."""
    pairs = [(error.status, error.code) for error in error_classes()]
    pairs += [(status, code) for status, code in HTTP_ERROR_CODES.items()]
    pairs.append((400, HOST_REFUSED_CODE))  # a Host outside CYPHER_ALLOWED_HOSTS, on every path
    for source_file in sorted(SOURCE_DIR.rglob("*.py")):
        pairs += [
            (int(status), code)
            for status, code in LITERAL_ERROR_RESPONSE.findall(source_file.read_text(encoding="utf-8"))
        ]
    statuses: dict[str, set[int]] = {}
    for status, code in pairs:
        statuses.setdefault(code, set()).add(status)
    return statuses


def error_classes() -> list[type[errors.CypherError]]:
    """Every domain error the services can raise (cypher/services/errors.py)."""
    return [
        value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, errors.CypherError)
    ]


def resolve(spec: dict[str, Any], ref: str) -> Any:
    """Follow a local JSON pointer such as #/components/schemas/Error."""
    assert ref.startswith("#/"), f"only local references are allowed: {ref}"
    node: Any = spec
    for token in ref[2:].split("/"):
        key = token.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and key in node, f"unresolvable $ref: {ref}"
        node = node[key]
    return node


def deref(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(spec, node["$ref"])
    return node


def all_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from all_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from all_refs(value)


def error_media(spec: dict[str, Any], operation: Operation) -> Iterator[tuple[int, dict[str, Any]]]:
    """(status, media type object) for every error response of an operation."""
    path, method = operation
    for status, response in spec["paths"][path][method]["responses"].items():
        if int(status) < 400:
            continue
        content = deref(spec, response).get("content", {})
        assert content, f"{method.upper()} {path} {status} has no content"
        for media in content.values():
            yield int(status), media


def enum_codes(spec: dict[str, Any], schema: dict[str, Any]) -> tuple[set[str], bool]:
    """The `code` enum of an error schema, and whether the schema uses the shared Error schema."""
    parts = [deref(spec, part) for part in schema.get("allOf", [])] or [schema]
    uses_error_schema = schema.get("$ref") == ERROR_SCHEMA_REF or any(
        part.get("$ref") == ERROR_SCHEMA_REF for part in schema.get("allOf", [])
    )
    codes: set[str] = set()
    for part in parts:
        codes |= set(part.get("properties", {}).get("code", {}).get("enum", []))
    return codes, uses_error_schema


def test_the_document_is_openapi_3_1() -> None:
    assert re.fullmatch(r"3\.1\.\d+", str(SPEC.get("openapi"))), SPEC.get("openapi")
    assert SPEC["info"]["version"] == "1.0.0"


def test_the_document_lists_exactly_the_routes_of_the_app(app: Flask) -> None:
    documented, routed = documented_operations(SPEC), routed_operations(app)
    assert documented - routed == set(), "documented but not routed"
    assert routed - documented == set(), "routed but not documented"


def test_every_ref_resolves() -> None:
    refs = set(all_refs(SPEC))
    assert ERROR_SCHEMA_REF in refs
    for ref in refs:
        resolve(SPEC, ref)


@pytest.mark.parametrize(
    "operation", sorted(documented_operations(SPEC)), ids=lambda operation: f"{operation[1].upper()} {operation[0]}"
)
def test_error_responses_use_only_codes_the_server_sends(operation: Operation) -> None:
    server_statuses = server_statuses_by_code()
    for status, media in error_media(SPEC, operation):
        where = f"{operation[1].upper()} {operation[0]} {status}"
        codes, uses_error_schema = enum_codes(SPEC, media["schema"])
        assert uses_error_schema, f"{where}: the schema does not use {ERROR_SCHEMA_REF}"
        assert codes, f"{where}: no `code` enum"
        example_codes = {deref(SPEC, example)["value"]["code"] for example in media.get("examples", {}).values()}
        assert example_codes == codes, f"{where}: the examples and the `code` enum differ"
        for code in codes:
            assert code in server_statuses, f"{where}: the server never sends code {code!r}"
            assert status in server_statuses[code], f"{where}: the server sends {code!r} as {server_statuses[code]}"


def request_schema_validator(path: str) -> Any:
    """A validator of the JSON request body of POST `path`, its `$ref`s resolved in the document."""
    body_schema = SPEC["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema_rs.Draft202012Validator({**body_schema, "components": SPEC["components"]})


# Whatever the body holds in a token field, the server reads a non-empty string as the token and
# takes any other value as no token; with a bearer header the field is not read at all. So no
# value makes the body invalid, and the spec must say so (schemathesis counted a request with a
# header and a malformed accessToken, answered 200, as invalid data accepted).
@pytest.mark.parametrize(
    ("path", "field", "other_fields"),
    [
        ("/api/verify-access", "accessToken", {}),
        ("/api/refresh-token", "refreshToken", {}),
        ("/totp/verify-login", "passAuthToken", {"code": "123456"}),
    ],
)
@pytest.mark.parametrize("value", ["not a token", "", None, 12, ["v4.local.x"], {"token": "v4.local.x"}])
def test_a_body_token_field_takes_any_value_as_the_server_does(
    path: str, field: str, other_fields: dict[str, str], value: object
) -> None:
    assert request_schema_validator(path).is_valid({**other_fields, field: value})


@pytest.mark.parametrize("value", ["not a token", "", None, 12])
def test_verify_access_with_a_bearer_token_ignores_the_body_field(
    actions: AuthActions, user: Enrolled, value: object
) -> None:
    bearer = {"Authorization": f"Bearer {actions.session(user)['accessToken']}"}
    response = actions.client.post("/api/verify-access", json={"accessToken": value}, headers=bearer)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["valid"] is True
