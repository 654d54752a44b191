"""PCM input thread: raw s16le or WAV file, FIFO, or a command's stdout (arecord) -> a meter.

Raw input is signed 16-bit little-endian, interleaved channels, at the configured rate. A WAV
file (RIFF header) must be 16-bit PCM; its header's rate/channels are checked against the
config. A FIFO is reopened when its writer goes away; a command is restarted when it exits.
A regular file is read once to its end (tests, demos, replaying a recording).
"""

from __future__ import annotations

import logging
import os
import select
import shlex
import stat
import subprocess
import threading
import wave
from collections.abc import Iterator
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)
_CHUNK = 4096  # bytes per read: 128 ms of 16 kHz mono, small enough to keep levels fresh
_SELECT_S = 0.2  # how often a blocked reader checks for stop()


class PcmInputConfig(Protocol):
    pcm_path: str | None
    pcm_command: str | None
    sample_rate: int


class SampleSink(Protocol):
    def push(self, samples: np.ndarray) -> None: ...


class PcmSource:
    """Reads samples in its own thread and pushes them to ``sink``; never raises out of it."""

    def __init__(
        self, config: PcmInputConfig, meter: SampleSink, *, restart_delay_s: float = 5.0
    ) -> None:
        if not (config.pcm_path or config.pcm_command):
            raise ValueError("PcmSource needs pcm_path or pcm_command")
        self.config = config
        self.sink = meter
        self.channels = int(getattr(config, "channels", 1))
        self.restart_delay_s = restart_delay_s
        self.bytes_read = 0
        self.restarts = 0
        self.errors = 0
        self.finished = threading.Event()  # set when a regular file has been read to its end
        self._stop = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name="pcm-source", daemon=True)

    def start(self) -> PcmSource:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._kill_command()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.config.pcm_command:
                    self._read_command(self.config.pcm_command)
                else:
                    done = self._read_path(str(self.config.pcm_path))
                    if done:
                        self.finished.set()
                        return
            except (OSError, ValueError, wave.Error) as err:
                self.errors += 1
                log.error("PCM input %s failed: %s", self._describe(), err)
            if self._stop.wait(self.restart_delay_s):
                return
            self.restarts += 1

    def _describe(self) -> str:
        return self.config.pcm_command or str(self.config.pcm_path)

    def _read_path(self, path: str) -> bool:
        """Returns True when a regular file is done; False when a FIFO's writer left."""
        if stat.S_ISFIFO(os.stat(path).st_mode):
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                self._pump(self._chunks(fd))
            finally:
                os.close(fd)
            return False
        with open(path, "rb") as f:
            if f.read(4) == b"RIFF":
                self._read_wav(path)
            else:
                f.seek(0)
                self._pump(iter(lambda: f.read(_CHUNK), b""))
        return True

    def _read_wav(self, path: str) -> None:
        with wave.open(path, "rb") as w:
            if w.getsampwidth() != 2:
                raise ValueError(f"{path}: WAV must be 16-bit PCM, has {8 * w.getsampwidth()}-bit")
            if w.getframerate() != self.config.sample_rate or w.getnchannels() != self.channels:
                log.warning(
                    "%s: WAV is %d Hz x%d, config says %d Hz x%d; using the file's channels",
                    path,
                    w.getframerate(),
                    w.getnchannels(),
                    self.config.sample_rate,
                    self.channels,
                )
            frames = _CHUNK // (2 * w.getnchannels())
            self._pump(iter(lambda: w.readframes(frames), b""))

    def _read_command(self, command: str) -> None:
        self._proc = subprocess.Popen(
            shlex.split(command), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        assert self._proc.stdout is not None
        try:
            self._pump(self._chunks(self._proc.stdout.fileno()))
        finally:
            code = self._kill_command()
            if not self._stop.is_set():
                self.errors += 1
                log.error("PCM command %r exited with %s; restarting", command, code)

    def _kill_command(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout:
            proc.stdout.close()
        return proc.returncode

    def _chunks(self, fd: int) -> Iterator[bytes]:
        """Reads a pipe/FIFO until EOF or stop(), waking up regularly to notice stop()."""
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], _SELECT_S)
            if not ready:
                continue
            try:
                data = os.read(fd, _CHUNK)
            except BlockingIOError:
                continue
            if not data:
                return
            yield data

    def _pump(self, chunks: Iterator[bytes]) -> None:
        carry = b""  # an odd byte waits for its partner: samples are 2 bytes
        for chunk in chunks:
            if self._stop.is_set():
                return
            self.bytes_read += len(chunk)
            data = carry + chunk
            whole = len(data) - len(data) % 2
            carry = data[whole:]
            if whole:
                self.sink.push(np.frombuffer(data[:whole], dtype="<i2"))
