"""The webhook's "send a test event" button in a real browser: the URL of a local receiver is saved
in the settings page, the test event arrives signed with the secret shown once, and the page shows
the delivery's result, a success and then a refusal."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.app.test_webhooks import Receiver
from tests.e2e.test_labeling_page import login, seed
from tests.e2e.test_project_access import audit_rows

pytestmark = pytest.mark.browser


@pytest.fixture
def live_server_config() -> dict:
    return {"WEBHOOK_ALLOW_PRIVATE": True}  # the receiver listens on 127.0.0.1


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def test_send_a_test_event_shows_the_delivery_result(page: Page, live_server, receiver):
    base, app = live_server
    project_id = seed(app, [{"external_id": "a", "text": "one"}], people=(("boss", "admin"),))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, "boss")
    page.goto(f"{base}/projects/{project_id}/settings")
    expect(page.get_by_role("button", name="Send a test event")).to_be_disabled()  # no URL yet
    form = page.get_by_test_id("settings-form")
    form.locator("input[name=webhook_url]").fill(receiver.url)
    form.get_by_role("button", name="Save settings").click()
    expect(page.get_by_test_id("settings-notice")).to_have_text("Saved: webhook_url.")
    secret = page.get_by_test_id("secret").inner_text().strip()
    assert secret.startswith("whsec_")

    page.get_by_role("button", name="Send a test event").click()
    expect(page.get_by_test_id("test-result")).to_have_text("Test event delivered: HTTP 200.")
    [event] = receiver.events(secret)  # signed with the secret the page showed
    assert event["type"] == "webhook.test" and event["data"]["project_id"] == project_id

    receiver.status = 503
    page.get_by_role("button", name="Send a test event").click()
    result = page.get_by_test_id("test-result")
    expect(result).to_contain_text("Test event failed:")
    expect(result).to_contain_text("503")
    expect(result).to_have_class("flash error")
    assert len(receiver.requests) == 2

    tested = audit_rows(page, base, action="project.webhook_tested")
    assert [r["Who"] for r in tested] == ["boss", "boss"]
    assert "status code: 503" in tested[0]["Details"] and "status code: 200" in tested[1]["Details"]
    assert errors == []
