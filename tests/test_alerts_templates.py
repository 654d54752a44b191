"""Templates and configuration: both languages complete, errors name the file and key, the
README's sample configuration stays valid."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from collector.alerts.config import AlertsConfig
from collector.alerts.errors import TemplateError
from collector.alerts.templates import FIELDS, Templates, load_language

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "config" / "templates"
VI = (TEMPLATES / "vi.toml").read_text(encoding="utf-8")


def test_both_languages_load_with_every_state_and_cause():
    templates = Templates.load(TEMPLATES)
    assert set(templates.packs) == {"vi", "en"}
    vi, en = templates.pack("vi"), templates.pack("en")
    assert set(vi.states) == set(en.states) and set(vi.causes) == set(en.causes)
    assert templates.pack("fr") is vi  # unknown language: the default
    assert vi.duration(135 * 60_000) == "2 giờ 15 phút"
    assert vi.duration(26 * 3600_000) == "1 ngày 2 giờ"
    assert en.duration(30_000) == "under 1 min"


def test_the_issue_wording_is_kept():
    alert = tomllib.loads(VI)["message"]["alert"]["text"]
    assert alert == (
        "[loaxa] Đài {station_name} ({commune_name}) {state} từ {since}. "
        "Nguyên nhân: {cause}. Trả lời OK {code} để xác nhận."
    )
    assert "MẤT TÍN HIỆU" in VI and "đã hoạt động lại sau {duration}" in VI


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (
            lambda t: t.replace("{station_name}", "{station_nme}", 1),
            r"message\.alert\.subject.*station_nme",
        ),
        (
            lambda t: re.sub(
                r"\[message\.recovery\].*?(?=\[message\.upstream_down\])", "", t, flags=re.S
            ),
            r"message\.recovery\.subject is missing",
        ),
        (lambda t: t.replace("version = 1", "version = 2"), "version must be 1"),
        (lambda t: t.replace('day = "ngày"\n', ""), r"words\.day is missing"),
        (lambda t: t.replace("{code}", "{code", 1), "message.alert"),
        (lambda t: t + "\n[[", "vi.toml"),
    ],
)
def test_broken_template_files_are_named(tmp_path, edit, error):
    path = tmp_path / "vi.toml"
    path.write_text(edit(VI), encoding="utf-8")
    with pytest.raises(TemplateError, match=error):
        load_language(path)


def test_every_kind_has_fields_declared():
    data = tomllib.loads(VI)["message"]
    assert {k.partition(".")[0] for k in FIELDS} == set(data)


def readme_sample() -> dict:
    text = (ROOT / "collector" / "alerts" / "README.md").read_text(encoding="utf-8")
    block = text.split("## Sample configuration")[1].split("```toml")[1].split("```")[0]
    return tomllib.loads(block)


def test_readme_sample_config_is_valid_and_complete(tmp_path):
    sample = readme_sample()["alerts"]
    secret = tmp_path / "smtp.password"  # the sample's password_file, here
    secret.write_text("change-me\n")
    sample["email"]["password_file"] = str(secret)
    cfg = AlertsConfig.model_validate(sample)
    assert cfg.sms.enabled and cfg.email.port == 587
    # every key of every table appears in the sample, so the README cannot fall behind
    for table, model in [
        ("routing", cfg.routing),
        ("retry", cfg.retry),
        ("sms", cfg.sms),
        ("email", cfg.email),
        ("webhook", cfg.webhook),
        ("mqtt", cfg.mqtt),
    ]:
        shown = set(readme_sample()["alerts"][table])
        if "password_file" in shown:  # a secret is given inline or from a file, never both
            shown.add("password")
        assert shown == set(type(model).model_fields), table


def test_config_errors_name_the_key():
    with pytest.raises(ValidationError, match=r"routing\.cap_per_window"):
        AlertsConfig.model_validate({"routing": {"cap_per_window": 0}})
    with pytest.raises(ValidationError, match="channel_order"):
        AlertsConfig.model_validate({"channel_order": ["pigeon"]})
