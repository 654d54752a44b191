"""Agent footprint on the controller: RSS and CPU of one real agent process.

    .venv/bin/python bench/bench_agent_footprint.py [--quick] [--phase-s 120]
        [--interval-s 60] [--out FILE]

One ``python -m agent`` process (agent/ code, its own config) polls a ``SimulatedMcu`` on a pty
(``loaxa/sim/mcu.py``) and publishes through a TCP proxy (``loaxa/sim/tcp_proxy.py``) to a
real Mosquitto. Phases of ``phase_s`` each, in one process lifetime:

1. ``mcu``: audio level from the controller (``[audio] source = "mcu"``): the baseline;
   a restart, then
2. ``pcm``: audio analysis on the agent at 16 kHz mono from ``bench/scale_pcm_feed.py``
   (``pcm_command``, real time, as ``arecord`` would), 1 s windows;
3. ``pcm-link-down``: the same with the proxy cutting the link: the agent queues on disk;
   then the link comes back and the queue drains.

Sampled every second: RSS (``VmRSS``; peak ``VmHWM``), CPU (utime + stime of the agent, all
threads) as a share of one core, on-disk queue size (``queue.sqlite`` + WAL). CPU per
analysis window = (CPU share with PCM - without) x ``window_s``. A subscriber checks that no
``seq`` is missing once the queue has drained. The feed's own CPU is not the agent's and is
reported apart. Writes ``bench/results/agent-footprint-<UTC>.json``; never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.ingest_run import cpu_seconds, stop_process
from bench.results_file import write_results
from bench.scale_measure import code_commit, rss_kib
from loaxa.localservers import Mosquitto, wait_until
from loaxa.sim.mcu import SimulatedMcu
from loaxa.sim.tcp_proxy import Mode, TcpProxy

HERE = Path(__file__).resolve().parent
STATION, PROVINCE, COMMUNE = "cb-01267", "cao-bang", "01273"


def agent_config(work: Path, port: int, device: str, interval_s: float, pcm: bool) -> Path:
    feed = f"{sys.executable} {HERE / 'scale_pcm_feed.py'} 16000"
    audio = f'source = "pcm"\npcm_command = "{feed}"\n' if pcm else 'source = "mcu"\n'
    path = work / "agent.toml"
    path.write_text(
        f'[station]\nid = "{STATION}"\nprovince = "{PROVINCE}"\ncommune = "{COMMUNE}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nretry_max_s = 5.0\n'
        f'[controller]\nurl = "{device}"\n'
        f"[audio]\n{audio}sample_rate = 16000\nchannels = 1\nwindow_s = 1.0\n"
        f"[telemetry]\ninterval_s = {interval_s}\n"
        f'[state]\ndir = "{work / "state"}"\n'
    )
    return path


class Seqs:
    """Every seq the station published, as received by a subscriber on the broker."""

    def __init__(self, port: int) -> None:
        self.seqs: set[int] = set()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="footprint-recorder")
        self.client.on_message = self._on
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"loaxa/v1/{PROVINCE}/{COMMUNE}/{STATION}/+", qos=1)
        self.client.loop_start()

    def _on(self, client, userdata, msg) -> None:
        seq = json.loads(msg.payload).get("seq")
        if isinstance(seq, int):
            self.seqs.add(seq)

    def missing(self) -> int:
        return (max(self.seqs) - min(self.seqs) + 1 - len(self.seqs)) if self.seqs else 0

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def queue_bytes(state: Path) -> int:
    """queue.sqlite and its WAL; the fixed 512 KiB ``.reserve`` file is reported apart."""
    names = ("queue.sqlite", "queue.sqlite-wal", "queue.sqlite-shm")
    return sum((state / n).stat().st_size for n in names if (state / n).exists())


def _children_cpu(pid: int) -> float:
    """CPU of the agent's child processes (the PCM feed), which is not the agent's own."""
    total = 0.0
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        for cpid in child.read_text().split():
            with contextlib.suppress(OSError):  # the feed may have just exited
                total += cpu_seconds(int(cpid))
    return total


def measure(proc: subprocess.Popen, seconds: float, state: Path) -> dict:
    """Sample the agent every second for ``seconds``."""
    rss, queue = [], []
    c0, f0, t0 = cpu_seconds(proc.pid), _children_cpu(proc.pid), time.monotonic()
    while time.monotonic() - t0 < seconds:
        if proc.poll() is not None:
            raise RuntimeError(f"agent exited with {proc.returncode}")
        rss.append(rss_kib(proc.pid))
        queue.append(queue_bytes(state))
        time.sleep(1.0)  # the sampling step (a fixed pace, not a wait for a condition)
    span = time.monotonic() - t0
    return {
        "seconds": round(span, 1),
        "cpu_pct": round(100 * (cpu_seconds(proc.pid) - c0) / span, 2),
        "feed_cpu_pct": round(100 * (_children_cpu(proc.pid) - f0) / span, 2),
        "rss_steady_mib": round(sorted(rss)[len(rss) // 2] / 1024, 1),
        "rss_peak_mib": round(rss_kib(proc.pid, "VmHWM") / 1024, 1),
        "queue_bytes_end": queue[-1] if queue else 0,
        "queue_bytes_max": max(queue, default=0),
    }


def queued(state: Path) -> tuple[int, int]:
    """(messages, bytes counted by the queue) waiting in the agent's queue (read-only)."""
    import sqlite3

    path = state / "queue.sqlite"
    if not path.exists():
        return 0, 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        n, size = db.execute("SELECT count(*), coalesce(sum(size), 0) FROM messages").fetchone()
    return int(n), int(size)


