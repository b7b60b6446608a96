"""The data browser in a real browser: a reviewer finds a labeled example by a word of its text,
relabels it from its page, and sees the new label there and in the browser; the old label stays in
the history and the audit page lists the relabel."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_labeling_page import login, seed
from tests.e2e.test_project_access import audit_rows

pytestmark = pytest.mark.browser


def test_find_a_labeled_example_by_text_and_relabel_it(page: Page, browser: Browser, live_server):
    base, app = live_server
    rows = [{"external_id": f"r{i}", "text": f"an ordinary review {i}", "label": "pos"} for i in range(60)]
    rows[37] = {"external_id": "r37", "text": "the unicorn scene was dreadful", "label": "pos"}
    project_id = seed(app, rows + [{"external_id": "u1", "text": "not labeled yet"}],
                      people=(("rev", "reviewer"), ("boss", "admin")))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, "rev")
    page.get_by_role("link", name="Reviews").click()
    page.get_by_test_id("data-link").click()
    expect(page.get_by_test_id("data-total")).to_contain_text("61 examples")
    page.locator("input[name=q]").fill("unicorn")  # searched as she types (htmx)
    expect(page.get_by_test_id("data-total")).to_contain_text("1 example match")
    results = page.get_by_test_id("data-results").locator("tbody tr")
    expect(results).to_have_count(1)
    expect(results).to_contain_text("the unicorn scene was dreadful")
    expect(results.locator("td").nth(2)).to_have_text("pos (import)")
    assert "q=unicorn" in page.url  # the search is in the address, to share or come back to

    results.get_by_role("link", name="r37").click()
    expect(page.get_by_test_id("example-text")).to_have_text("the unicorn scene was dreadful")
    form = page.get_by_test_id("relabel-form")
    form.locator("select[name=label]").select_option("neg")
    form.get_by_role("button", name="Relabel").click()
    expect(page.get_by_role("status")).to_have_text("Relabeled as neg.")
    history = page.get_by_test_id("history").locator("tbody tr")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("import")
    expect(history.nth(0)).not_to_contain_text("current")
    expect(history.nth(1)).to_contain_text("rev")
    expect(history.nth(1)).to_contain_text("review")
    expect(history.nth(1).locator("td").nth(4)).to_have_text("neg")
    expect(history.nth(1).locator("td").nth(6)).to_have_text("current")

    page.go_back()
    page.go_back()
    page.reload()
    results = page.get_by_test_id("data-results").locator("tbody tr")
    expect(results).to_have_count(1)
    expect(results.locator("td").nth(2)).to_have_text("neg (rev)")
    page.locator("select[name=label]").select_option("neg")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("data-total")).to_contain_text("1 example match")

    admin = browser.new_context().new_page()
    login(admin, base, "boss")
    relabeled = audit_rows(admin, base, action="example.relabeled")
    assert [(r["Who"], r["Project"]) for r in relabeled] == [("rev", f"Reviews #{project_id}")]
    assert "from: pos" in relabeled[0]["Details"] and "to: neg" in relabeled[0]["Details"]
    assert errors == []
