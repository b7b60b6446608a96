"""Project settings are read as data: one typed configuration, defaults from the registry only."""

from dataclasses import fields

from labeling.models import Project
from labeling.projects import PROJECT_SETTINGS, ProjectConfig, config


def test_the_configuration_has_every_setting_and_fills_in_registry_defaults():
    assert {f.name for f in fields(ProjectConfig)} == set(PROJECT_SETTINGS)
    stored_before_a_setting_existed = Project(name="old", labels=[], settings={"strategy": "entropy", "queue_seed": 7})
    settings = config(stored_before_a_setting_existed)
    assert settings.strategy == "entropy" and settings.queue_seed == 7
    assert settings.holdout_fraction == PROJECT_SETTINGS["holdout_fraction"].default
    assert settings.diverse_batches is PROJECT_SETTINGS["diverse_batches"].default
    assert config(Project(name="new", labels=[], settings={"queue_seed": ""})).queue_seed is None
