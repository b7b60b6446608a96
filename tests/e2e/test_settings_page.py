"""The project settings page in a real browser: an admin changes a setting (and sees an error
beside its field), rotates the webhook secret after a confirmation, and deletes the project by
typing its name; the audit page lists each change."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from labeling.models import Example, Project
from tests.e2e.test_labeling_page import login, seed
from tests.e2e.test_project_access import audit_rows

pytestmark = pytest.mark.browser


def stored(app, project_id):
    with app.extensions["hitl_sessionmaker"]() as s:
        return s.get(Project, project_id)


def test_an_admin_changes_a_setting_rotates_the_secret_and_deletes_the_project(page: Page, live_server):
    base, app = live_server
    project_id = seed(app, [{"external_id": str(i), "text": f"review {i}"} for i in range(5)],
                      people=(("boss", "admin"),),
                      settings={"holdout_fraction": 0, "webhook_url": "https://hooks.example.org/labels"})
    secret_before = stored(app, project_id).settings["webhook_secret"]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, "boss")
    page.get_by_role("link", name="Reviews").click()
    page.get_by_role("link", name="Settings and access").click()

    form = page.get_by_test_id("settings-form")
    form.locator("input[name=retrain_threshold]").fill("0")
    form.get_by_role("button", name="Save settings").click()
    expect(page.get_by_test_id("error-retrain_threshold")).to_have_text("must be a whole number from 1 to 100000")
    form = page.get_by_test_id("settings-form")
    form.locator("input[name=retrain_threshold]").fill("35")
    form.get_by_role("button", name="Save settings").click()
    expect(page.get_by_test_id("settings-notice")).to_have_text("Saved: retrain_threshold.")
    expect(page.get_by_test_id("error-retrain_threshold")).to_have_count(0)
    assert stored(app, project_id).settings["retrain_threshold"] == 35

    page.once("dialog", lambda dialog: dialog.dismiss())  # changed their mind: nothing happens
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_test_id("settings-notice")).to_have_text("Saved: retrain_threshold.")
    assert stored(app, project_id).settings["webhook_secret"] == secret_before
    messages: list[str] = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Rotate secret").click()
    shown = page.get_by_test_id("secret")
    expect(shown).to_contain_text("whsec_")
    secret = shown.inner_text().strip()
    assert secret != secret_before and stored(app, project_id).settings["webhook_secret"] == secret
    assert messages and messages[0].startswith("Replace the webhook secret?")
    page.reload()
    expect(page.get_by_test_id("secret")).to_have_count(0)  # shown once

    delete = page.get_by_test_id("delete-form")
    delete.locator("input[name=confirm]").fill("Review")
    delete.get_by_role("button", name="Delete this project").click()
    expect(page.get_by_test_id("error-confirm")).to_contain_text("does not match")
    page.get_by_test_id("delete-form").locator("input[name=confirm]").fill("Reviews")
    page.get_by_test_id("delete-form").get_by_role("button", name="Delete this project").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text("Project 'Reviews' and everything of it were deleted.")
    expect(page.get_by_role("link", name="Reviews")).to_have_count(0)
    with app.extensions["hitl_sessionmaker"]() as s:
        assert s.get(Project, project_id) is None
        assert s.scalars(select(Example.id).where(Example.project_id == project_id)).all() == []
    rows = audit_rows(page, base, project=str(project_id))  # the trail outlives the project
    assert [(r["Who"], r["What"], r["Target"]) for r in rows] == [
        ("boss", "project.deleted", "Reviews"), ("boss", "project.webhook_secret_rotated", "Reviews"),
        ("boss", "project.settings_changed", "Reviews")]
    assert "examples: 5" in rows[0]["Details"]
    assert {r["Project"] for r in rows} == {f"Reviews #{project_id} (deleted)"}
    expect(page.get_by_test_id("audit-events").get_by_role("link")).to_have_count(0)  # no link to a 404
    assert errors == []


def test_archiving_asks_first_and_unarchiving_does_not(page: Page, live_server):
    base, app = live_server
    project_id = seed(app, [{"external_id": "1", "text": "review 1"}], people=(("boss", "admin"),))
    login(page, base, "boss")
    page.goto(f"{base}/projects/{project_id}/settings")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))  # changed his mind
    page.get_by_role("button", name="Archive", exact=True).click()
    expect(page.get_by_test_id("archived-notice")).to_have_count(0)
    assert asked and asked[0].startswith("Archive Reviews?") and stored(app, project_id).archived_at is None
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Archive", exact=True).click()
    expect(page.get_by_test_id("archived-notice")).to_be_visible()
    assert stored(app, project_id).archived_at is not None
    page.on("dialog", lambda dialog: asked.append(dialog.message))  # none expected
    page.get_by_role("button", name="Unarchive").click()
    expect(page.get_by_test_id("archived-notice")).to_have_count(0)
    assert len(asked) == 1 and stored(app, project_id).archived_at is None
