"""A JSON client over real HTTP with the test client's little interface (post, get_json), so the
protocol helpers in tests/ can speak to a server in another process."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass
class HttpResponse:
    status_code: int
    body: bytes
    headers: dict[str, str]

    def get_json(self) -> Any:
        return json.loads(self.body) if self.body else None


class HttpClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def request(
        self, method: str, path: str, json_body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> HttpResponse:
        data = None if json_body is None else json.dumps(json_body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return HttpResponse(response.status, response.read(), dict(response.headers))
        except urllib.error.HTTPError as error:
            return HttpResponse(error.code, error.read(), dict(error.headers))

    def post(self, path: str, *, json: dict[str, Any]) -> HttpResponse:  # noqa: A002 - the test client's name
        return self.request("POST", path, json)

    def get(self, path: str) -> HttpResponse:
        return self.request("GET", path)
