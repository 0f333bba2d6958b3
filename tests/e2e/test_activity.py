"""The account page's "Recent security activity" in real Chromium, at desktop width and on a
390 px phone screen."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Problems, screenshot
from tests.e2e.journey import PASSWORD, log_in, register
from tests.live_server import LiveServer

PHONE_WIDTH = 390


def test_the_account_page_lists_recent_activity(page: Page, server: LiveServer, problems: Problems) -> None:
    base = server.url
    codes, _ = register(page, base, "carol")
    log_in(page, base, "carol", PASSWORD, codes.next(), wrong_code_first=problems)

    page.goto(f"{base}/account")
    activity = page.get_by_test_id("activity").locator("li")
    expect(activity).to_have_count(6)
    expect(activity.nth(0)).to_contain_text("Logged in")
    expect(activity.nth(1)).to_contain_text("Login failed: wrong authenticator code")
    expect(activity.nth(2)).to_contain_text("Logged out")
    expect(activity.nth(3)).to_contain_text("Logged in")  # enrolment logs the enrolling browser in
    expect(activity.nth(4)).to_contain_text("Authenticator app set up")
    expect(activity.nth(5)).to_contain_text("Account registered")
    # Where from: the device named from the User-Agent, and the address.
    expect(activity.nth(0)).to_contain_text("Chrome on Linux, 127.0.0.1")
    expect(activity.nth(1).locator(".text-danger")).to_have_count(1)  # a refusal stands out
    screenshot(page, "account-activity")

    page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
    page.reload()
    expect(activity).to_have_count(6)
    activity.nth(5).scroll_into_view_if_needed()
    # Nothing wider than the screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
    assert page.evaluate("document.getElementById('activity').getBoundingClientRect().right") <= PHONE_WIDTH
    screenshot(page, "phone-account-activity")
