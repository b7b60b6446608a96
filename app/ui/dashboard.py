"""The project dashboard: is the loop working, and is labeling still paying?"""

from __future__ import annotations

from flask import render_template

from app.auth import REVIEWERS, requires
from app.db import get_session
from app.ui import bp
from app.ui.charts import bar_chart, line_chart
from labeling import projects, quality, stats, suggestion_effect
from labeling.db import utcnow


@bp.get("/projects/<int:project_id>/dashboard")
@requires(*REVIEWERS)
def dashboard(project_id: int):
    """Progress, learning curve, when to stop, queue, flags, runs and annotators."""
    db = get_session()
    project = projects.get_project(db, project_id)
    now = utcnow()
    counts = projects.project_counts(db, project.id)
    by_label = stats.progress_by_label(db, project.id)
    per_day = stats.labels_per_day(db, project.id, now=now)
    curve = stats.learning_curve(db, project.id)
    return render_template(
        "pages/dashboard.html", project=project, counts=counts,
        by_label=[(l["name"], by_label.get(l["name"], 0)) for l in project.labels],
        per_day=per_day, per_day_chart=bar_chart([(d[5:], n) for d, n in per_day]),
        curve=curve, curve_chart=line_chart(curve, [("accuracy", "holdout accuracy"), ("macro_f1", "macro-F1"),
                                        ("random_accuracy", "random sampling (accuracy)", "random_n_labels")], x="n_labels"),
        gain=stats.gain_of_next(curve), gain_min_points=stats.GAIN_MIN_POINTS, gain_min_holdout=stats.GAIN_MIN_HOLDOUT,
        unsure=stats.unsure_share(db, project.id),
        throughput=stats.throughput(db, project.id, now=now), annotators=quality.annotator_quality(db, project.id),
        bar_chart_of=bar_chart, label_check=quality.label_check_summary(db, project.id),
        suggestions_on=projects.config(project).suggestions != "off", blind_share=projects.config(project).blind_share,
        effect=suggestion_effect.suggestion_effect(db, project.id), min_blind=suggestion_effect.MIN_BLIND,
    )
