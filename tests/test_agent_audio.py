"""Audio levels (known answers) and the PCM input thread against real files, FIFOs and pipes."""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import wave

import numpy as np
import pytest
from pydantic import ValidationError

from agent.acoustic import AcousticConfig, AcousticMonitor, check
from agent.audio import FLOOR_DBFS, AudioConfig, AudioLevels, AudioMeter, to_dbfs
from agent.pcm_source import PcmSource
from tests.servers import wait_until

RATE = 16000
FULL = 32767


def sine(amplitude: float, seconds: float = 1.0, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return amplitude * np.sin(2 * np.pi * freq * t)


def meter(**kw) -> AudioMeter:
    return AudioMeter(AudioConfig(**kw))


def test_full_scale_sine_is_minus_3_01_rms_and_0_peak():
    m = meter()
    m.push(np.round(sine(FULL)).astype(np.int16))
    lv = m.levels()
    assert lv.rms_dbfs == pytest.approx(-3.01, abs=0.01)
    assert lv.peak_dbfs == pytest.approx(0.0, abs=0.01)
    assert lv.silent is False


def test_float_sine_at_minus_20_dbfs():
    m = meter()
    m.push(sine(0.1 * math.sqrt(2)))  # RMS 0.1 -> -20 dBFS
    assert m.levels().rms_dbfs == pytest.approx(-20.0, abs=0.01)


def test_full_scale_square_wave_is_0_dbfs_rms():
    m = meter()
    square = np.where(np.arange(RATE) % 16 < 8, FULL, -FULL).astype(np.int16)
    m.push(square)
    assert m.levels().rms_dbfs == pytest.approx(0.0, abs=0.01)


def test_clip_ratio_of_a_sine_clipped_at_half_its_amplitude():
    m = meter(clip_level_dbfs=-0.1)
    clipped = np.clip(sine(2.0 * FULL, freq=997.0), -FULL, FULL).astype(np.int16)
    m.push(clipped)
    # |2 sin x| >= 10^(-0.1/20) for this fraction of a period:
    threshold = 10 ** (-0.1 / 20) / 2
    expected = 1.0 - (2.0 / math.pi) * math.asin(threshold)
    assert m.levels().clip_ratio == pytest.approx(expected, abs=0.005)


def test_clean_sine_has_no_clipping():
    m = meter()
    m.push(np.round(sine(0.5 * FULL)).astype(np.int16))
    assert m.levels().clip_ratio == 0.0


def test_digital_silence_is_a_floor_value_that_serialises():
    m = meter(silence_hold_s=0.5)
    m.push(np.zeros(RATE, dtype=np.int16))
    lv = m.levels()
    assert lv.rms_dbfs == FLOOR_DBFS and lv.peak_dbfs == FLOOR_DBFS
    assert lv.silent is True
    assert json.loads(json.dumps(lv.__dict__, allow_nan=False))["rms_dbfs"] == FLOOR_DBFS


def test_no_samples_yet_means_no_level():
    lv = meter().levels()
    assert (lv.rms_dbfs, lv.peak_dbfs, lv.silent) == (None, None, False)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -1.0])
def test_to_dbfs_never_returns_inf_or_nan(bad):
    assert to_dbfs(bad) == FLOOR_DBFS


def test_nan_samples_are_treated_as_zero():
    m = meter()
    m.push(np.full(RATE, np.nan))
    assert m.levels().rms_dbfs == FLOOR_DBFS


def test_unsupported_dtype_is_a_clear_error():
    with pytest.raises(ValueError, match="int16 or float"):
        meter().push(np.zeros(10, dtype=np.int32))


