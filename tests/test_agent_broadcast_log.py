"""Broadcast log: MCU PLAYBACK and audio-presence detection, validated as Broadcast payloads."""

from __future__ import annotations

import pytest

from agent.audio import AudioLevels
from agent.broadcast_log import BroadcastLog
from firmware_protocol import Playback, PlaybackAction, Priority, Source
from loaxa.payloads import Broadcast

T0 = 1_790_000_000_000  # ms


class Sink:
    def __init__(self) -> None:
        self.entries: list[tuple[dict, int]] = []

    def __call__(self, fields: dict, ts_ms: int) -> None:
        # every entry must be a valid payload once the publisher adds the envelope
        Broadcast(station="cb-01267", session=1, seq=len(self.entries), ts=ts_ms, **fields)
        self.entries.append((fields, ts_ms))

    @property
    def actions(self) -> list[str]:
        return [f["action"] for f, _ in self.entries]


def pb(action, source=Source.PROVINCIAL_RELAY, priority=Priority.NORMAL, mask=0b11):
    return Playback(action, source, priority, mask, 100)


def level(dbfs: float | None) -> AudioLevels:
    return AudioLevels(dbfs, dbfs, 0.0, False)


def test_mcu_program_start_and_stop():
    sink = Sink()
    log = BroadcastLog(sink)
    log.on_playback(pb(PlaybackAction.START, Source.NATIONAL_RELAY, Priority.EMERGENCY), T0)
    log.on_playback(pb(PlaybackAction.STOP, Source.NATIONAL_RELAY, Priority.EMERGENCY),
                    T0 + 30 * 60_000)  # fmt: skip
    (start, t1), (stop, t2) = sink.entries
    assert start == {
        "action": "start", "source": "national_relay", "priority": "emergency",
        "clusters": [0, 1], "detected_by": "mcu", "start_ts": T0,
    }  # fmt: skip
    assert stop["end_ts"] - stop["start_ts"] == 30 * 60_000 and t2 == stop["end_ts"]
    assert t1 == T0 and log.current is None


def test_new_program_closes_the_previous_one():
    sink = Sink()
    log = BroadcastLog(sink)
    log.on_playback(pb(PlaybackAction.START, Source.PROVINCIAL_RELAY), T0)
    log.on_playback(pb(PlaybackAction.START, Source.PROVINCIAL_RELAY), T0 + 1000)  # repeated
    log.on_playback(pb(PlaybackAction.START, Source.LOCAL_BULLETIN, Priority.PRIORITY), T0 + 5000)
    assert sink.actions == ["start", "stop", "start"]
    assert sink.entries[1][0]["end_ts"] == T0 + 5000
    assert sink.entries[2][0]["source"] == "local_bulletin"
    assert log.counts["repeated_starts"] == 1


def test_stop_without_start_is_counted_not_logged():
    sink = Sink()
    log = BroadcastLog(sink)
    log.on_playback(pb(PlaybackAction.STOP), T0)
    assert sink.entries == [] and log.counts["orphan_stops"] == 1


def test_unknown_source_and_priority_codes():
    sink = Sink()
    BroadcastLog(sink).on_playback(Playback(1, 77, 9, 0, 0), T0)
    assert sink.entries[0][0]["source"] == "other"
    assert sink.entries[0][0]["priority"] == "normal"


def test_audio_presence_with_hold_times():
    sink = Sink()
    log = BroadcastLog(sink, presence_dbfs=-50, start_hold_s=5, stop_hold_s=30)
    t = T0
    for dbfs in [-70, -20, -20, -20]:  # 2 s steps: loud from T0+2s, 4 s of loudness < 5 s
        log.on_levels(level(dbfs), t)
        t += 2000
    assert sink.entries == []
    log.on_levels(level(-20), t)  # T0+8s: loud for 6 s
    assert sink.entries[0][0] | {"start_ts": None} == {
        "action": "start", "source": "other", "priority": "normal", "clusters": [],
        "detected_by": "audio", "start_ts": None,
    }  # fmt: skip
    assert sink.entries[0][0]["start_ts"] == T0 + 2000  # the program began at the first loud
    last_loud = t
    for _ in range(14):  # 28 s of quiet < 30 s hold: a pause between items, not an end
        t += 2000
        log.on_levels(level(-80), t)
    assert sink.actions == ["start"]
    log.on_levels(level(None), t + 1000)  # level unknown: no change
    t += 2000
    log.on_levels(level(-80), t)
    assert sink.actions == ["start", "stop"]
    assert sink.entries[1][0]["end_ts"] == last_loud


def test_auto_mode_prefers_the_mcu_once_it_reports():
    sink = Sink()
    log = BroadcastLog(sink, start_hold_s=0)
    log.on_levels(level(-20), T0)
    assert sink.actions == ["start"] and log.current["detected_by"] == "audio"
    log.on_playback(pb(PlaybackAction.START), T0 + 3000)
    assert sink.actions == ["start", "stop", "start"]
    assert log.current["detected_by"] == "mcu"
    log.on_levels(level(-90), T0 + 3_600_000)  # audio is no longer listened to
    assert sink.actions == ["start", "stop", "start"]


def test_open_program_survives_an_agent_restart(tmp_path):
    state = tmp_path / "broadcast.json"
    first = Sink()
    BroadcastLog(first, state_path=state).on_playback(pb(PlaybackAction.START), T0)
    second = Sink()
    log = BroadcastLog(second, state_path=state)
    log.on_playback(pb(PlaybackAction.STOP), T0 + 60_000)
    assert second.entries[0][0]["start_ts"] == T0 and second.entries[0][0]["end_ts"] == T0 + 60_000


def test_corrupt_state_file_starts_empty(tmp_path):
    state = tmp_path / "broadcast.json"
    state.write_text("{not json")
    log = BroadcastLog(Sink(), state_path=state)
    assert log.current is None and log.counts["state_errors"] == 1


def test_consumer_error_is_counted():
    def boom(fields, ts):
        raise RuntimeError("queue full")

    log = BroadcastLog(boom)
    log.on_playback(pb(PlaybackAction.START), T0)
    assert log.counts["callback_errors"] == 1 and log.current is not None


@pytest.mark.parametrize("mode", ["mcu", "audio"])
def test_fixed_modes_ignore_the_other_detector(mode):
    sink = Sink()
    log = BroadcastLog(sink, mode=mode, start_hold_s=0)
    log.on_levels(level(-10), T0)
    log.on_playback(pb(PlaybackAction.START), T0)
    assert [f["detected_by"] for f, _ in sink.entries] == [mode]
