"""Nothing is labeled unseen: a key pressed before an example has been on screen for
KEY_MIN_VIEW_MS is ignored (a double press once labeled the next example 20 ms after it showed)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_labeling_page import current_example, login, seed

pytestmark = pytest.mark.browser
GUARD_MS = 1500  # long enough that the test's own reaction to a swap stays inside it on a slow machine


@pytest.fixture
def live_server_config() -> dict:
    return {"KEY_MIN_VIEW_MS": GUARD_MS}


def test_a_key_pressed_before_the_example_was_on_screen_long_enough_is_ignored(page: Page, live_server):
    base, app = live_server
    project_id = seed(app, [{"external_id": f"r{i}", "text": f"review number {i}"} for i in range(5)])
    login(page, base, "ann")
    page.goto(f"{base}/projects/{project_id}/label")
    page.wait_for_timeout(GUARD_MS + 200)
    first = current_example(page)
    page.keyboard.press("1")
    expect(page.locator("form.labeling")).not_to_have_attribute("data-example-id", first)
    second = current_example(page)
    page.keyboard.press("1")  # at once: a double press
    page.keyboard.press("2")
    page.wait_for_timeout(300)
    assert current_example(page) == second
    expect(page.get_by_test_id("progress")).to_contain_text("1 / 5 labeled")
    page.keyboard.press("Backspace")  # undo is exempt: the first example comes back
    expect(page.locator("form.labeling")).to_have_attribute("data-example-id", first)
    page.wait_for_timeout(GUARD_MS + 200)
    page.keyboard.press("2")
    expect(page.locator("form.labeling")).not_to_have_attribute("data-example-id", first)
    expect(page.get_by_test_id("progress")).to_contain_text("1 / 5 labeled")


def test_a_held_backspace_undoes_one_label_not_every_one(page: Page, live_server):
    base, app = live_server
    project_id = seed(app, [{"external_id": f"r{i}", "text": f"review number {i}"} for i in range(6)])
    login(page, base, "ann")
    page.goto(f"{base}/projects/{project_id}/label")
    for _ in range(3):
        page.wait_for_timeout(GUARD_MS + 200)
        shown = current_example(page)
        page.keyboard.press("1")
        expect(page.locator("form.labeling")).not_to_have_attribute("data-example-id", shown)
    expect(page.get_by_test_id("progress")).to_contain_text("3 / 6 labeled")
    page.keyboard.down("Backspace")
    expect(page.get_by_test_id("progress")).to_contain_text("2 / 6 labeled")
    for _ in range(3):  # the key is still down: each of these is a repeat
        page.keyboard.down("Backspace")
        page.wait_for_timeout(300)
    page.keyboard.up("Backspace")
    expect(page.get_by_test_id("progress")).to_contain_text("2 / 6 labeled")
