"""Issue 5 item 16: the production broker config refuses every intruder, the real Mosquitto.

The broker runs deploy/mosquitto/mosquitto.conf (paths and port rewritten, tests/secure_broker.py)
with the password file and ACL that ``loaxa credentials generate`` makes from
config/inventory.example.toml, behind a throwaway CA. Each attack publishes payloads marked with
a nonce; the verdict comes from what privileged subscribers actually received: the collector
(its real account) and a test-only auditor allowed to read ``#``. MQTT 5 and 3.1.1 both.
"""

from __future__ import annotations

import secrets
import signal
import ssl
import threading
import time
import tomllib
from pathlib import Path

import pytest

from agent.mqtt_config import MqttConfig as AgentMqtt
from agent.mqtt_config import make_client
from collector.ingest.config import MqttConfig as CollectorMqtt
from collector.ingest.mqtt import MqttIngest
from collector.ingest.pipeline import Pipeline
from collector.ingest.stats import IngestStats
from collector.ingest.validate import Limits, RejectReason
from collector.inventory import load_inventory
from loaxa import topics
from loaxa.credentials import BrokerAddress, generate
from loaxa.credentials_certs import CertAuthority
from loaxa.credentials_hash import password_line
from loaxa.payloads import Telemetry, to_json
from loaxa.topics import Kind
from tests.secure_broker import (
    PRODUCTION_CONF,
    Probe,
    SecureBroker,
    make_ca,
    raw_connect_and_publish,
)
from tests.servers import wait_until

ROOT = Path(__file__).resolve().parents[1]
PROVINCE = "cao-bang"
A = ("01273", "cb-01267")  # station A: the attacker in most cases
B = ("01290", "cb-01290")  # station B: the victim
C = ("01290", "cb-01309")  # station C: leaves the inventory
AUDITOR = "test-auditor"  # test-only account that reads everything


class Setup:
    def __init__(self, tmp: Path, certs: bool = False) -> None:
        self.tls = make_ca(tmp / "tls")
        self.out = tmp / "creds"
        passwd, acl = tmp / "passwd", tmp / "acl"
        self.broker = SecureBroker(tmp / "broker", self.tls, passwd, acl, certs=certs)
        inventory = load_inventory(ROOT / "config" / "inventory.example.toml")
        address = BrokerAddress(
            "127.0.0.1", self.broker.port, str(self.tls["ca.pem"]), self.broker.cert_port
        )
        authority = None
        if certs:  # stations get client certificates signed by the test CA
            authority = CertAuthority(
                self.tls["ca.pem"], self.tls["ca.key"], 2, str(self.out / "agents")
            )
        self.result = generate([inventory], self.out, address, authority=authority)
        self.auditor_pw = secrets.token_urlsafe(16)
        passwd.write_text(
            (self.out / "broker" / "passwd").read_text()
            + password_line(AUDITOR, self.auditor_pw)
            + "\n"
        )
        acl.write_text(
            (self.out / "broker" / "acl").read_text()
            + f"\n# test only\nuser {AUDITOR}\ntopic read #\n"
        )

    def snippet(self, folder: str, user: str) -> dict:
        return tomllib.loads((self.out / folder / f"{user}.toml").read_text())

    def password(self, user: str) -> str:
        return (self.out / "secrets" / f"{user}.secret").read_text().strip()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    s = Setup(tmp_path_factory.mktemp("secure"))
    s.broker.start()
    yield s
    s.broker.stop()


@pytest.fixture
def probes(env):
    made: list[Probe] = []
    before = set(threading.enumerate())

    def make(
        user: str | None,
        password: str | None = None,
        *,
        tls: bool = True,
        v5: bool = True,
        client_id: str = "",
        clean: bool = True,
    ) -> Probe:
        if user is not None and password is None:
            password = env.auditor_pw if user == AUDITOR else env.password(user)
        p = Probe(
            env.broker.port,
            user,
            password,
            ca=env.tls["ca.pem"] if tls else None,
            client_id=client_id,
            v5=v5,
            clean=clean,
        )
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
    wait_until(lambda: not set(threading.enumerate()) - before, 10, what="client threads to end")


def telemetry(station: tuple[str, str]) -> str:
    return topics.station_topic(PROVINCE, station[0], station[1], Kind.TELEMETRY)


