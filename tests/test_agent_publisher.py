"""Publisher against a real Mosquitto: status/Will, seq, store-and-forward, backfill, eviction."""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.mqtt_config import MqttConfig, StationConfig
from agent.publisher import Publisher
from agent.queue import OfflineQueue
from agent.state import AgentState
from loaxa import payloads
from loaxa.topics import Kind
from tests.servers import Mosquitto, free_port, wait_until

STATION = StationConfig(id="cb-01267", province="cao-bang", commune="01273")


class Recorder:
    """A plain MQTT subscriber with a persistent session, so it misses nothing across restarts."""

    def __init__(self, port: int, client_id: str = "test-recorder") -> None:
        self.messages: list[tuple[str, dict, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.client.on_connect = lambda c, *a: c.subscribe("loaxa/v1/#", qos=1)
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect("127.0.0.1", port, 10)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, json.loads(msg.payload), bool(msg.retain)))

    def of(self, kind: str) -> list[dict]:
        with self._lock:
            return [m for t, m, _ in self.messages if m.get("kind") == kind]

    def last(self, kind: str) -> dict:
        """The newest message of ``kind``, or {} before any arrived (polling must not raise)."""
        return (self.of(kind) or [{}])[-1]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture(autouse=True)
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    wait_until(
        lambda: not [t for t in threading.enumerate() if t not in before], 10, what="threads to end"
    )


@pytest.fixture
def recorder(mosquitto):
    rec = Recorder(mosquitto.port)
    wait_until(rec.subscribed.is_set, 10, what="recorder subscribed")
    yield rec
    rec.close()


def make_publisher(tmp_path, port: int, max_bytes: int = 10_000_000, **mqtt_kw) -> Publisher:
    cfg = MqttConfig(
        host="127.0.0.1", port=port, keepalive_s=5, retry_min_s=0.1, retry_max_s=0.5, **mqtt_kw
    )
    queue = OfflineQueue(tmp_path / "queue.sqlite", max_bytes)
    return Publisher(STATION, cfg, queue, AgentState(tmp_path / "state"), agent_version="9.9")


def telemetry(pub: Publisher, n: int, ts0: int = 1_700_000_000_000) -> list[int]:
    stamps = [ts0 + i * 60_000 for i in range(n)]
    for i, ts in enumerate(stamps):
        pub.publish(Kind.TELEMETRY, {"agent_uptime_s": i}, ts)
    return stamps


def test_online_status_then_graceful_offline(tmp_path, mosquitto, recorder):
    pub = make_publisher(tmp_path, mosquitto.port)
    pub.set_device_info("fw-2.1", "hw-b", 4242)
    pub.start()
    try:
        online = wait_until(lambda: recorder.of("status"), 10, what="online status")[0]
    finally:
        pub.stop()
    assert online["state"] == "online" and online["session"] == 1
    assert (online["agent_version"], online["firmware"], online["device_id"]) == (
        "9.9",
        "fw-2.1",
        4242,
    )
    offline = wait_until(lambda: recorder.of("status")[1:], 10, what="offline status")[0]
    assert offline == {**offline, "state": "offline", "reason": "graceful", "session": 1}
    # Retained: a newcomer sees the last state.
    late = Recorder(mosquitto.port, "late")
    try:
        wait_until(lambda: late.of("status"), 10, what="retained status")
        assert late.messages[0][2] is True and late.of("status")[0]["state"] == "offline"
    finally:
        late.close()


def test_live_messages_share_one_seq_and_leave_the_queue(tmp_path, mosquitto, recorder):
    pub = make_publisher(tmp_path, mosquitto.port)
    pub.start()
    try:
        wait_until(lambda: pub.connected, 10, what="publisher connected")
        telemetry(pub, 3)
        pub.publish(Kind.EVENT, {"code": "power_lost", "raw_code": 1}, 1_700_000_000_500)
        pub.publish(Kind.BROADCAST, {"action": "start", "start_ts": 1}, 1_700_000_000_600)
        wait_until(lambda: len(pub.queue) == 0 and pub.stats["sent"] == 5, 10, what="acks")
        data = wait_until(
            lambda: (
                len(recorder.of("telemetry") + recorder.of("event") + recorder.of("broadcast")) == 5
                and recorder.of("telemetry") + recorder.of("event") + recorder.of("broadcast")
            ),
            10,
            what="5 data messages",
        )
    finally:
        pub.stop()
    assert sorted(m["seq"] for m in data) == [0, 1, 2, 3, 4]
    assert all(m["backfill"] is False and m["session"] == 1 for m in data)
    assert recorder.of("event")[0]["code"] == "power_lost"


