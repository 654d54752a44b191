"""The agent as a process (``python -m agent --config FILE``) against real Mosquitto and a
SimulatedMcu on a pty: Last Will after kill -9, store-and-forward across kill -9 while the
broker is down, graceful stop, and MCU readings/events/broadcasts end to end."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from agent.config import parse_config
from agent.service import run
from firmware_protocol.enums import EventCode as McuEventCode
from loaxa.sim.mcu import SimulatedMcu
from tests.servers import wait_until
from tests.test_agent_publisher import Recorder

ROOT = Path(__file__).resolve().parents[1]
DATA_KINDS = ("telemetry", "event", "broadcast")  # the kinds that share the station's seq


def write_config(tmp_path: Path, port: int, device: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
[station]
id = "cb-01267"
province = "cao-bang"
commune = "01273"
[mqtt]
host = "127.0.0.1"
port = {port}
keepalive_s = 5
retry_min_s = 0.2
retry_max_s = 1.0
[controller]
url = "{device}"
poll_interval_s = 0.3
response_timeout_ms = 500
retries = 1
reopen_interval_s = 0.3
[telemetry]
interval_s = 1
[state]
dir = "{tmp_path / "state"}"
"""
    )
    return path


class AgentProcess:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.log = config.parent / "agent.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> AgentProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "--config", str(self.config)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        rc = self.proc.wait(20)
        self.proc = None
        return rc

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGKILL)

    def queued(self) -> dict[int, int]:
        """seq -> ts of the messages in the agent's queue (read-only look at the WAL database)."""
        path = self.config.parent / "state" / "queue.sqlite"
        if not path.exists():
            return {}
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return dict(db.execute("SELECT seq, ts FROM messages"))

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(autouse=True)
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    wait_until(
        lambda: not [t for t in threading.enumerate() if t not in before], 10, what="threads to end"
    )


@pytest.fixture
def recorder(mosquitto):
    rec = Recorder(mosquitto.port, "e2e-recorder")
    wait_until(rec.subscribed.is_set, 10, what="recorder subscribed")
    yield rec
    rec.close()


@pytest.fixture
def mcu():
    sim = SimulatedMcu().start()
    yield sim
    sim.stop()


@pytest.fixture
def agent_factory(tmp_path, mosquitto):
    started: list[AgentProcess] = []

    def make(device: str) -> AgentProcess:
        proc = AgentProcess(write_config(tmp_path, mosquitto.port, device))
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.cleanup()


def _online(rec: Recorder) -> list[dict]:
    return [m for m in rec.of("status") if m["state"] == "online"]


def test_last_will_offline_after_kill_9(recorder, mcu, agent_factory, mosquitto):
    agent = agent_factory(mcu.path).start()
    online = wait_until(lambda: _online(recorder), 20, what="online status")[-1]
    assert agent.signal(signal.SIGKILL) == -signal.SIGKILL
    will = wait_until(
        lambda: [m for m in recorder.of("status") if m["state"] == "offline"], 15, what="Will"
    )[-1]
    assert will["session"] == online["session"] and "reason" not in will
    late = Recorder(mosquitto.port, "late-subscriber")  # retained: a newcomer sees it too
    try:
        status = wait_until(lambda: late.of("status"), 10, what="retained status")[-1]
        assert status["state"] == "offline" and status["session"] == online["session"]
    finally:
        late.close()


def test_sigterm_publishes_graceful_offline(recorder, mcu, agent_factory):
    agent = agent_factory(mcu.path).start()
    wait_until(lambda: recorder.of("telemetry"), 20, what="first telemetry")
    assert agent.signal(signal.SIGTERM) == 0
    offline = wait_until(
        lambda: [m for m in recorder.of("status") if m["state"] == "offline"], 10, what="offline"
    )[-1]
    assert offline["reason"] == "graceful"
    assert "agent stopped" in agent.text()


