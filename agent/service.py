"""The agent process: controller link + audio + broadcast log -> Publisher, on a schedule.

Threads: ControllerLink (serial), PcmSource(s) (audio), the Publisher's MQTT link thread, and
an apscheduler BackgroundScheduler for telemetry (every ``telemetry.interval_s``) and the
audio-presence broadcast detector. Controller callbacks and scheduler jobs only build payload
fields and call ``Publisher.publish``, which stores to the offline queue and returns: a dead
MQTT link never blocks sampling. SIGTERM/SIGINT stop everything and publish "offline/graceful".
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from apscheduler.schedulers.background import BackgroundScheduler

from agent import convert
from agent.acoustic import AcousticMonitor
from agent.audio import AudioMeter
from agent.broadcast_log import BroadcastLog
from agent.config import AgentConfig
from agent.controller import ControllerLink
from agent.pcm_source import PcmSource
from agent.publisher import Publisher
from agent.queue import OfflineQueue
from agent.state import AgentState
from firmware_protocol import Event, Hello, Playback, Telemetry
from loaxa.payloads import EventCode
from loaxa.topics import Kind

log = logging.getLogger(__name__)
logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one INFO line per job run is noise
LEVELS_INTERVAL_S = 2.0  # how often audio presence is fed to the broadcast log


def now_ms() -> int:
    return int(time.time() * 1000)


class _Tee:
    """Feeds one PCM stream to the level meter and to the acoustic check."""

    def __init__(self, *sinks: Any) -> None:
        self.sinks = sinks

    def push(self, samples: np.ndarray) -> None:
        for sink in self.sinks:
            sink.push(samples)


class AgentService:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self._started = time.monotonic()
        self._lock = threading.Lock()  # BroadcastLog is fed from two threads
        self._controller_lost = False
        self.state = AgentState(config.state.dir)
        self.queue = OfflineQueue.open_or_quarantine(config.queue_path, config.queue.max_bytes)
        self.publisher = Publisher(config.station, config.mqtt, self.queue, self.state)
        self.meter = AudioMeter(config.audio)
        self.acoustic: AcousticMonitor | None = None
        self.sources: list[PcmSource] = []
        self._build_audio()
        self.broadcasts = BroadcastLog(
            lambda fields, ts: self.publisher.publish(Kind.BROADCAST, fields, ts),
            presence_dbfs=config.audio.silence_threshold_dbfs,
            state_path=config.state.dir / "broadcast.json",
        )
        self.controller = ControllerLink(
            config.controller,
            on_hello=self._on_hello,
            on_telemetry=self._on_telemetry,
            on_event=self._on_event,
            on_playback=self._on_playback,
            on_reachable=self._on_reachable,
        )
        self.scheduler = BackgroundScheduler(timezone=UTC)

    def _build_audio(self) -> None:
        audio, acoustic = self.config.audio, self.config.acoustic
        if acoustic.enabled:
            if audio.source != "pcm":
                log.warning('acoustic check needs the feed as PCM (audio.source = "pcm"); off')
            else:
                self.acoustic = AcousticMonitor(acoustic)
                self.sources.append(PcmSource(acoustic, self.acoustic.mic))
        if audio.source == "pcm":
            sink = _Tee(self.meter, self.acoustic.feed) if self.acoustic else self.meter
            self.sources.append(PcmSource(audio, sink))

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        log.info(
            "agent for station %s starting: broker %s, controller %s, queue %s (%d queued)",
            self.config.station.id, self.config.mqtt.address, self.config.controller.url,
            self.config.queue_path, len(self.queue),
        )  # fmt: skip
        self.publisher.start()
        for source in self.sources:
            source.start()
        self.controller.start()
        interval = self.config.telemetry.interval_s
        first = datetime.now(UTC) + timedelta(seconds=min(interval, 10.0))
        self.scheduler.add_job(
            self.telemetry_tick, "interval", seconds=interval, next_run_time=first,
            id="telemetry", max_instances=1, coalesce=True, misfire_grace_time=None,
        )  # fmt: skip
        self.scheduler.add_job(
            self.levels_tick, "interval", seconds=LEVELS_INTERVAL_S, id="levels",
            max_instances=1, coalesce=True,
        )  # fmt: skip
        self.scheduler.start()

    def stop(self) -> None:
        log.info("agent stopping")
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.controller.stop()
        for source in self.sources:
            source.stop()
        self.publisher.stop()
        self.queue.close()
        log.info("agent stopped")

    # -- scheduled jobs ---------------------------------------------------------------------
    def telemetry_tick(self) -> None:
        try:
            fields = convert.telemetry_fields(
                self.controller.latest_telemetry,
                self.meter.levels(),
                int(time.monotonic() - self._started),
                self.controller.reachable,
                acoustic=self.acoustic.result() if self.acoustic else None,
            )
        except Exception:  # a converter bug must not stop the schedule
            log.exception("could not build telemetry")
            return
        self.publisher.publish(Kind.TELEMETRY, fields, now_ms())

    def levels_tick(self) -> None:
        with self._lock:
            self.broadcasts.on_levels(self.meter.levels(), now_ms())

    # -- controller callbacks (controller thread) -------------------------------------------
    def _on_hello(self, hello: Hello) -> None:
        info = convert.device_info(hello)
        log.info("controller %(device_id)s firmware %(firmware)s %(hardware)s", info)
        self.publisher.set_device_info(**info)

    def _on_telemetry(self, mcu: Telemetry) -> None:
        if self.config.audio.source == "mcu":
            span = self.config.controller.poll_interval_s
            self.meter.push_level(mcu.audio_rms_dbfs, mcu.audio_peak_dbfs, span)

    def _on_event(self, ev: Event) -> None:
        self.publisher.publish(Kind.EVENT, convert.event_fields(ev), now_ms())

    def _on_playback(self, pb: Playback) -> None:
        with self._lock:
            self.broadcasts.on_playback(pb, now_ms())

    def _on_reachable(self, reachable: bool) -> None:
        if reachable and not self._controller_lost:
            return  # first contact is not news
        self._controller_lost = not reachable
        code = EventCode.CONTROLLER_FOUND if reachable else EventCode.CONTROLLER_LOST
        self.publisher.publish(Kind.EVENT, convert.agent_event_fields(code), now_ms())


def run(config: AgentConfig, stop_event: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop_event``); returns the exit status."""
    stop = stop_event or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: stop.set())
    service = AgentService(config)
    service.start()
    try:
        while not stop.wait(1.0):  # wake regularly so a signal handler always gets to run
            pass
    finally:
        service.stop()
    return 0
