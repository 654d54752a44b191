"""Controller frames heard by a serial gateway -> ``loaxa.payloads`` models (schema v1).

A gateway station has no agent, so the gateway plays its part: it synthesises the envelope
(``session`` = the gateway's start time in seconds, so it grows on every restart; ``seq`` +1 per
payload within the session; ``ts`` = receive time) and reuses the agent's field conversion
(``agent/convert.py``), so a station reads the same in InfluxDB whichever way it reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import firmware_protocol as fp
from agent.convert import (
    device_info,
    event_fields,
    program_priority,
    program_source,
    telemetry_fields,
)
from loaxa.payloads import Broadcast, Event, Status, Telemetry


@dataclass
class GatewayStation:
    """One controller on a gateway's line, and the envelope state the gateway keeps for it."""

    id: str
    commune: str
    address: int
    session: int
    seq: int = 0
    hello: fp.Hello | None = None
    online: bool = False
    program_start_ms: int | None = None  # start of the program now playing, for ``stop``
    last_frame: tuple[int, int] | None = None  # (seq, type): a retry repeats both (FP-SEQ-3)
    mcu_uptime_s: int | None = None  # a smaller uptime means the device rebooted
    missed_polls: int = 0

    def envelope(self, ts_ms: int) -> dict[str, object]:
        env = {"station": self.id, "session": self.session, "seq": self.seq, "ts": ts_ms}
        self.seq += 1
        return env


def telemetry(st: GatewayStation, msg: fp.Telemetry, ts_ms: int, uptime_s: int) -> Telemetry:
    # agent_uptime_s: the gateway stands in for the agent, so it reports its own uptime.
    return Telemetry(**st.envelope(ts_ms), **telemetry_fields(msg, None, uptime_s, True))


def event(st: GatewayStation, msg: fp.Event, ts_ms: int) -> Event:
    return Event(**st.envelope(ts_ms), **event_fields(msg))


def broadcast(st: GatewayStation, msg: fp.Playback, ts_ms: int) -> Broadcast:
    common = {
        "source": program_source(msg),
        "priority": program_priority(msg),
        "clusters": list(msg.cluster_ids),
        "detected_by": "mcu",
    }
    if msg.started:
        st.program_start_ms = ts_ms
        return Broadcast(**st.envelope(ts_ms), action="start", start_ts=ts_ms, **common)
    start = st.program_start_ms if st.program_start_ms is not None else ts_ms
    st.program_start_ms = None
    return Broadcast(**st.envelope(ts_ms), action="stop", start_ts=start, end_ts=ts_ms, **common)


def status(st: GatewayStation, ts_ms: int, online: bool, reason: str | None = None) -> Status:
    info = device_info(st.hello) if st.hello is not None else {}
    return Status(
        **st.envelope(ts_ms),
        state="online" if online else "offline",
        agent_version="serial-gateway",
        reason=reason,
        **info,
    )
