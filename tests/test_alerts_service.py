"""AlertService end to end on the example inventory: SMS to the simulated modem, the MQTT feed,
acknowledgement by `loaxa ack` (MQTT) and by SMS reply, escalation on a fake clock."""

from __future__ import annotations

import json
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from collector.alerts.ack import ack_message, publish_ack
from collector.alerts.config import AlertsConfig, MqttAlertConfig, SmsConfig
from collector.alerts.notification import NotificationKind as NK
from collector.alerts.router import AlertRouter
from collector.alerts.service import AlertService
from collector.health.events import Cause, HealthEvent, HealthEventKind, Incident, State
from collector.inventory import load_inventory
from loaxa import topics
from loaxa.sim.gsm_modem import SimulatedGsmModem
from tests.servers import wait_until

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "inventory.example.toml"
T0 = 1_780_000_000_000


class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> int:
        return self.ms


def test_ack_message_topics():
    assert ack_message("cao-bang", "123", "Minh") == (
        "loaxa/v1/cao-bang/_ops/ack/_any/123",
        b'{"by": "Minh"}',
    )
    topic, payload = ack_message("cao-bang", "cb-01267:1780000000000", "Minh")
    assert topics.parse_ack_topic(topic) == ("cao-bang", "_any", "incident")
    assert json.loads(payload)["incident"] == "cb-01267:1780000000000"
    with pytest.raises(ValueError):
        ack_message("cao-bang", "123", " ")


@pytest.fixture
def service_env(mosquitto):
    inventory = load_inventory(EXAMPLE)
    sim = SimulatedGsmModem().start()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="collector")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    wait_until(client.is_connected, 10, what="collector connected")
    feed: list[mqtt.MQTTMessage] = []
    client.message_callback_add(topics.alert_subscription(), lambda c, u, m: feed.append(m))
    client.subscribe(topics.alert_subscription(), qos=1)
    config = AlertsConfig(
        sms=SmsConfig(enabled=True, port=sim.port, timeout_s=3, poll_interval_s=0.05),
        mqtt=MqttAlertConfig(enabled=True),
    )
    clock = Clock()
    service = AlertService.from_config(config, inventory, client)
    service.clock = clock
    service.start()
    yield service, sim, feed, clock, inventory, mosquitto
    service.stop()
    sim.stop()
    client.loop_stop()
    client.disconnect()


def test_incident_sms_feed_ack_by_cli_and_escalation(service_env):
    service, sim, feed, clock, inventory, broker = service_env
    station = inventory.stations["cb-01267"]
    tech = inventory.technicians_for("cb-01267")[0]
    inc = Incident(f"cb-01267:{T0}", "cb-01267", station.commune, State.DOWN, Cause.POWER, T0)
    sent = service.handle(
        HealthEvent(HealthEventKind.INCIDENT_OPENED, T0, "cb-01267", station.commune, inc)
    )
    code = sent[0].codes[0]
    wait_until(lambda: sim.sent, 10, what="SMS sent")
    assert sim.sent[0].number == tech.phone and sim.sent[0].text == sent[0].text
    assert "MẤT TÍN HIỆU" in sim.sent[0].text and f"OK {code}" in sim.sent[0].text
    wait_until(lambda: feed, 10, what="alert on the MQTT feed")
    assert feed[0].topic == f"loaxa/v1/cao-bang/_ops/alert/{station.commune}/cb-01267"

    clock.ms = T0 + 31 * 60_000  # nobody answered: the escalation contacts are paged
    esc = [n for n in service.tick() if n.kind == NK.ESCALATION]
    assert {n.recipient.id for n in esc} == {
        c.id for c in inventory.escalation_for("cb-01267") if c.role == esc[0].recipient.role.value
    }

    publish_ack("127.0.0.1", broker.port, "cao-bang", code, tech.name)  # `loaxa ack`
    wait_until(lambda: service.router.alerts[inc.id].acked_by == tech.name, 10, what="ack")
    # Counted just after the ack is applied, on paho's thread: wait, do not race it.
    wait_until(lambda: service.stats()["mqtt_acks"]["accepted"] == 1, 10, what="ack counted")
    assert service.stats()["mqtt_acks"] == {"accepted": 1, "rejected": 0}
    clock.ms = T0 + 120 * 60_000
    assert service.tick() == []  # acknowledged: no more reminders or escalation

    def drained_and_sent() -> bool:  # the worker dequeues first, counts after the modem's answer
        sms = service.stats()["channels"].get("sms", {})
        return service.dispatcher.stats()["queued"] == 0 and sms.get("sent", 0) >= 2

    wait_until(drained_and_sent, 10, what="queue drained and both SMS counted as sent")


