"""Broadcast log: what the station played, from which source, at which priority, from when to when.

Entries are keyword args for ``loaxa.payloads.Broadcast`` (minus the envelope), handed to
``on_entry(fields, ts_ms)``: a ``start`` entry when a program begins, a ``stop`` entry (with
``start_ts`` and ``end_ts``) when it ends, so the Department can add up broadcast minutes.

Two detectors, one program open at a time:

- ``mcu``: the controller's PLAYBACK messages (source, priority, clusters are known);
- ``audio``: audio presence, when the controller does not report playback: level at or above
  ``presence_dbfs`` for ``start_hold_s`` starts a program (at the first loud moment), below it
  for ``stop_hold_s`` ends it (at the last loud moment). Source/priority are then unknown.

Mode ``auto`` listens to audio until the first PLAYBACK arrives, then only to the MCU.
The open program is saved to ``state_path`` (JSON) so an agent restart can still close it.
The logic is pure (the caller passes the time); I/O is limited to the small state file.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from agent.audio import AudioLevels
from agent.convert import program_priority, program_source
from firmware_protocol import Playback
from loaxa.payloads import Priority, ProgramSource

log = logging.getLogger(__name__)
EntryCallback = Callable[[dict[str, Any], int], None]


class BroadcastLog:
    def __init__(
        self,
        on_entry: EntryCallback,
        *,
        mode: Literal["auto", "mcu", "audio"] = "auto",
        presence_dbfs: float = -50.0,
        start_hold_s: float = 5.0,
        stop_hold_s: float = 30.0,
        state_path: str | Path | None = None,
    ) -> None:
        self.on_entry = on_entry
        self.mode = mode
        self.presence_dbfs = presence_dbfs
        self.start_hold_ms = round(start_hold_s * 1000)
        self.stop_hold_ms = round(stop_hold_s * 1000)
        self.state_path = Path(state_path) if state_path else None
        self.counts: Counter[str] = Counter()
        self.mcu_seen = mode == "mcu"
        self._loud_since: int | None = None  # audio: start of the current loud stretch
        self._last_loud: int | None = None  # audio: last moment the level was present
        self.current: dict[str, Any] | None = self._load()

    # --- MCU ---------------------------------------------------------------------------

    def on_playback(self, pb: Playback, ts_ms: int) -> None:
        if self.mode == "audio":
            return
        self.mcu_seen = True
        program = {
            "source": program_source(pb).value,
            "priority": program_priority(pb).value,
            "clusters": list(pb.cluster_ids),
            "detected_by": "mcu",
        }
        if pb.started:
            self._mcu_start(program, ts_ms)
        elif self.current is None:
            self.counts["orphan_stops"] += 1
            log.warning("PLAYBACK stop with no program open (agent restarted?); not logged")
        else:
            self._stop(ts_ms)

    def _mcu_start(self, program: dict[str, Any], ts_ms: int) -> None:
        if self.current is not None:
            if {k: self.current[k] for k in program} == program:
                self.counts["repeated_starts"] += 1
                return
            self.counts["replaced"] += 1  # a new program (or the MCU took over from audio)
            self._stop(ts_ms)
        self._start(program, ts_ms)

    # --- audio -------------------------------------------------------------------------

    def on_levels(self, levels: AudioLevels | None, ts_ms: int) -> None:
        """Feed the current level regularly (every few seconds). None: level unknown, no change."""
        if self.mode == "mcu" or (self.mode == "auto" and self.mcu_seen):
            return
        if levels is None or levels.rms_dbfs is None:
            return
        if levels.rms_dbfs >= self.presence_dbfs:
            self._last_loud = ts_ms
            if self._loud_since is None:
                self._loud_since = ts_ms
            if self.current is None and ts_ms - self._loud_since >= self.start_hold_ms:
                program = {
                    "source": ProgramSource.OTHER.value,
                    "priority": Priority.NORMAL.value,
                    "clusters": [],
                    "detected_by": "audio",
                }
                self._start(program, self._loud_since)
            return
        self._loud_since = None
        if self.current is None:
            return
        if self._last_loud is None:  # program restored from the state file: hold from now
            self._last_loud = ts_ms
        if ts_ms - self._last_loud >= self.stop_hold_ms:
            self._stop(self._last_loud)

    # --- entries and state -------------------------------------------------------------

    def _start(self, program: dict[str, Any], start_ts: int) -> None:
        self.current = {**program, "start_ts": start_ts}
        self._save()
        self._emit({"action": "start", **self.current}, start_ts)

    def _stop(self, end_ts: int) -> None:
        assert self.current is not None
        program, self.current = self.current, None
        self._save()
        end_ts = max(end_ts, program["start_ts"])
        self._emit({"action": "stop", **program, "end_ts": end_ts}, end_ts)

    def _emit(self, fields: dict[str, Any], ts_ms: int) -> None:
        self.counts[fields["action"]] += 1
        try:
            self.on_entry(fields, ts_ms)
        except Exception:  # the consumer's bug must not lose the log's state
            self.counts["callback_errors"] += 1
            log.exception("broadcast log consumer failed")

    def _load(self) -> dict[str, Any] | None:
        if self.state_path is None or not self.state_path.exists():
            return None
        try:
            state = json.loads(self.state_path.read_text())
            return state if isinstance(state, dict) and "start_ts" in state else None
        except (OSError, ValueError) as err:
            self.counts["state_errors"] += 1
            log.error("broadcast state %s unreadable, starting empty: %s", self.state_path, err)
            return None

    def _save(self) -> None:
        if self.state_path is None:
            return
        try:
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.current))
            os.replace(tmp, self.state_path)  # atomic: a power cut leaves old or new, not half
        except OSError as err:
            self.counts["state_errors"] += 1
            log.error("cannot save broadcast state to %s: %s", self.state_path, err)
