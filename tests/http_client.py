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
    """JSON over HTTP; an opener adds cookies, TLS or other handlers, default_headers go on every request."""

    def __init__(
        self,
        base_url: str,
        opener: urllib.request.OpenerDirector | None = None,
        default_headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._opener = opener or urllib.request.build_opener()
        self._default_headers = default_headers or {}

    def request(
        self, method: str, path: str, json_body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> HttpResponse:
        data = None if json_body is None else json.dumps(json_body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in {**self._default_headers, **(headers or {})}.items():
            request.add_header(name, value)
        try:
            with self._opener.open(request, timeout=30) as response:
                return HttpResponse(response.status, response.read(), dict(response.headers))
        except urllib.error.HTTPError as error:
            return HttpResponse(error.code, error.read(), dict(error.headers))

    def post(  # noqa: A002 - `json` is the test client's name
        self, path: str, *, json: dict[str, Any], headers: dict[str, str] | None = None
    ) -> HttpResponse:
        return self.request("POST", path, json, headers)

    def get(self, path: str) -> HttpResponse:
        return self.request("GET", path)
