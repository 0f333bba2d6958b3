"""A person's journey in real Chromium: register, enrol TOTP, log in and out, keep the session
alive, change the password, use a recovery code; no console error or CSP violation on the way."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import ACCESS_TTL_SECONDS, Codes, Problems, screenshot
from tests.live_server import LiveServer

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "tangerine wombat lighthouse 42"
TIMEOUT_MS = 30_000  # Argon2id with 64 MiB in WebAssembly, on a small machine


def register(page: Page, base: str, username: str) -> tuple[Codes, list[str]]:
    page.goto(f"{base}/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    screenshot(page, "register")
    page.get_by_role("button", name="Register").click()
    secret = page.get_by_test_id("totp-secret")
    expect(secret).not_to_be_empty(timeout=TIMEOUT_MS)
    expect(page.locator('[data-step="send-record"]')).to_have_attribute("data-state", "done")
    screenshot(page, "register-totp")
    codes = Codes(secret.inner_text())
    page.get_by_label("Code from your app").fill(codes.next())  # six digits submit themselves
    recovery = page.get_by_test_id("recovery-codes").locator("li")
    expect(recovery).to_have_count(10)
    expect(page.locator('[data-step="totp-verify"]')).to_have_attribute("data-state", "done")
    screenshot(page, "register-recovery-codes")
    return codes, recovery.all_inner_texts()


def password_step(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def log_in(
    page: Page, base: str, username: str, password: str, code: str, *, wrong_code_first: Problems | None = None
) -> None:
    password_step(page, base, username, password)
    expect(page.get_by_label("Code from your authenticator app")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator('[data-step="send-ke3"]')).to_have_attribute("data-state", "done")
    screenshot(page, "login-totp")
    if wrong_code_first is not None:
        wrong_code_first.expect_once("status of 401")
        page.get_by_label("Code from your authenticator app").fill("000000")
        expect(page.locator("#totp-error")).to_have_text("Invalid TOTP code")
        expect(page.locator('[data-step="totp"]')).to_have_attribute("data-state", "failed")
    page.get_by_label("Code from your authenticator app").fill(code)
    expect(page).to_have_url(f"{base}/", timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("username")).to_have_text(username)


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
    page.goto(f"{base}/account")
    expect(page.get_by_test_id("username")).to_have_text("alice")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.locator("#password-code").fill(codes.next())
    screenshot(page, "account")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-result")).to_contain_text("Password changed.", timeout=TIMEOUT_MS)
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


@pytest.mark.parametrize("e2e_overrides", [{"PASS_AUTH_TTL": 2}], indirect=True)
def test_an_expired_password_step_starts_over(
    page: Page, server: LiveServer, problems: Problems, e2e_overrides: dict[str, object]
) -> None:
    codes, _ = register(page, server.url, "bob")
    password_step(page, server.url, "bob", PASSWORD)
    expect(page.get_by_label("Code from your authenticator app")).to_be_visible(timeout=TIMEOUT_MS)
    page.wait_for_timeout(3000)  # the pass-auth token lives 2 s here
    problems.expect_once("status of 401")
    page.get_by_label("Code from your authenticator app").fill(codes.next())
    expect(page.locator("#login-error")).to_have_text("Password authentication token not found or expired")
    expect(page.get_by_label("Password")).to_be_visible()
    expect(page.locator('[data-step="totp"]')).to_have_attribute("data-state", "failed")


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
