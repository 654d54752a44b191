"""The health engine: decides from payloads and the clock whether each station is operating.

Pure state machine, no I/O, no wall clock: ``observe(payload, received_ms)`` for each validated
message, ``tick(now_ms)`` periodically (every few seconds in the daemon, every minute in a
scenario test). Both return the :class:`HealthEvent` list for alerts; ``transitions`` holds each
station's timeline for storage and :func:`availability`. Rules, per station:

* liveness is by receive time: no message for ``down_after_intervals`` x interval, or the Last
  Will of the current session, is DOWN (from the first missed report, or the Will's arrival);
  a Will whose session is older than the latest ``online`` is stale and ignored;
* in-order readings drive SILENT, ON_BATTERY, BATTERY_LOW; older readings change nothing live;
* any message after a drop is the reconnection; messages stamped inside the drop are evidence,
  judged ``backfill_settle_s`` after it (``outage.py``): the period is rewritten and the
  incident corrected (LINK_DOWN "station was on air", or its true start and cause);
* a DOWN opens an incident only after ``damping_s`` (``flap_hold_s`` while flapping); SILENT
  opens one at once (its delay is ``silence_after_min``).
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections import Counter

from collector.health.availability import Transition
from collector.health.compliance import ComplianceSnapshot, compliance
from collector.health.config import HealthConfig
from collector.health.events import HealthEvent, HealthEventKind, Incident, State
from collector.health.lifecycle import StationLifecycle
from collector.health.outage import Evidence
from collector.health.runtime import StationRuntime
from collector.health.schedules import window_at
from collector.health.signals import (
    amp_fault,
    audio_quiet,
    battery_time_left_ms,
)
from collector.health.snapshots import EngineSnapshot
from collector.health.upstreams import (
    UpstreamStatus,
    restored_event,
)
from collector.inventory import Inventory
from loaxa.payloads import Broadcast, Event, EventCode, Status, Telemetry

log = logging.getLogger(__name__)
Payload = Telemetry | Event | Broadcast | Status
_PROBLEMS = (State.DOWN, State.SILENT)


class HealthEngine(StationLifecycle, EngineSnapshot):
    def __init__(self, inventory: Inventory, config: HealthConfig | None = None) -> None:
        self.inventory = inventory
        self.config = config or HealthConfig()
        self.tz = inventory.province.tz
        self.stations = {sid: StationRuntime() for sid in inventory.stations}
        self.upstreams = {uid: UpstreamStatus() for uid in inventory.upstreams}
        self.transitions: dict[str, list[Transition]] = {sid: [] for sid in inventory.stations}
        self.counters: Counter[str] = Counter()
        self._new_transitions: list[Transition] = []
        self._thresholds = {}
        self._children_of = {}
        self._order = {sid: i for i, sid in enumerate(inventory.stations)}
        self._pending_down = None

    # ----- public API -------------------------------------------------------------------
    def observe(self, payload: Payload, received_ms: int) -> list[HealthEvent]:
        """Feed one validated message with its receive time (ms)."""
        events: list[HealthEvent] = []
        sid = payload.station
        rt = self.stations.get(sid)
        if rt is None:
            self.counters["unknown_station"] += 1
            log.warning("message from station %r, which is not in the inventory", sid)
            return events
        if not isinstance(payload, Status) and not rt.remember(
            (payload.session, payload.seq), self.config.dedupe_keys
        ):
            self.counters["duplicate"] += 1
            return events
        rt.last_rx_ms = max(rt.last_rx_ms or received_ms, received_ms)
        self._maintenance(sid, rt, received_ms, events)
        if isinstance(payload, Status):
            self._status(sid, rt, payload, received_ms, events)
        else:
            self._data(sid, rt, payload, received_ms, events)
        self._after(received_ms, events, touched=sid)
        return events

    def tick(self, now_ms: int) -> list[HealthEvent]:
        """Advance the clock: detect silence by absence, end windows, judge settled outages."""
        events: list[HealthEvent] = []
        for sid, rt in self.stations.items():
            self._maintenance(sid, rt, now_ms, events)
            out = rt.outage
            if (
                out
                and out.end_ms is not None
                and now_ms >= out.end_ms + self.config.backfill_settle_s * 1000
            ):
                self._judge(sid, rt, now_ms, events)
            th = self._th(sid)
            if (
                rt.state is not State.DOWN
                and rt.last_rx_ms is not None
                and now_ms - rt.last_rx_ms > th.down_after_ms
            ):
                last = rt.last_ts_ms if rt.last_ts_ms is not None else rt.last_rx_ms
                at = max(min(now_ms, last + th.telemetry_interval_s * 1000), rt.since_ms or 0)
                self._go_down(sid, rt, at, now_ms, events)
            ended = rt.audio.window_over(now_ms)
            if ended is not None:
                self._set_condition(sid, rt, self._live_state(sid, rt), ended, now_ms, events)
        self._after(now_ms, events)
        self._prune(now_ms)
        return events

    def upstream_down(self, upstream_id: str, ts_ms: int) -> list[HealthEvent]:
        """The upstream's owner (e.g. the serial gateway) reports it failed at ``ts_ms``."""
        status = self.upstreams.get(upstream_id)
        if status is None:
            self.counters["unknown_upstream"] += 1
            log.warning("upstream_down for %r, which is not in the inventory", upstream_id)
            return []
        if status.reported_ms is not None:
            return []
        was_down, status.reported_ms = status.down, ts_ms
        events = [] if was_down else self._upstream_failed(upstream_id, ts_ms, "reported", ts_ms)
        self._after(ts_ms, events)
        return events

    def upstream_up(self, upstream_id: str, ts_ms: int) -> list[HealthEvent]:
        status = self.upstreams.get(upstream_id)
        if status is None or status.reported_ms is None:
            return []
        since, status.reported_ms = status.since_ms, None
        return [] if status.down else [restored_event(upstream_id, ts_ms, since)]

    def state_at(self, station: str, ts_ms: int) -> State:
        timeline = self.transitions[station]
        i = bisect_right([t.ts_ms for t in timeline], ts_ms)
        return timeline[i - 1].state if i else State.UNKNOWN

    def compliance(self, now_ms: int) -> ComplianceSnapshot:
        return compliance(self.inventory, self.state_at, now_ms)

    def open_incidents(self) -> list[Incident]:
        return [rt.incident for rt in self.stations.values() if rt.incident is not None]

    def drain_transitions(self) -> list[Transition]:
        """Timeline rows added or rewritten since the last call (for storage; same-time rows
        replace earlier ones)."""
        rows, self._new_transitions = self._new_transitions, []
        return rows

    # ----- messages ---------------------------------------------------------------------
    def _status(
        self, sid: str, rt: StationRuntime, p: Status, now: int, events: list[HealthEvent]
    ) -> None:
        if p.session < rt.session:
            self.counters["stale_status"] += 1
            log.info("%s: ignoring %s of old session %d < %d", sid, p.state, p.session, rt.session)
            return
        if p.state == "online":
            rt.session, rt.offline = p.session, False
            if rt.outage and rt.outage.end_ms is None:
                self._reconnect(sid, rt, now, events)
            elif rt.state is State.UNKNOWN:
                self._set_condition(sid, rt, State.OPERATING, now, now, events)
            return
        rt.session, rt.offline = p.session, True
        if rt.state is not State.DOWN:
            self._go_down(sid, rt, max(now, rt.since_ms or now), now, events)

    def _data(
        self, sid: str, rt: StationRuntime, p: Payload, now: int, events: list[HealthEvent]
    ) -> None:
        if p.ts > now + self.config.max_clock_skew_s * 1000:
            # A clock far ahead would make every later reading look old: use arrival time.
            self.counters["future_timestamp"] += 1
            log.warning("%s: reading stamped %d ms ahead of arrival", sid, p.ts - now)
            p = p.model_copy(update={"ts": now})
        if p.session > rt.session:
            rt.session, rt.offline = p.session, False
        out = rt.outage
        if out is not None and isinstance(p, Event) and p.code is EventCode.QUEUE_EVICTED:
            out.evicted += p.value or 0  # sent after the backlog: judged as "no data"
        if out is not None and out.end_ms is None:
            self._reconnect(sid, rt, now if p.backfill else min(now, p.ts), events)
        if out is not None and out.anchor_ms < p.ts < (out.end_ms or now):
            out.evidence.append(self._evidence(sid, p))
            self.counters["backfill_evidence"] += 1
            return
        if rt.last_ts_ms is not None and p.ts < rt.last_ts_ms:
            self.counters["late_ignored"] += 1
            return
        rt.last_ts_ms = p.ts
        self._reading(sid, rt, p, now, events)

    def _evidence(self, sid: str, p: Payload) -> Evidence:
        if isinstance(p, Telemetry):
            th = self._th(sid)
            quiet = audio_quiet(p, th.silence_threshold_dbfs)
            return Evidence(p.ts, quiet, p.power.on_battery)
        if isinstance(p, Event) and p.code in (EventCode.POWER_LOST, EventCode.POWER_RESTORED):
            return Evidence(p.ts, None, p.code is EventCode.POWER_LOST)
        return Evidence(p.ts)

    def _reading(
        self, sid: str, rt: StationRuntime, p: Payload, now: int, events: list[HealthEvent]
    ) -> None:
        ts = p.ts
        change: tuple[int, bool] | None = None
        if isinstance(p, Telemetry):
            th = self._th(sid)
            self._power(sid, rt, ts, p.power.on_battery, p.power.battery_v, events)
            fault = amp_fault(p)
            rt.amp_fault = rt.amp_fault if fault is None else fault
            self._controller(sid, rt, ts, p.controller == "unreachable", events)
            quiet = audio_quiet(p, th.silence_threshold_dbfs)
            window = window_at(self.inventory.schedule_for(sid), ts, self.tz)
            change = rt.audio.feed(ts, quiet, window, int(th.silence_after_min * 60_000))
            due = rt.audio.unscheduled_from(
                ts, quiet, window, int(th.unscheduled_after_min * 60_000)
            )
            if due is not None:
                events.append(self._unscheduled(sid, due, p))
        elif isinstance(p, Event):
            self._agent_event(sid, rt, p, events)
        at = change[0] if change is not None else ts
        self._set_condition(sid, rt, self._live_state(sid, rt), at, now, events)

    def _agent_event(
        self, sid: str, rt: StationRuntime, p: Event, events: list[HealthEvent]
    ) -> None:
        if p.code is EventCode.POWER_LOST:
            self._power(sid, rt, p.ts, True, None, events)
        elif p.code is EventCode.POWER_RESTORED:
            self._power(sid, rt, p.ts, False, None, events)
        elif p.code is EventCode.AMP_FAULT:
            rt.amp_fault = True
        elif p.code is EventCode.AMP_RECOVERED:
            rt.amp_fault = False
        elif p.code in (EventCode.CONTROLLER_LOST, EventCode.CONTROLLER_FOUND):
            self._controller(sid, rt, p.ts, p.code is EventCode.CONTROLLER_LOST, events)

    def _controller(
        self, sid: str, rt: StationRuntime, ts: int, lost: bool, events: list[HealthEvent]
    ) -> None:
        """One CONTROLLER_LOST per episode: the link is up but the agent cannot see the MCU, so
        nothing says whether the station is on air (its audio level comes from the MCU)."""
        if lost and not rt.controller_lost:
            events.append(self._station_event(HealthEventKind.CONTROLLER_LOST, ts, sid, {}))
        rt.controller_lost = lost

    def _unscheduled(self, sid: str, due: int, p: Telemetry) -> HealthEvent:
        since = due - int(self._th(sid).unscheduled_after_min * 60_000)
        details = {"since_ms": since, "rms_dbfs": p.audio.rms_dbfs}
        return self._station_event(HealthEventKind.UNSCHEDULED_BROADCAST, due, sid, details)

    def _power(
        self,
        sid: str,
        rt: StationRuntime,
        ts: int,
        on_battery: bool,
        volts: float | None,
        events: list[HealthEvent],
    ) -> None:
        if on_battery and not rt.on_battery:
            rt.battery, rt.battery_warned, rt.on_battery_since = [], False, ts
        rt.on_battery = on_battery
        if not on_battery:
            rt.on_battery_since = None
            return
        if volts is None:
            return
        rt.battery = [*rt.battery, (ts, volts)][-self.config.battery_fit_points :]
        left = battery_time_left_ms(rt.battery, self.config.battery_cutoff_v)
        if len(rt.battery) < 3:
            left = None
        low = volts < self._th(sid).battery_low_v
        soon = left is not None and left <= self.config.battery_warning_min * 60_000
        if rt.battery_warned or not (low or soon):
            return
        rt.battery_warned = True
        details = {
            "battery_v": volts,
            "time_left_min": None if left is None else round(left / 60_000),
            "on_battery_min": round((ts - (rt.on_battery_since or ts)) / 60_000),
        }
        events.append(self._station_event(HealthEventKind.BATTERY_WARNING, ts, sid, details))

    def _live_state(self, sid: str, rt: StationRuntime) -> State:
        if rt.audio.silent:
            return State.SILENT
        if not rt.on_battery:
            return State.OPERATING
        low = self._th(sid).battery_low_v
        return State.BATTERY_LOW if rt.battery and rt.battery[-1][1] < low else State.ON_BATTERY
