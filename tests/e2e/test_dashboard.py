"""The dashboard in a real browser: three model versions make a three-point learning curve."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from labeling import projects, users
from labeling.db import utcnow
from labeling.examples import import_examples, json_rows
from labeling.models import ModelVersion
from tests.e2e.test_labeling_page import login

pytestmark = pytest.mark.browser
SCREENSHOTS = os.environ.get("LABELING_SCREENSHOTS_DIR")


def test_dashboard_learning_curve_has_the_right_points(page: Page, live_server):
    base, app = live_server
    points = [(20, 0.61, 0.55), (40, 0.74, 0.70), (80, 0.86, 0.84)]
    # Versions 2 and 3 had enough randomly picked labels for a random-sampling baseline.
    baselines = {2: {"n_labels": 14, "accuracy": 0.52, "macro_f1": 0.5}, 3: {"n_labels": 18, "accuracy": 0.58, "macro_f1": 0.55}}
    with app.extensions["hitl_sessionmaker"]() as s:
        project = projects.create_project(s, "Curves", ["pos", "neg"], {}, now=utcnow())
        import_examples(s, project, json_rows([{"external_id": str(i), "text": f"t {i}", **({"label": "pos"} if i < 5 else {})}
                                               for i in range(30)]), now=utcnow())
        for version, (n, acc, f1) in enumerate(points, start=1):
            s.add(ModelVersion(project_id=project.id, version=version, status="champion" if version == 3 else "candidate",
                               trained_at=utcnow() - timedelta(hours=3 - version), n_labels=n,
                               metrics={"accuracy": acc, "macro_f1": f1, "n_holdout": 30,
                                        "random_baseline": baselines.get(version)},
                               artifact=b"x", artifact_sha256="0"))
        users.create_user(s, "rev", "reviewer", password="correct horse", now=utcnow())
        s.commit()
        project_id = project.id
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, "rev")
    page.goto(f"{base}/projects/{project_id}/dashboard")
    dots = page.locator('[data-testid="learning-curve"] [data-series="accuracy"]')
    expect(dots).to_have_count(3)
    assert [(int(d.get_attribute("data-at")), float(d.get_attribute("data-value"))) for d in dots.all()] == \
        [(n, acc) for n, acc, _ in points]
    f1 = page.locator('[data-testid="learning-curve"] [data-series="macro_f1"]')
    assert [float(d.get_attribute("data-value")) for d in f1.all()] == [f for _, _, f in points]
    expect(page.get_by_test_id("holdout-accuracy").nth(2)).to_have_text("0.860 on 30")  # with the holdout's size
    random = page.locator('[data-testid="learning-curve"] [data-series="random_accuracy"]')
    assert [(int(d.get_attribute("data-at")), float(d.get_attribute("data-value"))) for d in random.all()] == \
        [(14, 0.52), (18, 0.58)]
    expect(page.get_by_test_id("random-baseline").nth(2)).to_have_text("0.580 at 18")
    expect(page.get_by_test_id("gain")).not_to_have_text("—")
    expect(page.locator("#runs h2").first).to_have_text("Runs")  # the self-polling fragment loaded
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "dashboard.png"), full_page=True)
    assert errors == []
