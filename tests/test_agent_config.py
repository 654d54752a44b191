"""Agent configuration: the example validates and lists every key; errors name the key path."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from agent.config import AgentConfig, ConfigError, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "agent.example.toml"
MINIMAL = {
    "station": {"id": "cb-01267", "province": "cao-bang", "commune": "01273"},
    "mqtt": {"host": "10.0.0.5"},
    "controller": {"url": "/dev/ttyUSB0"},
}


def _models(model: type[BaseModel], prefix: str = ""):
    yield prefix, model
    for name, field in model.model_fields.items():
        for sub in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                yield from _models(sub, f"{prefix}{name}.")


def test_example_validates():
    cfg = load_config(EXAMPLE)
    assert cfg.station.id == "cb-01267" and cfg.mqtt.port == 1883
    assert cfg.queue_path == Path("/var/lib/loaxa-agent/queue.sqlite")


def test_every_key_has_a_description_and_appears_in_the_example():
    text = EXAMPLE.read_text()
    for prefix, model in _models(AgentConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{prefix}{name} has no description"
            assert re.search(rf"^#? ?{name} =|^\[{re.escape(prefix + name)}\]", text, re.M) or (
                re.search(rf"^# ?\[{re.escape(prefix + name)}\]", text, re.M)
            ), f"{prefix}{name} is missing from {EXAMPLE.name}"


def test_defaults_fill_optional_sections():
    cfg = parse_config(MINIMAL)
    assert cfg.mqtt.protocol == "5" and cfg.mqtt.keepalive_s == 30 and cfg.mqtt.qos == 1
    assert cfg.mqtt.client_id is None  # publisher uses loaxa-agent-<station id>
    assert cfg.telemetry.interval_s == 60 and cfg.audio.source == "mcu"
    assert cfg.queue.max_bytes == 32 * 1024 * 1024


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mqtt": {"host": "h", "port": 70000}}, "mqtt.port: must be <= 65535 (got 70000)"),
        ({"mqtt": {"host": "h", "protocol": 5}}, "mqtt.protocol: must be one of '5' or '3.1.1'"),
        ({"mqtt": {"host": "h", "hots": "x"}}, "mqtt.hots: unknown key (check the spelling)"),
        ({"mqtt": {}}, "mqtt.host: required key is missing"),
        ({"station": {"id": "a/b", "province": "p", "commune": "c"}}, "station.id: String"),
        ({"telemetry": {"interval_s": 0}}, "telemetry.interval_s: must be >= 1"),
        ({"controller": {"url": "/dev/x", "retries": 99}}, "controller.retries: must be <= 10"),
        ({"audio": {"source": "pcm"}}, 'audio: Value error, source = "pcm" needs pcm_path'),
        (
            {"mqtt": {"host": "h", "tls": {"cert_file": "/nonexistent.pem"}}},
            "mqtt.tls.cert_file: file does not exist",
        ),
    ],
)
def test_errors_name_the_key(change, message):
    with pytest.raises(ConfigError) as err:
        parse_config({**MINIMAL, **change}, "agent.toml")
    assert any(p.startswith(message) for p in err.value.problems), err.value.problems
    assert str(err.value).startswith("agent.toml: ")


def test_password_is_never_echoed(tmp_path):
    cfg = parse_config({**MINIMAL, "mqtt": {"host": "h", "username": "u", "password": "s3cret"}})
    assert "s3cret" not in repr(cfg)
    with pytest.raises(ConfigError) as err:
        parse_config({**MINIMAL, "mqtt": {"host": "h", "password": 12345}})
    assert "12345" not in str(err.value) and "mqtt.password" in str(err.value)


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[mqtt\nhost = 1\n")
    with pytest.raises(ConfigError, match=r"bad.toml: invalid TOML: .*line 1"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read: No such file"):
        load_config(tmp_path / "absent.toml")


def test_example_is_valid_toml_with_comments_on_required_keys():
    data = tomllib.loads(EXAMPLE.read_text())
    assert set(data) >= {"station", "mqtt", "controller", "audio", "telemetry", "queue", "state"}


def test_check_config_command(tmp_path, capsys):
    from loaxa.cli import main

    assert main(["agent", "check-config", str(EXAMPLE)]) == 0
    assert "OK - station cb-01267" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace("port = 1883", "port = 70000"))
    assert main(["agent", "check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err and "mqtt.port: must be <= 65535 (got 70000)" in err


def test_run_with_a_bad_config_exits_2_without_starting(tmp_path, caplog):
    from loaxa.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text("[station]\nid = 'x'\n")
    assert main(["agent", "run", "--config", str(bad)]) == 2
    assert main(["agent", "--config", str(bad)]) == 2
    assert "mqtt: required key is missing" in caplog.text


def test_run_reports_an_unusable_state_dir(tmp_path, caplog):
    from loaxa.cli import main

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    cfg = tmp_path / "agent.toml"
    text = EXAMPLE.read_text().replace('dir = "/var/lib/loaxa-agent"', f'dir = "{blocker}/state"')
    cfg.write_text(text)
    assert main(["agent", "run", "--config", str(cfg)]) == 1
    assert "agent cannot start" in caplog.text and "not-a-dir" in caplog.text
