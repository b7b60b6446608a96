"""API tokens in a real browser: a token created in the page works with the API; revoked in the
page, it is refused (401) on its very next request while the user's other token still works; the
audit page lists the revocation."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_labeling_page import login, seed
from tests.e2e.test_project_access import audit_rows

pytestmark = pytest.mark.browser


def create_token(page: Page, name: str) -> str:
    page.get_by_role("link", name="API tokens").click()
    page.locator("input[name=name]").fill(name)
    page.get_by_role("button", name="Create token").click()
    return page.get_by_test_id("new-token").inner_text().strip()


def api_status(base: str, token: str) -> int:
    return requests.get(f"{base}/api/v1/projects", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code


def test_a_token_revoked_in_the_page_is_refused_by_the_api_at_once(page: Page, browser: Browser, live_server):
    base, app = live_server
    seed(app, [{"external_id": "a", "text": "one"}], people=(("ann", "annotator"), ("boss", "admin")))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, "ann")
    script = create_token(page, "my script")
    other = create_token(page, "notebook")
    assert script.strip() and other.strip() and script != other
    assert api_status(base, script) == 200 and api_status(base, other) == 200

    page.get_by_role("link", name="API tokens").click()
    expect(page.get_by_test_id("new-token")).to_have_count(0)  # shown once
    row = page.get_by_test_id("tokens").locator("tr", has_text="my script")
    messages: list[str] = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("Token 'my script' revoked.")
    expect(page.get_by_test_id("tokens").locator("tr", has_text="my script")).to_have_count(0)
    assert messages and messages[0].startswith("Revoke the token my script?")
    assert api_status(base, script) == 401
    assert api_status(base, other) == 200

    admin = browser.new_context().new_page()
    login(admin, base, "boss")
    revoked = audit_rows(admin, base, action="token.revoked")
    assert [(r["Who"], r["What"]) for r in revoked] == [("ann", "token.revoked")]
    assert errors == []


def test_reloading_the_page_after_creating_a_token_creates_no_other_token(page: Page, live_server):
    base, app = live_server
    seed(app, [{"external_id": "a", "text": "one"}], people=(("ann", "annotator"),))
    login(page, base, "ann")
    secret = create_token(page, "once")
    expect(page).to_have_url(f"{base}/account/tokens")  # Post/Redirect/Get: the address is the list's
    assert api_status(base, secret) == 200
    page.reload()
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    expect(page.get_by_test_id("new-token")).to_have_count(0)  # shown once, and not again on reload
    expect(page.get_by_test_id("tokens").locator("tr", has_text="once")).to_have_count(1)
    page.go_back()  # back to the form page, forward again: still one token
    page.go_forward()
    expect(page.get_by_test_id("tokens").locator("tr", has_text="once")).to_have_count(1)


def test_a_new_token_is_copied_with_one_click(page: Page, live_server):
    base, app = live_server
    seed(app, [{"external_id": "a", "text": "one"}])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    login(page, base, "ann")
    token = create_token(page, "copied")
    page.get_by_test_id("copy-new-token").click()
    expect(page.get_by_test_id("copy-new-token")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == token
