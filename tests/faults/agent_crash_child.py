"""Zygote for fault case 3: imports the agent once, then forks one short-lived agent per
``run`` command read from stdin, so hundreds of kill -9 cycles do not each pay the imports.

Protocol (one line each way, v1)::

    parent -> zygote:  run <queue path> <state dir> <broker port> <record path>
    zygote -> parent:  <pid of the forked agent>

The forked agent publishes a telemetry reading every few ms and records, with unbuffered
``os.write`` (survives kill -9: the page cache is the kernel's), ``T <n>`` before each reading
is handed to ``Publisher.publish`` and ``A <seq> <ts>`` once it returned (stored durably).
"""

from __future__ import annotations

import os
import signal
import sys
import time

from agent.mqtt_config import MqttConfig
from agent.publisher import Publisher
from agent.queue import OfflineQueue
from agent.state import AgentState
from loaxa.topics import Kind
from tests.faults.stack import STATIONS


def agent(queue_path: str, state_dir: str, port: int, record: str) -> None:
    fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    cfg = MqttConfig(host="127.0.0.1", port=port, keepalive_s=5, retry_min_s=0.05, retry_max_s=0.2)
    queue = OfflineQueue(queue_path)
    pub = Publisher(STATIONS["cb-01267"], cfg, queue, AgentState(state_dir))
    pub.start()
    n = 0
    while True:
        os.write(fd, f"T {n}\n".encode())
        seq, ts = queue.next_seq, int(time.time() * 1000)
        pub.publish(Kind.TELEMETRY, {"agent_uptime_s": n}, ts)
        os.write(fd, f"A {seq} {ts}\n".encode())
        n += 1
        time.sleep(0.003)


def main() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps killed agents
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] != "run":
            continue
        pid = os.fork()
        if pid == 0:
            try:
                agent(parts[1], parts[2], int(parts[3]), parts[4])
            finally:
                os._exit(1)
        print(pid, flush=True)


if __name__ == "__main__":
    main()
