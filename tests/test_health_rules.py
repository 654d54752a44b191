"""Pure rules: outage judgement from backfill, battery trend, audio runs, flaps, compliance."""

from __future__ import annotations

import pytest

from collector.health.compliance import compliance
from collector.health.events import State
from collector.health.flaps import FlapCounter
from collector.health.outage import Evidence, judge_outage
from collector.health.signals import AudioRuns, battery_slope, battery_time_left_ms
from tests.test_health_engine import make_inventory

MIN = 60_000
RULES = {"interval_ms": MIN, "down_after_ms": 3 * MIN, "silence_after_ms": 5 * MIN}


def no_window(_ts: int) -> None:
    return None


def test_fully_covered_outage_is_link_down():
    ev = [Evidence(t * MIN, quiet=False) for t in range(11, 60)]
    v = judge_outage(10 * MIN + 30_000, 60 * MIN, 10 * MIN, ev, window_of=no_window, **RULES)
    assert v.segments == [(10 * MIN + 30_000, State.LINK_DOWN)] and v.outage_start is None


def test_gap_in_backfill_is_down_from_first_missed_report():
    ev = [Evidence(t * MIN, on_battery=True) for t in range(11, 21)] + [Evidence(40 * MIN)]
    v = judge_outage(10 * MIN, 60 * MIN, 10 * MIN, ev, window_of=no_window, **RULES)
    assert v.segments == [
        (10 * MIN, State.LINK_DOWN),
        (21 * MIN, State.DOWN),
        (40 * MIN, State.LINK_DOWN),
        (41 * MIN, State.DOWN),
    ]
    assert v.outage_start == 21 * MIN and v.on_battery_at_loss


def test_quiet_backfill_inside_a_window_is_silent():
    def window(ts: int) -> tuple[int, int] | None:
        return (20 * MIN, 40 * MIN) if 20 * MIN <= ts < 40 * MIN else None

    ev = [Evidence(t * MIN, quiet=True) for t in range(11, 60)]
    v = judge_outage(10 * MIN, 60 * MIN, 10 * MIN, ev, window_of=window, **RULES)
    assert v.segments == [
        (10 * MIN, State.LINK_DOWN),
        (25 * MIN, State.SILENT),
        (40 * MIN, State.LINK_DOWN),
    ]


def test_battery_fit_and_time_left():
    readings = [(k * MIN, 12.6 - 0.05 * k) for k in range(10)]
    assert battery_slope(readings) == pytest.approx(-0.05 / MIN)
    assert battery_time_left_ms(readings, 10.5) == pytest.approx(33 * MIN, abs=1)
    assert battery_time_left_ms([(0, 12.0), (MIN, 12.1)], 10.5) is None  # charging
    assert battery_slope([(0, 12.0)]) is None and battery_slope([(5, 12.0), (5, 11.0)]) is None


def test_audio_runs_silence_starts_after_hold_and_ends_at_window_end():
    runs = AudioRuns()
    w = (0, 30 * MIN)
    assert runs.feed(MIN, True, w, 5 * MIN) is None
    assert runs.feed(6 * MIN, True, w, 5 * MIN) == (6 * MIN, True)
    assert runs.window_over(29 * MIN) is None and runs.window_over(30 * MIN) == 30 * MIN
    assert runs.feed(31 * MIN, True, None, 5 * MIN) is None  # quiet outside a window is fine
    assert runs.feed(32 * MIN, None, None, 5 * MIN) is None  # no level: nothing learned


def test_flap_counter_summarises_once_per_window():
    f = FlapCounter()
    got = [f.drop(t * MIN, 60 * MIN, 3) for t in (0, 10, 20, 30, 75, 85)]
    assert got == [None, None, 3, None, None, 3]


def test_compliance_per_commune_and_province():
    inv = make_inventory()
    states = {"cb-01267": State.ON_BATTERY, "cb-01282": State.DOWN, "cb-01705": State.LINK_DOWN}
    states["cb-01290"] = State.OPERATING
    snap = compliance(inv, lambda sid, _ts: states[sid], 0)
    assert snap.percent == 50.0 and not snap.meets_goal
    (bad,) = snap.below_goal
    assert (bad.code, bad.failing) == ("01273", {"cb-01282": State.DOWN})
    states["cb-01282"] = State.BATTERY_LOW
    assert compliance(inv, lambda sid, _ts: states[sid], 0).meets_goal
    states["cb-01290"] = State.UNKNOWN  # never seen is not operating
    assert compliance(inv, lambda sid, _ts: states[sid], 0).percent == 50.0
