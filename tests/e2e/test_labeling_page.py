"""Annotators in a real browser: keyboard-only labeling, undo, skip, two people, escaping."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from labeling import projects, users
from labeling.db import utcnow
from labeling.examples import import_examples, json_rows
from labeling.models import Example, Label

pytestmark = pytest.mark.browser


def seed(app, rows, *, people=(("ann", "annotator"),), settings=None):
    with app.extensions["hitl_sessionmaker"]() as s:
        project = projects.create_project(s, "Reviews", ["pos", "neg"], settings or {"holdout_fraction": 0}, now=utcnow())
        import_examples(s, project, json_rows(rows), now=utcnow(), random_state=0)
        for name, role in people:
            users.create_user(s, name, role, password="correct horse", now=utcnow())
        s.commit()
        return project.id


def login(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", "correct horse")
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


def current_example(page: Page) -> str:
    return page.locator("form.labeling").get_attribute("data-example-id")


def test_label_twenty_by_keyboard_then_undo_and_skip(page: Page, live_server):
    base, app = live_server
    project_id = seed(app, [{"external_id": f"r{i}", "text": f"review number {i}"} for i in range(30)])
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, "ann")
    page.goto(f"{base}/projects/{project_id}/label")
    seen = []
    for i in range(20):
        example = current_example(page)
        seen.append(example)
        page.keyboard.press("1" if i % 2 else "2")
        expect(page.locator("form.labeling")).not_to_have_attribute("data-example-id", example)
    assert len(set(seen)) == 20
    expect(page.get_by_test_id("progress")).to_contain_text("20 / 30 labeled")
    page.keyboard.press("Backspace")  # undo the 20th label: its example comes back
    expect(page.locator("form.labeling")).to_have_attribute("data-example-id", seen[-1])
    expect(page.get_by_test_id("notice")).to_contain_text("Label undone")
    expect(page.get_by_test_id("progress")).to_contain_text("19 / 30 labeled · 19 by you today")
    page.keyboard.press("Space")  # skip it
    expect(page.locator("form.labeling")).not_to_have_attribute("data-example-id", seen[-1])
    with app.extensions["hitl_sessionmaker"]() as s:
        assert s.scalar(select(func.count()).where(Label.value.is_not(None))) == 20
        assert s.scalar(select(func.count()).where(Label.source == "undo")) == 1
        assert s.scalar(select(func.count()).where(Example.n_labels > 0)) == 19
    page.reload()  # opened again: the last label that still stands can be undone
    page.wait_for_load_state()
    expect(page.get_by_test_id("last-label")).to_be_visible()
    page.keyboard.press("Backspace")
    expect(page.locator("form.labeling")).to_have_attribute("data-example-id", seen[-2])
    expect(page.get_by_test_id("notice")).to_contain_text("Label undone")
    assert errors == []


def test_two_annotators_never_see_the_same_example_at_once(browser, live_server):
    base, app = live_server
    project_id = seed(app, [{"external_id": f"r{i}", "text": f"text {i}"} for i in range(12)],
                      people=(("ann", "annotator"), ("bob", "annotator")))
    pages = []
    for name in ("ann", "bob"):
        context = browser.new_context()
        page = context.new_page()
        login(page, base, name)
        page.goto(f"{base}/projects/{project_id}/label")
        pages.append(page)
    for _ in range(5):
        shown = [current_example(p) for p in pages]
        assert shown[0] != shown[1]
        for page, example in zip(pages, shown):
            page.keyboard.press("1")
            expect(page.locator("form.labeling")).not_to_have_attribute("data-example-id", example)
    assert current_example(pages[0]) != current_example(pages[1])


def test_hostile_text_is_shown_as_text_and_runs_nothing(page: Page, live_server):
    base, app = live_server
    hostile = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    project_id = seed(app, [{"external_id": "evil", "text": hostile, "meta": {"note": "<b onmouseover=alert(1)>hi</b>"}}])
    login(page, base, "ann")
    page.goto(f"{base}/projects/{project_id}/label")
    expect(page.get_by_test_id("example-text")).to_have_text(hostile)
    assert page.evaluate("window.pwned") is None
    assert page.locator("#work img[src=x]").count() == 0
    expect(page.get_by_test_id("example")).to_contain_text("<b onmouseover=alert(1)>hi</b>")


def test_a_long_unbroken_word_and_a_long_text_keep_the_page_narrow_and_the_buttons_in_view(page: Page, live_server):
    base, app = live_server
    word, long_text = "x" * 1500, "a line of a long review\n" * 400
    project_id = seed(app, [{"external_id": "word", "text": word}, {"external_id": "long", "text": long_text}])
    login(page, base, "ann")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/projects/{project_id}/label")
    for last in (False, True):
        example = current_example(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.locator("button[value=pos]").bounding_box()["y"] < 2 * 844  # not thousands of pixels down
        page.keyboard.press("1")
        if last:
            expect(page.get_by_test_id("empty")).to_be_visible()
        else:
            expect(page.locator("form.labeling")).not_to_have_attribute("data-example-id", example)


def test_queue_exhausted_and_empty_project_states(page: Page, live_server):
    base, app = live_server
    project_id = seed(app, [{"external_id": "only", "text": "one"}])
    login(page, base, "ann")
    page.goto(f"{base}/projects/{project_id}/label")
    page.keyboard.press("1")
    expect(page.get_by_test_id("empty")).to_contain_text("Nothing left for you to label")


def test_demo_login_shows_the_project_with_its_examples(page: Page, live_server):
    from click.testing import CliRunner

    base, app = live_server
    from labeling.demo import DIGIT_LABELS, digit_rows

    with app.extensions["hitl_sessionmaker"]() as s:
        project = projects.create_project(s, "Digits demo", DIGIT_LABELS, {"featurizer": "features"}, now=utcnow())
        import_examples(s, project, digit_rows(limit=50), now=utcnow())
        users.create_user(s, "admin", "admin", password="correct horse", now=utcnow())
        s.commit()
    del CliRunner
    login(page, base, "admin")
    row = page.get_by_role("row", name=re.compile("Digits demo"))
    expect(row.get_by_test_id("examples-count")).to_have_text("50")
    row.get_by_role("link", name="Label").click()
    page.wait_for_load_state()  # a click waits for the navigation, not for the page's deferred key handler
    expect(page.locator("#work img.image")).to_be_visible()
    page.keyboard.press("7")
    expect(page.get_by_test_id("progress")).to_contain_text("1 / 50 labeled")
    if os.environ.get("LABELING_SCREENSHOTS_DIR"):
        page.screenshot(path=os.path.join(os.environ["LABELING_SCREENSHOTS_DIR"], "labeling.png"))


def test_a_confident_model_warns_and_the_annotator_keeps_or_changes_with_one_key(page: Page, live_server):
    from sqlalchemy import update

    from labeling.models import LabelFlag

    base, app = live_server
    project_id = seed(app, [{"external_id": f"r{i}", "text": f"text {i}"} for i in range(2)])
    with app.extensions["hitl_sessionmaker"]() as s:
        # As if the champion had scored the pool: it is sure both are "pos".
        s.execute(update(Example).values(predicted_label="pos", confidence=0.97, scored_by_version=1))
        s.commit()
    login(page, base, "ann")
    page.goto(f"{base}/projects/{project_id}/label")
    page.keyboard.press("2")  # "neg"
    expect(page.get_by_test_id("warning")).to_contain_text("It seems you made a mistake here")
    expect(page.get_by_test_id("warning")).to_contain_text("the model says pos")
    # The example being reconsidered stays on screen beside the warning.
    expect(page.get_by_test_id("warning").get_by_test_id("example-text")).to_have_text(re.compile(r"text \d"))
    warned = page.get_by_test_id("warning").get_by_test_id("example-text").inner_text()
    expect(page.get_by_test_id("progress")).to_contain_text("1 / 2 labeled")  # the warned label counts already
    page.reload()  # a reload asks again about the same example, not the next one
    expect(page.get_by_test_id("warning")).to_contain_text("the model says pos")
    expect(page.get_by_test_id("warning").get_by_test_id("example-text")).to_have_text(warned)
    page.keyboard.press("Enter")  # keep "neg"
    expect(page.locator("form.labeling")).to_be_visible()
    page.reload()  # answered: not asked again
    expect(page.locator("form.labeling")).to_be_visible()
    expect(page.get_by_test_id("warning")).to_have_count(0)
    page.keyboard.press("2")
    expect(page.get_by_test_id("warning")).to_be_visible()
    # The model's label is offered first, marked, with its key.
    expect(page.get_by_test_id("warning").locator("button[name=label]").first).to_have_text("Use pos 1")
    page.keyboard.press("1")  # change to "pos"
    expect(page.get_by_test_id("empty")).to_be_visible()
    with app.extensions["hitl_sessionmaker"]() as s:
        events = s.execute(select(Label.example_id, Label.value, Label.source, Label.replaces_id).order_by(Label.id)).all()
        flags = s.scalars(select(LabelFlag.reason)).all()
    assert [(v, src) for _, v, src, _ in events] == [("neg", "annotator"), ("neg", "annotator"), ("pos", "mistake_check")]
    assert events[2].replaces_id is not None and flags == ["kept_warning"]


def test_backspace_during_a_warning_takes_the_label_back_and_shows_the_example_again(page: Page, live_server):
    from sqlalchemy import update

    base, app = live_server
    project_id = seed(app, [{"external_id": "r0", "text": "text 0"}])
    with app.extensions["hitl_sessionmaker"]() as s:
        s.execute(update(Example).values(predicted_label="pos", confidence=0.97, scored_by_version=1))
        s.commit()
    login(page, base, "ann")
    page.goto(f"{base}/projects/{project_id}/label")
    page.keyboard.press("2")  # "neg"
    expect(page.get_by_test_id("warning")).to_contain_text("the model says pos")
    page.keyboard.press("Backspace")
    expect(page.locator("form.labeling")).to_be_visible()
    expect(page.get_by_test_id("example-text")).to_have_text("text 0")
    expect(page.get_by_test_id("progress")).to_contain_text("0 / 1 labeled")
    with app.extensions["hitl_sessionmaker"]() as s:
        assert [src for src in s.scalars(select(Label.source).order_by(Label.id))] == ["annotator", "undo"]
