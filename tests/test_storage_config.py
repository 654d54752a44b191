"""StorageConfig: the README sample is valid and complete; bad settings name the key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from collector.storage.config import InfluxConfig, SpoolConfig, SpoolFullPolicy, StorageConfig

README = Path(__file__).resolve().parent.parent / "collector" / "storage" / "README.md"


def sample_text() -> str:
    block = re.search(r"```toml\n(.*?)```", README.read_text(), re.S)
    assert block, "README.md has no toml sample"
    return block.group(1)


def test_readme_sample_is_valid():
    cfg = StorageConfig.model_validate(tomllib.loads(sample_text()))
    assert cfg.influx.batch_size == 5000 and cfg.spool.full_policy is SpoolFullPolicy.REJECT


def test_readme_sample_mentions_every_key():
    text = sample_text()
    for model in (InfluxConfig, SpoolConfig):
        for key in model.model_fields:
            assert re.search(rf"^#? ?{key} = ", text, re.M), f"{key} missing from README sample"


def test_every_key_has_a_description():
    for model in (InfluxConfig, SpoolConfig):
        for key, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{key} has no description"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"influx": {"db": None}}, "influx.db is required"),
        ({"influx": {"api": "v2"}}, "bucket and influx.org are required"),
        ({"influx": {"batch_size": 0}}, "batch_size"),
        ({"spool": {"full_policy": "keep_everything"}}, "full_policy"),
        ({"influx": {"bach_size": 10}}, "bach_size"),
    ],
)
def test_bad_settings_are_refused_with_the_key_named(data, words):
    with pytest.raises(ValidationError, match=words):
        StorageConfig.model_validate(data)
