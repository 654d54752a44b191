"""`loaxa ack` against the production broker: deploy/mosquitto/mosquitto.conf on the real
Mosquitto (tests/secure_broker.py), TLS only, the passwd/ACL that `loaxa credentials generate`
makes. The operator acknowledges with their own account (``--ops-config
operators/loaxa-ops.toml``), the collector (its real account, subscribed to acknowledgements)
receives it and stays connected; the password is never printed, wherever it comes from.
"""

from __future__ import annotations

import json
import threading
import time
import tomllib
from pathlib import Path

import pytest

from collector.alerts.ops_config import PASSWORD_ENV, OpsConfigError, load_ops_config
from collector.inventory import load_inventory
from loaxa import topics
from loaxa.cli import main
from loaxa.credentials import BrokerAddress, generate
from loaxa.credentials_hash import password_line
from tests.live_inventory import live_text
from tests.secure_broker import Probe
from tests.servers import wait_until
from tests.test_security_broker import AUDITOR, PROVINCE, Setup

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = ROOT / "config" / "inventory.example.toml"
BY = "Trực ban Sở"
COLLECTORS = ("loaxa-collector", "loaxa-collector-ops")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ack-secure")
    s = Setup(tmp)
    # The collector's second (alerts/acks) session gets its own collector account, as
    # deploy/README says: `--collector loaxa-collector --collector loaxa-collector-ops`.
    address = BrokerAddress("127.0.0.1", s.broker.port, str(s.tls["ca.pem"]))
    generate([load_inventory(INVENTORY)], s.out, address, collectors=COLLECTORS)
    generated = s.out / "broker"
    (tmp / "passwd").write_text(
        (generated / "passwd").read_text() + password_line(AUDITOR, s.auditor_pw) + "\n"
    )
    (tmp / "acl").write_text(
        (generated / "acl").read_text() + f"\n# test only\nuser {AUDITOR}\ntopic read #\n"
    )
    s.broker.start()
    yield s
    s.broker.stop()


@pytest.fixture
def collector(env):
    """The collector's own account, subscribed to acknowledgements, as the daemon's ops session."""
    before = set(threading.enumerate())
    probe = Probe(
        env.broker.port,
        "loaxa-collector",
        env.password("loaxa-collector"),
        ca=env.tls["ca.pem"],
        client_id="loaxa-collector",
    )
    assert probe.connect()
    assert probe.subscribe(topics.ack_subscription(PROVINCE)) == [1]
    yield probe
    probe.close()
    wait_until(lambda: not set(threading.enumerate()) - before, 10, what="client threads to end")


def collector_config(env, tmp: Path) -> Path:
    """A collector config on the production broker: its [mqtt] is the generated snippet."""
    snippet = (env.out / "collector" / "loaxa-collector.toml").read_text()
    path = tmp / "collector.toml"
    path.write_text(f'inventory = "{INVENTORY}"\n{snippet}')
    return path


def acks(probe: Probe, code: str) -> list[dict]:
    topic = topics.ack_topic(PROVINCE, "_any", code)
    return [json.loads(p) for t, p in probe.messages if t == topic]


def no_secret(env, capsys, user: str) -> None:
    out = capsys.readouterr()
    assert env.password(user) not in out.out + out.err


def test_operator_acknowledges_and_the_collector_stays_connected(env, collector, tmp_path, capsys):
    ops = env.out / "operators" / "loaxa-ops.toml"
    argv = [
        "ack",
        "417",
        "--config",
        str(collector_config(env, tmp_path)),
        "--ops-config",
        str(ops),
    ]
    assert main([*argv, "--by", BY]) == 0
    wait_until(lambda: acks(collector, "417"), 10, what="the acknowledgement at the collector")
    assert acks(collector, "417") == [{"by": BY}]
    assert collector.connected and collector.disconnects == 0
    no_secret(env, capsys, "loaxa-ops")


def test_without_ops_config_the_collector_account_is_not_used(env, collector, tmp_path, capsys):
    config = collector_config(env, tmp_path)
    assert main(["ack", "418", "--config", str(config), "--by", BY]) == 2
    err = capsys.readouterr().err
    assert "--ops-config" in err and "loaxa-collector" in err
    assert env.password("loaxa-collector") not in err
    assert collector.connected and collector.disconnects == 0


@pytest.mark.parametrize("source", ["env", "file"])
def test_password_from_environment_or_file(env, collector, tmp_path, monkeypatch, capsys, source):
    text = (env.out / "operators" / "loaxa-ops.toml").read_text()
    lines = [line for line in text.splitlines() if not line.startswith("password =")]
    if source == "env":
        monkeypatch.setenv(PASSWORD_ENV, env.password("loaxa-ops"))
    else:
        secret = tmp_path / "ops.secret"
        secret.write_text(env.password("loaxa-ops") + "\n")
        lines.append('password_file = "ops.secret"')  # relative to the operator file
    ops = tmp_path / "ops.toml"
    ops.write_text("\n".join(lines) + "\n")
    argv = ["ack", "419", "--province", PROVINCE, "--ops-config", str(ops), "--by", BY]
    assert main(argv) == 0
    wait_until(lambda: acks(collector, "419"), 10, what="the acknowledgement at the collector")
    no_secret(env, capsys, "loaxa-ops")


def test_wrong_password_is_refused_by_name_without_the_secret(env, collector, tmp_path, capsys):
    wrong = "not-the-operator-password"
    ops = tmp_path / "ops.toml"
    text = (env.out / "operators" / "loaxa-ops.toml").read_text()
    ops.write_text(text.replace(env.password("loaxa-ops"), wrong))
    assert main(["ack", "420", "--province", PROVINCE, "--ops-config", str(ops), "--by", BY]) == 1
    err = capsys.readouterr().err
    assert "refused the login" in err and "'loaxa-ops'" in err
    assert wrong not in err
    assert acks(collector, "420") == []