@pytest.fixture
def watchers(probes):
    """The collector (its generated account) and the auditor, both subscribed and connected."""
    collector = probes("loaxa-collector")
    auditor = probes(AUDITOR)
    assert collector.connect() and auditor.connect()
    assert collector.subscribe(topics.subscription(PROVINCE)) == [1]
    collector.subscribe(topics.ack_subscription(PROVINCE))
    assert auditor.subscribe("#") == [1]
    return collector, auditor


def legit_marker(probes, watchers, nonce: bytes, b: Probe | None = None) -> None:
    """Station B publishes a marker; once the watchers have it, anything the broker accepted
    earlier from an attacker would have arrived too (one broker, in-order delivery). A second
    connection of B would take over the first, so a test that holds B passes it in."""
    if b is None:
        b = probes(B[1])
        assert b.connect()
    assert b.publish(telemetry(B), b"marker " + nonce) == 0
    for w in watchers:
        wait_until(lambda w=w: w.received(b"marker " + nonce), 10, what="marker delivered")


def test_shipped_config_is_tls_only_without_anonymous():
    options = [
        ln.split(" ", 1)
        for ln in PRODUCTION_CONF.read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    keys = [k for k, *_ in options]
    values = {k: v for k, v in options}
    assert keys.count("listener") == 1 and "port" not in keys  # one listener, no default one
    after_listener = keys[keys.index("listener") :]
    assert {"cafile", "certfile", "keyfile"} <= set(after_listener)
    assert values["allow_anonymous"] == "false" and values["persistence"] == "true"
    assert values["use_username_as_clientid"] == "true"
    assert int(values["max_queued_messages"]) >= 100_000


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_legitimate_station_collector_and_operator_work(env, probes, watchers, v5):
    collector, _ = watchers
    nonce = secrets.token_hex(4).encode()
    # The station's agent connects with its generated snippet, through the agent's own code.
    snippet = env.snippet("agents", A[1])["mqtt"] | {"protocol": "5" if v5 else "3.1.1"}
    cfg = AgentMqtt.model_validate(snippet)
    status = topics.station_topic(PROVINCE, *A, Kind.STATUS)
    agent = make_client(cfg, cfg.client_id or "", status, b'{"online": false}')
    connected = threading.Event()
    agent.on_connect = lambda *a: connected.set()
    agent.connect(cfg.host, cfg.port)
    agent.loop_start()
    try:
        assert connected.wait(10)
        agent.subscribe(topics.command_subscription(PROVINCE, *A), qos=1)
        agent.publish(telemetry(A), b"reading " + nonce, qos=1).wait_for_publish(10)
        wait_until(lambda: collector.received(b"reading " + nonce), 10, what="telemetry")
    finally:
        agent.disconnect()
        agent.loop_stop()
    # The collector's snippet fits its config model; alerts and acks flow between the roles.
    CollectorMqtt.model_validate(env.snippet("collector", "loaxa-collector")["mqtt"])
    ops = probes("loaxa-ops", v5=v5)
    assert ops.connect()
    ops.subscribe(topics.alert_subscription(PROVINCE))
    assert collector.publish(topics.alert_topic(PROVINCE, *A), b"alert " + nonce) == 0
    wait_until(lambda: ops.received(b"alert " + nonce), 10, what="alert reaches the operator")
    ops.publish(topics.ack_topic(PROVINCE, "_any", "123"), b"ack " + nonce)
    wait_until(lambda: collector.received(b"ack " + nonce), 10, what="ack reaches the collector")


REFUSED = {  # case -> (user, password or "!" for the account's own, TLS)
    "anonymous": (None, None, True),
    "unknown user": ("cb-99999", "guess", True),
    "wrong password": (B[1], "not-the-password", True),
    "empty password": (B[1], "", True),
    "no password": (B[1], None, True),
    "plain TCP, valid account": (A[1], "!", False),
    "plain TCP, anonymous": (None, None, False),
}


@pytest.mark.parametrize("case", list(REFUSED))
@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_refused_connections_publish_nothing(env, probes, watchers, case, v5):
    user, password, tls = REFUSED[case]
    if password == "!":
        password = env.password(user)
    nonce = secrets.token_hex(4).encode()
    accepted = 0
    attacker = Probe(env.broker.port, user, password, ca=env.tls["ca.pem"] if tls else None, v5=v5)
    try:
        accepted += attacker.connect()
        if attacker.connected:
            attacker.publish(telemetry(B), b"attack " + nonce)
    finally:
        attacker.close()
    # A hostile client does not wait for CONNACK: CONNECT and PUBLISH in one write.
    code = raw_connect_and_publish(
        env.broker.port,
        env.tls["ca.pem"] if tls else None,
        user,
        password,
        telemetry(B),
        b"attack raw " + nonce,
    )
    accepted += code == 0
    if not tls:
        assert attacker.connack is None and code is None  # closed during the TLS handshake
    else:
        assert attacker.connack is not None and attacker.connack.value in (5, 134, 135)
        assert code in (4, 5)  # 3.1.1: bad user name or password / not authorised
    legit_marker(probes, watchers, nonce)
    assert accepted == 0
    assert [w.received(b"attack") for w in watchers] == [[], []]


def test_raw_pipelined_publish_is_seen_when_allowed(env, watchers):
    """Control for the refused cases: the same raw CONNECT+PUBLISH with a valid account and its
    own topic is accepted and reaches both watchers, so a zero above is not a blind probe."""
    nonce = secrets.token_hex(4).encode()
    code = raw_connect_and_publish(
        env.broker.port,
        env.tls["ca.pem"],
        A[1],
        env.password(A[1]),
        telemetry(A),
        b"raw ok " + nonce,
    )
    assert code == 0
    for w in watchers:
        wait_until(lambda w=w: w.received(b"raw ok " + nonce), 10, what="raw publish delivered")


def forbidden_for_station_a() -> dict[str, str]:
    base = f"loaxa/v1/{PROVINCE}/{A[0]}/{A[1]}"
    return {
        "B telemetry": telemetry(B),
        "B status": topics.station_topic(PROVINCE, *B, Kind.STATUS),
        "B in A's commune": topics.station_topic(PROVINCE, A[0], B[1], Kind.EVENT),
        "other province": topics.station_topic("ha-giang", *A, Kind.TELEMETRY),
        "below own topic": f"{base}/telemetry/extra",
        "own command topic": topics.command_topic(PROVINCE, *A, "reboot"),
        "B command": topics.command_topic(PROVINCE, *B, "reboot"),
        "alert feed": topics.alert_topic(PROVINCE, *B),
        "acknowledgement": topics.ack_topic(PROVINCE, "_any", "123"),
        "$SYS": "$SYS/broker/fake",
        "outside loaxa": "other/topic",
    }


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_station_publishes_only_under_its_own_topics(env, probes, watchers, v5):
    nonce = secrets.token_hex(4).encode()
    a = probes(A[1], v5=v5)
    assert a.connect()
    codes = {
        name: a.publish(topic, b"attack " + nonce, retain=True)
        for name, topic in forbidden_for_station_a().items()
    }
    assert a.publish(telemetry(A), b"own " + nonce) == 0
    legit_marker(probes, watchers, nonce)
    for w in watchers:
        wait_until(lambda w=w: w.received(b"own " + nonce), 10, what="A's own telemetry")
    # MQTT 5: PUBACK "not authorised" (135); MQTT 3.1.1 has no way to say so: PUBACK 0, dropped.
    assert set(codes.values()) == ({135} if v5 else {0})
    accepted = [w.received(b"attack " + nonce) for w in watchers]
    assert accepted == [[], []]
    # Nothing was retained either: a new subscriber to B's topics gets no planted status.
    late = probes(AUDITOR)
    assert late.connect()
    late.subscribe(f"loaxa/v1/{PROVINCE}/{B[0]}/{B[1]}/#")
    late.subscribe("loaxa/v1/ha-giang/#")
    legit_marker(probes, (late,), nonce + b"-late")
    assert late.received(b"attack") == []


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_station_reads_only_its_own_commands(env, probes, watchers, v5):
    collector, _ = watchers
    nonce = secrets.token_hex(4).encode()
    a = probes(A[1], v5=v5)
    assert a.connect()
    for f in (
        "#",
        "$SYS/#",
        topics.subscription(),
        telemetry(B),
        topics.alert_subscription(PROVINCE),
        topics.ack_subscription(PROVINCE),
        topics.command_subscription(PROVINCE, *B),
        topics.command_subscription(PROVINCE, *A),
    ):
        a.subscribe(f)  # Mosquitto grants the filter; the ACL is applied to each message
    b = probes(B[1], v5=v5)
    ops = probes("loaxa-ops", v5=v5)
    assert b.connect() and ops.connect()
    b.subscribe(topics.command_subscription(PROVINCE, *B))
    assert b.publish(telemetry(B), b"secret telemetry " + nonce) == 0
    assert (
        b.publish(topics.station_topic(PROVINCE, *B, Kind.STATUS), b"status " + nonce, retain=True)
        == 0
    )
    assert collector.publish(topics.alert_topic(PROVINCE, *B), b"secret alert " + nonce) == 0
    assert ops.publish(topics.ack_topic(PROVINCE, "_any", "7"), b"secret ack " + nonce) == 0
    assert ops.publish(topics.command_topic(PROVINCE, *B, "sync"), b"cmd B " + nonce) == 0
    assert ops.publish(topics.command_topic(PROVINCE, *A, "sync"), b"cmd A " + nonce) == 0
    wait_until(lambda: a.received(b"cmd A " + nonce), 10, what="A's own command")
    wait_until(lambda: b.received(b"cmd B " + nonce), 10, what="B's own command")
    wait_until(lambda: collector.received(b"secret telemetry " + nonce), 10, what="telemetry")
    # A got its own command and nothing else, not even $SYS.
    assert {t for t, _ in a.messages} == {topics.command_topic(PROVINCE, *A, "sync")}


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
@pytest.mark.parametrize("stolen_id", [B[1], f"loaxa-agent-{B[1]}"])
def test_client_id_of_another_station_does_not_take_over(env, probes, watchers, v5, stolen_id):
    nonce = secrets.token_hex(4).encode()
    b = probes(B[1], v5=v5, client_id=stolen_id)
    assert b.connect()
    a = probes(A[1], v5=v5, client_id=stolen_id)
    assert a.connect()  # accepted, but as client "cb-01267": the broker renamed it
    assert a.publish(telemetry(B), b"attack " + nonce) == (135 if v5 else 0)
    # B was not disconnected and still publishes; A's publish as B went nowhere.
    legit_marker(probes, watchers, nonce, b)
    assert b.connected and b.disconnects == 0
    assert [w.received(b"attack " + nonce) for w in watchers] == [[], []]


def test_client_id_of_the_collector_does_not_steal_its_session(env, probes):
    """The collector's persistent session queues messages while it is away; a station that
    connects with the collector's client id must neither receive them nor end the session."""
    nonce = secrets.token_hex(4).encode()
    auditor = probes(AUDITOR)
    assert auditor.connect()
    auditor.subscribe("#")
    collector = probes("loaxa-collector", client_id="loaxa-collector", clean=False)
    assert collector.connect(session_expiry_s=3600)
    collector.subscribe(topics.subscription(PROVINCE))
    collector.close()
    b = probes(B[1])
    assert b.connect()
    assert b.publish(telemetry(B), b"queued " + nonce) == 0
    wait_until(lambda: auditor.received(b"queued " + nonce), 10, what="message accepted")
    a = probes(A[1], client_id="loaxa-collector", clean=False)
    assert a.connect(session_expiry_s=3600)
    a.subscribe(topics.command_subscription(PROVINCE, *A))
    ops = probes("loaxa-ops")
    assert ops.connect()
    ops.publish(topics.command_topic(PROVINCE, *A, "ping"), b"cmd A " + nonce)
    wait_until(lambda: a.received(b"cmd A " + nonce), 10, what="A's command")
    assert a.received(b"queued") == []  # a resumed session would have delivered it first
    back = probes("loaxa-collector", client_id="loaxa-collector", clean=False)
    assert back.connect(session_expiry_s=3600)
    wait_until(lambda: back.received(b"queued " + nonce), 10, what="queued message delivered")
    back.client.disconnect()  # end the session so later tests start clean
    fresh = probes("loaxa-collector")
    assert fresh.connect()


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_collector_is_read_only_on_station_topics(env, probes, watchers, v5):
    nonce = secrets.token_hex(4).encode()
    collector, auditor = watchers
    codes = [
        collector.publish(t, b"forged " + nonce, retain=True)
        for t in (
            telemetry(B),
            topics.station_topic(PROVINCE, *B, Kind.STATUS),
            topics.command_topic(PROVINCE, *B, "reboot"),
            topics.ack_topic(PROVINCE, "_any", "1"),
        )
    ]
    assert codes == [135] * 4
    legit_marker(probes, watchers, nonce)
    assert auditor.received(b"forged") == [] and collector.received(b"forged") == []


def test_oversized_packet_is_refused(env, probes, watchers):
    nonce = secrets.token_hex(4).encode()
    a = probes(A[1])
    assert a.connect()
    huge = b"huge " + nonce + b"x" * 100_000  # max_packet_size is 64 KiB
    info = a.client.publish(telemetry(A), huge, qos=1)
    wait_until(lambda: info.mid in a.pubacks or a.disconnects, 10, what="oversize answered")
    assert a.disconnects and info.mid not in a.pubacks  # the broker closed the link
    legit_marker(probes, watchers, nonce)
    assert [w.received(b"huge " + nonce) for w in watchers] == [[], []]


def test_operator_cannot_write_station_topics_or_a_six_level_command(env, probes, watchers):
    nonce = secrets.token_hex(4).encode()
    ops = probes("loaxa-ops")
    assert ops.connect()
    six_level = topics.station_topic(PROVINCE, *B, Kind.STATUS).rsplit("/", 1)[0] + "/cmd"
    codes = [ops.publish(t, b"forged " + nonce) for t in (telemetry(B), six_level)]
    assert codes == [135, 135]
    legit_marker(probes, watchers, nonce)
    assert [w.received(b"forged") for w in watchers] == [[], []]


def test_removed_station_is_locked_out_after_reload(tmp_path, probes):
    """Regenerate without a station, install the files, SIGHUP: its password stops working."""
    s = Setup(tmp_path)
    s.broker.start()
    try:
        first = Probe(s.broker.port, C[1], s.password(C[1]), ca=s.tls["ca.pem"])
        assert first.connect()
        first.close()
        inventory = (ROOT / "config" / "inventory.example.toml").read_text()
        start = inventory.index(f'id = "{C[1]}"')
        end = inventory.index("\n[[", start)
        removed = inventory[: inventory.rindex("[[stations]]", 0, start)] + inventory[end + 1 :]
        (tmp_path / "inv.toml").write_text(removed)
        address = BrokerAddress("127.0.0.1", s.broker.port, str(s.tls["ca.pem"]))
        result = generate([load_inventory(tmp_path / "inv.toml")], s.out, address)
        assert result.revoked == [C[1]]
        (tmp_path / "passwd").write_text((s.out / "broker" / "passwd").read_text())
        (tmp_path / "acl").write_text((s.out / "broker" / "acl").read_text())
        s.broker.proc.send_signal(signal.SIGHUP)
        again = Probe(s.broker.port, C[1], s.password(C[1]), ca=s.tls["ca.pem"])
        wait_until(lambda: not _try(again), 10, what="A refused after reload")
        b = Probe(s.broker.port, B[1], s.password(B[1]), ca=s.tls["ca.pem"])
        try:
            assert b.connect()  # the others keep their passwords
        finally:
            b.close()
    finally:
        s.broker.stop()


def _try(probe: Probe) -> bool:
    try:
        return probe.connect()
    finally:
        probe.close()


# --- Certificate mode: stations on the certificate listener (8884), collector on passwords ----


@pytest.fixture(scope="module")
def cert_env(tmp_path_factory):
    s = Setup(tmp_path_factory.mktemp("secure-certs"), certs=True)
    s.broker.start()
    yield s
    s.broker.stop()


def cert_probe(env: Setup, station: str, **kw) -> Probe:
    """A client of the certificate listener presenting ``station``'s certificate (or none)."""
    agents = env.out / "agents"
    cert = (agents / f"{station}.crt", agents / f"{station}.key") if station else None
    user, password = kw.pop("user", None), kw.pop("password", None)
    return Probe(env.broker.cert_port, user, password, ca=env.tls["ca.pem"], cert=cert, **kw)


def test_certificate_station_works_and_cannot_pose_as_another(cert_env, tmp_path):
    env = cert_env
    assert sorted(env.result.issued) == ["cb-01267", "cb-01290", "cb-01309"]
    passwd = (env.out / "broker" / "passwd").read_text()
    assert "cb-01267:" not in passwd and "loaxa-collector:" in passwd
    before = set(threading.enumerate())
    collector = Probe(
        env.broker.port, "loaxa-collector", env.password("loaxa-collector"), ca=env.tls["ca.pem"]
    )
    nonce = secrets.token_hex(4).encode()
    agent = None
    try:
        assert collector.connect()
        collector.subscribe(topics.subscription(PROVINCE))
        # The agent connects with its generated snippet (certificate, no password).
        cfg = AgentMqtt.model_validate(env.snippet("agents", A[1])["mqtt"])
        assert cfg.password is None and cfg.tls.cert_file is not None
        agent = make_client(cfg, cfg.client_id or "", telemetry(A), b"x")
        ok = threading.Event()
        agent.on_connect = lambda c, u, f, rc, p: rc.is_failure or ok.set()
        agent.connect(cfg.host, cfg.port)
        agent.loop_start()
        assert ok.wait(10)
        agent.publish(telemetry(A), b"cert reading " + nonce, qos=1).wait_for_publish(10)
        wait_until(lambda: collector.received(b"cert reading " + nonce), 10, what="reading")
        # A's certificate with B's user name: the broker keeps the certificate's identity.
        posing = cert_probe(env, A[1], user=B[1], password="anything", client_id=B[1])
        try:
            assert posing.connect()
            assert posing.publish(telemetry(B), b"attack " + nonce) == 135
            assert posing.publish(telemetry(A), b"as A " + nonce) == 0
            wait_until(lambda: collector.received(b"as A " + nonce), 10, what="A's own topic")
        finally:
            posing.close()
        assert collector.received(b"attack") == []
    finally:
        if agent is not None:
            agent.disconnect()
            agent.loop_stop()
        collector.close()
    wait_until(lambda: not set(threading.enumerate()) - before, 10, what="threads to end")


def test_certificate_listener_refuses_without_a_valid_certificate(cert_env, tmp_path):
    env = cert_env
    stranger = make_ca(tmp_path / "stranger")  # a CA the broker does not trust
    attempts = {
        "no certificate": cert_probe(env, ""),
        "no certificate, B's user name": cert_probe(env, "", user=B[1], password="x"),
        "password of a certificate station on 8883": Probe(
            env.broker.port, A[1], "guess", ca=env.tls["ca.pem"]
        ),
    }
    attempts["certificate from another CA"] = Probe(
        env.broker.cert_port,
        None,
        None,
        ca=env.tls["ca.pem"],
        cert=(stranger["broker.pem"], stranger["broker.key"]),
    )
    accepted = {}
    for name, probe in attempts.items():
        try:
            accepted[name] = probe.connect()
        except ssl.SSLError:  # the handshake itself may fail inside connect()
            accepted[name] = False
        finally:
            probe.close()
    assert accepted == dict.fromkeys(attempts, False)


def test_real_collector_ingest_stores_only_the_genuine_reading(env, probes):
    """The collector's own ingest (its generated credentials, TLS) behind the production broker:
    A's reading is stored; A's publish on B's topic never reaches it (broker), and A's payload
    claiming to be B on A's own topic is rejected by the collector (station mismatch)."""
    inventory = load_inventory(ROOT / "config" / "inventory.example.toml")
    sink: list = []
    stats = IngestStats(log_every_s=0)
    pipeline = Pipeline(lambda: inventory, Limits(), _ListSink(sink), stats, retry_s=0.05)
    cfg = CollectorMqtt.model_validate(env.snippet("collector", "loaxa-collector")["mqtt"])
    ingest = MqttIngest(cfg, pipeline)
    ingest.start()
    try:
        wait_until(lambda: ingest.connected, 10, what="collector connected")
        now = int(time.time() * 1000)
        reading = lambda station, seq: to_json(  # noqa: E731
            Telemetry(station=station, session=1, seq=seq, ts=now, agent_uptime_s=1)
        )
        a = probes(A[1])
        assert a.connect()
        a.publish(telemetry(B), reading(B[1], 1))  # dropped by the broker (ACL)
        a.publish(telemetry(A), reading(B[1], 2))  # accepted by the broker, refused by us
        a.publish(telemetry(A), reading(A[1], 3))
        # In-order delivery: once seq 3 is stored, seq 1 would have been stored before it had
        # the broker let it through (it is valid for B's topic).
        wait_until(lambda: sink, 10, what="the genuine reading stored")
        assert [(m.payload.station, m.payload.seq) for m in sink] == [(A[1], 3)]
        _, rejected, _ = stats.snapshot()
        assert rejected.get(RejectReason.STATION_MISMATCH) == 1
    finally:
        ingest.stop()


class _ListSink:
    def __init__(self, into: list) -> None:
        self.into = into

    def append(self, messages) -> None:
        self.into.extend(messages)