def test_silence_needs_the_hold_time_of_audio():
    m = meter(silence_hold_s=3.0, silence_threshold_dbfs=-50)
    quiet = np.round(sine(FULL * 10 ** (-60 / 20) * math.sqrt(2))).astype(np.int16)  # -60 dBFS
    m.push(quiet[: RATE * 2 // 1])  # 1 s
    m.push(quiet)
    assert m.levels().silent is False  # 2 s quiet < 3 s hold
    m.push(quiet)
    assert m.levels().silent is True  # 3 s
    m.push(np.round(sine(0.5 * FULL, 0.2)).astype(np.int16))
    assert m.levels().silent is False  # audio is back


def test_silence_counts_audio_time_across_small_pushes():
    m = meter(silence_hold_s=1.0)
    zeros = np.zeros(RATE // 100, dtype=np.int16)  # 10 ms pieces, not block-aligned
    for _ in range(99):
        m.push(zeros)
    assert m.levels().silent is False
    m.push(zeros)
    assert m.levels().silent is True


def test_window_keeps_only_the_last_window_s():
    m = meter(window_s=0.5)
    m.push(np.round(sine(FULL)).astype(np.int16))
    m.push(np.zeros(RATE // 2, dtype=np.int16))
    assert m.levels().rms_dbfs == FLOOR_DBFS


def test_stereo_levels_use_both_channels():
    m = meter(channels=2)
    left = np.round(sine(FULL)).astype(np.int16)
    stereo = np.column_stack((left, np.zeros_like(left))).ravel()
    m.push(stereo)
    assert m.levels().rms_dbfs == pytest.approx(-3.01 - 3.01, abs=0.02)  # half the power


def test_mcu_levels_share_the_silence_rule():
    m = meter(silence_hold_s=10)
    m.push_level(-70.0, -60.0, 5)
    assert m.levels().source == "mcu" and m.levels().silent is False
    m.push_level(-70.0, -60.0, 5)
    assert m.levels().silent is True and m.levels().rms_dbfs == -70.0
    m.push_level(None, None, 5)  # unknown level: not evidence of silence
    assert m.levels().silent is False


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"source": "pcm"}, "needs pcm_path or pcm_command"),
        ({"pcm_path": "a", "pcm_command": "b"}, "not both"),
        ({"silence_threshold_dbfs": 3}, "less than or equal to 0"),
        ({"unknown_key": 1}, "Extra inputs"),
    ],
)
def test_config_errors_name_the_problem(kw, message):
    with pytest.raises(ValidationError, match=message):
        AudioConfig(**kw)


# --- PCM input -------------------------------------------------------------------------------


def full_scale_sine_bytes(seconds: float = 1.0) -> bytes:
    return np.round(sine(FULL, seconds)).astype("<i2").tobytes()


def run_source(cfg: AudioConfig, m: AudioMeter, done) -> PcmSource:
    src = PcmSource(cfg, m, restart_delay_s=0.1).start()
    try:
        wait_until(done, 10, what="PCM samples to reach the meter")
    finally:
        src.stop()
    assert not src._thread.is_alive()
    return src


def test_raw_s16le_file(tmp_path):
    path = tmp_path / "a.raw"
    path.write_bytes(full_scale_sine_bytes() + b"\x01")  # a stray odd byte is kept, not pushed
    cfg = AudioConfig(source="pcm", pcm_path=str(path))
    m = AudioMeter(cfg)
    src = run_source(cfg, m, lambda: m.samples_total == RATE)
    assert src.finished.is_set()
    assert m.levels().rms_dbfs == pytest.approx(-3.01, abs=0.01)


def test_wav_file(tmp_path):
    path = tmp_path / "a.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(full_scale_sine_bytes())
    cfg = AudioConfig(source="pcm", pcm_path=str(path))
    m = AudioMeter(cfg)
    run_source(cfg, m, lambda: m.samples_total == RATE)
    assert m.levels().peak_dbfs == pytest.approx(0.0, abs=0.01)


def test_8_bit_wav_is_counted_as_an_error(tmp_path):
    path = tmp_path / "a.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(RATE)
        w.writeframes(b"\x80" * 100)
    cfg = AudioConfig(source="pcm", pcm_path=str(path))
    src = PcmSource(cfg, AudioMeter(cfg), restart_delay_s=0.05).start()
    try:
        wait_until(lambda: src.errors >= 1, 10, what="the 8-bit WAV to be refused")
    finally:
        src.stop()


def test_fifo_is_reopened_when_its_writer_comes_back(tmp_path):
    path = tmp_path / "audio.fifo"
    os.mkfifo(path)
    cfg = AudioConfig(source="pcm", pcm_path=str(path))
    m = AudioMeter(cfg)
    src = PcmSource(cfg, m, restart_delay_s=0.05).start()
    try:
        for round_ in (1, 2):

            def write() -> None:
                with open(path, "wb") as f:  # blocks until the reader has the FIFO open
                    f.write(full_scale_sine_bytes(0.5))

            writer = threading.Thread(target=write)
            writer.start()
            wait_until(lambda r=round_: m.samples_total == r * RATE // 2, 10, what="FIFO data")
            writer.join(5)
    finally:
        src.stop()
    assert m.levels().rms_dbfs == pytest.approx(-3.01, abs=0.01)


def test_command_pipe_is_restarted_when_it_exits(tmp_path):
    script = tmp_path / "gen.py"
    script.write_text(
        "import sys, numpy as np\n"
        f"t = np.arange({RATE}) / {RATE}\n"
        f"sys.stdout.buffer.write(np.round({FULL} * np.sin(2 * np.pi * 440 * t)).astype('<i2')"
        ".tobytes())\n"
    )
    cfg = AudioConfig(source="pcm", pcm_command=f"{sys.executable} {script}")
    m = AudioMeter(cfg)
    src = run_source(cfg, m, lambda: m.samples_total >= 2 * RATE)
    assert src.restarts >= 1 and src.errors >= 1  # the exit was logged and counted
    assert m.levels().rms_dbfs == pytest.approx(-3.01, abs=0.01)


def test_stop_ends_a_long_running_command():
    cfg = AudioConfig(source="pcm", pcm_command="cat /dev/zero")
    m = AudioMeter(cfg)
    src = run_source(cfg, m, lambda: m.samples_total > RATE)
    assert src._proc is None
    assert m.levels().rms_dbfs == FLOOR_DBFS


# --- acoustic check ---------------------------------------------------------------------------


def programme(seconds: float, seed: int = 1) -> np.ndarray:
    """Speech-like test signal: noise shaped by a slow envelope, about -20 dBFS."""
    rng = np.random.default_rng(seed)
    n = int(RATE * seconds)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(n) / RATE) ** 2
    return 0.1 * rng.standard_normal(n) * envelope


def acoustic_cfg(**kw):
    return AcousticConfig(**{"min_level_dbfs": -45, "min_correlation": 0.3, **kw})


@pytest.mark.parametrize("delay_ms", [0, 37, 180])
def test_loudspeaker_heard_with_acoustic_delay(delay_ms):
    feed = programme(2.3)
    d = RATE * delay_ms // 1000
    rng = np.random.default_rng(7)
    mic = 0.3 * np.concatenate((np.zeros(d), feed[: feed.size - d]))  # quieter, later
    mic += 0.01 * rng.standard_normal(mic.size)  # room noise
    result = check(feed, mic, acoustic_cfg())
    assert result.verdict == "sounding" and result.confirmed
    assert result.delay_ms == pytest.approx(delay_ms, abs=1000 / RATE)
    assert result.correlation > 0.9


def test_microphone_hears_something_else():
    result = check(programme(2.0, seed=1), programme(2.0, seed=2), acoustic_cfg())
    assert result.verdict == "mismatch" and abs(result.correlation) < 0.1


def test_quiet_microphone_while_the_feed_plays():
    feed = programme(2.0)
    result = check(feed, 0.001 * feed, acoustic_cfg())  # -80 dBFS: loudspeaker dead
    assert result.verdict == "silent" and not result.confirmed


def test_no_feed_means_nothing_to_check():
    result = check(np.zeros(RATE), programme(1.0), acoustic_cfg())
    assert result.verdict == "no_feed" and result.correlation is None


def test_acoustic_monitor_waits_for_full_windows():
    mon = AcousticMonitor(acoustic_cfg(max_delay_ms=100), window_s=1.0)
    feed = np.round(programme(1.1) * 32767).astype(np.int16)
    mon.feed.push(feed)
    assert mon.result() is None
    mon.mic.push(feed)
    assert mon.result().verdict == "sounding"


def test_levels_expire_when_the_input_stops():
    now = [100.0]
    m = AudioMeter(AudioConfig(), stale_after_s=5.0, clock=lambda: now[0])
    m.push(np.round(sine(FULL)).astype(np.int16))
    now[0] += 4.9
    assert m.levels().rms_dbfs == pytest.approx(-3.01, abs=0.01)
    now[0] += 0.2  # the pipe died 5.1 s ago: no stale numbers
    assert m.levels() == AudioLevels(None, None, 0.0, False, "pcm")


def test_mcu_level_expires_after_three_poll_spans():
    now = [0.0]
    m = AudioMeter(AudioConfig(), stale_after_s=5.0, clock=lambda: now[0])
    m.push_level(-20.0, -10.0, 10.0)
    now[0] = 29.0
    assert m.levels().rms_dbfs == -20.0
    now[0] = 31.0
    assert m.levels().rms_dbfs is None and m.levels().source == "mcu"


def test_acoustic_monitor_mixes_a_stereo_feed_down():
    mon = AcousticMonitor(acoustic_cfg(max_delay_ms=100), window_s=1.0, feed_channels=2)
    mono = np.round(programme(1.1) * 32767).astype(np.int16)
    stereo = np.column_stack((mono, mono)).ravel()
    mon.feed.push(stereo[:1001])  # a push that splits a stereo frame
    mon.feed.push(stereo[1001:])
    mon.mic.push(mono)
    result = mon.result()
    assert result.verdict == "sounding" and result.delay_ms == 0.0


def test_acoustic_monitor_refuses_a_feed_at_another_rate():
    with pytest.raises(ValueError, match="must equal the feed's rate"):
        AcousticMonitor(acoustic_cfg(), feed_rate=48000)
