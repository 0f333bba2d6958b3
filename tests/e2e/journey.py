"""A person's steps through the pages, shared by the browser tests."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Codes, Problems, screenshot

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "tangerine wombat lighthouse 42"
TIMEOUT_MS = 30_000  # Argon2id with 64 MiB in WebAssembly, on a small machine


def register(page: Page, base: str, username: str, *, stay_logged_in: bool = False) -> tuple[Codes, list[str]]:
    """Register and enrol; enrolment logs the browser in, and unless `stay_logged_in` the person
    goes on to the dashboard and logs out, so that the test's own logins start from scratch."""
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
    recovery_codes = recovery.all_inner_texts()
    if not stay_logged_in:
        page.get_by_role("link", name="Continue to your account").click()
        expect(page.get_by_test_id("username")).to_have_text(username.lower())
        expect(page.get_by_test_id("sessions").locator("tr")).to_have_count(1)  # loaded: nothing in flight
        page.locator("#nav-logout").click()
        expect(page).to_have_url(re.compile(r"/login\?reason=logged-out$"))
        # The login page fetches its OPAQUE module at once: let it arrive, or the test's next
        # navigation aborts it.
        page.wait_for_load_state("networkidle")
    return codes, recovery_codes


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
        expect(page.locator("#totp-error")).to_have_text(
            "That is not the code your authenticator app shows now. Check the app and try again."
        )
        expect(page.locator('[data-step="totp"]')).to_have_attribute("data-state", "failed")
    page.get_by_label("Code from your authenticator app").fill(code)
    expect(page).to_have_url(f"{base}/", timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("username")).to_have_text(username)
    page.wait_for_load_state("networkidle")  # the dashboard's own requests, before the test moves on


def change_password(page: Page, base: str, username: str, new_password: str, code: str) -> None:
    page.goto(f"{base}/account")
    expect(page.get_by_test_id("username")).to_have_text(username)
    page.get_by_label("New password", exact=True).fill(new_password)
    page.get_by_label("Repeat the new password").fill(new_password)
    page.locator("#password-code").fill(code)
    screenshot(page, "account")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-result")).to_contain_text("Password changed.", timeout=TIMEOUT_MS)
