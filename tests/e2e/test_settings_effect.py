"""A setting changed in the settings page takes effect: a new query strategy re-scores the pool
(a run, even when its model is not promoted), the annotator's "why this example" names the new
strategy with that strategy's score, and the audit page lists the change."""

from __future__ import annotations

import math
import re
import time

import pytest
from playwright.sync_api import Browser, Page, expect

from labeling import projects, users
from labeling.db import utcnow
from labeling.examples import import_examples, json_rows
from labeling.models import Example, RetrainRun
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


def wait_for_run(app, run_id: int, timeout: float = 120) -> None:
    """Wait until the app's job runner has finished the run; it must have succeeded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.extensions["hitl_sessionmaker"]() as s:
            run = s.get(RetrainRun, run_id)
            if run is not None and run.status not in ("queued", "running"):
                assert (run.status, run.trigger) == ("succeeded", "strategy"), run.error
                return
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s")


def binary_entropy(p: float) -> float:
    """The entropy strategy's score of a two-class prediction whose top class has probability ``p``."""
    return -(p * math.log(p) + (1 - p) * math.log(1 - p)) / math.log(2)


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
    expect(ann.get_by_test_id("why")).to_contain_text("Why this example: the model was unsure of it when it ordered the queue (margin, score ")
    expect(ann.get_by_test_id("why")).to_contain_text("model v1.")

    login(page, base, "boss")
    page.goto(f"{base}/projects/{project_id}/settings")
    form = page.get_by_test_id("settings-form")
    form.locator("select[name=strategy]").select_option("entropy")
    form.get_by_role("button", name="Save settings").click()
    expect(page.get_by_test_id("settings-notice")).to_have_text(
        "Saved: strategy. Run 2 re-orders the queue with the new strategy.")
    page.reload()
    expect(page.get_by_test_id("settings-form").locator("select[name=strategy]")).to_have_value("entropy")
    wait_for_run(app, 2)

    for _ in range(2):  # the example held for her, then the next: entropy's scores, by that name
        ann.reload()
        expect(ann.get_by_test_id("why")).to_contain_text("Why this example: the model was unsure of it when it ordered the queue (entropy, score ")
        held = int(ann.locator("form.labeling").get_attribute("data-example-id"))
        shown = float(re.search(r"score ([0-9.]+)", ann.get_by_test_id("why").inner_text()).group(1))
        with app.extensions["hitl_sessionmaker"]() as s:
            confidence = s.get(Example, held).confidence
        assert shown == pytest.approx(binary_entropy(confidence), abs=0.001)
        assert shown != pytest.approx(2 - 2 * confidence, abs=0.001)  # not the margin score it had
        ann.keyboard.press("Space")  # skip it: the next one
        expect(ann.locator("form.labeling")).not_to_have_attribute("data-example-id", str(held))

    changed = audit_rows(page, base, action="project.settings_changed")
    assert [(r["Who"], r["Target"], r["Details"]) for r in changed] == [("boss", "Reviews", "keys: strategy")]
    assert errors == []
