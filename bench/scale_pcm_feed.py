"""A live 16-bit PCM source for the agent footprint benchmark: ``pcm_command`` of the agent.

    python bench/scale_pcm_feed.py [RATE]

Writes mono s16le at RATE samples/s (default 16000) to stdout in real time, 100 ms per write,
paced by the monotonic clock (as ``arecord -t raw -f S16_LE -r 16000 -c 1`` would): a 440 Hz
tone at about -20 dBFS with a little noise, so the agent's meter sees a program on air.
Runs until its reader goes away (broken pipe) or it is terminated.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def main() -> None:
    rate = int(sys.argv[1]) if len(sys.argv) > 1 else 16_000
    block = rate // 10
    rng = np.random.default_rng(1)
    t = np.arange(block) / rate
    out = sys.stdout.buffer
    start, n = time.monotonic(), 0
    try:
        while True:
            phase = 2 * np.pi * 440 * (n * block / rate)
            wave = 0.1 * np.sin(2 * np.pi * 440 * t + phase) + 0.005 * rng.standard_normal(block)
            out.write((wave * 32767).astype("<i2").tobytes())
            out.flush()
            n += 1
            time.sleep(max(0.0, start + n * 0.1 - time.monotonic()))
    except (BrokenPipeError, KeyboardInterrupt):
        pass


if __name__ == "__main__":
    main()
