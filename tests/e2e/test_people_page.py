"""People in a real browser: an admin creates a user with htmx, the user logs in, the admin
deactivates them after a confirmation, and the user's open page is logged out."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from labeling import users
from labeling.db import utcnow
from tests.e2e.test_labeling_page import login

pytestmark = pytest.mark.browser


def test_an_admin_creates_a_user_and_deactivates_them(page: Page, browser: Browser, live_server):
    base, app = live_server
    with app.extensions["hitl_sessionmaker"]() as s:
        users.create_user(s, "boss", "admin", password="correct horse", now=utcnow())
        s.commit()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, "boss")
    page.get_by_role("link", name="People").click()
    form = page.get_by_test_id("new-user")
    form.locator("input[name=name]").fill("dana")
    form.locator("select[name=role]").select_option("reviewer")
    form.get_by_role("button", name="Create user").click()
    expect(page.get_by_test_id("users-notice")).to_have_text("Created reviewer dana.")
    password = page.get_by_test_id("password").inner_text()
    assert len(password) >= 16

    other = browser.new_context().new_page()  # dana, in a browser of her own
    other.goto(f"{base}/login")
    other.fill("input[name=name]", "dana")
    other.fill("input[name=password]", password)
    other.click("button[type=submit]")
    expect(other.get_by_role("heading", name="Projects")).to_be_visible()

    row = page.locator("tr[data-user=dana]")
    expect(row).to_contain_text("active")
    page.once("dialog", lambda dialog: dialog.dismiss())  # changed her mind: nothing happens
    row.get_by_role("button", name="Deactivate").click()
    expect(row.get_by_role("button", name="Deactivate")).to_be_visible()
    messages: list[str] = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    row.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_test_id("users-notice")).to_contain_text("dana is deactivated")
    expect(page.locator("tr[data-user=dana]")).to_contain_text("deactivated")
    assert messages and "Deactivate dana?" in messages[0]

    other.reload()
    expect(other).to_have_url(f"{base}/login?next=/")
    assert errors == []


def test_without_javascript_a_reload_resets_no_password_and_creates_no_user(browser: Browser, live_server):
    base, app = live_server
    with app.extensions["hitl_sessionmaker"]() as s:
        users.create_user(s, "boss", "admin", password="correct horse", now=utcnow())
        users.create_user(s, "dana", "annotator", password="correct horse", now=utcnow())
        s.commit()
    page = browser.new_context(java_script_enabled=False).new_page()  # plain form posts, no htmx
    login(page, base, "boss")
    page.goto(f"{base}/users")
    page.locator("tr[data-user=dana]").get_by_role("button", name="Reset password").click()
    expect(page).to_have_url(f"{base}/users")
    expect(page.get_by_test_id("users-notice")).to_have_text("New password for dana.")
    password = page.get_by_test_id("password").inner_text().strip()
    page.reload()
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    expect(page.get_by_test_id("password")).to_have_count(0)  # shown once
    with app.extensions["hitl_sessionmaker"]() as s:  # the password shown is still dana's
        assert users.authenticate(s, "dana", password) is not None

    form = page.get_by_test_id("new-user")
    form.locator("input[name=name]").fill("erin")
    form.get_by_role("button", name="Create user").click()
    expect(page).to_have_url(f"{base}/users")
    expect(page.get_by_test_id("users-notice")).to_have_text("Created annotator erin.")
    assert len(page.get_by_test_id("password").inner_text().strip()) >= 16
    page.reload()
    expect(page.get_by_test_id("users-error")).to_have_count(0)  # no second "create erin"
    expect(page.get_by_test_id("password")).to_have_count(0)
