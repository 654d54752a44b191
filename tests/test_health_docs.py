"""Docs kept in sync with the code: every setting is documented where users look for it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from collector.health.config import HealthConfig
from collector.inventory import Thresholds

ROOT = Path(__file__).resolve().parents[1]


def test_every_health_setting_is_in_the_readme_with_a_description():
    readme = (ROOT / "collector" / "health" / "README.md").read_text()
    for name, field in HealthConfig.model_fields.items():
        assert f"`{name}`" in readme, name
        assert field.description, name


def test_example_inventory_shows_every_threshold_with_its_default():
    with open(ROOT / "config" / "inventory.example.toml", "rb") as fh:
        defaults = tomllib.load(fh)["defaults"]
    assert defaults == Thresholds().model_dump()
