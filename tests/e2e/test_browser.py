"""A person's journey in real Chromium: register, enrol TOTP, log in and out, keep the session
alive, change the password, use a recovery code; no console error or CSP violation on the way."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import ACCESS_TTL_SECONDS, Problems, screenshot
from tests.e2e.journey import NEW_PASSWORD, PASSWORD, TIMEOUT_MS, change_password, log_in, password_step, register
from tests.live_server import LiveServer


def test_the_whole_journey(context: BrowserContext, page: Page, server: LiveServer, problems: Problems) -> None:
    base = server.url
    codes, recovery_codes = register(page, base, "Alice")

    # Wrong password: the client finds out at "Verify server" and says so.
    password_step(page, base, "alice", "not the password at all")
    expect(page.get_by_role("alert")).to_have_text("Invalid username or password.", timeout=TIMEOUT_MS)
    expect(page.locator('[data-step="verify-server"]')).to_have_attribute("data-state", "failed")
    expect(page.locator('[data-step="send-ke3"]')).to_have_attribute("data-state", "waiting")
    screenshot(page, "login-wrong-password")

    log_in(page, base, "alice", PASSWORD, codes.next(), wrong_code_first=problems)
    sessions = page.get_by_test_id("sessions").locator("tr")
    expect(sessions).to_have_count(1)
    expect(sessions.first).to_contain_text("This device")
    screenshot(page, "dashboard")

    # The access token lives ACCESS_TTL_SECONDS; the page refreshes it silently before then.
    expires_before = page.evaluate("localStorage.getItem('cypher.accessExpiresAt')")
    page.wait_for_timeout((ACCESS_TTL_SECONDS + 3) * 1000)
    assert page.evaluate("localStorage.getItem('cypher.accessExpiresAt')") != expires_before
    status = page.evaluate(
        "fetch('/api/verify-access', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'})"
        ".then((response) => response.status)"
    )
    assert status == 200
    page.reload()
    expect(page.get_by_test_id("username")).to_have_text("alice")

    # A second tab follows the first one out.
    second = context.new_page()
    second.goto(f"{base}/")
    expect(second.get_by_test_id("username")).to_have_text("alice")
    page.get_by_role("button", name="Log out", exact=True).first.click()
    expect(page).to_have_url(re.compile(r"/login\?reason=logged-out$"))
    expect(second).to_have_url(re.compile(r"/login\?reason=logged-out$"))
    second.close()

    # Change the password: afterwards the old one fails and the new one works.
    log_in(page, base, "alice", PASSWORD, codes.next())
    change_password(page, base, "alice", NEW_PASSWORD, codes.next())
    page.locator("#nav-logout").click()
    expect(page).to_have_url(re.compile(r"/login\?reason=logged-out$"))

    password_step(page, base, "alice", PASSWORD)
    expect(page.get_by_role("alert")).to_have_text("Invalid username or password.", timeout=TIMEOUT_MS)

    # A recovery code instead of the authenticator.
    password_step(page, base, "alice", NEW_PASSWORD)
    expect(page.get_by_role("button", name="Use a recovery code")).to_be_visible(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Use a recovery code").click()
    page.get_by_label("Recovery code").fill(recovery_codes[0])
    page.get_by_role("button", name="Use recovery code").click()
    expect(page).to_have_url(f"{base}/", timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("username")).to_have_text("alice")


def test_pages_are_served_with_a_strict_csp(page: Page, server: LiveServer) -> None:
    for path in ("/", "/register", "/login", "/account"):
        response = page.goto(f"{server.url}{path}")
        assert response is not None and response.ok
        policy = response.headers["content-security-policy"]
        assert "script-src 'self' 'wasm-unsafe-eval'" in policy and "unsafe-inline" not in policy
    # A visitor on /account is sent to log in first.
    expect(page).to_have_url(re.compile(r"/login\?reason=login-required$"))
    expect(page.get_by_role("status").first).to_have_text("Please log in first.")
    page.goto(server.url)
    screenshot(page, "landing")


def test_a_phone_sized_screen(page: Page, server: LiveServer) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    for path, name in (("/register", "phone-register"), ("/login", "phone-login")):
        page.goto(f"{server.url}{path}")
        # Nothing wider than the screen: no sideways scrolling.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, name)


def test_legacy_paths_redirect(page: Page, server: LiveServer) -> None:
    for old, new in (("/api/login", "/login"), ("/api/register", "/register"), ("/api/totp", "/register")):
        page.goto(f"{server.url}{old}")
        expect(page).to_have_url(f"{server.url}{new}")


@pytest.mark.parametrize("path", ["/register", "/login", "/account"])
def test_with_its_scripts_blocked_a_page_sends_no_password_and_says_so(
    browser: Browser, server: LiveServer, path: str
) -> None:
    # A context of its own: the blocked modules are console errors this test expects.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.route(re.compile(r"\.m?js(\?.*)?$"), lambda route: route.abort())
        sent: list[str] = []
        page.on("request", lambda request: sent.append(f"{request.url} {request.post_data or ''}"))
        page.goto(f"{server.url}{path}")
        secret = "blocked-scripts secret 42"
        for field in page.locator("input[type=password]").all():
            field.fill(secret)
        if path != "/account":
            page.get_by_label("Username").fill("alice")
        page.locator("input[type=password]").first.press("Enter")
        for button in page.locator("button[type=submit]:visible").all():
            button.click(force=True)  # disabled: nothing happens
        # Even a submission the page did not stop would carry nothing anywhere.
        page.evaluate("for (const form of document.forms) form.requestSubmit()")
        page.wait_for_timeout(1000)  # time for any navigation a submission would start
        leaked = [request for request in sent if secret in unquote_plus(request) or "alice" in request]
        assert leaked == [], leaked
        assert page.url == f"{server.url}{path}"
        expect(page.get_by_role("alert").filter(has_text="This page could not load")).to_be_visible(timeout=10_000)
        assert all(button.is_disabled() for button in page.locator("button[type=submit]").all())
    finally:
        context.close()


def test_a_page_whose_scripts_load_never_shows_the_notice(page: Page, server: LiveServer) -> None:
    for path in ("/", "/register", "/login", "/account"):
        page.goto(f"{server.url}{path}")
        expect(page.locator("#scripts-missing")).to_have_count(0)
    page.goto(f"{server.url}/login")
    expect(page.get_by_role("button", name="Log in")).to_be_enabled()
    page.wait_for_timeout(3500)  # past the notice's delay
    expect(page.get_by_role("alert").filter(has_text="could not load")).to_have_count(0)