def queued_rows(state: Path) -> int:
    return queued(state)[0]


def start_agent(config: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(config)],
            cwd=HERE.parent, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def run(args: argparse.Namespace, work: Path) -> dict:
    (work / "mosquitto").mkdir()
    broker = Mosquitto(work / "mosquitto", persistence=False).start()
    proxy = TcpProxy(broker.port).start()
    mcu = SimulatedMcu().start()
    seqs = Seqs(broker.port)
    log, state = work / "agent.log", work / "state"
    phases: dict[str, dict] = {}
    proc = None
    try:
        for pcm in (False, True):
            config = agent_config(work, proxy.port, mcu.path, args.interval_s, pcm)
            before = len(seqs.seqs)
            proc = start_agent(config, log)
            wait_until(lambda n=before: len(seqs.seqs) > n, 90, interval=0.2, what="publishing")
            phases["pcm" if pcm else "mcu"] = measure(proc, args.phase_s, state)
            if pcm:
                proxy.set_mode(Mode.CUT)
                proxy.reset()
                down = measure(proc, args.phase_s, state)
                down["queued_messages"], down["queued_bytes"] = queued(state)
                reserve = state / "queue.sqlite.reserve"
                down["reserve_file_bytes"] = reserve.stat().st_size if reserve.exists() else 0
                phases["pcm-link-down"] = down
                proxy.set_mode(Mode.PASS)
                t = time.monotonic()
                wait_until(lambda: queued_rows(state) == 0, 120, interval=0.5, what="drained")
                down["drain_s"] = round(time.monotonic() - t, 1)
            stop_process(proc)
            proc = None
    finally:
        if proc is not None:
            stop_process(proc)
        seqs.close()
        mcu.stop()
        proxy.stop()
        broker.stop()
    window_s = 1.0
    extra = phases["pcm"]["cpu_pct"] - phases["mcu"]["cpu_pct"]
    return {
        "phases": phases,
        "pcm_cpu_ms_per_window": round(10 * extra * window_s, 2),  # pct/100 * 1000 ms
        "messages_received": len(seqs.seqs),
        "lost": seqs.missing(),
        "interval_s": args.interval_s,
        "agent_log_errors": log.read_text(errors="replace").count(" ERROR "),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 8 s phases, 1 s interval")
    ap.add_argument("--phase-s", type=float, default=120.0)
    ap.add_argument("--interval-s", type=float, default=60.0, help="telemetry interval")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.quick:
        args.phase_s, args.interval_s = 8.0, 1.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load0, commit = os.getloadavg(), code_commit()  # the code as the run starts
    with tempfile.TemporaryDirectory(prefix="loaxa-footprint-") as tmp:
        res = run(args, Path(tmp))
    res["meta"] = {"machine": platform.machine(), "cpus": os.cpu_count(),
                   "python": platform.python_version(), "quick": args.quick,
                   "commit": commit,
                   "loadavg_start": load0, "loadavg_end": os.getloadavg()}  # fmt: skip
    for name, p in res["phases"].items():
        print(f"{name:<14} CPU {p['cpu_pct']:>5.2f} % of a core (feed {p['feed_cpu_pct']:.2f} %)  "
              f"RSS steady {p['rss_steady_mib']} MiB peak {p['rss_peak_mib']} MiB  "
              f"queue {p['queue_bytes_max']:,} B")  # fmt: skip
    print(f"PCM analysis: {res['pcm_cpu_ms_per_window']} ms CPU per 1 s window; "
          f"{res['messages_received']} messages received, lost {res['lost']}")  # fmt: skip
    write_results("agent-footprint", res, args.out)


if __name__ == "__main__":
    main()
