"""The pages as a person meets them (issue 19, "Wrong today"), in real Chromium: what each step and
refusal says, where focus goes, what a 390 px phone shows, and what is left after a session ends."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import ACCESS_TTL_SECONDS, TOTP_PERIOD, Codes, Problems, screenshot
from tests.e2e.journey import PASSWORD, TIMEOUT_MS, password_step, register
from tests.live_server import LiveServer

PHONE = {"width": 390, "height": 844}
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


def fresh_login(page: Page, base: str, username: str, code: str) -> None:
    """Log in from a browser that holds no session (enrolment leaves one: end it first)."""
    page.context.clear_cookies()
    page.goto(f"{base}/login")
    page.evaluate("localStorage.clear()")
    password_step(page, base, username, PASSWORD)
    page.get_by_label("Code from your authenticator app").fill(code)
    expect(page).to_have_url(f"{base}/", timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("username")).to_have_text(username)


def test_deleting_the_account_says_so(page: Page, server: LiveServer) -> None:
    """Item 1: the page's own BroadcastChannel message no longer overrides the reason."""
    codes, _ = register(page, server.url, "dora")
    fresh_login(page, server.url, "dora", codes.next())
    page.goto(f"{server.url}/account")
    page.locator("#delete-code").fill(codes.next())
    page.get_by_role("button", name="Delete account").click()
    expect(page.locator("#delete-result")).to_have_text("Tick the box to confirm.")
    page.get_by_label("Delete my account and everything in it").check()
    expect(page.locator("#delete-result")).to_be_hidden()  # item 8: the error goes with the tick
    page.get_by_role("button", name="Delete account").click()
    expect(page).to_have_url(re.compile(r"/login\?reason=account-deleted$"))
    expect(page.locator("#login-reason")).to_have_text("Your account has been deleted.")


def test_enrolment_logs_in_and_a_used_code_says_so(page: Page, server: LiveServer, problems: Problems) -> None:
    """Items 2, 3, 7: the enrolling browser is logged in; a code used already says so and when
    the next comes; focus lands on the codes; a step that succeeds after a failure says so."""
    base = server.url
    page.goto(f"{base}/register")
    page.get_by_label("Username").fill("erin")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    secret = page.get_by_test_id("totp-secret")
    expect(secret).not_to_be_empty(timeout=TIMEOUT_MS)
    verify_step = page.locator('[data-step="totp-verify"]')
    expect(verify_step).to_have_attribute("data-state", "input")  # waiting for the person, not spinning
    problems.expect_once("status of 401")
    page.get_by_label("Code from your app").fill("000000")
    expect(verify_step).to_have_attribute("data-state", "failed")
    codes = Codes(secret.inner_text())
    shown_step = int(time.time() // TOTP_PERIOD)
    shown = codes.totp.at(shown_step * TOTP_PERIOD)  # what the app shows now, as a person types it
    page.get_by_label("Code from your app").fill(shown)
    expect(page.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
    expect(verify_step).to_have_attribute("data-state", "done")
    expect(verify_step.locator("[data-step-message]")).not_to_contain_text("code")  # not the failure's words
    assert page.evaluate("document.activeElement.id") == "recovery-title"

    page.get_by_role("link", name="Continue to your account").click()
    expect(page).to_have_url(f"{base}/")
    expect(page.get_by_test_id("username")).to_have_text("erin")
    row = page.get_by_test_id("sessions").locator("tr")
    expect(row).to_have_count(1)
    name = row.first.locator("td").first.text_content() or ""
    assert "This device" in name and not re.search(r"\SThis device", name)  # a word of its own

    # The code the app still shows was spent by the enrolment: the page says so, and for how long.
    page.get_by_role("button", name="Log out", exact=True).first.click()
    expect(page).to_have_url(re.compile(r"/login\?reason=logged-out$"))
    password_step(page, base, "erin", PASSWORD)
    problems.expect_once("status of 401")
    entered_at = time.time()
    page.get_by_label("Code from your authenticator app").fill(shown)
    if entered_at // TOTP_PERIOD == shown_step:  # still the app's code: the page says how long to wait
        used = re.compile(r"already used\. Wait for the next one \(in \d+ s\)")
    else:  # the step has turned meanwhile: the app shows the next code already
        used = re.compile(r"already used\. Enter the next one your app shows\.")
    expect(page.locator("#totp-error")).to_contain_text(used)


def test_the_login_steps_tell_what_happened(page: Page, server: LiveServer, problems: Problems) -> None:
    """Items 2, 7, 9: a step done after a failure drops the failure's words; one row per round
    trip; focus returns to the password after a refusal; plain words for a wrong code."""
    base = server.url
    codes, _ = register(page, base, "finn")
    password_step(page, base, "finn", "not the password at all")
    expect(page.locator("#login-error")).to_have_text("Invalid username or password.", timeout=TIMEOUT_MS)
    assert page.evaluate("document.activeElement.id") == "password"
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_label("Code from your authenticator app")).to_be_visible(timeout=TIMEOUT_MS)
    verify = page.locator('[data-step="verify-server"]')
    expect(verify).to_have_attribute("data-state", "done")
    expect(verify.locator("[data-step-message]")).not_to_have_text("Invalid username or password.")
    expect(page.locator('[data-step="send-ke1"]')).to_have_count(0)  # KE1 out and KE2 back: one row
    expect(page.locator('[data-step="totp"]')).to_have_attribute("data-state", "input")
    problems.expect_once("status of 401")
    page.get_by_label("Code from your authenticator app").fill("000000")
    expect(page.locator("#totp-error")).to_contain_text("authenticator app")
    expect(page.locator("#totp-error")).not_to_have_text("Invalid TOTP code")
    page.get_by_label("Code from your authenticator app").fill(codes.next())
    expect(page).to_have_url(f"{base}/", timeout=TIMEOUT_MS)


@pytest.mark.parametrize("e2e_overrides", [{"PASS_AUTH_TTL": 2}], indirect=True)
def test_a_reopened_second_step_starts_empty(
    page: Page, server: LiveServer, problems: Problems, e2e_overrides: dict[str, object]
) -> None:
    """Items 9, 10: the expiry is said in plain words; the code field does not keep old digits."""
    codes, _ = register(page, server.url, "gail")
    password_step(page, server.url, "gail", PASSWORD)
    expect(page.get_by_label("Code from your authenticator app")).to_be_visible(timeout=TIMEOUT_MS)
    page.wait_for_timeout(3000)  # the pass-auth token lives 2 s here
    problems.expect_once("status of 401")
    page.get_by_label("Code from your authenticator app").fill(codes.next())
    expect(page.locator("#login-error")).to_have_text(
        "The time for the second step ran out. Log in with your password again."
    )
    expect(page.get_by_label("Password")).to_be_visible()  # the login starts over
    expect(page.locator('[data-step="totp"]')).to_have_attribute("data-state", "failed")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_label("Code from your authenticator app")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_label("Code from your authenticator app")).to_have_value("")


