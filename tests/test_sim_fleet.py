"""The fleet simulator against a real Mosquitto: real agents on simulated controllers (ptys),
their links cut by the fault models, and gateway stations on a simulated RS-485 line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
import serial
from paho.mqtt.enums import CallbackAPIVersion

import firmware_protocol as fp
from collector.inventory import parse_inventory
from loaxa.payloads import ANY_PAYLOAD
from loaxa.sim.fault_injector import FaultInjector, Step
from loaxa.sim.faults import Fault, FaultKind, FaultPlan
from loaxa.sim.fleet import Fleet
from loaxa.sim.inventory_gen import cao_bang_inventory, write_toml
from tests.servers import wait_until

INVENTORY = parse_inventory(cao_bang_inventory())
AGENT_IDS = [s.id for s in INVENTORY.stations.values() if s.address is None]
FM24 = next(s.id for s in INVENTORY.stations.values() if s.schedule == "fm-24h" and not s.address)
GATEWAY = "gw-thuc-phan"
BEHIND = sorted(INVENTORY.children_of(GATEWAY), key=lambda s: s.address or 0)


class Subscriber:
    """A plain MQTT client recording every loaxa message (topic, payload dict, retain)."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[str, dict, bool]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-sub")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("loaxa/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, json.loads(msg.payload), msg.retain))

    def of(self, station: str, kind: str) -> list[dict]:
        with self.lock:
            return [p for _, p, _ in self.messages if p["station"] == station
                    and p["kind"] == kind]  # fmt: skip

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def sub(mosquitto):
    s = Subscriber(mosquitto.port)
    yield s
    s.close()


@pytest.fixture
def fleet_of(mosquitto, tmp_path):
    """Start a fleet of the given stations at speed 60 (telemetry every second)."""
    before = set(threading.enumerate())
    fds_before = len(os.listdir("/proc/self/fd"))
    fleets: list[Fleet] = []

    def make(ids: list[str]) -> Fleet:
        fleet = Fleet(INVENTORY, "127.0.0.1", mosquitto.port, tmp_path / "fleet", speed=60,
                      stations=ids)  # fmt: skip
        fleets.append(fleet.start())
        return fleet

    yield make
    for fleet in fleets:
        fleet.stop()
    wait_until(lambda: not (set(threading.enumerate()) - before), 10, what="fleet threads gone")
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 2  # ptys and sockets closed


def telemetry(sub: Subscriber, station: str, pred=lambda p: True) -> list[dict]:
    return [p for p in sub.of(station, "telemetry") if pred(p)]


def is_on_battery(p: dict) -> bool:
    """Telemetry without a controller reading (a slow first HELLO) has no "power": not raise."""
    return bool(p.get("power", {}).get("on_battery"))


def level(p: dict, missing: float) -> float:
    """The audio RMS, or ``missing`` when the telemetry carries no level."""
    return p.get("audio", {}).get("rms_dbfs", missing)


def data_seqs(sub: Subscriber, station: str) -> list[int]:
    """Seqs of the data kinds, from one snapshot (kind by kind could show a false gap)."""
    kinds = ("telemetry", "event", "broadcast")
    with sub.lock:
        return sorted({p["seq"] for _, p, _ in sub.messages
                       if p["station"] == station and p["kind"] in kinds})  # fmt: skip


def test_small_fleet_publishes_valid_telemetry(fleet_of, sub):
    ids = AGENT_IDS[:5]
    fleet = fleet_of(ids)
    assert fleet.telemetry_interval_s == 1.0
    for sid in ids:
        wait_until(lambda sid=sid: len(telemetry(sub, sid)) >= 2, 20, what=f"telemetry of {sid}")
    with sub.lock:
        messages = list(sub.messages)
    for topic, payload, _ in messages:
        ANY_PAYLOAD.validate_python(payload)  # the real agent wrote schema v1
        station = INVENTORY.stations[payload["station"]]
        assert topic.startswith(f"loaxa/v1/cao-bang/{station.commune}/{station.id}/")
    # A loaded machine may tick the first telemetry before the controller's first answer.
    first = wait_until(lambda: telemetry(sub, ids[0], lambda p: p["controller"] == "ok"), 20,
                       what="telemetry with controller readings")[0]  # fmt: skip
    assert first["power"]["on_battery"] is False
    assert [c["kind"] for c in first["clusters"]] == INVENTORY.stations[ids[0]].clusters
    assert all(sub.of(sid, "status")[0]["state"] == "online" for sid in ids)


def test_link_loss_backfills_without_seq_gap(fleet_of, sub):
    sid = AGENT_IDS[0]
    fleet = fleet_of([sid])
    handle = fleet.stations[sid]
    plan = FaultPlan(0, 600, (Fault(0, FaultKind.LINK_LOSS, sid, (sid,), 300),))
    injector = FaultInjector(fleet, plan)
    wait_until(lambda: telemetry(sub, sid), 20, what="first telemetry")
    injector.apply(Step(0, 0, "link_down", (sid,)))
    assert not fleet.links.is_up(sid)
    wait_until(lambda: handle.agent.publisher.snapshot()["queued"] >= 3, 20, what="queued")
    injector.apply(Step(300, 0, "link_up", (sid,)))
    wait_until(lambda: len(telemetry(sub, sid, lambda p: p["backfill"])) >= 3, 30,
               what="backfilled telemetry")  # fmt: skip
    wait_until(lambda: telemetry(sub, sid, lambda p: not p["backfill"] and p["session"] > 1),
               20, what="live telemetry in the new session")  # fmt: skip
    seqs = data_seqs(sub, sid)
    assert seqs == list(range(seqs[0], seqs[-1] + 1))  # nothing lost
    assert injector.applied == 2 and injector.errors == 0


def test_power_cut_shows_on_battery_then_restored(fleet_of, sub):
    sid = AGENT_IDS[1]
    handle = fleet_of([sid]).stations[sid]
    wait_until(lambda: telemetry(sub, sid), 20, what="first telemetry")
    handle.power_lost()
    on_battery = wait_until(lambda: telemetry(sub, sid, is_on_battery), 20,
                            what="on_battery telemetry")  # fmt: skip
    assert "mains_v" not in on_battery[0]["power"] and on_battery[0]["power"]["battery_v"] < 13
    wait_until(lambda: [e for e in sub.of(sid, "event") if e["code"] == "power_lost"], 20,
               what="power_lost event")  # fmt: skip
    handle.power_restored()
    restored = wait_until(
        lambda: [e for e in sub.of(sid, "event") if e["code"] == "power_restored"], 20,
        what="power_restored event",
    )  # fmt: skip

    def on_mains(p: dict) -> bool:  # a reading polled before the restore may still come first
        power = p.get("power", {})
        return (
            p["seq"] > restored[0]["seq"]
            and power.get("on_battery") is False
            and (power.get("mains_v", 0) > 200)
        )

    wait_until(lambda: telemetry(sub, sid, on_mains), 20, what="mains in telemetry after restore")


def test_battery_flat_goes_dark_and_boots_again(fleet_of, sub):
    sid = AGENT_IDS[2]
    handle = fleet_of([sid]).stations[sid]
    wait_until(lambda: telemetry(sub, sid), 20, what="first telemetry")
    handle.power_lost()
    handle.battery_low()
    wait_until(lambda: [e for e in sub.of(sid, "event") if e["code"] == "battery_low"], 20,
               what="battery_low event")  # fmt: skip
    handle.power_flat()
    assert handle.agent is None and handle.flat
    offline = wait_until(lambda: [s for s in sub.of(sid, "status") if s["state"] == "offline"],
                         20, what="Last Will offline")  # fmt: skip
    assert offline[0].get("reason") != "graceful"  # the link dropped: the broker sent the Will
    handle.power_restored()
    wait_until(lambda: [e for e in sub.of(sid, "event") if e["code"] == "reboot"], 20,
               what="reboot event after the station boots again")  # fmt: skip
    online = [s for s in sub.of(sid, "status") if s["state"] == "online"]
    assert online[-1]["session"] > offline[0]["session"]
    seqs = data_seqs(sub, sid)
    assert seqs == list(range(seqs[0], seqs[-1] + 1))


def test_amp_fault_silence_and_clock_reset(fleet_of, sub):
    sid = FM24  # on air around the clock, so a stuck source shows at any hour
    handle = fleet_of([sid]).stations[sid]
    wait_until(lambda: telemetry(sub, sid, lambda p: level(p, -200) > -50), 20,
               what="on-air audio")  # fmt: skip
    handle.set_amp_fault(True)
    wait_until(lambda: telemetry(sub, sid, lambda p: p.get("amp") == "fault"), 20, what="amp fault")
    wait_until(lambda: [e for e in sub.of(sid, "event") if e["code"] == "amp_fault"], 20,
               what="amp_fault event")  # fmt: skip
    handle.set_stuck_source(True)
    wait_until(lambda: telemetry(sub, sid, lambda p: level(p, 0) < -60), 20,
               what="silent broadcast")  # fmt: skip
    handle.set_clock_offset(-3 * 365 * 86400)
    years_ago = (time.time() - 2 * 365 * 86400) * 1000
    wait_until(lambda: telemetry(sub, sid, lambda p: p["ts"] < years_ago), 20,
               what="telemetry stamped by a reset clock")  # fmt: skip


def _poll(port: serial.Serial, decoder: fp.StreamDecoder, address: int, seq: int):
    port.write(fp.encode_frame(fp.Frame(address, seq, fp.Poll(int(fp.MessageType.HELLO)))))
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        for frame in decoder.feed(port.read(256)):
            if frame.address == address and frame.is_response:
                return frame
    return None


def test_gateway_stations_share_one_line(fleet_of):
    fleet = fleet_of([s.id for s in BEHIND] + AGENT_IDS[:1])
    assert len(fleet.agent_stations()) == 1 and set(fleet.buses) == {GATEWAY}
    decoder = fp.StreamDecoder()
    with serial.serial_for_url(fleet.gateway_urls[GATEWAY], timeout=0.05) as port:
        for i, station in enumerate(BEHIND):
            answer = wait_until(lambda st=station, i=i: _poll(port, decoder, st.address, i + 1),
                                10, what=f"HELLO from address {station.address}")  # fmt: skip
            assert answer.is_response  # HELLO, or a queued PLAYBACK first (FP-LINK-4)
        fleet.buses[GATEWAY].fail()  # a dead line: nobody answers
        assert _poll(port, decoder, BEHIND[0].address, 50) is None
        fleet.buses[GATEWAY].repair()
        assert wait_until(lambda: _poll(port, decoder, BEHIND[0].address, 51), 10,
                          what="answer after repair")  # fmt: skip


def test_large_fleet_runs_in_worker_processes(mosquitto, tmp_path, sub):
    ids = AGENT_IDS[:4]
    fleet = Fleet(INVENTORY, "127.0.0.1", mosquitto.port, tmp_path / "fleet", speed=60,
                  stations=ids, per_process=2)  # fmt: skip
    try:
        fleet.start()
        assert len(fleet.workers) == 2 and all(h.mcu is None for h in fleet.stations.values())
        for sid in ids:
            wait_until(lambda sid=sid: telemetry(sub, sid), 30, what=f"telemetry of {sid}")
        fleet.stations[ids[0]].power_lost()  # forwarded to the worker
        wait_until(lambda: telemetry(sub, ids[0], is_on_battery), 20,
                   what="on_battery from a worker's station")  # fmt: skip
        fleet.stations[ids[3]].power_lost()
        fleet.stations[ids[3]].power_flat()  # link cut here, agent stopped there
        wait_until(lambda: [s for s in sub.of(ids[3], "status") if s["state"] == "offline"], 20,
                   what="Will of the station gone dark")  # fmt: skip
        assert fleet.stations[ids[3]].snapshot()["flat"] is True
    finally:
        fleet.stop()
    assert all(w.process.poll() is not None for w in fleet.workers)


def test_injector_applies_a_plan_on_the_clock(fleet_of, sub):
    sid = AGENT_IDS[0]
    fleet = fleet_of([sid])
    cut = Fault(60, FaultKind.POWER_CUT, "former district Test", (sid,), 120)  # 1 s + 2 s at 60x
    events: list[str] = []
    injector = FaultInjector(fleet, FaultPlan(0, 600, (cut,)),
                             on_event=lambda text, fault, step: events.append(text))  # fmt: skip
    injector.start()
    try:
        wait_until(lambda: len(events) == 2, 20, what="start and end of the power cut")
    finally:
        injector.stop()
    assert "power cut in former district Test (1 station, for 2 min)" in events[0]
    assert " end: power cut" in events[1] and injector.errors == 0

    def power_codes() -> list[str]:
        return [e["code"] for e in sub.of(sid, "event") if e["code"].startswith("power")]

    wait_until(lambda: "power_restored" in power_codes(), 20, what="power_restored event")
    assert power_codes() == ["power_lost", "power_restored"]


def test_cli_runs_until_interrupted(mosquitto, sub, tmp_path):
    inventory = tmp_path / "inv.toml"
    write_toml(cao_bang_inventory(), inventory)
    argv = [sys.executable, "-m", "loaxa.cli", "simulate", "--inventory", str(inventory),
            "--broker", f"127.0.0.1:{mosquitto.port}", "--stations", "3", "--speed", "60",
            "--faults", "none", "--workdir", str(tmp_path / "work")]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for sid in list(INVENTORY.stations)[:3]:
            if INVENTORY.stations[sid].address is None:
                wait_until(lambda sid=sid: telemetry(sub, sid), 30, what=f"telemetry of {sid}")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "simulating 3 stations at speed 60" in out and "simulation stopped" in out


def test_overlapping_power_cuts_and_schedule_windows(tmp_path):
    from datetime import datetime

    from collector.inventory import Schedule
    from loaxa.sim.mcu import SimulatedMcu
    from loaxa.sim.station import SimStation, on_air

    station = INVENTORY.stations[AGENT_IDS[0]]
    handle = SimStation(station, INVENTORY.schedule_for(station.id),
                        SimulatedMcu(path=tmp_path / "tty"), None)  # fmt: skip
    handle.power_lost()  # the grid's cut
    handle.power_lost()  # a storm's, overlapping
    assert handle.power_restored() is False and handle.mcu.readings.on_battery
    assert handle.power_restored() is True and not handle.mcu.readings.on_battery
    assert handle.mcu.readings.mains_v
    daily = Schedule(id="d", windows=["05:30-06:30", "22:00-01:00"])
    at = lambda h, m: datetime(2026, 11, 27, h, m)  # noqa: E731
    assert [on_air(daily, at(*t)) for t in [(5, 29), (5, 30), (6, 29), (6, 30)]] == [
        False, True, True, False]  # fmt: skip
    assert on_air(daily, at(23, 0)) and on_air(daily, at(0, 59)) and not on_air(daily, at(1, 0))
    assert on_air(Schedule(id="a", always=True), at(14, 0))


def test_collector_serial_gateway_reads_the_simulated_line(fleet_of):
    from collector.ingest.config import SerialGatewayConfig
    from collector.ingest.pipeline import Pipeline
    from collector.ingest.serial_gateway import SerialGateway
    from collector.ingest.stats import IngestStats
    from collector.ingest.validate import Limits
    from loaxa.payloads import Event, Telemetry
    from tests.test_ingest_mqtt import ListSink

    fleet = fleet_of([s.id for s in BEHIND])
    sink, states = ListSink(), []
    config = SerialGatewayConfig(id=GATEWAY, url=fleet.gateway_urls[GATEWAY], poll_interval_s=0.3,
                                 response_timeout_s=0.2, dead_after_s=1.0)  # fmt: skip
    line = {s.address: (s.id, s.commune) for s in BEHIND}
    pipeline = Pipeline(lambda: INVENTORY, Limits(), sink, IngestStats(log_every_s=0), retry_s=0.05)
    gateway = SerialGateway(config, "cao-bang", lambda: dict(line), pipeline,
                            on_state=lambda gid, up, ts: states.append(up))  # fmt: skip

    def stored(station: str, model: type) -> list:
        with sink.lock:
            return [m.payload for m in sink.stored
                    if m.payload.station == station and isinstance(m.payload, model)]  # fmt: skip

    gateway.start()
    try:
        for s in BEHIND:
            wait_until(lambda s=s: stored(s.id, Telemetry), 20, what=f"telemetry of {s.id}")
        fleet.stations[BEHIND[0].id].power_lost()  # queued on the MCU, handed out on a POLL
        wait_until(lambda: [e for e in stored(BEHIND[0].id, Event) if e.code == "power_lost"],
                   20, what="power_lost through the gateway")  # fmt: skip
        fleet.buses[GATEWAY].fail()
        wait_until(lambda: states and states[-1] is False, 20, what="gateway reported down")
        fleet.buses[GATEWAY].repair()
        wait_until(lambda: states[-1] is True, 20, what="gateway up again")
    finally:
        gateway.stop()
