"""Station lifecycle for :class:`HealthEngine`: state changes, outages, incidents, timeline.

Split from ``engine.py`` (which reads messages) so each file stays readable; this half decides
what a change of condition means: a transition on the timeline, an incident opened, closed or
corrected, a flap counted, an upstream blamed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from collector.health import incidents as inc_events
from collector.health.availability import Transition
from collector.health.config import HealthConfig
from collector.health.events import Cause, HealthEvent, HealthEventKind, Incident, State
from collector.health.outage import judge_outage
from collector.health.runtime import Outage, StationRuntime
from collector.health.schedules import window_at
from collector.health.signals import AudioRuns
from collector.health.upstreams import UpstreamStatus, down_event, quorum_down, restored_event
from collector.inventory import Inventory, Thresholds

_PROBLEMS = (State.DOWN, State.SILENT)


class StationLifecycle:
    inventory: Inventory
    config: HealthConfig
    stations: dict[str, StationRuntime]
    upstreams: dict[str, UpstreamStatus]
    transitions: dict[str, list[Transition]]
    counters: Counter[str]
    _new_transitions: list[Transition]

    _thresholds: dict[str, Thresholds]
    _children_of: dict[str, list[str]]
    _order: dict[str, int]  # station id -> position in the inventory
    _pending_down: set[str] | None  # DOWN, no incident yet: waiting for damping (None: rebuild)

    def _live_state(self, sid: str, rt: StationRuntime) -> State:
        """The state the evidence shows now; HealthEngine (the one subclass) defines it."""
        raise NotImplementedError

    def _th(self, sid: str) -> Thresholds:
        """The station's merged thresholds (computed once: the inventory is fixed)."""
        th = self._thresholds.get(sid)
        if th is None:
            th = self._thresholds[sid] = self.inventory.thresholds_for(sid)
        return th

    def _station_event(
        self, kind: HealthEventKind, ts: int, sid: str, details: dict[str, object]
    ) -> HealthEvent:
        """A station-level event that is not an incident; marked when in maintenance."""
        maint = self.inventory.in_maintenance(sid, ts) is not None
        commune = self.inventory.stations[sid].commune
        return HealthEvent(kind, ts, sid, commune, None, None, {**details, "maintenance": maint})

    # ----- conditions and the timeline --------------------------------------------------
    def _set_condition(
        self, sid: str, rt: StationRuntime, new: State, at: int, now: int, events: list[HealthEvent]
    ) -> None:
        old = rt.state
        if new is old:
            return
        at = max(at, rt.since_ms or at)
        rt.state, rt.since_ms = new, at
        self._record(sid, rt, at, new)
        if new in _PROBLEMS and old not in _PROBLEMS:
            rt.problem_since = at
            if new is State.SILENT:
                self._open(sid, rt, State.SILENT, at, now, events)
        elif new not in _PROBLEMS and old in _PROBLEMS:
            if old is State.SILENT and rt.incident is not None:
                rt.incident, event = inc_events.closed(rt.incident, at)
                events.append(event)
                rt.incident = None
            if rt.incident is None:
                rt.problem_since = None

    def _record(self, sid: str, rt: StationRuntime, at: int, state: State) -> None:
        """Append to the timeline; maintenance hides the condition until the window ends."""
        if self.inventory.in_maintenance(sid, at) is not None:
            state = State.MAINTENANCE
        if state is rt.reported:
            return
        rt.reported = state
        timeline = self.transitions[sid]
        replaced = bool(timeline) and timeline[-1].ts_ms >= at
        if replaced:  # same instant: the later word wins
            at = timeline.pop().ts_ms
        row = Transition(sid, at, state, rt.incident.cause if rt.incident else None)
        if replaced or not timeline or timeline[-1].state is not state:
            self._new_transitions.append(row)  # storage overwrites the row at this time
        if not timeline or timeline[-1].state is not state:
            timeline.append(row)

    def _rewrite(self, sid: str, start: int, end: int, segments: list[tuple[int, State]]) -> None:
        """Replace the timeline inside [start, end) with the judged segments."""
        keep = [t for t in self.transitions[sid] if not start <= t.ts_ms < end]
        rows = []
        for ts, state in segments:
            if self.inventory.in_maintenance(sid, ts) is not None:
                state = State.MAINTENANCE
            rows.append(Transition(sid, ts, state))
        merged: list[Transition] = []
        for row in sorted(keep + rows, key=lambda t: t.ts_ms):
            if merged and merged[-1].state is row.state:
                continue
            merged.append(row)
        self.transitions[sid] = merged
        self._new_transitions.extend(rows)

    def _maintenance(
        self, sid: str, rt: StationRuntime, now: int, events: list[HealthEvent]
    ) -> None:
        window = self.inventory.in_maintenance(sid, now)
        if window is not None and rt.reported is not State.MAINTENANCE:
            rt.maintenance_until = window.end_ms
            self._record(
                sid, rt, max(window.start_ms, rt.since_ms or window.start_ms), State.MAINTENANCE
            )
            return
        if window is not None or rt.maintenance_until is None or now < rt.maintenance_until:
            return
        end, rt.maintenance_until = rt.maintenance_until, None
        rt.reported = State.UNKNOWN  # force the row: the condition shows again
        self._record(sid, rt, end, rt.state)
        inc = rt.incident
        if inc is not None and inc.maintenance and rt.state in _PROBLEMS:
            # Still broken after the work: a real incident from now, paged as usual.
            _, event = inc_events.closed(inc, end)
            events.append(event)
            rt.incident = None
            self._open(sid, rt, rt.state, end, now, events)

    # ----- incidents ----------------------------------------------------------------------
    def _failed_upstream(self, sid: str) -> str | None:
        up = self.inventory.stations[sid].upstream
        return up if up is not None and self.upstreams[up].down else None

    def _open(
        self,
        sid: str,
        rt: StationRuntime,
        state: State,
        at: int,
        now: int,
        events: list[HealthEvent],
    ) -> None:
        if rt.incident is not None and rt.outage is not None and rt.outage.end_ms is not None:
            self._judge(sid, rt, now, events)  # settle the last outage's incident first
        if rt.incident is not None:
            return  # one incident at a time: the open one covers this problem too
        upstream = self._failed_upstream(sid)
        cause = inc_events.cause_for(
            state, on_battery=rt.on_battery, amp_fault=rt.amp_fault, upstream=upstream
        )
        rt.incident = Incident(
            id=f"{sid}:{at}",
            station=sid,
            commune=self.inventory.stations[sid].commune,
            state=state,
            cause=cause,
            opened_ms=at,
            upstream=upstream,
            maintenance=self.inventory.in_maintenance(sid, at) is not None,
        )
        events.append(inc_events.opened(rt.incident, now))

    def _after(self, now: int, events: list[HealthEvent], touched: str | None = None) -> None:
        """After every message and tick: blame upstreams, then open incidents past damping.

        ``touched``: only this station changed since the last call (a message). Then only its
        upstream is re-checked and the DOWN stations still waiting for damping come from an
        index instead of a scan of every station: the same decisions, at O(1) per message
        instead of O(stations) (at 2,000 stations the scan was most of the collector's CPU)."""
        pending = self._pending_down
        if touched is None or pending is None:
            pending = self._pending_down = {
                sid for sid, rt in self.stations.items() if self._waits_damping(rt)
            }
            upstreams: list[str] = list(self.upstreams)
        else:
            if self._waits_damping(self.stations[touched]):
                pending.add(touched)
            else:
                pending.discard(touched)
            up = self.inventory.stations[touched].upstream
            upstreams = [up] if up is not None and up in self.upstreams else []
        for uid in upstreams:
            self._check_upstream(uid, now, events)
        for sid in sorted(pending, key=self._order.__getitem__):  # inventory order, as before
            rt = self.stations[sid]
            if not self._waits_damping(rt):
                pending.discard(sid)
                continue
            th = self._th(sid)
            window_ms = th.flap_window_min * 60_000
            flapping = rt.flaps.flapping(now, window_ms, th.flap_threshold)
            hold_s = self.config.flap_hold_s if flapping else th.damping_s
            assert rt.problem_since is not None
            if now - rt.problem_since >= hold_s * 1000:
                self._open(sid, rt, State.DOWN, rt.problem_since, now, events)
                pending.discard(sid)

    @staticmethod
    def _waits_damping(rt: StationRuntime) -> bool:
        return rt.state is State.DOWN and rt.incident is None and rt.problem_since is not None

    # ----- outages ------------------------------------------------------------------------
    def _go_down(
        self, sid: str, rt: StationRuntime, at: int, now: int, events: list[HealthEvent]
    ) -> None:
        if rt.outage is not None and rt.outage.end_ms is not None:
            self._judge(sid, rt, now, events)  # a new drop before the last one was judged
        anchor = rt.last_ts_ms if rt.last_ts_ms is not None else at
        rt.outage = Outage(start_ms=at, anchor_ms=min(anchor, at), anchor_on_battery=rt.on_battery)
        self._set_condition(sid, rt, State.DOWN, at, now, events)
        th = self._th(sid)
        count = rt.flaps.drop(at, th.flap_window_min * 60_000, th.flap_threshold)
        if count is not None:
            details = {"count": count, "window_min": th.flap_window_min}
            events.append(self._station_event(HealthEventKind.FLAP_SUMMARY, at, sid, details))

    def _reconnect(self, sid: str, rt: StationRuntime, at: int, events: list[HealthEvent]) -> None:
        assert rt.outage is not None
        at = max(at, rt.outage.start_ms)
        rt.outage.end_ms = at
        rt.audio = AudioRuns()  # a quiet run does not span an outage
        self._set_condition(sid, rt, self._live_state(sid, rt), at, at, events)

    def _judge(self, sid: str, rt: StationRuntime, now: int, events: list[HealthEvent]) -> None:
        """Rewrite a finished outage from its backfill; correct or close its incident."""
        out, rt.outage = rt.outage, None
        assert out is not None and out.end_ms is not None
        if not out.evidence and not out.evicted:  # nothing learned: DOWN stands as recorded
            self._close_after_outage(rt, out.end_ms, events)
            return
        th = self._th(sid)
        schedule = self.inventory.schedule_for(sid)
        tz = self.inventory.province.tz
        verdict = judge_outage(
            out.start_ms,
            out.end_ms,
            out.anchor_ms,
            out.evidence,
            interval_ms=th.telemetry_interval_s * 1000,
            down_after_ms=th.down_after_ms,
            window_of=lambda t: window_at(schedule, t, tz),
            silence_after_ms=int(th.silence_after_min * 60_000),
            anchor_on_battery=out.anchor_on_battery,
            evicted=out.evicted,
        )
        self._rewrite(sid, out.start_ms, out.end_ms, verdict.segments)
        inc = rt.incident
        if inc is None or inc.state is not State.DOWN:
            self._close_after_outage(rt, out.end_ms, events)
            return
        first_bad = verdict.outage_start
        if first_bad is None:  # on air all along: corrected, then closed like any other
            fixed = replace(inc, state=State.LINK_DOWN, cause=Cause.NETWORK)
            message = inc_events.RECLASSIFIED_ON_AIR
            events.append(inc_events.reclassified(inc, fixed, out.end_ms, message))
            rt.incident = fixed
            self._close_after_outage(rt, out.end_ms, events)
            return
        cause = inc.cause
        if verdict.on_battery_at_loss and cause is not Cause.UPSTREAM:
            cause = Cause.POWER
        if first_bad != inc.opened_ms or cause is not inc.cause:
            fixed = replace(inc, opened_ms=first_bad, cause=cause)
            message = "backfill shows the station on air until the outage began"
            events.append(inc_events.reclassified(inc, fixed, out.end_ms, message))
            inc = fixed
        rt.incident = inc
        self._close_after_outage(rt, out.end_ms, events)

    def _close_after_outage(
        self, rt: StationRuntime, end_ms: int, events: list[HealthEvent]
    ) -> None:
        """The outage ended at ``end_ms``: its incident closes there. An incident opened for
        silence before the drop closes too, unless the station is silent again now."""
        inc = rt.incident
        if inc is None or (inc.state is State.SILENT and rt.state in _PROBLEMS):
            return
        _, event = inc_events.closed(inc, max(end_ms, inc.opened_ms))
        events.append(event)
        rt.incident = None
        if rt.state not in _PROBLEMS:
            rt.problem_since = None

    # ----- upstreams ----------------------------------------------------------------------
    def _children(self, uid: str) -> list[str]:
        """Station ids behind an upstream (computed once: the inventory is fixed)."""
        ids = self._children_of.get(uid)
        if ids is None:
            ids = self._children_of[uid] = [s.id for s in self.inventory.children_of(uid)]
        return ids

    def _check_upstream(self, uid: str, now: int, events: list[HealthEvent]) -> None:
        status = self.upstreams[uid]
        children = self._children(uid)
        down = [sid for sid in children if self.stations[sid].state is State.DOWN]
        # Entering needs the drops close together ("at once"); staying needs only the count.
        together = len(down) if status.inferred_ms is not None else self._most_at_once(down)
        failed = quorum_down(
            together, len(children), self.config.upstream_quorum, self.config.upstream_min_children
        )
        if failed and status.inferred_ms is None:
            at = max(self.stations[sid].problem_since or now for sid in down)
            was_down, status.inferred_ms = status.down, at
            if not was_down:
                events.extend(self._upstream_failed(uid, at, "stations", now))
        elif not failed and status.inferred_ms is not None:
            since, status.inferred_ms = status.since_ms, None
            if not status.down:
                back = [self.stations[s].since_ms or now for s in children if s not in down]
                events.append(restored_event(uid, max(back, default=now), since))

    def _most_at_once(self, down: list[str]) -> int:
        """The most stations whose drops fall within ``upstream_window_s`` of each other."""
        times = sorted(self.stations[sid].problem_since or 0 for sid in down)
        span = self.config.upstream_window_s * 1000
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] > span:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def _upstream_failed(self, uid: str, at: int, how: str, now: int) -> list[HealthEvent]:
        """UPSTREAM_DOWN; incidents its stations already opened are put on hold under it."""
        children = [s.id for s in self.inventory.children_of(uid)]
        events = [down_event(uid, at, children, how)]
        for sid in children:
            rt = self.stations[sid]
            if rt.incident is not None and rt.incident.cause is not Cause.UPSTREAM:
                fixed = replace(rt.incident, cause=Cause.UPSTREAM, upstream=uid)
                events.append(
                    inc_events.reclassified(rt.incident, fixed, now, f"upstream {uid} down")
                )
                rt.incident = fixed
        return events

    def _prune(self, now: int) -> None:
        cutoff = now - self.config.history_days * 86_400_000
        for sid, timeline in self.transitions.items():
            i = next((k for k, t in enumerate(timeline) if t.ts_ms >= cutoff), len(timeline))
            if i > 1:
                self.transitions[sid] = timeline[i - 1 :]
