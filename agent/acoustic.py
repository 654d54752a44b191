"""Optional acoustic check: a microphone near a loudspeaker cluster vs. the line feed."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.audio import FLOOR_DBFS, normalise, to_dbfs


class AcousticConfig(BaseModel):
    """``[acoustic]``: microphone that confirms a loudspeaker cluster actually sounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(False, description="run the acoustic check (needs a microphone)")
    pcm_path: str | None = Field(
        None, description="raw s16le file or FIFO with the microphone's samples"
    )
    pcm_command: str | None = Field(
        None, description="command writing the microphone's raw s16le samples to stdout"
    )
    sample_rate: Annotated[int, Field(ge=1000, le=192_000)] = Field(
        16000, description="samples per second of the microphone input (Hz)"
    )
    max_delay_ms: Annotated[float, Field(ge=0, le=2000)] = Field(
        300.0, description="largest acoustic delay searched by cross-correlation (ms)"
    )
    min_level_dbfs: Annotated[float, Field(ge=-120, le=0)] = Field(
        -45.0, description="microphone RMS below this while the feed plays means no sound (dBFS)"
    )
    min_correlation: Annotated[float, Field(ge=0, le=1)] = Field(
        0.3, description="peak normalised correlation with the feed needed to confirm (0..1)"
    )

    @model_validator(mode="after")
    def _input_given(self) -> AcousticConfig:
        if self.enabled and not (self.pcm_path or self.pcm_command):
            raise ValueError("enabled = true needs pcm_path or pcm_command")
        if self.pcm_path and self.pcm_command:
            raise ValueError("give pcm_path or pcm_command, not both")
        return self


@dataclass(frozen=True)
class AcousticResult:
    """One check. ``verdict``: sounding (heard and matches the feed), silent (feed plays, the
    microphone hears too little), mismatch (heard, but not the feed), no_feed (nothing to check).
    """

    level_dbfs: float
    correlation: float | None
    delay_ms: float | None
    verdict: Literal["sounding", "silent", "mismatch", "no_feed"]

    @property
    def confirmed(self) -> bool:
        return self.verdict == "sounding"


def _rms_dbfs(x: np.ndarray) -> float:
    return to_dbfs(float(np.sqrt(np.mean(x * x)))) if x.size else FLOOR_DBFS


def best_lag(feed: np.ndarray, mic: np.ndarray, max_lag: int) -> tuple[float, int]:
    """Peak normalised cross-correlation of ``mic`` against ``feed`` over lags -max..+max.

    A positive lag means the microphone hears the feed that many samples later. Each lag is
    normalised by the energy of the overlapping parts, so the value is a true correlation
    coefficient-like number in [-1, 1] whatever the loudspeaker's gain.
    """
    n = min(feed.size, mic.size)
    feed, mic = feed[-n:], mic[-n:]
    max_lag = min(max_lag, n - 1)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(mic, size) * np.conj(np.fft.rfft(feed, size))
    raw = np.fft.irfft(spectrum, size)  # raw[d] = sum_t mic[t] * feed[t - d]
    lags = np.arange(-max_lag, max_lag + 1)
    dots = raw[lags % size]
    feed_energy = np.concatenate(([0.0], np.cumsum(feed * feed)))
    mic_energy = np.concatenate(([0.0], np.cumsum(mic * mic)))
    # overlap at lag d >= 0: mic[d:n] with feed[:n-d]; at d < 0: mic[:n-|d|] with feed[|d|:n]
    a, pos = np.abs(lags), lags >= 0
    f_e = np.where(pos, feed_energy[n - a], feed_energy[n] - feed_energy[a])
    m_e = np.where(pos, mic_energy[n] - mic_energy[a], mic_energy[n - a])
    norm = np.sqrt(f_e * m_e)
    corr = np.divide(dots, norm, out=np.zeros_like(dots), where=norm > 0)
    best = int(np.argmax(corr))
    return float(np.clip(corr[best], -1.0, 1.0)), int(lags[best])


def check(
    feed: np.ndarray, mic: np.ndarray, config: AcousticConfig, feed_threshold_dbfs: float = -50.0
) -> AcousticResult:
    """Compare microphone samples with the line feed of the same time span (floats in [-1, 1])."""
    level = _rms_dbfs(mic)
    if feed.size == 0 or mic.size == 0 or _rms_dbfs(feed) < feed_threshold_dbfs:
        return AcousticResult(level, None, None, "no_feed")
    max_lag = round(config.max_delay_ms / 1000 * config.sample_rate)
    corr, lag = best_lag(feed, mic, max_lag)
    delay_ms = 1000.0 * lag / config.sample_rate
    if level < config.min_level_dbfs:
        verdict = "silent"
    elif corr < config.min_correlation:
        verdict = "mismatch"
    else:
        verdict = "sounding"
    return AcousticResult(level, corr, delay_ms, verdict)


class SampleBuffer:
    """The last ``length`` samples pushed, mixed down to mono (thread-safe); a PcmSource sink."""

    def __init__(self, length: int, channels: int = 1) -> None:
        self.length = length
        self.channels = channels
        self._data = np.zeros(0)
        self._carry = np.zeros(0)  # samples of an incomplete interleaved frame
        self._lock = threading.Lock()

    def push(self, samples: np.ndarray) -> None:
        data = normalise(samples)
        with self._lock:
            if self.channels > 1:
                data = np.concatenate((self._carry, data))
                whole = data.size - data.size % self.channels
                self._carry = data[whole:]
                data = data[:whole].reshape(-1, self.channels).mean(axis=1)
            self._data = np.concatenate((self._data, data))[-self.length :]

    def snapshot(self) -> np.ndarray:
        with self._lock:
            return self._data.copy()


class AcousticMonitor:
    """Keeps the feed and microphone streams (push from two PcmSources) and checks on demand.

    The feed is the line-level PCM input ([audio]); ``feed_rate``/``feed_channels`` describe it.
    It must have the microphone's sample rate (cross-correlation compares sample by sample).
    """

    def __init__(
        self,
        config: AcousticConfig,
        *,
        window_s: float = 2.0,
        feed_threshold_dbfs: float = -50,
        feed_rate: int | None = None,
        feed_channels: int = 1,
    ) -> None:
        if feed_rate is not None and feed_rate != config.sample_rate:
            raise ValueError(
                f"acoustic.sample_rate ({config.sample_rate}) must equal the feed's rate "
                f"(audio.sample_rate = {feed_rate})"
            )
        self.config = config
        self.feed_threshold_dbfs = feed_threshold_dbfs
        length = round((window_s + config.max_delay_ms / 1000) * config.sample_rate)
        self.feed = SampleBuffer(length, feed_channels)
        self.mic = SampleBuffer(length)

    def result(self) -> AcousticResult | None:
        """None until both streams have delivered a full window."""
        feed, mic = self.feed.snapshot(), self.mic.snapshot()
        if min(feed.size, mic.size) < self.feed.length:
            return None
        return check(feed, mic, self.config, self.feed_threshold_dbfs)
