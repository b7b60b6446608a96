"""Mapping a file again without uploading it again: after a mapping that cannot work, and after an
import that failed on every line."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from labeling import projects, users
from labeling.db import utcnow
from tests.e2e.test_labeling_page import login

pytestmark = pytest.mark.browser


def test_a_file_is_mapped_again_without_a_second_upload(page: Page, live_server, tmp_path):
    base, app = live_server
    with app.extensions["hitl_sessionmaker"]() as s:
        project = projects.create_project(s, "Remap", ["pos", "neg"], {}, now=utcnow())
        users.create_user(s, "boss", "admin", password="correct horse", now=utcnow())
        s.commit()
        project_id = project.id
    upload = tmp_path / "reviews.csv"
    upload.write_text("id,review,stars,sentiment\n" + "".join(f"{i},review {i},{i % 5},{'pos' if i % 2 else 'neg'}\n"
                                                              for i in range(200)))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, "boss")
    page.goto(f"{base}/projects/{project_id}/import")
    page.set_input_files("input[name=file]", str(upload))
    page.get_by_role("button", name="Preview").click()
    # The guess, shown before anything runs.
    expect(page.locator("select[name='map:id']")).to_have_value("external_id")
    expect(page.locator("select[name='map:review']")).to_have_value("text")
    expect(page.locator("select[name='map:sentiment']")).to_have_value("label")
    expect(page.locator("select[name='map:stars']")).to_have_value("")
    # No text column: the form comes back with the file still there.
    page.select_option("select[name='map:review']", "")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_test_id("mapping-problems")).to_contain_text("field 'text': map a column to text")
    # The wrong column as the label: every line fails, told once.
    page.select_option("select[name='map:review']", "text")
    page.select_option("select[name='map:sentiment']", "")
    page.select_option("select[name='map:stars']", "label")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_test_id("problem-groups")).to_contain_text(
        "line 2, 7, 12 and 37 more: field 'label': '0' is not one of the project's labels", timeout=90_000)
    # Map again from the kept file: no upload.
    page.get_by_test_id("remap").click()
    expect(page.get_by_test_id("mapping-form")).to_contain_text("kept from import #1")
    expect(page.locator("select[name='map:stars']")).to_have_value("label")  # as chosen last time
    page.select_option("select[name='map:stars']", "")
    page.select_option("select[name='map:sentiment']", "label")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_test_id("import-result")).to_have_text(
        "Imported 200 examples (0 duplicates skipped, 200 labels).", timeout=90_000)
    assert errors == []
