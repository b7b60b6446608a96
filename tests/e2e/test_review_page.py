"""A reviewer corrects a flagged label by keyboard, and takes it back; the export shows it and its history."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect
from sklearn.datasets import load_digits

from labeling import projects, users
from labeling.db import utcnow
from labeling.examples import import_examples, json_rows
from labeling.models import Example, LabelFlag
from labeling.runs import execute_run
from labeling.runs import request_retrain
from tests.e2e.test_labeling_page import login

pytestmark = pytest.mark.browser


def test_reviewer_corrects_a_flag_by_keyboard(page: Page, live_server):
    base, app = live_server
    digits = load_digits()
    rows = []  # every 12th label is wrong
    for i in range(500):
        label = int(digits.target[i])
        if i % 12 == 0:
            label = (label + 3) % 10
        rows.append({"external_id": f"d{i}", "features": digits.data[i].tolist(), "label": str(label)})
    maker = app.extensions["hitl_sessionmaker"]
    with maker() as s:
        project = projects.create_project(s, "Digits", [{"name": str(d), "hotkey": str(d)} for d in range(10)],
                                          {"holdout_fraction": 0.1}, now=utcnow())
        import_examples(s, project, json_rows(rows), now=utcnow(), random_state=0)
        users.create_user(s, "rev", "reviewer", password="correct horse", now=utcnow())
        admin = users.create_user(s, "boss", "admin", password=None, now=utcnow())
        token = users.create_token(s, admin, now=utcnow())
        run, _ = request_retrain(s, project, trigger="manual", now=utcnow())
        s.commit()
        project_id, run_id = project.id, run.id
    assert execute_run(maker, run_id) == "succeeded"

    login(page, base, "rev")
    page.goto(f"{base}/projects/{project_id}/review")
    review = page.locator(".review")
    first_flag = int(review.get_attribute("data-flag-id"))
    with maker() as s:
        flag = s.get(LabelFlag, first_flag)
        given, external_id = flag.given, s.get(Example, flag.example_id).external_id
    truth = str(digits.target[int(external_id[1:])])
    remaining = page.get_by_test_id("remaining").inner_text()
    page.keyboard.press(truth)  # correct to the true digit with its key
    expect(page.get_by_test_id("notice")).to_contain_text("Flag corrected")
    expect(page.get_by_test_id("remaining")).not_to_have_text(remaining)
    if page.locator(".review").count():
        assert int(page.locator(".review").get_attribute("data-flag-id")) != first_flag

    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    gold = {r["external_id"]: r for r in map(json.loads, client.get(
        f"/api/v1/projects/{project_id}/export?format=jsonl", headers=headers).data.decode().splitlines())}
    assert gold[external_id]["label"] == truth and gold[external_id]["flag_status"] == "corrected"
    events = [json.loads(l) for l in client.get(f"/api/v1/projects/{project_id}/export?format=jsonl&annotations=all",
                                                headers=headers).data.decode().splitlines()]
    history = [(e["label"], e["source"], e["annotator"]) for e in events if e["external_id"] == external_id]
    assert history == [(given, "import", None), (truth, "review", "rev")]

    # A misclick is taken back by Backspace: the same flag is shown again, the given label current again.
    page.keyboard.press("Backspace")
    expect(page.get_by_test_id("notice")).to_contain_text("Decision taken back")
    expect(page.locator(".review")).to_have_attribute("data-flag-id", str(first_flag))
    expect(page.get_by_test_id("remaining")).to_have_text(remaining)
    gold = {r["external_id"]: r for r in map(json.loads, client.get(
        f"/api/v1/projects/{project_id}/export?format=jsonl", headers=headers).data.decode().splitlines())}
    assert gold[external_id]["label"] == given


def test_all_selects_every_flag_shown_for_one_bulk_dismissal(page: Page, live_server):
    from sqlalchemy import select

    from labeling.models import Label
    from tests.e2e.test_labeling_page import seed

    base, app = live_server
    project_id = seed(app, [{"external_id": f"r{i}", "text": f"review {i}", "label": "pos"} for i in range(4)],
                      people=(("rev", "reviewer"),))
    with app.extensions["hitl_sessionmaker"]() as s:
        for label in s.scalars(select(Label).where(Label.project_id == project_id)):
            s.add(LabelFlag(project_id=project_id, label_id=label.id, example_id=label.example_id, given="pos",
                            suggested="neg", score=0.9, reason="model_disagrees", status="open", created_at=utcnow()))
        s.commit()
    login(page, base, "rev")
    page.goto(f"{base}/projects/{project_id}/review")
    boxes = page.locator("input[name=flag_id]")
    expect(boxes).to_have_count(4)
    page.get_by_test_id("select-all").check()
    assert [boxes.nth(i).is_checked() for i in range(4)] == [True] * 4
    page.get_by_test_id("select-all").uncheck()
    assert not any(boxes.nth(i).is_checked() for i in range(4))
    page.get_by_test_id("select-all").check()
    page.get_by_role("button", name="Dismiss selected…").click()
    page.get_by_role("button", name="Dismiss 4 flags").click()
    expect(page.get_by_text("4 dismissed.")).to_be_visible()
    with app.extensions["hitl_sessionmaker"]() as s:
        assert set(s.scalars(select(LabelFlag.status).where(LabelFlag.project_id == project_id))) == {"dismissed"}
