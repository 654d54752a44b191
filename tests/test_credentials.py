"""``loaxa credentials generate``: hashes Mosquitto accepts, file modes, reuse and rotation,
stations without agent, and no secret in logs or output. The broker itself is attacked in
tests/test_security_broker.py."""

from __future__ import annotations

import logging
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from agent.mqtt_config import MqttConfig as AgentMqtt
from collector.ingest.config import MqttConfig as CollectorMqtt
from collector.inventory import load_inventory
from loaxa.cli import main
from loaxa.credentials import BrokerAddress, CredentialsError, generate, plan_accounts
from loaxa.credentials_acl import Role, render_acl
from loaxa.credentials_certs import CertAuthority, issue, still_valid
from loaxa.credentials_hash import HashFormatError, hash_password, verify_password
from tests.secure_broker import make_ca

INVENTORY = Path(__file__).resolve().parents[1] / "config" / "inventory.example.toml"
BROKER = BrokerAddress("mqtt.example.vn")


def secrets_of(out: Path) -> dict[str, str]:
    return {p.stem: p.read_text().strip() for p in (out / "secrets").glob("*.secret")}


def test_hash_matches_mosquitto_passwd_both_ways(tmp_path):
    # mosquitto_passwd's hash verifies with our code ...
    pw = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-b", "-c", pw, "alice", "s3cret"], check=True)
    encoded = pw.read_text().strip().split(":", 1)[1]
    assert verify_password("s3cret", encoded) and not verify_password("s3creT", encoded)
    # ... and `mosquitto_passwd -U` (hash a plaintext file in place) gives the same format.
    pw.write_text("bob:hunter22\n")
    subprocess.run(["mosquitto_passwd", "-U", pw], check=True)
    assert verify_password("hunter22", pw.read_text().strip().split(":", 1)[1])
    ours = hash_password("hunter22")
    assert ours.startswith("$7$101$") and verify_password("hunter22", ours)
    with pytest.raises(HashFormatError):
        verify_password("x", "$6$abc$def")


def test_files_modes_and_snippets(tmp_path):
    out = tmp_path / "creds"
    result = generate([load_inventory(INVENTORY)], out, BROKER)
    assert {a.username for a in result.accounts} == {
        "cb-01267",
        "cb-01290",
        "cb-01309",
        "loaxa-collector",
        "loaxa-ops",
    }
    assert result.skipped == {"cb-01282": "polled by serial gateway gw-thuc-phan, no agent"}
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(out) == 0o700 and mode(out / "secrets") == 0o700
    assert mode(out / "broker" / "passwd") == 0o640 and mode(out / "broker" / "acl") == 0o644
    private = [*out.glob("secrets/*"), *out.glob("agents/*"), *out.glob("collector/*")]
    assert private and all(mode(p) == 0o600 for p in private)
    # Each snippet loads into the config model of the program that uses it.
    agent = tomllib.loads((out / "agents" / "cb-01267.toml").read_text())["mqtt"]
    cfg = AgentMqtt.model_validate(agent | {"tls": {"ca_file": str(INVENTORY)}})
    assert cfg.username == cfg.client_id == "cb-01267" and cfg.port == 8883
    coll = tomllib.loads((out / "collector" / "loaxa-collector.toml").read_text())["mqtt"]
    assert CollectorMqtt.model_validate(coll).tls_ca_file == "/etc/loaxa/ca.pem"
    # The password file has one hash per account, matching the kept secret.
    lines = dict(ln.split(":", 1) for ln in (out / "broker" / "passwd").read_text().split())
    assert all(verify_password(secret, lines[u]) for u, secret in secrets_of(out).items())
    assert agent["password"] == secrets_of(out)["cb-01267"]


def test_rerun_reuses_rotate_changes_one_and_removed_accounts_are_reported(tmp_path):
    out = tmp_path / "creds"
    generate([load_inventory(INVENTORY)], out, BROKER)
    first = secrets_of(out)
    again = generate([load_inventory(INVENTORY)], out, BROKER, rotate=["cb-01290"])
    second = secrets_of(out)
    assert again.rotated == ["cb-01290"] and again.created == []
    assert {u for u in first if first[u] != second[u]} == {"cb-01290"}
    fewer = generate([load_inventory(INVENTORY)], out, BROKER, operators=[])
    assert fewer.revoked == ["loaxa-ops"]
    assert "loaxa-ops:" not in (out / "broker" / "passwd").read_text()
    with pytest.raises(CredentialsError, match="unknown accounts: cb-nope"):
        generate([load_inventory(INVENTORY)], out, BROKER, rotate=["cb-nope"])