def test_kill_9_while_offline_loses_nothing(recorder, mcu, agent_factory, mosquitto):
    agent = agent_factory(mcu.path).start()
    wait_until(lambda: len(recorder.of("telemetry")) >= 2, 20, what="live telemetry")
    mosquitto.stop()
    wait_until(lambda: len(agent.queued()) >= 4, 30, what="telemetry queued while offline")
    agent.signal(signal.SIGKILL)
    queued = agent.queued()  # what the dead agent had stored: all of it must arrive
    last = max(queued)
    assert "unreachable (connection refused)" in agent.text()

    mosquitto.start()
    agent.start()
    wait_until(
        lambda: {m["seq"] for m in recorder.of("telemetry")} >= set(range(last + 1)),
        30, what=f"every seq up to {last}",
    )  # fmt: skip
    got = {m["seq"]: m for m in recorder.of("telemetry")}
    assert set(range(last + 1)) <= set(got)  # none missing
    for seq, ts in queued.items():
        assert got[seq]["ts"] == ts and got[seq]["backfill"] is True
    # Live (not retained-replay) online statuses, QoS 1 duplicates folded: sessions increase.
    sessions = list(
        dict.fromkeys(
            m["session"]
            for _, m, retained in list(recorder.messages)
            if m.get("state") == "online" and not retained
        )
    )
    assert sessions == sorted(sessions) and len(sessions) >= 2
    # The Will was re-registered with the new session: a second death is reported with it.
    # (A stale Will of an older session may also arrive, e.g. when the restarted broker drops
    # the old persisted session; its lower session is what lets the collector ignore it.)
    agent.signal(signal.SIGKILL)
    wait_until(
        lambda: [m for m in recorder.of("status") if m["state"] == "offline"
                 and m["session"] == sessions[-1]],
        15, what=f"Will of session {sessions[-1]}",
    )  # fmt: skip
    stale = [m for m in recorder.of("status") if m["state"] == "offline"]
    assert all(m["session"] <= sessions[-1] for m in stale)


def test_mcu_readings_events_and_vanish(recorder, mcu, agent_factory):
    mcu.noise(True)
    agent = agent_factory(mcu.path).start()
    ok = wait_until(
        lambda: [m for m in recorder.of("telemetry") if m["controller"] == "ok" and "power" in m],
        30, what="telemetry with MCU readings",
    )[-1]  # fmt: skip
    assert ok["power"]["mains_v"] == 220.5 and ok["amp"] == "on"
    assert [c["id"] for c in ok["clusters"]] == [0, 1]
    assert ok["audio"]["source"] == "mcu" and ok["audio"]["rms_dbfs"] == pytest.approx(-18, abs=0.5)

    mcu.emit_event(McuEventCode.POWER_LOST)
    mcu.start_program()
    wait_until(
        lambda: any(e["code"] == "power_lost" for e in recorder.of("event")), 20, what="event"
    )
    start = wait_until(lambda: recorder.of("broadcast"), 20, what="broadcast start")[0]
    assert start["action"] == "start" and start["detected_by"] == "mcu"

    mcu.vanish()
    wait_until(
        lambda: any(e["code"] == "controller_lost" for e in recorder.of("event")), 20, what="lost"
    )
    wait_until(
        lambda: recorder.last("telemetry").get("controller") == "unreachable", 20, what="down"
    )
    mcu.reappear()
    wait_until(
        lambda: any(e["code"] == "controller_found" for e in recorder.of("event")), 20, what="found"
    )
    wait_until(lambda: recorder.last("telemetry").get("controller") == "ok", 20, what="ok again")
    # One snapshot: reading kind by kind, a newer event could land between two reads while an
    # older telemetry missed the first one, which looks like a gap.
    data = [m for _, m, _ in list(recorder.messages) if m.get("kind") in DATA_KINDS]
    seqs = sorted(m["seq"] for m in data)
    assert seqs == list(range(len(seqs)))  # one sequence across kinds, no gap
    agent.signal(signal.SIGTERM)


