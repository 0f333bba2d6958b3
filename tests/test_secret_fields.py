"""No page can send a password (or a code) anywhere by itself: no field carries a `name`, every form
is `method="dialog"` (which, outside a dialog, submits nothing), and each submit button stays
disabled until the page's module has taken over. tests/e2e/ checks the same in Chromium with the
scripts blocked."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from flask.testing import FlaskClient

PAGES = ("/login", "/register", "/account", "/")


class Controls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str | None]] = []
        self.fields: list[dict[str, str | None]] = []
        self.submit_buttons: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append(attributes)
        elif tag in ("input", "textarea", "select"):
            self.fields.append(attributes)
        elif tag == "button" and attributes.get("type", "submit") == "submit":
            self.submit_buttons.append(attributes)


@pytest.mark.parametrize("path", PAGES)
def test_no_field_or_form_can_send_anything_by_itself(client: FlaskClient, path: str) -> None:
    controls = Controls()
    controls.feed(client.get(path).get_data(as_text=True))
    if path != "/":
        assert any(field.get("type") == "password" for field in controls.fields)
    assert all("name" not in field for field in controls.fields), controls.fields
    assert all(form.get("method") == "dialog" and "action" not in form for form in controls.forms), controls.forms
    assert all("disabled" in button and "data-await-script" in button for button in controls.submit_buttons)