def test_clashing_user_names_are_refused():
    with pytest.raises(CredentialsError, match="'cb-01267' used twice"):
        plan_accounts([load_inventory(INVENTORY)], collectors=["cb-01267"])
    accounts = plan_accounts([load_inventory(INVENTORY)], collectors=["c1", "c2"])
    assert [a.username for a in accounts if a.role is Role.COLLECTOR] == ["c1", "c2"]


def test_cli_never_prints_or_logs_a_secret(tmp_path, capsys, caplog):
    out = tmp_path / "creds"
    argv = [
        "credentials",
        "generate",
        "--inventory",
        str(INVENTORY),
        "--out",
        str(out),
        "--broker-host",
        "mqtt.example.vn",
    ]
    with caplog.at_level(logging.DEBUG):
        assert main(argv) == 0
        assert main([*argv, "--rotate", "cb-01267"]) == 0
    printed = capsys.readouterr()
    text = printed.out + printed.err + caplog.text
    assert "5 accounts written" in text and "rotated: cb-01267" in text
    for user, secret in secrets_of(out).items():
        assert secret not in text, user
    hashes = (out / "broker" / "passwd").read_text().split()
    assert not any(h.split(":", 1)[1] in text for h in hashes)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--broker-port", "0"], "broker port 0 is not 1..65535"),
        (["--rotate", "nobody"], "unknown accounts: nobody"),
        (["--collector", "cb-01290"], "used twice"),
    ],
)
def test_cli_bad_options_are_clear(tmp_path, capsys, extra, message):
    argv = [
        "credentials",
        "generate",
        "--inventory",
        str(INVENTORY),
        "--out",
        str(tmp_path / "c"),
        "--broker-host",
        "h",
        *extra,
    ]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_bad_inventory_names_the_key(tmp_path, capsys):
    bad = tmp_path / "inv.toml"
    bad.write_text(INVENTORY.read_text().replace('commune = "01273"', 'commune = "9"', 1))
    argv = [
        "credentials",
        "generate",
        "--inventory",
        str(bad),
        "--out",
        str(tmp_path / "c"),
        "--broker-host",
        "h",
    ]
    assert main(argv) == 2
    assert "stations[0].commune" in capsys.readouterr().err


def test_acl_example_matches_the_generator():
    """deploy/mosquitto/acl.example is what `generate` writes for the example inventory."""
    example = INVENTORY.parents[1] / "deploy" / "mosquitto" / "acl.example"
    header = "Example: made from config/inventory.example.toml (tests keep it in sync)."
    expected = render_acl(plan_accounts([load_inventory(INVENTORY)]), header=header)
    assert example.read_text() == expected


def test_certificate_mode_issues_reuses_and_rotates(tmp_path):
    tls = make_ca(tmp_path / "ca")
    ca = CertAuthority(tls["ca.pem"], tls["ca.key"], days=400)
    out = tmp_path / "creds"
    first = generate([load_inventory(INVENTORY)], out, BROKER, authority=ca)
    assert sorted(first.issued) == ["cb-01267", "cb-01290", "cb-01309"]
    key, crt = out / "agents" / "cb-01267.key", out / "agents" / "cb-01267.crt"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert still_valid(crt, ca, "cb-01267") and not still_valid(crt, ca, "cb-01290")
    snippet = tomllib.loads((out / "agents" / "cb-01267.toml").read_text())["mqtt"]
    assert "password" not in snippet and snippet["port"] == 8884
    assert snippet["tls"]["cert_file"] == "/etc/loaxa/cb-01267.crt"
    again = generate([load_inventory(INVENTORY)], out, BROKER, authority=ca, rotate=["cb-01290"])
    assert again.issued == ["cb-01290"] and "cb-01267" in again.reused
    # A certificate expiring within the 30-day margin is not kept: the next run renews it.
    short = CertAuthority(tls["ca.pem"], tls["ca.key"], days=10)
    issue(short, "cb-01309", out / "agents" / "cb-01309.key", out / "agents" / "cb-01309.crt")
    assert not still_valid(out / "agents" / "cb-01309.crt", ca, "cb-01309")
    third = generate([load_inventory(INVENTORY)], out, BROKER, authority=ca)
    assert third.issued == ["cb-01309"]
    assert still_valid(out / "agents" / "cb-01309.crt", ca, "cb-01309")


def test_certificate_mode_needs_both_ca_files(tmp_path, capsys):
    argv = [
        "credentials",
        "generate",
        "--inventory",
        str(INVENTORY),
        "--out",
        str(tmp_path / "c"),
        "--broker-host",
        "h",
        "--ca-cert",
        "x.pem",
    ]
    assert main(argv) == 2
    assert "--ca-cert and --ca-key go together" in capsys.readouterr().err
