"""Importing in a real browser: upload, map, then a status page that follows the background job."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from labeling import projects, users
from labeling.db import utcnow
from tests.e2e.test_labeling_page import login

pytestmark = pytest.mark.browser


def test_an_import_from_the_page_runs_in_the_background_and_its_page_follows_it(page: Page, live_server, tmp_path):
    base, app = live_server  # the default runner: the import runs in a child process of the server
    with app.extensions["hitl_sessionmaker"]() as s:
        project = projects.create_project(s, "Imports", ["pos", "neg"], {}, now=utcnow())
        users.create_user(s, "boss", "admin", password="correct horse", now=utcnow())
        s.commit()
        project_id = project.id
    upload = tmp_path / "reviews.csv"
    upload.write_text("id,review,sentiment\n" + "".join(f"{i},review number {i},{'pos' if i % 2 else 'neg'}\n"
                                                         for i in range(3000)))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, "boss")
    page.goto(f"{base}/projects/{project_id}/import")
    page.set_input_files("input[name=file]", str(upload))
    page.get_by_role("button", name="Preview").click()
    page.select_option("select[name='map:id']", "external_id")
    page.select_option("select[name='map:review']", "text")
    page.select_option("select[name='map:sentiment']", "label")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page).to_have_url(f"{base}/projects/{project_id}/imports/1")
    # The fragment polls every second until the job is done (the first import starts a process).
    expect(page.get_by_test_id("import-result")).to_have_text(
        "Imported 3000 examples (0 duplicates skipped, 3000 labels).", timeout=90_000)
    expect(page.locator("#import-status p").first).to_contain_text("reviews.csv")
    page.goto(f"{base}/projects/{project_id}/import")
    expect(page.get_by_test_id("imports")).to_contain_text("succeeded")
    assert errors == []
