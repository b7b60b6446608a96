"""A multi-label project labeled in a real browser with the keyboard only: keys toggle labels,
the chosen set shows before submitting, Enter submits it (empty: none of these), undo and skip."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from labeling import projects, users
from labeling.db import utcnow
from labeling.examples import import_examples, json_rows
from labeling.models import Label
from tests.e2e.test_labeling_page import current_example, login

pytestmark = pytest.mark.browser

TAGS = ["sports", "politics", "tech"]


def seed(app, n):
    with app.extensions["hitl_sessionmaker"]() as s:
        project = projects.create_project(s, "News tags", TAGS, {"task": "multi_label", "holdout_fraction": 0},
                                          now=utcnow())
        import_examples(s, project, json_rows([{"external_id": f"n{i}", "text": f"news item {i}"} for i in range(n)]),
                        now=utcnow(), random_state=0)
        users.create_user(s, "ann", "annotator", password="correct horse", now=utcnow())
        admin = users.create_user(s, "boss", "admin", password="correct horse", now=utcnow())
        token = users.create_token(s, admin, now=utcnow())
        s.commit()
        return project.id, token


def pressed(page: Page):
    return page.locator("form.labeling [data-toggle][aria-pressed=true]")


def submit_and_wait(page: Page) -> str:
    example = current_example(page)
    page.keyboard.press("Enter")
    expect(page.locator("form.labeling")).not_to_have_attribute("data-example-id", example)
    return example


def test_a_multi_label_project_is_labeled_with_the_keyboard_only(page: Page, live_server):
    base, app = live_server
    project_id, token = seed(app, 6)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, "ann")
    page.goto(f"{base}/projects/{project_id}/label")
    chosen = page.get_by_test_id("chosen")
    expect(chosen).to_have_text("None of these")

    page.keyboard.press("1")
    page.keyboard.press("3")  # two labels toggled on, nothing sent yet
    expect(chosen).to_have_text("Chosen: sports, tech")
    expect(pressed(page)).to_have_count(2)
    expect(page.get_by_role("button", name="sports")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="politics")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("form.labeling input[name=labels]:visible")).to_have_count(0)  # the form's checkboxes stay hidden
    first = submit_and_wait(page)
    expect(page.get_by_test_id("last-label")).to_have_text("sports, tech")
    expect(chosen).to_have_text("None of these")  # a fresh example starts from the empty set

    page.keyboard.press("2")
    expect(chosen).to_have_text("Chosen: politics")
    page.keyboard.press("2")  # toggled back off
    expect(chosen).to_have_text("None of these")
    expect(pressed(page)).to_have_count(0)
    second = submit_and_wait(page)  # the empty set: "none of these"
    expect(page.get_by_test_id("last-label")).to_have_text("none of these")
    expect(page.get_by_test_id("progress")).to_contain_text("2 / 6 labeled")

    page.keyboard.press("Backspace")  # undo: the second example comes back, its set cleared
    expect(page.locator("form.labeling")).to_have_attribute("data-example-id", second)
    expect(page.get_by_test_id("notice")).to_contain_text("Label undone")
    expect(chosen).to_have_text("None of these")
    page.keyboard.press("3")
    expect(chosen).to_have_text("Chosen: tech")
    submit_and_wait(page)

    skipped = current_example(page)
    page.keyboard.press("Space")  # skip moves on, nothing recorded
    expect(page.locator("form.labeling")).not_to_have_attribute("data-example-id", skipped)
    expect(page.get_by_test_id("progress")).to_contain_text("2 / 6 labeled")
    expect(page.get_by_test_id("label-error")).to_be_empty()
    # A form that sends no set at all (the marker gone) is a 422 shown in the page; the example stays.
    stays = current_example(page)
    page.evaluate("document.querySelector('input[name=labels_sent]').remove()")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("label-error")).to_contain_text("'labels'")
    expect(page.locator("form.labeling")).to_have_attribute("data-example-id", stays)

    exported = app.test_client().get(f"/api/v1/projects/{project_id}/export?format=jsonl&annotations=all",
                                     headers={"Authorization": f"Bearer {token}"})
    assert exported.status_code == 200
    events = [json.loads(line) for line in exported.get_data(as_text=True).splitlines()]
    # Every annotation event, oldest first: the set, the empty set, its undo (null), the set given again.
    assert [e["labels"] for e in events] == [["sports", "tech"], [], None, ["tech"]], events
    ext = [e["external_id"] for e in events]
    assert ext[1] == ext[2] == ext[3] != ext[0] and first != second
    with app.extensions["hitl_sessionmaker"]() as s:  # the time spent is sent as for single-label
        durations = s.scalars(select(Label.duration_ms).where(Label.source == "annotator")).all()
    assert len(durations) == 3 and all(d is not None and d > 0 for d in durations)
    assert errors == []


def test_a_preselected_set_is_accepted_with_enter_and_a_key_still_toggles(page: Page, live_server):
    from sqlalchemy import update

    from labeling.models import Example, Project

    base, app = live_server
    project_id, _ = seed(app, 3)
    with app.extensions["hitl_sessionmaker"]() as s:
        project = s.get(Project, project_id)
        project.settings = {**project.settings, "suggestions": "preselect", "blind_share": 0}
        # As if the champion had scored the pool: sports and tech, politics unlikely.
        s.execute(update(Example).values(predicted_label='["sports", "tech"]', confidence=0.6, scored_by_version=1,
                                         suggestion_probs={"sports": 0.91, "politics": 0.12, "tech": 0.7}))
        s.commit()
    login(page, base, "ann")
    page.goto(f"{base}/projects/{project_id}/label")
    expect(page.get_by_test_id("suggestion")).to_contain_text("sports, tech")
    expect(pressed(page)).to_have_count(2)
    expect(page.get_by_test_id("chosen")).to_have_text("Chosen: sports, tech")
    expect(page.get_by_test_id("prob")).to_have_text(["91%", "12%", "70%"])
    first = current_example(page)
    page.keyboard.press("Enter")  # accepts the suggestion as it stands
    expect(page.locator("form.labeling")).not_to_have_attribute("data-example-id", first)
    second = current_example(page)
    page.keyboard.press("3")  # tech off: a key still toggles
    expect(page.get_by_test_id("chosen")).to_have_text("Chosen: sports")
    page.keyboard.press("Enter")
    expect(page.locator("form.labeling")).not_to_have_attribute("data-example-id", second)
    with app.extensions["hitl_sessionmaker"]() as s:
        events = s.execute(select(Label.example_id, Label.value, Label.suggestion_mode, Label.suggested)
                           .order_by(Label.id)).all()
    assert [(str(e.example_id), json.loads(e.value), e.suggestion_mode, json.loads(e.suggested)) for e in events] == [
        (first, ["sports", "tech"], "preselect", ["sports", "tech"]),
        (second, ["sports"], "preselect", ["sports", "tech"])]