def test_a_station_account_may_not_acknowledge(env, collector, tmp_path, capsys):
    """The ACL refuses (PUBACK 135): the command says so instead of claiming success."""
    station = tomllib_mqtt(env.out / "agents" / "cb-01267.toml")
    ops = tmp_path / "station-as-ops.toml"
    ops.write_text(
        "[mqtt]\n"
        f'host = "127.0.0.1"\nport = {station["port"]}\nusername = "cb-01267"\n'
        f'password = "{env.password("cb-01267")}"\ntls_ca_file = "{env.tls["ca.pem"]}"\n'
    )
    assert main(["ack", "421", "--province", PROVINCE, "--ops-config", str(ops), "--by", BY]) == 1
    err = capsys.readouterr().err
    assert "refused the acknowledgement" in err and "operator account" in err
    assert acks(collector, "421") == []
    assert env.password("cb-01267") not in err


def tomllib_mqtt(path: Path) -> dict:
    return tomllib.loads(path.read_text())["mqtt"]


def test_ops_config_errors_name_the_key_not_the_secret(tmp_path):
    bad = tmp_path / "ops.toml"
    bad.write_text('[mqtt]\nport = "eighty"\npassword = "s3cret-value"\n')
    with pytest.raises(OpsConfigError) as err:
        load_ops_config(bad)
    assert "mqtt.port" in str(err.value) and "s3cret-value" not in str(err.value)
    bad.write_text('[mqtt]\nhost = "h"\npasword = "s3cret-value"\n')  # typo: rejected
    with pytest.raises(OpsConfigError) as err:
        load_ops_config(bad)
    assert "mqtt.pasword" in str(err.value) and "s3cret-value" not in str(err.value)
    assert "s3cret" not in repr(load_ops_config_text(tmp_path, 'password = "s3cret-value"'))
    with pytest.raises(OpsConfigError, match="no \\[mqtt\\] table"):
        load_ops_config_text(tmp_path, "", table="ops")


def load_ops_config_text(tmp: Path, body: str, table: str = "mqtt"):
    path = tmp / "o.toml"
    path.write_text(f"[{table}]\n{body}\n")
    return load_ops_config(path)


def test_daemon_behind_the_production_broker_takes_the_operator_ack(env, tmp_path, influxdb):
    """End to end: the real collector daemon on its generated account, a station on its own,
    the alert on the feed, `loaxa ack` with the operator account, acknowledged in the daemon."""
    from collector.config import load_config
    from collector.daemon import Collector
    from loaxa.payloads import Telemetry, to_json

    fast = (
        live_text()  # the example without its dated maintenance of the alerted station
        .replace("telemetry_interval_s = 60", "telemetry_interval_s = 1")
        .replace("down_after_intervals = 3", "down_after_intervals = 2")
        .replace("damping_s = 60", "damping_s = 0")
    )
    (tmp_path / "inventory.toml").write_text(fast, encoding="utf-8")
    snippet = (env.out / "collector" / "loaxa-collector.toml").read_text()
    ops_user = tomllib_mqtt(env.out / "collector" / "loaxa-collector-ops.toml")
    path = tmp_path / "collector.toml"
    path.write_text(
        f'inventory = "inventory.toml"\n{snippet}'
        f'ops_username = "{ops_user["username"]}"\nops_password = "{ops_user["password"]}"\n'
        '[daemon]\nstate_db = "state.sqlite"\nhealth_tick_s = 0.5\nalert_tick_s = 0.5\n'
        f'[influx]\nurl = "{influxdb.url}"\ndb = "ack_e2e"\ncreate_database = true\n'
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
        "[http]\nenabled = false\n"
        '[alerts]\nchannel_order = []\ncopy_to = ["mqtt"]\n[alerts.mqtt]\nenabled = true\n'
    )
    before = set(threading.enumerate())
    ops = Probe(env.broker.port, "loaxa-ops", env.password("loaxa-ops"), ca=env.tls["ca.pem"])
    assert ops.connect()
    ops.subscribe(topics.alert_subscription(PROVINCE))
    daemon = Collector(load_config(path))
    daemon.start()
    station = Probe(env.broker.port, "cb-01267", env.password("cb-01267"), ca=env.tls["ca.pem"])
    try:
        assert station.connect()
        wait_until(
            lambda: daemon.mqtt.connected and daemon.ops.connected.is_set(),
            20,
            what="collector sessions up",
        )
        now = time.time_ns() // 1_000_000
        reading = Telemetry(station="cb-01267", session=1, seq=1, ts=now, agent_uptime_s=1)
        topic = topics.station_topic(PROVINCE, "01273", "cb-01267", topics.Kind.TELEMETRY)
        assert station.publish(topic, to_json(reading)) == 0
        # ... and then nothing: down after 2 x 1 s, paged on the MQTT feed.
        ((_, payload),) = wait_until(lambda: ops.received(b'"alert"'), 30, what="alert on feed")
        (code,) = json.loads(payload)["codes"]
        argv = ["ack", code, "--province", PROVINCE, "--by", BY]
        assert main([*argv, "--ops-config", str(env.out / "operators" / "loaxa-ops.toml")]) == 0
        wait_until(
            lambda: daemon.alerts.stats()["router"].get("acknowledged") == 1,
            20,
            what="acknowledged in the daemon",
        )
        assert daemon.mqtt.connected and daemon.ops.connected.is_set()
    finally:
        station.close()
        daemon.stop()
        ops.close()
    wait_until(lambda: not set(threading.enumerate()) - before, 15, what="threads to end")
