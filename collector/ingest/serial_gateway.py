"""Serial gateway input: the master on one RS-485 line / radio modem (address 0).

Line discipline, firmware_protocol/SPEC.md v1.0 section 5:

- Stations on the line are the inventory stations whose ``upstream`` is this gateway's id; each
  has an ``address``. The master polls each address in turn (FP-TIME-2): POLL, wait
  ``response_timeout_s`` (250 ms) for a RESPONSE from that address, else resend the same frame
  (same seq) up to ``retries`` (3) times; then the station is unreachable for this cycle. A NACK
  ``busy`` counts as a timeout.
- A device answers a POLL with its oldest queued EVENT/PLAYBACK (RESPONSE | ACK_REQUESTED)
  instead of the requested message (FP-LINK-4): the master ACKs it and polls again at once, up
  to 8 times per cycle.
- Every ACK_REQUESTED frame is ACKed (FP-TIME-3), a retry included, and only after its payload
  was stored (a gateway killed before that leaves the event with the device, which resends).
  Per address the master keeps the (seq, type) of the last frame processed; the same pair
  again is a retry, not processed twice (FP-SEQ-3). HELLO resets it (FP-SEQ-4).
- On first contact, and when a telemetry uptime goes backwards (the device rebooted), the
  master polls HELLO and publishes ``status: online``.
- Every payload is serialised and fed to the same ``Pipeline`` as MQTT input (same validation,
  same storage). Frames from addresses not in the inventory are counted, never stored.
- The gateway is ``up`` while some station answered within ``dead_after_s``; changes go to
  ``on_state(gateway_id, up, ts_ms)`` (the health engine's upstream_down).
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


_MAX_QUEUED_PER_CYCLE = 8  # FP-LINK-4


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _is_nack(frame: fp.Frame) -> bool:
    return isinstance(frame.message, fp.Nack)


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
        self._acks: list[tuple[int, fp.Ack]] = []  # sent once ``_out`` is stored
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
        self._listen(time.monotonic() + 0.05)  # a point-to-point modem may send unsolicited
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
        """POLL for ``wanted``; queued events that answer instead are handled and re-polled."""
        for _ in range(1 + _MAX_QUEUED_PER_CYCLE):
            answer = self._transact(st.address, fp.Poll(requested_type=wanted))
            if answer is None:
                return False
            if answer.type == wanted:
                return True
        return True  # it answered; the rest of its queue waits for the next cycle

    def _transact(self, address: int, message: fp.Message) -> fp.Frame | None:
        """Send ``message``, resending the same frame on timeout; the RESPONSE, or None."""
        self._seq = (self._seq + 1) & 0xFFFF
        wire = fp.encode_frame(fp.Frame(address, self._seq, message))
        for _ in range(1 + self.config.retries):
            self.counts["polls"] += 1
            self._write(wire)
            answer = self._listen(time.monotonic() + self.config.response_timeout_s, address)
            if answer is not None and not _is_nack(answer):  # NACK busy = timeout
                self.counts["responses"] += 1
                return answer
            self.counts["timeouts"] += 1
        log.debug("gateway %s: address %d did not answer", self.config.id, address)
        return None

    def _listen(self, deadline: float, address: int | None = None) -> fp.Frame | None:
        """Handle frames until ``deadline``; return early with ``address``'s response."""
        assert self._port is not None
        while time.monotonic() < deadline:
            chunk = self._port.read(max(1, self._port.in_waiting))
            answer = None
            for frame in self._decoder.feed(chunk):  # every frame, even after the answer
                self._handle(frame)
                if frame.address == address and (frame.is_response or _is_nack(frame)):
                    answer = frame
            self._settle()
            if answer is not None:
                return answer
        return None

    def _settle(self) -> None:
        """Store what was heard, then ACK it: an event is ACKed only once it is durable (the
        spool append takes milliseconds, well inside FP-TIME-1's 100 ms)."""
        self._flush()
        acks, self._acks = self._acks, []
        for address, ack in acks:
            self._send(address, ack)

    def _write(self, wire: bytes) -> None:
        assert self._port is not None
        self._port.write(wire)

    def _send(self, address: int, message: fp.Message) -> None:
        self._seq = (self._seq + 1) & 0xFFFF
        self._write(fp.encode_frame(fp.Frame(address, self._seq, message)))

    # --- frames -> payloads ---------------------------------------------------------------
    def _handle(self, frame: fp.Frame) -> None:
        st = self._stations.get(frame.address)
        if st is None:
            self._stranger(frame.address)
            return
        self._last_frame = time.monotonic()
        self._set_up(True)
        if frame.ack_requested:  # a retry is ACKed again (its first ACK may have been lost)
            self._acks.append((frame.address, fp.Ack(acked_seq=frame.seq, acked_type=frame.type)))
        key = (frame.seq, frame.type)
        if key == st.last_frame:
            self.counts["duplicates"] += 1
            return
        st.last_frame = key
        now = _now_ms()
        msg = frame.message
        if isinstance(msg, fp.Telemetry):
            if st.mcu_uptime_s is not None and msg.uptime_s < st.mcu_uptime_s:
                st.hello = None  # rebooted: HELLO again at the next poll (new firmware?)
            st.mcu_uptime_s = msg.uptime_s
            uptime = int(time.monotonic() - self._started)
            self._queue(st, conv.telemetry(st, msg, now, uptime))
        elif isinstance(msg, fp.Event):
            self._queue(st, conv.event(st, msg, now))
        elif isinstance(msg, fp.Playback):
            self._queue(st, conv.broadcast(st, msg, now))
        elif isinstance(msg, fp.Hello):
            st.hello = msg
            st.last_frame = None  # FP-SEQ-4: its seq restarted
        elif not isinstance(msg, fp.Nack | fp.Ack):
            self.counts[f"ignored_{type(msg).__name__.lower()}"] += 1

    def _stranger(self, address: int) -> None:
        self.counts["unknown_address"] += 1
        if address not in self._warned:  # once per address, not per frame
            self._warned.add(address)
            log.warning(
                "gateway %s: frames from address %d, not in the inventory", self.config.id, address
            )

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