def test_bad_input_is_counted_not_raised(tmp_path, mosquitto, caplog):
    pub = make_publisher(tmp_path, mosquitto.port)
    with caplog.at_level(logging.ERROR):
        pub.publish(Kind.TELEMETRY, {"agent_uptime_s": -1}, 1)
        pub.publish(Kind.TELEMETRY, {"agent_uptime_s": 1, "bogus": 2}, 1)
        pub.publish(Kind.STATUS, {"state": "online"}, 1)
        pub.publish("nonsense", {}, 1)
    assert pub.stats["invalid"] == 4 and len(pub.queue) == 0
    assert "agent_uptime_s: Input should be greater than or equal to 0" in caplog.text
    assert "bogus: Extra inputs are not permitted" in caplog.text


def test_broker_outage_backfills_every_message(tmp_path, mosquitto, recorder, caplog):
    pub = make_publisher(tmp_path, mosquitto.port)
    pub.start()
    try:
        wait_until(lambda: pub.connected, 10, what="publisher connected")
        live = telemetry(pub, 5)
        wait_until(lambda: len(recorder.of("telemetry")) == 5, 10, what="live telemetry")
        mosquitto.stop()
        wait_until(lambda: not pub.connected, 10, what="publisher noticed the outage")
        with caplog.at_level(logging.WARNING, logger="agent.publisher"):
            queued = telemetry(pub, 40, ts0=live[-1] + 60_000)
            wait_until(lambda: "unreachable (connection refused)" in caplog.text, 10, what="log")
        assert len(pub.queue) == 40
        snap = pub.snapshot()
        assert (snap["queued"], snap["connected"], snap["next_seq"]) == (40, False, 45)
        mosquitto.start()
        wait_until(lambda: len(recorder.of("telemetry")) >= 45, 20, what="backlog delivered")
        wait_until(lambda: len(pub.queue) == 0, 10, what="queue emptied")
    finally:
        pub.stop()
    got = {m["seq"]: m for m in recorder.of("telemetry")}
    assert sorted(got) == list(range(45))
    assert [got[s]["ts"] for s in range(5, 45)] == queued
    assert all(got[s]["backfill"] is True for s in range(5, 45))
    assert all(got[s]["backfill"] is False for s in range(5))
    statuses = recorder.of("status")
    assert max(s["session"] for s in statuses if s["state"] == "online") >= 2
    assert "messages queued, retrying in" in caplog.text


def test_eviction_is_reported_when_the_link_returns(tmp_path, mosquitto, recorder):
    mosquitto.stop()
    pub = make_publisher(tmp_path, mosquitto.port, max_bytes=20_000)
    telemetry(pub, 200)  # ~200 B each: the 20 kB bound keeps roughly the newest 80
    evicted = pub.queue.evicted_total
    assert evicted > 0 and evicted + len(pub.queue) == 200
    mosquitto.start()
    pub.start()
    try:
        wait_until(lambda: recorder.of("event"), 20, what="QUEUE_EVICTED event")
        wait_until(lambda: len(pub.queue) == 0, 20, what="queue drained")
        wait_until(lambda: recorder.last("telemetry").get("seq") == 199, 20, what="last telemetry")
    finally:
        pub.stop()
    event = recorder.of("event")[0]
    assert (event["code"], event["value"], event["origin"]) == ("queue_evicted", evicted, "agent")
    seqs = [m["seq"] for m in recorder.of("telemetry")]
    # Storing the event itself may push out one more reading: that one is counted for next time.
    assert seqs == list(range(200 - len(seqs), 200))
    assert len(seqs) + pub.queue.evicted_total == 200
    assert pub.queue.evicted_unreported == pub.queue.evicted_total - evicted


def test_drains_a_10k_backlog_pipelined(tmp_path, mosquitto, recorder):
    mosquitto.stop()
    # Load the backlog without an fsync per message (slow disks in CI), then drain it with
    # the queue as the agent opens it (synchronous=FULL).
    loader = make_publisher(tmp_path, mosquitto.port)
    loader.queue.close()
    loader.queue = OfflineQueue(tmp_path / "queue.sqlite", 10_000_000, synchronous="NORMAL")
    telemetry(loader, 10_000)
    loader.queue.close()
    pub = make_publisher(tmp_path, mosquitto.port)
    mosquitto.start()
    started = time.monotonic()
    pub.start()
    try:
        wait_until(lambda: len(pub.queue) == 0, 60, what="10k backlog drained")
        drained = time.monotonic() - started
        wait_until(lambda: len(recorder.of("telemetry")) >= 10_000, 60, what="10k received")
    finally:
        pub.stop()
    seqs = {m["seq"] for m in recorder.of("telemetry")}
    assert seqs == set(range(10_000))
    print(f"drained 10000 queued messages in {drained:.2f} s ({10_000 / drained:.0f} msg/s)")


