"""collector.config: the example file validates; bad files fail naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import ConfigError, load_config
from collector.inventory import load_inventory

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "collector.example.toml"


def test_example_validates_and_its_inventory_loads():
    config = load_config(EXAMPLE)
    assert config.inventory == EXAMPLE.parent / "inventory.example.toml"
    assert config.alerts.templates_dir == EXAMPLE.parent / "templates"
    assert config.mqtt.filters() == ["loaxa/v1/cao-bang/+/+/+"]
    inventory = load_inventory(config.inventory)
    for gateway in config.serial_gateways:
        assert gateway.id in {u.id for u in inventory.upstreams.values()}, gateway.id


def test_minimal_file_gets_defaults(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('inventory = "inv.toml"\n[daemon]\nstate_db = "state.sqlite"\n')
    config = load_config(path)
    assert config.inventory == tmp_path / "inv.toml"
    assert config.daemon.state_db == tmp_path / "state.sqlite"
    assert config.mqtt.filters() == ["loaxa/v1/+/+/+/+"]
    assert config.storage.influx == config.influx


def test_shared_group_prefixes_filters(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('inventory = "i.toml"\n[mqtt]\nshared_group = "coll"\n')
    assert load_config(path).mqtt.filters() == ["$share/coll/loaxa/v1/+/+/+/+"]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('inventory = "i"\n[mqtt]\nport = 70000\n', "mqtt.port"),
        ('inventory = "i"\n[mqtt]\nprot = 1\n', "mqtt.prot"),
        ('inventory = "i"\n[influx]\napi = "v3"\n', "influx.api"),
        ('inventory = "i"\n[[serial_gateways]]\nid = "g"\n', "serial_gateways.0.url"),
        ('inventory = "i"\n[alerts.sms]\nbaudrate = "fast"\n', "alerts.sms.baudrate"),
        ('inventory = "i"\n[mqtt]\nshared_group = "a/b"\n', "mqtt.shared_group"),
        ("[mqtt]\n", "inventory"),
    ],
)
def test_bad_key_is_named(tmp_path, text, key):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"  {key}:" in str(err.value)


def test_not_toml_and_missing_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("inventory = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_duplicate_gateway_ids(tmp_path):
    path = tmp_path / "c.toml"
    gw = '[[serial_gateways]]\nid = "g"\nurl = "/dev/null"\n'
    path.write_text('inventory = "i"\n' + gw + gw)
    with pytest.raises(ConfigError, match="id g used more than once"):
        load_config(path)


@pytest.mark.parametrize(
    ("section", "model"),
    [
        ("daemon", "DaemonConfig"),
        ("mqtt", "MqttConfig"),
        ("serial_gateways", "SerialGatewayConfig"),
        ("validation", "ValidationConfig"),
        ("http", "HttpConfig"),
    ],
)
def test_example_shows_every_key_of_the_ingest_models(section, model):
    """The sample config stays in sync with the models it documents (a key may be commented)."""
    import collector.config as cc
    import collector.http as ch
    import collector.ingest.config as ic

    cls = getattr(cc, model, None) or getattr(ic, model, None) or getattr(ch, model)
    text = EXAMPLE.read_text(encoding="utf-8")
    start = text.index(f"[{section}]")
    block = text[start : text.find("\n[", start + 1)]
    for key in cls.model_fields:
        assert f"\n{key} = " in block or f"\n# {key} = " in block, f"{section}.{key}"
