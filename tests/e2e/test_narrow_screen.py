"""On a 390 px wide phone, every page with a table keeps the page's width: a wide table scrolls
inside its own box instead of widening the page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from labeling import access, audit, imports, users
from labeling.db import utcnow
from labeling.models import Example, Label, LabelFlag, Project, User
from tests.e2e.test_labeling_page import login
from tests.e2e.test_settings_effect import trained_project

pytestmark = pytest.mark.browser
WIDTH = 390
LONG_NAME = "annotator-with-a-rather-long-name-from-the-import-team"
# Each page with a table, filled with the rows a busy project has.
PAGES = {
    "projects": "/",
    "project": "/projects/{p}",
    "users": "/users",
    "audit": "/audit",
    "tokens": "/account/tokens",
    "data browser": "/projects/{p}/data",
    "example": "/projects/{p}/examples/{e}",
    "review": "/projects/{p}/review",
    "dashboard": "/projects/{p}/dashboard",
    "runs": "/projects/{p}/runs",
    "annotators": "/projects/{p}/quality",
    "settings": "/projects/{p}/settings",
    "import": "/projects/{p}/import",
}


@pytest.fixture
def busy_project(live_server):
    """A trained project with members, a flag, tokens and audit events with long values."""
    base, app = live_server
    project_id = trained_project(app)
    with app.extensions["hitl_sessionmaker"]() as s:
        now = utcnow()
        boss = s.scalar(select(User).where(User.name == "boss"))
        users.create_user(s, LONG_NAME, "annotator", password="correct horse", now=now, actor=boss)
        project = s.get(Project, project_id)
        access.replace_members(s, project, [{"user": "ann", "role": "annotator"},
                                            {"user": LONG_NAME, "role": "reviewer"}], actor=boss, now=now)
        users.issue_token(s, boss, name="nightly export to the data warehouse", expires_in_days=30, now=now, actor=boss)
        label = s.scalars(select(Label).where(Label.project_id == project_id).order_by(Label.id)).first()
        s.add(LabelFlag(project_id=project_id, label_id=label.id, example_id=label.example_id, given=label.value,
                        suggested="neg" if label.value == "pos" else "pos", score=0.93, reason="model_disagrees",
                        status="open", created_at=now))
        audit.record(s, boss, "project.settings_changed", project_id=project_id, target=project.name, now=now,
                     details={"keys": ["featurizer", "holdout_fraction", "overlap", "retrain_threshold", "strategy",
                                       "webhook_url"]})
        ann = s.scalar(select(User).where(User.name == "ann"))
        unlabeled = s.scalars(select(Example).where(Example.project_id == project_id, Example.n_labels == 0)).first()
        s.add(Label(project_id=project_id, example_id=unlabeled.id, annotator_id=ann.id, value="pos", created_at=now,
                    source="annotator"))
        unlabeled.n_labels += 1
        imports.start_import(s, project, fmt="jsonl", now=now, created_by=boss.id,
                             filename="reviews-exported-from-the-old-labeling-tool-2026-11-30.jsonl").status = "failed"
        example_id = label.example_id
        s.commit()
    return base, project_id, example_id


@pytest.mark.parametrize("name", PAGES)
def test_a_page_with_a_table_fits_a_390px_screen(browser: Browser, busy_project, name):
    base, project_id, example_id = busy_project
    context = browser.new_context(viewport={"width": WIDTH, "height": 800})
    page = context.new_page()
    login(page, base, "boss")
    page.goto(base + PAGES[name].format(p=project_id, e=example_id))
    expect(page.locator("table").first).to_be_attached()
    page.wait_for_load_state("networkidle")  # self-loading fragments (the runs) are in
    width = page.evaluate("document.documentElement.scrollWidth")
    context.close()
    assert width <= WIDTH, f"{name}: the page is {width} px wide"


def test_a_touch_phone_shows_no_key_hints_and_a_desktop_does(browser: Browser, live_server):
    from tests.e2e.test_labeling_page import seed

    base, app = live_server
    project_id = seed(app, [{"external_id": f"r{i}", "text": f"review {i}"} for i in range(3)])
    for touch in (True, False):
        context = browser.new_context(viewport={"width": WIDTH, "height": 844}, has_touch=touch, is_mobile=touch)
        page = context.new_page()
        login(page, base, "ann")
        page.goto(f"{base}/projects/{project_id}/label")
        hints = [page.locator("p.help.keys"), page.locator("#work kbd").first]
        for hint in hints:
            expect(hint).to_be_hidden() if touch else expect(hint).to_be_visible()
        expect(page.locator("button[value=pos]")).to_be_visible()
        context.close()


def test_a_200_character_name_with_no_space_wraps_instead_of_widening_a_desktop_page(browser: Browser, busy_project,
                                                                                      live_server):
    base, project_id, _ = busy_project
    _, app = live_server
    with app.extensions["hitl_sessionmaker"]() as s:
        project = s.get(Project, project_id)
        project.name = "N" * 200  # the longest name a project may have
        boss = s.scalar(select(User).where(User.name == "boss"))
        audit.record(s, boss, "project.renamed", project_id=project_id, target="N" * 200, now=utcnow(),
                     details={"to": "N" * 200})
        s.commit()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    login(page, base, "boss")
    for path in ("/", f"/projects/{project_id}", f"/projects/{project_id}/dashboard", "/audit"):
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, f"{path}: the page is {width} px wide"
    details = page.get_by_role("columnheader", name="Details").bounding_box()
    assert details["x"] + details["width"] <= 1280  # the audit's last column is on screen
    context.close()
