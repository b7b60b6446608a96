"""The server-drawn charts' geometry."""

import pytest

from app.ui.charts import line_chart, round_ticks


@pytest.mark.parametrize("lo, hi", [(20, 230), (50, 5000), (3, 17), (1, 100_000), (0, 7)])
def test_ticks_are_few_round_and_inside_the_range(lo, hi):
    ticks = round_ticks(lo, hi)
    steps = {b - a for a, b in zip(ticks, ticks[1:])}
    assert 2 <= len(ticks) <= 6 and len(steps) == 1
    assert lo <= ticks[0] and ticks[-1] <= hi
    step = steps.pop()
    assert all(t % step == 0 for t in ticks) and str(step).strip("0") in ("1", "2", "5")


def test_a_curve_with_many_versions_gets_few_ticks():
    points = [{"n_labels": 20 + 10 * i, "accuracy": 0.5} for i in range(40)]
    chart = line_chart(points, [("accuracy", "holdout accuracy")], x="n_labels")
    assert [t["label"] for t in chart["xticks"]] == [100, 200, 300, 400]
    assert len(chart["lines"][0]["dots"]) == 40