def test_service_in_process_with_pcm_audio(tmp_path, mosquitto, recorder, mcu):
    """audio.source = "pcm": the level in telemetry is measured from the samples."""
    t = np.arange(16000 * 3) / 16000
    (tmp_path / "feed.raw").write_bytes(
        (0.25 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype("<i2").tobytes()
    )
    path = write_config(tmp_path, mosquitto.port, mcu.path)
    text = path.read_text() + f'[audio]\nsource = "pcm"\npcm_path = "{tmp_path / "feed.raw"}"\n'
    cfg = parse_config(tomllib.loads(text))
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(cfg, stop))
    thread.start()
    try:
        # (a loaded machine may miss one controller answer: wait for a reading with both)
        pcm = wait_until(
            lambda: [m for m in recorder.of("telemetry")
                     if m["audio"]["source"] == "pcm" and m["controller"] == "ok"],
            20, what="telemetry with PCM levels and the controller reachable",
        )[-1]  # fmt: skip
    finally:
        stop.set()
        thread.join(30)
    assert pcm["audio"]["rms_dbfs"] == pytest.approx(-15.05, abs=0.3)  # 0.25 FS sine
    assert pcm["audio"]["peak_dbfs"] == pytest.approx(-12.04, abs=0.3)
    assert pcm["controller"] == "ok" and not thread.is_alive()
    assert [m["reason"] for m in recorder.of("status") if m["state"] == "offline"] == ["graceful"]


@pytest.mark.slow
def test_soak_kill_9_and_broker_restarts_lose_nothing(recorder, mcu, agent_factory, mosquitto):
    """Eight rounds of kill -9 at arbitrary moments, the broker down in every other round."""
    import random

    rng = random.Random(1267)
    agent = agent_factory(mcu.path)
    for round_no in range(8):
        agent.start()
        if round_no % 2:
            mosquitto.stop()
        target = len(agent.queued()) + rng.randint(1, 4) if round_no % 2 else None
        if target is not None:
            wait_until(lambda t=target: len(agent.queued()) >= t, 30, what="readings queued")
        else:
            seen = len(recorder.of("telemetry"))
            wait_until(lambda s=seen: len(recorder.of("telemetry")) > s, 30, what="live telemetry")
        agent.signal(signal.SIGKILL)
        if not mosquitto.running:
            mosquitto.start()
    queued_at_end = agent.queued()
    agent.start()
    last = max([*queued_at_end, *(m["seq"] for m in recorder.of("telemetry"))])
    wait_until(
        lambda: {m["seq"] for kind in ("telemetry", "event") for m in recorder.of(kind)}
        >= set(range(last + 1)),
        60, what=f"every seq up to {last}",
    )  # fmt: skip
    agent.signal(signal.SIGTERM)
    with sqlite3.connect(agent.config.parent / "state" / "queue.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_frozen_agent_gets_its_will_by_keepalive_then_recovers(recorder, mcu, agent_factory):
    """SIGSTOP keeps the socket open but silent, like a dead network: only keepalive can tell."""
    agent = agent_factory(mcu.path).start()
    online = wait_until(lambda: _online(recorder), 20, what="online status")[-1]
    frozen_at = time.monotonic()
    agent.proc.send_signal(signal.SIGSTOP)
    try:
        will = wait_until(
            lambda: [m for m in recorder.of("status") if m["state"] == "offline"], 30, what="Will"
        )[-1]
        print(f"Will after {time.monotonic() - frozen_at:.1f} s (keepalive 5 s)")
    finally:
        agent.proc.send_signal(signal.SIGCONT)
    assert will["session"] == online["session"] and "reason" not in will
    # Thawed, it notices the dead connection and comes back under a newer session, so a
    # collector can tell the Will above is stale.
    back = wait_until(
        lambda: [m for m in _online(recorder) if m["session"] > will["session"]], 30, what="back"
    )[-1]
    assert back["session"] > will["session"]
    # A loaded machine may thaw it before its first reading was ever sent: wait for any reading
    # of the new session rather than indexing the (possibly still empty) list.
    wait_until(
        lambda: any(m["session"] == back["session"] for m in recorder.of("telemetry")),
        30, what="data under the new session",
    )  # fmt: skip
    agent.signal(signal.SIGTERM)
