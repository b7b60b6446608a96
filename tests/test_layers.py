"""The import direction of DESIGN.md: app -> labeling -> active_learning, never back."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "active_learning": {"app", "labeling", "flask", "werkzeug", "sqlalchemy", "flask_login", "flask_wtf"},
    "labeling": {"app", "flask", "werkzeug", "flask_login", "flask_wtf", "flask_htmx"},
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_upper_ones(package):
    offenders = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_roots(path) & FORBIDDEN[package]
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_the_checker_catches_a_bad_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from flask import Flask\nimport app.cli\n")
    assert imported_roots(bad) & FORBIDDEN["labeling"] == {"flask", "app"}


def test_the_web_app_starts_without_importing_torch():
    """modAL imports torch whenever it is installed; a web worker must not pay that at start."""
    import subprocess
    import sys

    code = "import sys, app; app.create_app(); print('torch' in sys.modules, 'modAL' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "LABELING_DATABASE_URL": "sqlite://",
                              "LABELING_SECRET_KEY": "x" * 32, "LABELING_JOBS": "inline"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"]