def test_mqtt_311_option(tmp_path, mosquitto, recorder):
    pub = make_publisher(tmp_path, mosquitto.port, protocol="3.1.1")
    pub.start()
    try:
        wait_until(lambda: pub.connected, 10, what="publisher connected")
        telemetry(pub, 3)
        wait_until(lambda: len(recorder.of("telemetry")) == 3, 10, what="telemetry over 3.1.1")
    finally:
        pub.stop()
    assert recorder.of("status")[0]["state"] == "online"


def test_publish_never_waits_for_a_hung_broker(tmp_path):
    """A broker that accepts TCP but never answers: readings still go to disk at once."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen()
        pub = make_publisher(tmp_path, hole.getsockname()[1])
        pub.start()
        try:
            conn, _ = hole.accept()  # the link thread is now waiting for a CONNACK
            with conn:
                telemetry(pub, 20)
                assert len(pub.queue) == 20 and not pub.connected
        finally:
            pub.stop()


def test_username_password(tmp_path_factory, tmp_path, caplog):
    workdir = tmp_path_factory.mktemp("mosquitto-auth")
    passwd = workdir / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "cb-01267", "right"], check=True)
    broker = Mosquitto(workdir, extra=f"allow_anonymous false\npassword_file {passwd}").start()
    try:
        bad = make_publisher(tmp_path / "bad", broker.port, username="cb-01267", password="wrong")
        with caplog.at_level(logging.WARNING, logger="agent.publisher"):
            bad.start()
            try:
                wait_until(lambda: "refused by broker" in caplog.text, 10, what="refusal logged")
            finally:
                bad.stop()
        assert "Bad user name or password" in caplog.text or "Not authorized" in caplog.text
        assert bad.stats["connections"] == 0
        good = make_publisher(tmp_path / "good", broker.port, username="cb-01267", password="right")
        good.start()
        try:
            wait_until(lambda: good.connected, 10, what="authenticated connection")
        finally:
            good.stop()
    finally:
        broker.stop()


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_pki(d) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all throwaway."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("client", "keyUsage=digitalSignature"),
    ):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                 "-out", f"{name}.pem", cwd=d)  # fmt: skip


def test_tls_with_client_certificate(tmp_path_factory, tmp_path):
    pki = tmp_path_factory.mktemp("pki")
    _make_pki(pki)
    workdir = tmp_path_factory.mktemp("mosquitto-tls")
    tls_port = free_port()
    extra = (
        f"listener {tls_port} 127.0.0.1\ncafile {pki}/ca.pem\ncertfile {pki}/server.pem\n"
        f"keyfile {pki}/server.key\nrequire_certificate true"
    )
    broker = Mosquitto(workdir, extra=extra).start()
    try:
        tls = {
            "ca_file": pki / "ca.pem",
            "cert_file": pki / "client.pem",
            "key_file": pki / "client.key",
        }
        pub = make_publisher(tmp_path, tls_port, tls=tls)
        pub.start()
        try:
            wait_until(lambda: pub.connected, 15, what="TLS connection with client certificate")
            telemetry(pub, 2)
            wait_until(lambda: len(pub.queue) == 0, 10, what="acks over TLS")
        finally:
            pub.stop()
    finally:
        broker.stop()


def test_payloads_doc_examples_validate():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "PAYLOADS.md").read_text()
    examples = re.findall(r"```json\n(.*?)\n```", doc, re.S)
    kinds = {payloads.ANY_PAYLOAD.validate_json(example).kind for example in examples}
    assert kinds == {"telemetry", "event", "broadcast", "status"}


def test_unreadable_queued_row_is_dropped_not_stalling(tmp_path, mosquitto, recorder):
    pub = make_publisher(tmp_path, mosquitto.port)
    pub.queue.append(lambda seq: (STATION.topic(Kind.TELEMETRY), b'{"broken'), 1, None)
    telemetry(pub, 2)
    pub.start()
    try:
        wait_until(lambda: len(pub.queue) == 0, 10, what="queue drained past the bad row")
        wait_until(lambda: len(recorder.of("telemetry")) == 2, 10, what="good rows delivered")
    finally:
        pub.stop()
    assert pub.stats["corrupt"] == 1
    assert [m["seq"] for m in recorder.of("telemetry")] == [1, 2]


def test_device_info_learned_later_is_republished(tmp_path, mosquitto, recorder):
    pub = make_publisher(tmp_path, mosquitto.port)
    pub.start()
    try:
        first = wait_until(lambda: recorder.of("status"), 10, what="online status")[0]
        pub.set_device_info("1.4.2", "rev3", 12648430)  # HELLO answered after the connect
        second = wait_until(lambda: recorder.of("status")[1:], 10, what="updated status")[0]
    finally:
        pub.stop()
    assert "firmware" not in first
    assert (second["state"], second["firmware"], second["session"]) == ("online", "1.4.2", 1)
