"""An admin downloads a label set from the browser: no API token, no CLI."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from labeling import labels, projects, users
from labeling.db import utcnow
from labeling.examples import import_examples, json_rows
from labeling.models import Example
from tests.e2e.test_labeling_page import login

pytestmark = pytest.mark.browser


def test_an_admin_freezes_a_snapshot_and_downloads_it_as_csv(page: Page, live_server):
    base, app = live_server
    with app.extensions["hitl_sessionmaker"]() as s:
        project = projects.create_project(s, "Reviews", ["pos", "neg"], {"holdout_fraction": 0}, now=utcnow())
        import_examples(s, project, json_rows([{"external_id": f"r{i}", "text": f"=text {i}"} for i in range(3)]),
                        now=utcnow(), random_state=0)
        boss = users.create_user(s, "boss", "admin", password="correct horse", now=utcnow())
        ids = s.scalars(select(Example.id).where(Example.project_id == project.id).order_by(Example.id)).all()
        for example_id, value in zip(ids, ("pos", "neg")):  # the third stays unlabeled
            labels.submit_label(s, project, boss, example_id, value, now=utcnow())
        s.commit()
        project_id = project.id
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, "boss")
    page.goto(f"{base}/projects/{project_id}")
    page.get_by_test_id("export-link").click()
    page.get_by_test_id("freeze").click()
    expect(page.get_by_role("status").or_(page.locator(".flash"))).to_contain_text("frozen: 2 labels")
    page.select_option("select[name=format]", "csv")
    page.check("input[name=escape_formulas]")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download").click()
    assert download.value.suggested_filename.endswith(".csv") and "snapshot" in download.value.suggested_filename
    body = open(download.value.path(), encoding="utf-8").read()
    assert body.count("\n") == 3 and "'=text 0" in body and ",pos" in body  # a formula is defused for a spreadsheet
    assert errors == []
