"""Suggestions in a real browser: pre-selected and accepted with Enter, blind examples look like
suggestions off, the dashboard compares suggested and blind labels."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from labeling.db import utcnow
from labeling.models import Example, Label, User
from labeling.suggestions import is_blind
from tests.e2e.test_labeling_page import current_example, login, seed

pytestmark = pytest.mark.browser


def test_preselect_enter_accepts_blind_looks_off_and_the_dashboard_compares(page: Page, live_server):
    base, app = live_server
    project_id = seed(app, [{"external_id": f"r{i}", "text": f"review {i}"} for i in range(6)],
                      people=(("boss", "admin"),),
                      settings={"holdout_fraction": 0, "suggestions": "preselect", "blind_share": 0.5})
    with app.extensions["hitl_sessionmaker"]() as s:
        # As if the champion had scored the pool: "neg", 83% sure (below the mistake warning's 90%).
        s.execute(update(Example).values(predicted_label="neg", confidence=0.83,
                                         suggestion_probs={"neg": 0.83, "pos": 0.17}, scored_by_version=1))
        s.commit()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, "boss")
    page.goto(f"{base}/projects/{project_id}/label")
    shown = {}
    for i in range(6):
        example = int(current_example(page))
        shown[example] = blind = is_blind(project_id, example, 0.5)
        if blind:  # exactly as with suggestions off: no suggestion, nothing pre-selected, Enter does nothing
            expect(page.get_by_test_id("suggestion")).to_have_count(0)
            expect(page.get_by_test_id("preselected")).to_have_count(0)
            page.keyboard.press("1")  # "pos"
        else:
            expect(page.get_by_test_id("suggestion")).to_contain_text("neg 83%")
            expect(page.get_by_test_id("preselected")).to_contain_text("neg")
            expect(page.get_by_test_id("prob")).to_have_text(["17%", "83%"])  # beside pos, neg
            # The first suggested example: its label's own key still labels at once; then Enter accepts.
            page.keyboard.press("1" if sum(not b for b in shown.values()) == 1 else "Enter")
        expect(page.get_by_test_id("progress")).to_contain_text(f"{i + 1} / 6 labeled")
    assert set(shown.values()) == {True, False} and errors == []
    with app.extensions["hitl_sessionmaker"]() as s:
        events = s.execute(select(Label.example_id, Label.value, Label.suggestion_mode, Label.suggested)
                           .order_by(Label.id)).all()
    suggested = [e for e in events if not shown[e.example_id]]
    assert [(e.value, e.suggestion_mode, e.suggested) for e in suggested] == (
        [("pos", "preselect", "neg")] + [("neg", "preselect", "neg")] * (len(suggested) - 1))
    assert all((e.value, e.suggestion_mode, e.suggested) == ("pos", "blind", None) for e in events if shown[e.example_id])

    page.goto(f"{base}/projects/{project_id}/dashboard")
    expect(page.get_by_test_id("suggestion-effect-empty")).to_contain_text("Too few labels to compare yet")
    _more_labels(app, project_id, 20)
    page.reload()
    table = page.get_by_test_id("suggestion-effect-table")
    expect(table).to_be_visible()
    expect(page.get_by_test_id("effect-suggested")).to_contain_text(str(len(suggested) + 20))
    expect(page.get_by_test_id("effect-blind")).to_contain_text(str(len(events) - len(suggested) + 20))


def _more_labels(app, project_id, n):
    """Label events of earlier sessions, as the page writes them: n suggested and n blind."""
    from labeling.examples import import_examples, json_rows
    from labeling.projects import get_project

    with app.extensions["hitl_sessionmaker"]() as s:
        import_examples(s, get_project(s, project_id), json_rows([{"external_id": f"x{i}", "text": f"t {i}"}
                                                                  for i in range(2 * n)]), now=utcnow())
        s.flush()
        boss = s.scalar(select(User.id).where(User.name == "boss"))
        ids = s.scalars(select(Example.id).where(Example.external_id.like("x%")).order_by(Example.id)).all()
        for k, example_id in enumerate(ids):
            blind = k % 2 == 0
            s.add(Label(project_id=project_id, example_id=example_id, annotator_id=boss, value="pos", created_at=utcnow(),
                        duration_ms=2000 if blind else 1000, source="annotator",
                        suggestion_mode="blind" if blind else "preselect", suggested=None if blind else "pos"))
        s.commit()