def test_a_phone_shows_the_secret_and_the_sessions_without_scrolling_sideways(
    browser: Browser, server: LiveServer, page: Page
) -> None:
    """Items 5, 6: on 390 px nothing is wider than the screen; Android's Chrome is named so."""
    phone = browser.new_context(viewport=PHONE, user_agent=ANDROID_CHROME)
    try:
        mobile = phone.new_page()
        mobile.goto(f"{server.url}/register")
        mobile.get_by_label("Username").fill("hana")
        mobile.get_by_label("Password", exact=True).fill(PASSWORD)
        mobile.get_by_label("Repeat the password").fill(PASSWORD)
        mobile.get_by_role("button", name="Register").click()
        secret = mobile.get_by_test_id("totp-secret")
        expect(secret).not_to_be_empty(timeout=TIMEOUT_MS)
        assert mobile.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        box = secret.bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE["width"]
        codes = Codes(secret.inner_text())
        mobile.get_by_label("Code from your app").fill(codes.next())
        expect(mobile.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)

        fresh_login(page, server.url, "hana", codes.next())  # a second session, from the desktop
        mobile.goto(server.url)
        rows = mobile.get_by_test_id("sessions").locator("tr")
        expect(rows).to_have_count(2)
        expect(rows.filter(has_text="This device")).to_contain_text("Chrome Mobile on Android")
        screenshot(mobile, "phone-dashboard")
        assert mobile.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        table_box = mobile.locator(".table-responsive")
        assert table_box.evaluate("(box) => box.scrollWidth <= box.clientWidth")
        revoke = mobile.get_by_role("button", name=re.compile("^Revoke"))
        revoke_box = revoke.bounding_box()
        assert revoke_box is not None and revoke_box["x"] + revoke_box["width"] <= PHONE["width"]
        expect(rows.first).to_contain_text("last seen")
    finally:
        phone.close()


def test_the_strength_meter_forgets_a_changed_password(page: Page, server: LiveServer) -> None:
    """Item 8: the meter empties with the field after a password change."""
    base = server.url
    codes, _ = register(page, base, "ivan")
    fresh_login(page, base, "ivan", codes.next())
    page.goto(f"{base}/account")
    page.get_by_label("New password", exact=True).fill("tangerine wombat lighthouse 42")
    expect(page.locator("#strength-feedback")).not_to_be_empty()
    page.get_by_label("Repeat the new password").fill("tangerine wombat lighthouse 42")
    page.locator("#password-code").fill(codes.next())
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-result")).to_contain_text("Password changed.", timeout=TIMEOUT_MS)
    expect(page.locator("#strength-feedback")).to_be_empty()
    expect(page.locator("#strength-bar")).to_have_attribute("aria-valuenow", "0")


