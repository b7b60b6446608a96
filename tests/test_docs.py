"""Docs stay true to the code: every setting and CLI command is documented."""

from pathlib import Path

from app.settings import ENV_PREFIX, SETTINGS
from labeling.projects import PROJECT_SETTINGS

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_with_its_default():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = [s.name for s in SETTINGS if f"`{ENV_PREFIX}{s.name}`" not in doc]
    assert missing == []


def test_every_project_setting_is_documented():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert [k for k in PROJECT_SETTINGS if f"`{k}`" not in doc] == []


def test_every_cli_command_is_documented():
    from app.cli import COMMANDS

    doc = (ROOT / "docs" / "cli.md").read_text()
    names = []
    for command in COMMANDS:
        subs = getattr(command, "commands", None)
        names += [f"hitl {command.name} {sub}" for sub in subs] if subs else [f"hitl {command.name}"]
    assert [n for n in names if n not in doc] == []


def test_readme_quick_start_has_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_the_module_map_lists_every_module_and_nothing_that_is_gone():
    doc = (ROOT / "docs" / "design-notes.md").read_text()
    section = doc.split("## Module map", 1)[1].split("\n## ", 1)[0]
    modules = sorted(str(p.relative_to(ROOT)) for package in ("active_learning", "labeling", "app")
                     for p in (ROOT / package).rglob("*.py")
                     if "migrations" not in p.parts and not (p.name == "__init__.py" and p.parent.name != "app"))
    assert [m for m in modules if f"`{m}`" not in section] == []
    import re
    listed = re.findall(r"`((?:active_learning|labeling|app)/[\w/]+\.py)`", section)
    assert [m for m in listed if not (ROOT / m).exists()] == []
