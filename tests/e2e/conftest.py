"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright against the app on a loopback port.

Every page's console errors and Content-Security-Policy violations are collected; a test fails if
any appeared. Screenshots go to artifacts/e2e/.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from cypher import create_app
from tests.live_server import LiveServer

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
ACCESS_TTL_SECONDS = 6  # short, so a test sees the silent refresh happen
TOTP_PERIOD = 30

# Injected by the browser, before any page script: reports CSP violations to the console.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


@dataclass
class Problems:
    """Console errors and page errors seen by every page of a test, but those it expected."""

    seen: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    def expect_once(self, text: str) -> None:
        """One console error containing `text` is part of the test (Chromium logs failed requests)."""
        self.expected.append(text)

    def watch(self, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type != "error":
                return
            match = next((text for text in self.expected if text in message.text), None)
            if match is None:
                self.seen.append(f"{page.url}: {message.text}")
            else:
                self.expected.remove(match)

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.seen.append(f"{page.url}: {error}"))


class Codes:
    """TOTP codes for one secret, each for a later step than the last (a step works once)."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.last_step = -1

    def next(self) -> str:
        now = time.time()
        current = int(now // TOTP_PERIOD)
        # The server takes one step of drift either way: three codes are good at any moment, the
        # first for a good 30 s yet, long enough for any request of a test.
        step = max(self.last_step + 1, current - 1)
        if step > current + 1:  # beyond the one step of drift the server allows: wait for it
            time.sleep((step - 1) * TOTP_PERIOD - now + 0.5)
        self.last_step = step
        return self.totp.at(step * TOTP_PERIOD)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (as root: apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield browser
        browser.close()


@pytest.fixture
def e2e_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    """Settings a test changes, with @pytest.mark.parametrize("e2e_overrides", [...], indirect=True)."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def e2e_app(tmp_path: Path, e2e_overrides: dict[str, object]) -> Iterator[Flask]:
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'cypher.db'}",
            "KEYS_FILE": str(tmp_path / "keys.json"),
            "SERVER_ID": "localhost",
            "COOKIE_SECURE": False,
            "ACCESS_TTL": ACCESS_TTL_SECONDS,
            "RATELIMIT_ENABLED": False,
            **e2e_overrides,
        }
    )
    yield app
    app.extensions["cypher"].store.dispose()


@pytest.fixture
def server(e2e_app: Flask) -> Iterator[LiveServer]:
    with LiveServer(e2e_app) as live:
        yield live


@pytest.fixture
def problems() -> Iterator[Problems]:
    problems = Problems()
    yield problems
    assert problems.seen == [], "console errors or CSP violations:\n" + "\n".join(problems.seen)
    assert problems.expected == [], f"expected console errors that never came: {problems.expected}"


@pytest.fixture
def context(browser: Browser, problems: Problems, server: LiveServer) -> Iterator[BrowserContext]:
    # Depends on the server so that it closes first: open pages keep refreshing their session.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    context.on("page", problems.watch)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture(scope="session", autouse=True)
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


def screenshot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
