"""Alert latency: from fault injection to the alert leaving the collector and reaching SMTP.

    .venv/bin/python bench/bench_alert_latency.py [--quick] [--faults 60] [--stations 80]
        [--spacing-s 1.5] [--out FILE]

Real Mosquitto and InfluxDB 1.6, ``loaxa collector`` (daemon defaults: health tick 5 s, alert
tick 10 s) with the e-mail channel to a local aiosmtpd sink and the MQTT alert feed as a copy.
Scripted stations (``bench/scale_alert_rig.py``) report every ``interval_s`` (2 s: thresholds
shortened in the inventory, as in the fault tests); after every station is OPERATING, faults
(``stop``, ``silent``, ``battery``, in turn, one per station) are injected ``spacing_s`` apart.

Per fault, three times after injection: **decided** (the notification's ``ts_ms``, stamped by
the alert router when the health event arrives), **left** (the MQTT alert feed message
received by a subscriber), **smtp** (the sink's DATA). Each is compared with the detection
bound the configuration sets for that fault (``bound_s``, below). Prints p50/p95/p99/max per
fault kind and writes ``bench/results/alert-latency-<UTC>.json``. Figures are never asserted.
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
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_run import stop_process
from bench.results_file import write_results
from bench.scale_alert_rig import FAULTS, Arrivals, ScriptedFleet, email_of
from bench.scale_alert_rig import write_inventory as write_alert_inventory
from bench.scale_measure import code_commit
from loaxa.localservers import InfluxDB, Mosquitto, free_port, wait_until

HERE = Path(__file__).resolve().parent
INTERVAL_S = 2
THRESHOLDS = {
    "telemetry_interval_s": INTERVAL_S,
    "down_after_intervals": 3,
    "damping_s": 5,
    "silence_after_min": 0.25,
    "battery_low_v": 11.5,
}
HEALTH_TICK_S = 5.0  # the daemon's default [daemon] health_tick_s


def bounds_s() -> dict[str, float]:
    """Latest moment each fault must be alerted by, after injection, from the configuration.

    ``stop`` (last reading at L): the health tick marks DOWN once nothing came for down_after
    (intervals x interval), dated L + interval; the incident opens at the first tick or
    message once damping has passed since then: max(down_after, interval + damping) + tick.
    ``silent``: silent for silence_after_min, noticed at the next reading or tick.
    ``battery``: judged when the reading is stored, at the latest at the next tick."""
    down_after = THRESHOLDS["down_after_intervals"] * INTERVAL_S
    opened = max(down_after, INTERVAL_S + THRESHOLDS["damping_s"])
    return {
        "stop": opened + HEALTH_TICK_S,
        "silent": THRESHOLDS["silence_after_min"] * 60 + max(INTERVAL_S, HEALTH_TICK_S),
        "battery": HEALTH_TICK_S,
    }


def collector_config(work: Path, inventory: Path, mqtt_port: int, influx_url: str,
                     smtp_port: int, http_port: int) -> Path:  # fmt: skip
    path = work / "collector.toml"
    path.write_text(
        f'inventory = "{inventory}"\n[daemon]\nstate_db = "state.sqlite"\n'
        f"health_tick_s = {HEALTH_TICK_S}\n"
        f'[mqtt]\nport = {mqtt_port}\nclient_id = "alert-bench-collector"\n'
        f'[influx]\nurl = "{influx_url}"\ndb = "alert_bench"\ncreate_database = true\n'
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
        f"[http]\nport = {http_port}\n"
        '[alerts]\nchannel_order = ["email"]\ncopy_to = ["mqtt"]\n'
        f'[alerts.email]\nenabled = true\nhost = "127.0.0.1"\nport = {smtp_port}\n'
        'security = "none"\nsender = "loaxa@bench.invalid"\n'
        "[alerts.mqtt]\nenabled = true\n"
    )
    return path


def _operating(http_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith('loaxa_stations{state="operating"}'):
            return int(float(line.split()[-1]))
    return 0


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    v = sorted(values)

    def pick(q: float) -> float:
        return round(v[min(len(v) - 1, int(q * len(v)))], 2)

    return {"n": len(v), "p50": pick(0.5), "p95": pick(0.95), "p99": pick(0.99),
            "max": round(v[-1], 2), "min": round(v[0], 2)}  # fmt: skip


def match(fleet: ScriptedFleet, arrivals: Arrivals) -> list[dict]:
    """Per injected fault: the first feed notification about its station and the first mail to
    its technician after the injection (each station has one fault, one technician)."""
    rows = []
    for st in fleet.stations:
        if st.fault is None or st.injected_ms is None:
            continue
        inj = st.injected_ms
        feed = [(t, n) for t, n in list(arrivals.feed) if n.get("station") == st.sid]
        mail = [t for t, rcpt, _ in list(arrivals.smtp) if email_of(st.index) in rcpt]
        row = {"station": st.sid, "fault": st.fault, "injected_ms": inj}
        if feed:
            t, n = min(feed, key=lambda x: x[0])
            row["kind"] = n.get("kind")
            row["template"] = n.get("details", {}).get("template")
            row["decided_s"] = (int(n["ts_ms"]) - inj) / 1000
            row["left_s"] = (t - inj) / 1000
        if mail:
            row["smtp_s"] = (min(mail) - inj) / 1000
        rows.append(row)
    return rows


def run(args: argparse.Namespace, work: Path) -> dict:
    for d in ("mosquitto", "influxdb"):
        (work / d).mkdir()
    broker = Mosquitto(work / "mosquitto", persistence=False).start()
    influxd = InfluxDB(work / "influxdb").start()
    arrivals = Arrivals(broker.port, free_port()).start()
    ids = write_alert_inventory(work / "inventory.toml", args.stations, THRESHOLDS)
    http_port = free_port()
    config = collector_config(work, work / "inventory.toml", broker.port, influxd.url,
                              arrivals.smtp_port, http_port)  # fmt: skip
    argv = [sys.executable, "-m", "loaxa.cli", "collector", "--config", str(config)]
    log = work / "collector.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=HERE.parent, stdout=out, stderr=subprocess.STDOUT)
    fleet = None
    try:
        wait_until(lambda: _healthy(http_port, proc, log), 60, interval=0.5, what="collector up")
        fleet = ScriptedFleet(broker.port, ids, INTERVAL_S).start()
        wait_until(lambda: _operating(http_port) >= len(ids), 120, interval=1.0,
                   what="every station operating")  # fmt: skip
        t_first = time.time()
        for k in range(args.faults):
            fleet.inject(k, FAULTS[k % len(FAULTS)])
            time.sleep(args.spacing_s)  # pacing the injections, not waiting for a result
        deadline = max(bounds_s().values()) + 60
        _wait_all(fleet, arrivals, deadline)
        rows = match(fleet, arrivals)
        return _report(rows, args, time.time() - t_first, log)
    finally:
        if fleet is not None:
            fleet.stop()
        stop_process(proc)
        arrivals.stop()
        broker.stop()
        influxd.stop()


def _healthy(http_port: int, proc: subprocess.Popen, log: Path) -> bool:
    if proc.poll() is not None:
        tail = log.read_text(errors="replace")[-1500:]
        raise RuntimeError(f"collector exited with {proc.returncode}:\n{tail}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=5) as r:
            return bool(json.loads(r.read()).get("ok"))
    except (OSError, ValueError):
        return False


def _wait_all(fleet: ScriptedFleet, arrivals: Arrivals, deadline_s: float) -> None:
    """Until every fault has its feed message and its mail, or the deadline (the report then
    counts the missing ones)."""

    def complete() -> bool:
        rows = match(fleet, arrivals)
        injected = sum(1 for s in fleet.stations if s.fault)
        return len(rows) == injected and all("left_s" in r and "smtp_s" in r for r in rows)

    with contextlib.suppress(TimeoutError):  # the report counts what is missing
        wait_until(complete, deadline_s, interval=1.0, what="an alert for every fault")


def _report(rows: list[dict], args: argparse.Namespace, span_s: float, log: Path) -> dict:
    bounds = bounds_s()
    by_fault = {}
    for fault in FAULTS:
        mine = [r for r in rows if r["fault"] == fault]
        by_fault[fault] = {
            "faults": len(mine),
            "bound_s": bounds[fault],
            "missing_feed": sum("left_s" not in r for r in mine),
            "missing_smtp": sum("smtp_s" not in r for r in mine),
            "over_bound_smtp": sum(r.get("smtp_s", 1e9) > bounds[fault] for r in mine),
            **{
                stage: percentiles([r[stage] for r in mine if stage in r])
                for stage in ("decided_s", "left_s", "smtp_s")
            },
        }
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    return {
        "faults": len(rows),
        "injection_span_s": round(span_s, 1),
        "missing": sum(v["missing_smtp"] + v["missing_feed"] for v in by_fault.values()),
        "by_fault": by_fault,
        "all": {s: percentiles([r[s] for r in rows if s in r]) for s in ("left_s", "smtp_s")},
        "collector_log": {
            "warning": sum(" WARNING " in x for x in text),
            "error": sum(" ERROR " in x for x in text),
            "first": [x[:300] for x in text if " WARNING " in x or " ERROR " in x][:8],
        },
        "thresholds": THRESHOLDS,
        "health_tick_s": HEALTH_TICK_S,
        "rows": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 6 faults")
    ap.add_argument("--faults", type=int, default=60)
    ap.add_argument("--stations", type=int, default=80)
    ap.add_argument("--spacing-s", type=float, default=1.5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.quick:
        args.faults, args.stations, args.spacing_s = 6, 10, 0.5
    if args.faults > args.stations:
        ap.error("one fault per station: --faults must be <= --stations")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load0, commit = os.getloadavg(), code_commit()  # the code as the run starts
    with tempfile.TemporaryDirectory(prefix="loaxa-alert-bench-") as tmp:
        res = run(args, Path(tmp))
    res["meta"] = {"machine": platform.machine(), "cpus": os.cpu_count(),
                   "python": platform.python_version(), "quick": args.quick,
                   "commit": commit,
                   "loadavg_start": load0, "loadavg_end": os.getloadavg()}  # fmt: skip
    print(f"{res['faults']} faults over {res['injection_span_s']} s, missing {res['missing']}")
    print(f"{'fault':<8} {'n':>3} {'bound':>6}  stage      p50    p95    p99    max (s)")
    for fault, v in res["by_fault"].items():
        for stage in ("decided_s", "left_s", "smtp_s"):
            p = v[stage]
            if p.get("n"):
                print(f"{fault:<8} {p['n']:>3} {v['bound_s']:>6.1f}  {stage:<9} {p['p50']:>6} "
                      f"{p['p95']:>6} {p['p99']:>6} {p['max']:>6}")  # fmt: skip
    write_results("alert-latency", res, args.out)


if __name__ == "__main__":
    main()
