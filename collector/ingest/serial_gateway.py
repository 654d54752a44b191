"""Serial gateway input: poll the controllers on one RS-485 line / radio modem (master side).

Line discipline (firmware_protocol/SPEC.md, protocol v1; the gateway is the master, address 0):

- Stations on the line are the inventory stations whose ``upstream`` is this gateway's id; each
  has an ``address`` (1..247). One station is spoken to at a time: POLL, then wait up to
  ``response_timeout_s`` (SPEC: the MCU answers within 100 ms) for the RESPONSE from that
  address; ``retries`` more polls if it stays silent.
- On first contact the gateway polls HELLO (device info) and publishes ``status: online``.
- EVENT and PLAYBACK frames heard at any time are converted too; when they ask for an ACK the
  gateway answers ACK(seq, type). A retried frame repeats its seq, so a (seq, type) among the
  last 16 unsolicited frames of that address is a duplicate: acknowledged, not stored again.
- Every payload is serialised and fed to the same ``Pipeline`` as MQTT input (same validation,
  same storage). Frames from addresses not in the inventory are counted, never stored.
- The gateway is ``up`` while some station answered within ``dead_after_s``; the change is
  reported through ``on_state(gateway_id, up, ts_ms)`` (the health engine's upstream_down).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

import serial

import firmware_protocol as fp
from collector.ingest import serial_payloads as conv
from collector.ingest.config import SerialGatewayConfig
from collector.ingest.pipeline import Incoming, Pipeline, PipelineStopped
from loaxa.payloads import to_json
from loaxa.topics import station_topic

log = logging.getLogger("collector.ingest.serial")

StationsFn = Callable[[], dict[int, tuple[str, str]]]  # address -> (station id, commune)
StateFn = Callable[[str, bool, int], None]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class SerialGateway:
    def __init__(
        self,
        config: SerialGatewayConfig,
        province: str,
        stations: StationsFn,
        pipeline: Pipeline,
        on_state: StateFn | None = None,
    ) -> None:
        self.config = config
        self._province = province
        self._stations_fn = stations
        self._pipeline = pipeline
        self._on_state = on_state
        self._session = int(time.time())
        self._started = time.monotonic()
        self._stations: dict[int, conv.GatewayStation] = {}
        self._next_poll: dict[int, float] = {}
        self._port: serial.SerialBase | None = None
        self._decoder = fp.StreamDecoder()
        self._seq = 0
        self._out: list[Incoming] = []
        self._warned: set[int] = set()
        self._last_frame = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"gw-{config.id}", daemon=True)
        self.up: bool | None = None  # None until first known
        self.counts: Counter[str] = Counter()  # polls, responses, timeouts, unknown_address ...

    @property
    def decoder_stats(self) -> fp.DecoderStats:
        return self._decoder.stats

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._close()

    # --- main loop ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            if self._port is None and not self._open():
                self._check_dead()
                self._stop.wait(self.config.reopen_after_s)
                continue
            try:
                self._cycle()
            except (serial.SerialException, OSError) as err:
                log.error(
                    "gateway %s: serial error on %s: %s", self.config.id, self.config.url, err
                )
                self._close()
            except PipelineStopped:
                return
            self._check_dead()

    def _open(self) -> bool:
        try:
            self._port = serial.serial_for_url(
                self.config.url, baudrate=self.config.baudrate, timeout=0.01
            )
        except (serial.SerialException, OSError, ValueError) as err:
            self.counts["open_failures"] += 1
            log.error("gateway %s: cannot open %s: %s", self.config.id, self.config.url, err)
            return False
        log.info("gateway %s: opened %s", self.config.id, self.config.url)
        self._last_frame = time.monotonic()  # the dead timer starts when the line does
        return True

    def _close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    def _cycle(self) -> None:
        self._sync_stations()
        now = time.monotonic()
        for address, st in sorted(self._stations.items()):
            if self._stop.is_set():
                return
            if self._next_poll.get(address, 0.0) <= now:
                self._poll_station(st)
                self._next_poll[address] = time.monotonic() + self.config.poll_interval_s
        self._listen(time.monotonic() + 0.1)  # unsolicited events between polls
        self._flush()

    def _sync_stations(self) -> None:
        wanted = self._stations_fn()
        for address, (station_id, commune) in wanted.items():
            st = self._stations.get(address)
            if st is None or st.id != station_id or st.commune != commune:
                self._stations[address] = conv.GatewayStation(
                    station_id, commune, address, self._session
                )
        for address in set(self._stations) - set(wanted):
            del self._stations[address]

    def _poll_station(self, st: conv.GatewayStation) -> None:
        if st.hello is None and self._request(st, fp.MessageType.HELLO):
            self._emit_status(st)
        if self._request(st, fp.MessageType.TELEMETRY):
            st.missed_polls = 0
        else:
            st.missed_polls += 1
        self._flush()

    def _request(self, st: conv.GatewayStation, wanted: fp.MessageType) -> bool:
        """POLL ``wanted`` from ``st`` (with retries); True once its RESPONSE arrived."""
        for _ in range(1 + self.config.retries):
            self.counts["polls"] += 1
            self._send(st.address, fp.Poll(requested_type=wanted))
            deadline = time.monotonic() + self.config.response_timeout_s
            if self._listen(deadline, until=(st.address, int(wanted))):
                self.counts["responses"] += 1
                return True
            self.counts["timeouts"] += 1
        log.debug("gateway %s: %s (address %d) did not answer", self.config.id, st.id, st.address)
        return False

    def _listen(self, deadline: float, until: tuple[int, int] | None = None) -> bool:
        """Read frames until ``deadline``, or until the response ``until`` (address, type)."""
        assert self._port is not None
        while time.monotonic() < deadline:
            chunk = self._port.read(max(1, self._port.in_waiting))
            if not chunk:
                continue
            done = False
            for frame in self._decoder.feed(chunk):  # every frame: events may follow a response
                done = self._handle(frame) == until or done
            if done and until is not None:
                return True
        return False

    def _send(self, address: int, message: fp.Message, flags: int = 0) -> None:
        assert self._port is not None
        self._seq = (self._seq + 1) & 0xFFFF
        self._port.write(fp.encode_frame(fp.Frame(address, self._seq, message, flags)))

    # --- frames -> payloads ---------------------------------------------------------------
    def _handle(self, frame: fp.Frame) -> tuple[int, int] | None:
        st = self._stations.get(frame.address)
        if st is None:
            self.counts["unknown_address"] += 1
            if frame.address not in self._warned:  # once per address, not per frame
                self._warned.add(frame.address)
                log.warning(
                    "gateway %s: frames from address %d, not in the inventory",
                    self.config.id,
                    frame.address,
                )
            return None
        self._last_frame = time.monotonic()
        self._set_up(True)
        if frame.ack_requested:
            self._send(frame.address, fp.Ack(acked_seq=frame.seq, acked_type=frame.type))
        if not frame.is_response:
            key = (frame.seq, frame.type)
            if key in st.recent:
                self.counts["duplicates"] += 1
                return None
            st.recent.append(key)
        now = _now_ms()
        msg = frame.message
        if isinstance(msg, fp.Telemetry):
            uptime = int(time.monotonic() - self._started)
            self._queue(st, conv.telemetry(st, msg, now, uptime))
        elif isinstance(msg, fp.Event):
            self._queue(st, conv.event(st, msg, now))
        elif isinstance(msg, fp.Playback):
            self._queue(st, conv.broadcast(st, msg, now))
        elif isinstance(msg, fp.Hello):
            st.hello = msg
        else:
            self.counts[f"ignored_{type(msg).__name__.lower()}"] += 1
        return (frame.address, frame.type) if frame.is_response else None

    def _emit_status(self, st: conv.GatewayStation) -> None:
        st.online = True
        self._queue(st, conv.status(st, _now_ms(), online=True))

    def _queue(self, st: conv.GatewayStation, payload) -> None:
        topic = station_topic(self._province, st.commune, st.id, payload.kind)
        self._out.append(Incoming(topic, to_json(payload), _now_ms()))

    def _flush(self) -> None:
        if self._out:
            batch, self._out = self._out, []
            self._pipeline.process(batch, f"serial:{self.config.id}")

    def _check_dead(self) -> None:
        if time.monotonic() - self._last_frame > self.config.dead_after_s:
            self._set_up(False)

    def _set_up(self, up: bool) -> None:
        if self.up == up:
            return
        self.up = up
        level = logging.INFO if up else logging.ERROR
        log.log(level, "gateway %s is %s", self.config.id, "up" if up else "DOWN")
        if self._on_state is not None:
            self._on_state(self.config.id, up, _now_ms())