def test_new_recovery_codes_can_be_kept_and_stand_apart_from_deletion(page: Page, server: LiveServer) -> None:
    """Item 12: new codes can be copied and downloaded; the delete form is not part of their region.
    (A test of its own: with the password change above it would need a fourth TOTP code, which
    means waiting for the next 30-second step.)"""
    base = server.url
    codes, _ = register(page, base, "ivy")
    fresh_login(page, base, "ivy", codes.next())
    page.goto(f"{base}/account")
    page.locator("#codes-code").fill(codes.next())
    page.get_by_role("button", name="Make new codes").click()
    region = page.get_by_role("region", name="New recovery codes")
    expect(region.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
    expect(region.locator("#delete-form")).to_have_count(0)
    with page.expect_download() as download:
        region.get_by_role("button", name="Download").click()
    first = region.get_by_test_id("recovery-codes").locator("li").first.inner_text()
    assert first in download.value.path().read_text()
    expect(region.get_by_role("button", name="Copy")).to_be_visible()


def test_pages_for_a_visitor_who_is_logged_in_or_lost(page: Page, server: LiveServer, problems: Problems) -> None:
    """Item 8: /login and /register lead a logged-in person to the dashboard; a mistyped address
    is a page, not JSON."""
    problems.expect_once("status of 404")
    response = page.goto(f"{server.url}/no-such-page")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="There is no page here")).to_be_visible()
    assert "application/json" not in response.headers["content-type"]
    register(page, server.url, "jade", stay_logged_in=True)
    for path in ("/login", "/register"):
        page.goto(f"{server.url}{path}")
        expect(page).to_have_url(f"{server.url}/")
        expect(page.get_by_test_id("username")).to_have_text("jade")


# Every page a tab shows is noted (in sessionStorage, which outlives the page) with its heading,
# and whether the landing page's content was ever painted visible.
NOTE_PAGES = """
if (location.protocol.startsWith("http")) {
const note = (entry) => sessionStorage.setItem("seen", (sessionStorage.getItem("seen") || "") + entry + "\\n");
document.addEventListener("DOMContentLoaded", () => note(document.querySelector("h1")?.textContent.trim() ?? ""));
const watch = () => {
  const landing = document.getElementById("landing");
  if (landing && landing.checkVisibility({ visibilityProperty: true })) note("LANDING VISIBLE");
  else requestAnimationFrame(watch);
};
requestAnimationFrame(watch);
}
"""


def _seen(page: Page) -> str:
    return str(page.evaluate("sessionStorage.getItem('seen') || ''"))


def test_what_is_left_after_a_session_ends(browser: Browser, context: BrowserContext, server: LiveServer) -> None:
    """Item 11: Back after logging out shows no account data; "Log out everywhere" says so; the
    other device says its session ended elsewhere; coming back after a break never shows the
    landing page before the dashboard."""
    base = server.url
    page = context.new_page()
    page.add_init_script(NOTE_PAGES)
    codes, _ = register(page, base, "kim", stay_logged_in=True)
    page.goto(base)
    expect(page.get_by_test_id("username")).to_have_text("kim")

    # A break: the access cookie lapses; the tab that opens the site again goes straight on.
    page.evaluate("sessionStorage.clear()")
    page.goto("about:blank")
    page.wait_for_timeout((ACCESS_TTL_SECONDS + 1) * 1000)
    page.goto(base)
    expect(page.get_by_test_id("username")).to_have_text("kim", timeout=TIMEOUT_MS)
    assert "LANDING VISIBLE" not in _seen(page)

    # Back after logging out asks the server again: the dashboard is not shown from the cache.
    page.get_by_role("button", name="Log out", exact=True).first.click()
    expect(page).to_have_url(re.compile(r"/login\?reason=logged-out$"))
    page.evaluate("sessionStorage.clear()")
    page.go_back()
    page.wait_for_load_state()
    expect(page.get_by_role("heading", level=1)).not_to_contain_text("Welcome")
    assert "Welcome" not in _seen(page)

    # Two devices; one logs out everywhere, the other is told its session ended elsewhere.
    other = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        second = other.new_page()
        fresh_login(second, base, "kim", codes.next())
        fresh_login(page, base, "kim", codes.next())
        page.get_by_role("button", name="Log out everywhere").click()
        expect(page.locator("#login-reason")).to_have_text("You have been logged out on every device.")
        second.reload()
        expect(second).to_have_url(re.compile(r"/login\?reason=ended-elsewhere$"), timeout=TIMEOUT_MS)
        expect(second.locator("#login-reason")).to_contain_text("ended from another device")
    finally:
        other.close()
