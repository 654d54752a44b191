"""Evidence from payloads: audio level runs (silence, unscheduled audio) and the battery trend.

Pure helpers with the clock passed in; the engine owns one of each per station and the outage
reclassifier replays backfill through fresh ones, so live and late data are judged alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loaxa.payloads import AmpState, Telemetry


def audio_quiet(t: Telemetry, threshold_dbfs: float) -> bool | None:
    """True below the threshold (or flagged silent by the agent), None if no level is known."""
    if t.audio.silent:
        return True
    if t.audio.rms_dbfs is None:
        return None
    return t.audio.rms_dbfs < threshold_dbfs


def amp_fault(t: Telemetry) -> bool | None:
    if t.amp in (AmpState.FAULT, AmpState.PROTECT):
        return True
    return False if t.amp in (AmpState.ON, AmpState.OFF) else None


@dataclass
class AudioRuns:
    """Runs of quiet (for SILENT) and of audio outside every window (for unscheduled)."""

    quiet_since: int | None = None
    silent: bool = False
    window_end: int | None = None  # end of the window the current SILENT period is in
    loud_off_window_since: int | None = None
    unscheduled_reported: bool = False

    def feed(
        self, ts: int, quiet: bool | None, window: tuple[int, int] | None, after_ms: int
    ) -> tuple[int, bool] | None:
        """Feed one level reading; return (time, silent) when SILENT starts or ends.

        SILENT starts ``after_ms`` after quiet began or the window opened, whichever is later;
        it ends at the first loud reading, or at the window's end (silence outside is normal).
        """
        if quiet is None:
            return None
        if not quiet:
            self.quiet_since = None
        elif self.quiet_since is None:
            self.quiet_since = ts
        due = None
        if self.quiet_since is not None and window is not None:
            due = max(self.quiet_since, window[0]) + after_ms
        now_silent = due is not None and ts >= due
        if now_silent and window is not None:
            self.window_end = window[1]
        if now_silent == self.silent:
            return None
        self.silent = now_silent
        if now_silent and due is not None:
            return due, True
        return (ts if not quiet else min(ts, self.window_end or ts)), False

    def window_over(self, now: int) -> int | None:
        """If SILENT and its window has ended by ``now``, end it; return the window's end."""
        if self.silent and self.window_end is not None and now >= self.window_end:
            self.silent = False
            return self.window_end
        return None

    def unscheduled_from(
        self, ts: int, quiet: bool | None, window: tuple[int, int] | None, after_ms: int
    ) -> int | None:
        """Return the time to report an unscheduled broadcast (once per run), else None."""
        if quiet is None:
            return None
        if quiet or window is not None:
            self.loud_off_window_since = None
            self.unscheduled_reported = False
            return None
        if self.loud_off_window_since is None:
            self.loud_off_window_since = ts
        due = self.loud_off_window_since + after_ms
        if ts >= due and not self.unscheduled_reported:
            self.unscheduled_reported = True
            return due
        return None


def battery_slope(readings: Sequence[tuple[int, float]]) -> float | None:
    """Least-squares slope of voltage over time, V per ms; None without two distinct times."""
    n = len(readings)
    if n < 2:
        return None
    t0 = readings[0][0]
    xs = [ts - t0 for ts, _ in readings]
    ys = [v for _, v in readings]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def battery_time_left_ms(readings: Sequence[tuple[int, float]], cutoff_v: float) -> int | None:
    """Estimated ms until the fitted voltage line reaches ``cutoff_v``; None if not falling."""
    slope = battery_slope(readings)
    if slope is None or slope >= 0:
        return None
    n = len(readings)
    t0 = readings[0][0]
    mx = sum(ts - t0 for ts, _ in readings) / n
    my = sum(v for _, v in readings) / n
    now = readings[-1][0] - t0
    fitted_now = my + slope * (now - mx)
    return max(0, int((cutoff_v - fitted_now) / slope))
