"""The import direction of DESIGN.md: app -> labeling -> active_learning, never back; app reaches
the ML only through labeling; no import circles among modules."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "active_learning": {"app", "labeling", "flask", "werkzeug", "sqlalchemy", "flask_login", "flask_wtf"},
    "labeling": {"app", "flask", "werkzeug", "flask_login", "flask_wtf", "flask_htmx"},
    "app": {"active_learning"},
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


def module_level_imports(path: Path) -> set[str]:
    """Project modules imported when ``path`` is imported (not inside functions or TYPE_CHECKING)."""
    found = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found.update(n for n in names if n.split(".")[0] in ("app", "labeling", "active_learning"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] in ("app", "labeling", "active_learning"))
    return found


def test_no_import_circles():
    modules = {}
    for package in ("active_learning", "labeling", "app"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    graph = {name: {m for m in module_level_imports(path) if m in modules and m != name} for name, path in modules.items()}
    state: dict[str, int] = {}
    circles = []

    def visit(name, trail):
        state[name] = 1
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1 and not nxt.startswith(name + ".") and not name.startswith(nxt + "."):
                circles.append(trail + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_domain_modules_and_functions_stay_small():
    """One job per module (DESIGN.md): no domain module past 400 lines, no function past 60."""
    long_modules = [str(p.relative_to(ROOT)) for p in (ROOT / "labeling").glob("*.py")
                    if len(p.read_text().splitlines()) > 400]
    long_functions = []
    for package in ("labeling", "app"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert long_modules == [] and long_functions == []


def test_the_domain_builds_no_urls_of_the_api():
    """The web layer owns its paths; the domain is handed links (``labeling.webhooks.Links``)."""
    offenders = [str(path.relative_to(ROOT)) for path in sorted((ROOT / "labeling").rglob("*.py"))
                 if "/api/v1" in path.read_text()]
    assert offenders == []
