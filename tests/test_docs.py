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
