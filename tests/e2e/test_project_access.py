"""Project access in a real browser: an admin creates an annotator in the people page, makes a
project members-only with that annotator, the annotator labels there while a non-member gets a
404 and no longer sees the project; the audit page lists the user and the member change."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from labeling.models import Label, User
from tests.e2e.test_labeling_page import login, seed

pytestmark = pytest.mark.browser


def audit_rows(page: Page, base: str, **filters: str) -> list[dict[str, str]]:
    """The audit page's rows (newest first) as dicts keyed by the column headings."""
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    page.goto(f"{base}/audit" + (f"?{query}" if query else ""))
    table = page.get_by_test_id("audit-events")
    expect(table).to_be_visible()
    heads = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    return [dict(zip(heads, (c.strip() for c in row.locator("td").all_inner_texts())))
            for row in table.locator("tbody tr").all()]


def test_a_members_only_project_is_labeled_by_its_member_and_hidden_from_others(page: Page, browser: Browser,
                                                                                  live_server):
    base, app = live_server
    project_id = seed(app, [{"external_id": f"r{i}", "text": f"review {i}"} for i in range(6)],
                      people=(("boss", "admin"), ("eve", "annotator")))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, "boss")
    page.get_by_role("link", name="People").click()
    form = page.get_by_test_id("new-user")
    form.locator("input[name=name]").fill("ann")
    form.locator("select[name=role]").select_option("annotator")
    form.get_by_role("button", name="Create user").click()
    expect(page.get_by_test_id("users-notice")).to_have_text("Created annotator ann.")
    password = page.get_by_test_id("password").inner_text().strip()

    page.get_by_role("link", name="Projects").click()
    page.get_by_role("link", name="Reviews").click()
    page.get_by_role("link", name="Settings and access").click()
    expect(page.get_by_test_id("open-to-all")).to_be_visible()
    members = page.get_by_test_id("members-form")
    members.locator("input[name=new_user]").fill("ann")
    members.locator("select[name=new_role]").select_option("annotator")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    members.get_by_role("button", name="Save members").click()
    expect(page.get_by_test_id("settings-notice")).to_have_text("Members saved: 1.")
    assert "everyone else loses access" in asked[0]  # the first member closes the project to others
    expect(page.locator("tr[data-member=ann]")).to_be_visible()
    expect(page.get_by_test_id("open-to-all")).to_have_count(0)

    ann = browser.new_context().new_page()  # the member, in a browser of her own
    ann.goto(f"{base}/login")
    ann.fill("input[name=name]", "ann")
    ann.fill("input[name=password]", password)
    ann.click("button[type=submit]")
    expect(ann.get_by_role("link", name="Reviews")).to_be_visible()
    ann.get_by_role("link", name="Label", exact=True).click()
    ann.wait_for_load_state()  # a click waits for the navigation, not for the page's deferred key handler
    labeled = ann.locator("form.labeling").get_attribute("data-example-id")
    ann.keyboard.press("1")
    expect(ann.locator("form.labeling")).not_to_have_attribute("data-example-id", labeled)
    expect(ann.get_by_test_id("progress")).to_contain_text("1 / 6 labeled")
    with app.extensions["hitl_sessionmaker"]() as s:
        rows = s.execute(select(Label.example_id, Label.value, User.name).join(User, Label.annotator_id == User.id)).all()
    assert [tuple(r) for r in rows] == [(int(labeled), "pos", "ann")]

    eve = browser.new_context().new_page()  # not a member: the project does not exist for her
    login(eve, base, "eve")
    expect(eve.get_by_role("link", name="Reviews")).to_have_count(0)
    for path in ("label", "data", ""):
        response = eve.goto(f"{base}/projects/{project_id}/{path}".rstrip("/"))
        assert response.status == 404, path

    rows = audit_rows(page, base, project=str(project_id))
    changes = [r for r in rows if r["What"] == "project.members_changed"]
    assert len(changes) == 1 and changes[0]["Who"] == "boss" and "ann" in changes[0]["Details"]
    created = [r for r in audit_rows(page, base, action="user.created") if r["Target"] == "ann"]
    assert len(created) == 1 and created[0]["Who"] == "boss"
    assert errors == []