def test_sms_reply_acknowledges_through_the_service(service_env):
    service, sim, _, _clock, inventory, _ = service_env
    station = inventory.stations["cb-01267"]
    tech = inventory.technicians_for("cb-01267")[0]
    inc = Incident(
        f"cb-01267:{T0}", "cb-01267", station.commune, State.SILENT, Cause.AUDIO_CHAIN, T0
    )
    code = service.handle(
        HealthEvent(HealthEventKind.INCIDENT_OPENED, T0, "cb-01267", station.commune, inc)
    )[0].codes[0]
    wait_until(lambda: sim.sent, 10, what="SMS sent")
    sim.inject_sms(tech.phone, f"OK {code}")
    wait_until(
        lambda: service.router.alerts[inc.id].acked_by == tech.name, 10, what="SMS reply applied"
    )
    assert service.stats()["sms_inbox"]["received"] == 1


class _SubmitRecorder:
    """Stands where the Dispatcher is: notes the persisted router state at each submit."""

    def __init__(self, written: list[dict]) -> None:
        self.written, self.on_disk_at_submit = written, []

    def submit(self, notifications) -> None:
        if notifications:
            self.on_disk_at_submit.append(json.dumps(self.written[-1]) if self.written else "")


def test_router_state_is_written_before_any_alert_leaves_and_restores_without_reuse():
    """A collector killed right after sending restores the state written ahead of the send: the
    same incident is not alerted again and its code is not handed to another alert."""
    inventory = load_inventory(EXAMPLE)
    written: list[dict] = []
    recorder = _SubmitRecorder(written)
    service = AlertService(AlertRouter(inventory, AlertsConfig()), recorder, clock=Clock())
    service.persist = written.append
    station = inventory.stations["cb-01267"]
    inc = Incident(f"cb-01267:{T0}", "cb-01267", station.commune, State.DOWN, Cause.POWER, T0)
    opened = HealthEvent(HealthEventKind.INCIDENT_OPENED, T0, "cb-01267", station.commune, inc)
    code = service.handle(opened)[0].codes[0]
    assert len(recorder.on_disk_at_submit) == 1 and code in recorder.on_disk_at_submit[0]

    after_crash = AlertService(AlertRouter(inventory, AlertsConfig()), _SubmitRecorder([]))
    after_crash.restore(json.loads(recorder.on_disk_at_submit[0]))
    assert after_crash.handle(opened) == []  # already alerted before the crash
    other = next(s for s in inventory.stations.values() if s.id != "cb-01267")
    inc2 = Incident(f"{other.id}:{T0}", other.id, other.commune, State.DOWN, Cause.POWER, T0)
    sent = after_crash.handle(
        HealthEvent(HealthEventKind.INCIDENT_OPENED, T0, other.id, other.commune, inc2)
    )
    assert sent and code not in sent[0].codes


def test_a_failed_state_write_is_counted_and_the_alert_still_leaves():
    inventory = load_inventory(EXAMPLE)
    recorder = _SubmitRecorder([])
    service = AlertService(AlertRouter(inventory, AlertsConfig()), recorder, clock=Clock())

    def disk_full(state: dict) -> None:
        raise OSError(28, "No space left on device")

    service.persist = disk_full
    station = inventory.stations["cb-01267"]
    inc = Incident(f"cb-01267:{T0}", "cb-01267", station.commune, State.DOWN, Cause.POWER, T0)
    sent = service.handle(
        HealthEvent(HealthEventKind.INCIDENT_OPENED, T0, "cb-01267", station.commune, inc)
    )
    assert sent and len(recorder.on_disk_at_submit) == 1
    assert service.router.stats["persist_errors"] == 1
