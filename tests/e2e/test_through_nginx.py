"""A person in Chromium through the documented deployment: the shipped nginx file over TLS in
front of gunicorn in production mode. Register with TOTP, log in (with the `__Host-` cookies) and
change the password, with every module loaded as JavaScript and no console error on the way."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Response, expect

from tests.e2e.conftest import REPORT_CSP_VIOLATIONS, Problems
from tests.e2e.journey import NEW_PASSWORD, PASSWORD, change_password, log_in, register
from tests.nginx_server import Stack, cypher_behind_nginx, nginx_missing
from tests.static_types import JAVASCRIPT

pytestmark = pytest.mark.skipif(nginx_missing() is not None, reason=nginx_missing() or "")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with cypher_behind_nginx(tmp_path) as stack:
        yield stack


@pytest.fixture
def page(browser: Browser, problems: Problems, stack: Stack) -> Iterator[Page]:
    # The test's certificate is its own: Chromium is told to accept it, as a person would trust a real one.
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    context.on("page", problems.watch)
    yield context.new_page()
    context.close()


def test_register_log_in_and_change_the_password_through_nginx(page: Page, stack: Stack) -> None:
    modules: dict[str, str] = {}
    failed: list[str] = []

    def record(response: Response) -> None:
        if re.search(r"\.m?js$", response.url):
            modules[response.url] = f"{response.status} {response.headers.get('content-type', '')}"

    page.on("response", record)
    page.on("requestfailed", lambda request: failed.append(f"{request.url} {request.failure}"))

    codes, _ = register(page, stack.base, "Carol")
    log_in(page, stack.base, "carol", PASSWORD, codes.next())
    expect(page.locator("#scripts-missing")).to_have_count(0)
    # Chromium took the production cookies under their __Host- names, with what that prefix demands.
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert set(cookies) == {"__Host-cypher_access", "__Host-cypher_refresh"}
    assert all(cookie["secure"] and cookie["path"] == "/" and cookie["httpOnly"] for cookie in cookies.values())
    change_password(page, stack.base, "carol", NEW_PASSWORD, codes.next())

    assert failed == []
    assert any(url.endswith(".mjs") for url in modules), "the password meter's modules were never loaded"
    wrong = {
        url: seen
        for url, seen in modules.items()
        if not (seen.startswith("200 ") and seen.split(" ", 1)[1].split(";")[0] in JAVASCRIPT)
    }
    assert wrong == {}
