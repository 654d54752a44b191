"""Security 19: secrets (MQTT passwords, InfluxDB password/token, SMTP password, upstream token)
come from ``<key>_file`` or the environment (loaxa/secret_sources.py), and never appear in logs,
in stored data or in the dead-letter file: checked by capturing every log record of a run of the
agent Publisher and the collector against a Mosquitto that checks passwords, with InfluxDB
failing part of the time so error paths log too. (Grafana's token: dashboards/cli.py reads
``--token-file`` or ``GRAFANA_TOKEN``, tested in tests/test_dashboards_push.py.)
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from agent.config import ConfigError, parse_config
from agent.mqtt_config import MqttConfig as AgentMqtt
from agent.mqtt_config import StationConfig
from agent.publisher import Publisher
from agent.queue import OfflineQueue
from agent.state import AgentState
from collector.alerts.config import EmailConfig
from collector.export.config import UpstreamConfig
from collector.ingest.config import MqttConfig as CollectorMqtt
from collector.storage.config import InfluxConfig
from loaxa.topics import Kind
from tests.faults.collector_rig import INVENTORY, RunningCollector, now_ms, rows
from tests.servers import Mosquitto, wait_until

SECRETS = {
    "agent": "agent-pw-7Qx1",
    "collector": "collector-pw-Zr82",
    "influx": "influx-pw-Lm55",
    "smtp": "smtp-pw-Kd03",
    "wrong": "wrong-pw-Pp91",
    "token": "upstream-token-Tt64",
}


def _file(tmp_path: Path, name: str, secret: str) -> Path:
    path = tmp_path / f"{name}.secret"
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("model", "key", "env", "extra"),
    [
        (AgentMqtt, "password", "LOAXA_MQTT_PASSWORD", {"host": "h"}),
        (CollectorMqtt, "password", "LOAXA_MQTT_PASSWORD", {}),
        (CollectorMqtt, "ops_password", "LOAXA_MQTT_OPS_PASSWORD", {}),
        (InfluxConfig, "password", "LOAXA_INFLUX_PASSWORD", {}),
        (InfluxConfig, "token", "LOAXA_INFLUX_TOKEN", {}),
        (EmailConfig, "password", "LOAXA_SMTP_PASSWORD", {}),
        (UpstreamConfig, "token", "LOAXA_UPSTREAM_TOKEN", {}),
    ],
)
def test_secret_from_file_or_environment(tmp_path, monkeypatch, model, key, env, extra):
    def value(cfg) -> str:
        v = getattr(cfg, key)
        return v if isinstance(v, str) else v.get_secret_value()

    monkeypatch.delenv(env, raising=False)
    assert getattr(model.model_validate(extra), key) is None
    path = _file(tmp_path, key, "from-file")
    assert value(model.model_validate({**extra, f"{key}_file": str(path)})) == "from-file"
    monkeypatch.setenv(env, "from-env")
    assert value(model.model_validate(extra)) == "from-env"
    assert value(model.model_validate({**extra, f"{key}_file": str(path)})) == "from-file"
    with pytest.raises(ValueError, match=f"give {key} or {key}_file, not both"):
        model.model_validate({**extra, key: "inline", f"{key}_file": str(path)})
    with pytest.raises(ValueError, match="cannot read secret file") as err:
        model.model_validate({**extra, f"{key}_file": str(tmp_path / "missing")})
    assert "from-env" not in str(err.value)


def test_agent_config_error_does_not_echo_a_password(tmp_path):
    path = _file(tmp_path, "pw", "x")
    doc = {
        "station": {"id": "cb-01267", "province": "cao-bang", "commune": "01273"},
        "mqtt": {"host": "h", "password": SECRETS["agent"], "password_file": str(path)},
        "controller": {"url": "/dev/ttyUSB0"},
    }
    with pytest.raises(ConfigError) as err:
        parse_config(doc)
    assert "not both" in str(err.value) and SECRETS["agent"] not in str(err.value)


@pytest.fixture
def auth_broker(tmp_path_factory):
    work = tmp_path_factory.mktemp("auth-broker")
    passwords = work / "passwords"
    passwords.touch(mode=0o600)
    for user, secret in (("cb-01267", SECRETS["agent"]), ("collector", SECRETS["collector"])):
        subprocess.run(
            ["mosquitto_passwd", "-b", str(passwords), user, secret], check=True, timeout=10
        )
    broker = Mosquitto(work, extra=f"password_file {passwords}").start()
    yield broker
    broker.stop()


def _collector_config(tmp_path: Path, port: int, influx_url: str) -> Path:
    mqtt_pw = _file(tmp_path, "mqtt", SECRETS["collector"])
    influx_pw = _file(tmp_path, "influx", SECRETS["influx"])
    path = tmp_path / "collector.toml"
    path.write_text(
        f'inventory = "{INVENTORY}"\n'
        '[daemon]\nstate_db = "state.sqlite"\nhealth_tick_s = 0.5\nshutdown_timeout_s = 2\n'
        f'[mqtt]\nport = {port}\nclient_id = "col-secrets"\nusername = "collector"\n'
        f'password_file = "{mqtt_pw}"\n'
        f'[influx]\nurl = "{influx_url}"\ndb = "loaxa_faults"\ncreate_database = true\n'
        f'user = "loaxa"\npassword_file = "{influx_pw}"\nflush_interval_ms = 100\n'
        "retry_initial_ms = 50\nretry_max_ms = 200\n"
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
        '[alerts]\nenabled = false\n[alerts.email]\nusername = "loaxa"\n[http]\nenabled = false\n'
    )
    return path


def _publisher(tmp_path: Path, port: int, name: str) -> Publisher:
    cfg = AgentMqtt.model_validate(
        {"host": "127.0.0.1", "port": port, "username": "cb-01267", "retry_min_s": 0.1,
         "retry_max_s": 0.3}
    )  # fmt: skip
    station = StationConfig(id="cb-01267", province="cao-bang", commune="01273")
    queue = OfflineQueue(tmp_path / f"{name}.sqlite", 1_000_000)
    return Publisher(station, cfg, queue, AgentState(tmp_path / f"{name}-state"))


def test_secrets_never_reach_logs_or_stored_data(
    tmp_path, monkeypatch, caplog, auth_broker, influxdb
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("LOAXA_SMTP_PASSWORD", SECRETS["smtp"])
    config = _collector_config(tmp_path, auth_broker.port, influxdb.url)
    ts = now_ms() - 10_000
    with RunningCollector(config) as collector:
        assert collector.config.alerts.email.password.get_secret_value() == SECRETS["smtp"]
        wait_until(lambda: collector.mqtt.connected, 10, what="collector authenticated")
        monkeypatch.setenv("LOAXA_MQTT_PASSWORD", SECRETS["agent"])
        good = _publisher(tmp_path, auth_broker.port, "good")
        monkeypatch.setenv("LOAXA_MQTT_PASSWORD", SECRETS["wrong"])
        bad = _publisher(tmp_path, auth_broker.port, "bad")
        good.start()
        bad.start()
        try:
            good.publish(Kind.TELEMETRY, {"agent_uptime_s": 1}, ts)
            wait_until(
                lambda: bad.stats["connect_failures"] >= 2, 15, what="wrong password refused"
            )
            wait_until(lambda: rows(influxdb, "SELECT seq FROM telemetry"), 30, what="stored")
            influxdb.stop()  # write errors are logged now: no credential may be in them
            good.publish(Kind.TELEMETRY, {"agent_uptime_s": 2}, ts + 1000)
            wait_until(lambda: collector.storage.snapshot().get("retries_total", 0) >= 2, 30,
                       what="write retries against a dead InfluxDB")  # fmt: skip
            influxdb.start()
            wait_until(lambda: len(rows(influxdb, "SELECT seq FROM telemetry")) == 2, 30,
                       what="drained after the outage")  # fmt: skip
        finally:
            good.stop()
            bad.stop()
    assert not good.connected and bad.stats["connections"] == 0
    text = caplog.text + "\n".join(repr(r.args) for r in caplog.records)
    assert "Bad user name or password" in text or "Not authorized" in text
    files = [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".secret")]
    stored = str(influxdb.query("SELECT * FROM /.*/", "loaxa_faults"))
    for name, secret in SECRETS.items():
        assert secret not in text, f"{name} secret in the log"
        assert secret not in stored, f"{name} secret in InfluxDB"
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"{name} secret in {path}"
