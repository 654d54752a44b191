"""Audio levels from PCM samples (numpy): RMS and peak in dBFS, clipping ratio, silence flag."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class AudioConfig(BaseModel):
    """``[audio]``: where the audio level comes from and how silence is judged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["mcu", "pcm"] = Field(
        "mcu", description='"mcu": level reported by the controller; "pcm": measured from samples'
    )
    pcm_path: str | None = Field(
        None, description="raw s16le or WAV file, or a FIFO, to read samples from (source=pcm)"
    )
    pcm_command: str | None = Field(
        None,
        description='command writing raw s16le to stdout, e.g. "arecord -q -t raw -f S16_LE '
        '-r 16000 -c 1" (source=pcm)',
    )
    sample_rate: Annotated[int, Field(ge=1000, le=192_000)] = Field(
        16000, description="samples per second of the PCM input (Hz)"
    )
    channels: Annotated[int, Field(ge=1, le=8)] = Field(
        1, description="interleaved channels in the PCM input; levels use all of them"
    )
    window_s: Annotated[float, Field(gt=0, le=60)] = Field(
        1.0, description="length of the window the levels are computed over (s)"
    )
    silence_threshold_dbfs: Annotated[float, Field(ge=-120, le=0)] = Field(
        -50.0, description="RMS below this counts as silence (dBFS)"
    )
    silence_hold_s: Annotated[float, Field(ge=0, le=86400)] = Field(
        30.0, description="silence must last this long before the silent flag is set (s)"
    )
    clip_level_dbfs: Annotated[float, Field(ge=-20, le=0)] = Field(
        -0.1, description="samples at or above this magnitude count as clipped (dBFS)"
    )

    @model_validator(mode="after")
    def _pcm_input_given(self) -> AudioConfig:
        if self.source == "pcm" and not (self.pcm_path or self.pcm_command):
            raise ValueError('source = "pcm" needs pcm_path or pcm_command')
        if self.pcm_path and self.pcm_command:
            raise ValueError("give pcm_path or pcm_command, not both")
        return self


FLOOR_DBFS = -120.0  # reported for digital silence: a number, never -inf/NaN in JSON
_BLOCK_S = 0.1  # silence is judged per 100 ms block of audio time, so the hold is sample-exact


def to_dbfs(ratio: float) -> float:
    """Level relative to full scale (a full-scale square wave is 0 dBFS), floored at FLOOR_DBFS."""
    if not math.isfinite(ratio) or ratio <= 0.0:
        return FLOOR_DBFS
    return max(FLOOR_DBFS, min(0.0, 20.0 * math.log10(ratio)))


def normalise(samples: np.ndarray) -> np.ndarray:
    """int16 (s16le) or float samples in [-1, 1] -> float64 in [-1, 1], NaN/inf replaced by 0."""
    arr = np.asarray(samples)
    if arr.dtype == np.int16:
        return arr.astype(np.float64).ravel() / 32768.0
    if np.issubdtype(arr.dtype, np.floating):
        flat = np.nan_to_num(arr.astype(np.float64).ravel(), nan=0.0, posinf=1.0, neginf=-1.0)
        return np.clip(flat, -1.0, 1.0)
    raise ValueError(f"audio samples must be int16 or float, got dtype {arr.dtype}")


@dataclass(frozen=True)
class AudioLevels:
    """Levels over the last window. rms/peak are None when there is no audio at all yet."""

    rms_dbfs: float | None
    peak_dbfs: float | None
    clip_ratio: float
    silent: bool
    source: Literal["pcm", "mcu"] = "pcm"


class SilenceTracker:
    """Sets ``silent`` once the level stayed below the threshold for ``hold_s`` of audio time."""

    def __init__(self, threshold_dbfs: float, hold_s: float) -> None:
        self.threshold_dbfs = threshold_dbfs
        self.hold_s = hold_s
        self.quiet_s = 0.0

    def update(self, rms_dbfs: float | None, duration_s: float) -> None:
        if rms_dbfs is not None and rms_dbfs < self.threshold_dbfs:
            self.quiet_s += duration_s
        else:
            self.quiet_s = 0.0

    @property
    def silent(self) -> bool:
        return self.quiet_s > 0.0 and self.quiet_s >= self.hold_s - 1e-9  # float sums of blocks


class AudioMeter:
    """Keeps the last ``window_s`` of samples; thread-safe (a PcmSource pushes, the agent reads).

    ``push`` takes interleaved samples (int16 or float); ``push_level`` takes a level measured
    elsewhere (the MCU's report) so both inputs share one silence rule.
    """

    def __init__(
        self,
        config: AudioConfig,
        *,
        stale_after_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        # A dead input must not keep reporting its last window: levels expire without pushes.
        self.stale_after_s = stale_after_s or max(5.0, 3 * config.window_s)
        self._clock = clock
        self._fresh_until = -math.inf
        self._lock = threading.Lock()
        self._window_len = max(1, round(config.window_s * config.sample_rate * config.channels))
        self._block_len = max(1, round(_BLOCK_S * config.sample_rate) * config.channels)
        self._window = np.zeros(0)
        self._pending = np.zeros(0)  # samples not yet forming a whole silence block
        self._silence = SilenceTracker(config.silence_threshold_dbfs, config.silence_hold_s)
        self._clip = 10.0 ** (config.clip_level_dbfs / 20.0)
        self._reported: AudioLevels | None = None
        self.samples_total = 0

    def push(self, samples: np.ndarray) -> None:
        data = normalise(samples)
        with self._lock:
            self._fresh_until = self._clock() + self.stale_after_s
            self.samples_total += data.size
            self._window = np.concatenate((self._window, data))[-self._window_len :]
            pending = np.concatenate((self._pending, data))
            whole = pending.size - pending.size % self._block_len
            for block in pending[:whole].reshape(-1, self._block_len):
                rms = to_dbfs(float(np.sqrt(np.mean(block * block))))
                self._silence.update(rms, _BLOCK_S)
            self._pending = pending[whole:]
            self._reported = None

    def push_level(self, rms_dbfs: float | None, peak_dbfs: float | None, span_s: float) -> None:
        """A level measured elsewhere (MCU) covering the last ``span_s`` seconds."""
        with self._lock:
            self._fresh_until = self._clock() + max(self.stale_after_s, 3 * span_s)
            self._silence.update(rms_dbfs, span_s)
            self._reported = AudioLevels(rms_dbfs, peak_dbfs, 0.0, self._silence.silent, "mcu")

    def levels(self) -> AudioLevels:
        """Current levels; rms/peak None when nothing arrived yet or the input went stale."""
        with self._lock:
            if self._clock() > self._fresh_until:
                source = "mcu" if self._reported is not None else "pcm"
                return AudioLevels(None, None, 0.0, False, source)
            if self._reported is not None:
                return replace(self._reported, silent=self._silence.silent)
            if self._window.size == 0:
                return AudioLevels(None, None, 0.0, False)
            window = self._window
            magnitude = np.abs(window)
            rms = float(np.sqrt(np.mean(window * window)))
            return AudioLevels(
                rms_dbfs=to_dbfs(rms),
                peak_dbfs=to_dbfs(float(magnitude.max())),
                clip_ratio=float(np.count_nonzero(magnitude >= self._clip)) / window.size,
                silent=self._silence.silent,
            )
