"""A setting changed in the settings page takes effect: the annotator's "why this example" names
the new query strategy, and the audit page lists the change."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from labeling import projects, users
from labeling.db import utcnow
from labeling.examples import import_examples, json_rows
from labeling.runs import execute_run, request_retrain
from tests.e2e.test_labeling_page import login
from tests.e2e.test_project_access import audit_rows

pytestmark = pytest.mark.browser
WORDS = {"pos": ["great", "lovely", "superb", "fine"], "neg": ["awful", "dull", "broken", "poor"]}


def trained_project(app) -> int:
    """A text project whose champion model scored the unlabeled pool with the margin strategy."""
    rows = []
    for i in range(60):
        label = "pos" if i % 2 else "neg"
        words = WORDS[label]
        row = {"external_id": f"r{i}", "text": f"a {words[i % 4]} and {words[(i // 4) % 4]} film number {i}"}
        rows.append({**row, "label": label} if i < 40 else row)
    maker = app.extensions["hitl_sessionmaker"]
    with maker() as s:
        project = projects.create_project(s, "Reviews", ["pos", "neg"], {
            "holdout_fraction": 0, "random_share": 0, "diverse_batches": False, "strategy": "margin"}, now=utcnow())
        import_examples(s, project, json_rows(rows), now=utcnow(), random_state=0)
        users.create_user(s, "ann", "annotator", password="correct horse", now=utcnow())
        users.create_user(s, "boss", "admin", password="correct horse", now=utcnow())
        run, _ = request_retrain(s, project, trigger="manual", now=utcnow())
        s.commit()
        project_id, run_id = project.id, run.id
    assert execute_run(maker, run_id) == "succeeded"
    return project_id


def test_a_strategy_changed_in_the_settings_page_shows_in_why_this_example(page: Page, browser: Browser,
                                                                           live_server):
    base, app = live_server
    project_id = trained_project(app)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    ann = browser.new_context().new_page()
    ann.on("pageerror", lambda exc: errors.append(str(exc)))
    login(ann, base, "ann")
    ann.goto(f"{base}/projects/{project_id}/label")
    expect(ann.get_by_test_id("why")).to_contain_text("Why this example: margin, score ")
    expect(ann.get_by_test_id("why")).to_contain_text("model v1.")

    login(page, base, "boss")
    page.goto(f"{base}/projects/{project_id}/settings")
    form = page.get_by_test_id("settings-form")
    form.locator("select[name=strategy]").select_option("entropy")
    form.get_by_role("button", name="Save settings").click()
    expect(page.get_by_test_id("settings-notice")).to_have_text("Saved: strategy.")
    page.reload()
    expect(page.get_by_test_id("settings-form").locator("select[name=strategy]")).to_have_value("entropy")

    ann.reload()  # the example held for her, and the next one, are explained by the new strategy
    expect(ann.get_by_test_id("why")).to_contain_text("Why this example: entropy, score ")
    held = ann.locator("form.labeling").get_attribute("data-example-id")
    ann.keyboard.press("1")
    expect(ann.locator("form.labeling")).not_to_have_attribute("data-example-id", held)
    expect(ann.get_by_test_id("why")).to_contain_text("Why this example: entropy, score ")

    changed = audit_rows(page, base, action="project.settings_changed")
    assert [(r["Who"], r["Target"], r["Details"]) for r in changed] == [("boss", "Reviews", "keys: ['strategy']")]
    assert errors == []
