"""A collector group member: one process that runs the partitions it holds (GROUP.md).

Every ``group.poll_s`` the member counts the live members (``Membership``), computes its fair
share ceil(P / members) and then either hands back what it holds above that share (graceful
stop: everything received is stored and acknowledged, the state saved, then the lock released)
or tries the free partitions' locks until it holds its share. A partition runs as an ordinary
``Collector`` (its threads) inside this process.

The broker is the second guard: if it ever gives a partition's session to another client
(MQTT 5 reason "Session taken over", 0x8E, or repeated drops right after connecting: see
``_watch_session``), that partition's collector stops at once without reconnecting, its lock
is released and the partition is left alone for ``group.takeover_cooldown_s``: two owners
never fight over one session.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from collector.config import CollectorConfig
from collector.daemon import Collector
from collector.group.codes import prefix_codes
from collector.group.durable import make_durable
from collector.group.locks import FileLock, Membership, partition_lock
from collector.group.partitions import (
    acquire_order,
    assign,
    fair_share,
    partition_config,
    partition_inventory,
    plan,
)
from collector.inventory import load_inventory

log = logging.getLogger("collector.group")
SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason code
CONTESTED_DROPS, CONTESTED_WITHIN_S = 3, 5.0


class GroupConfigError(ValueError):
    """The collector config cannot run as a group member (the message says why)."""


@dataclass
class Running:
    k: int
    lock: FileLock
    collector: Collector
    since_ms: int
    start_s: float
    connected_ms: int | None = None  # first CONNACK of its session: the partition is live
    taken_over: threading.Event = field(default_factory=threading.Event)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class GroupMember:
    def __init__(self, config: CollectorConfig, member_id: str | None = None) -> None:
        if config.group is None:
            raise GroupConfigError("no [group] table: this collector is not a group member")
        if config.serial_gateways:
            raise GroupConfigError(
                "serial_gateways: a group member cannot own a serial line (its stations are not "
                "partitioned by MQTT topic); run the gateways in a plain collector (GROUP.md)"
            )
        if config.alerts.enabled and config.alerts.sms.enabled:
            raise GroupConfigError(
                "alerts.sms: partitions cannot share one GSM modem; in a group send alerts by "
                "e-mail, webhook or MQTT (GROUP.md, limits)"
            )
        if config.group.account_per_partition and (
            config.mqtt.username is None or config.mqtt.password_file is None
        ):
            raise GroupConfigError(
                "group.account_per_partition needs mqtt.username and mqtt.password_file: "
                "partition k logs in as <username>-p<k> with the password in <file>-p<k>"
            )
        self.config, self.group = config, config.group
        self.inventory = load_inventory(config.inventory)
        self.province = self.inventory.province.slug
        parts = assign(self.inventory.communes, self.group.partitions)
        self.communes = {k: c for k, c in parts.items() if c}  # empty partitions: nobody's
        self.membership = Membership(self.group.dir, member_id)
        self.seed = zlib.crc32(self.membership.id.encode())
        self.running: dict[int, Running] = {}
        self.cooldown_until: dict[int, float] = {}
        self.counters: Counter[str] = Counter()
        self.stop_event = threading.Event()
        self.status_path = self.group.dir / f"status-{self.membership.id}.json"

    # --- one round ----------------------------------------------------------------------
    def poll(self) -> None:
        for k in [k for k, r in self.running.items() if r.taken_over.is_set()]:
            log.error("partition %d: the broker gave its session to another client; let go", k)
            self.counters["taken_over"] += 1
            self.cooldown_until[k] = time.monotonic() + self.group.takeover_cooldown_s
            self._release(k)
        members = self.membership.live_members()
        share = fair_share(len(self.communes), len(members))
        todo = plan(self.running, share)
        for k in todo.release:
            log.info("partition %d handed back: share %d for %d members", k, share, len(members))
            self.counters["handed_back"] += 1
            self._release(k)
        if todo.want and not self.stop_event.is_set():
            self._take(todo.want)
        self._write_status(members, share)

    def _take(self, want: int) -> None:
        """Lock up to ``want`` free partitions, then start them side by side: the failover time
        is the slowest start, not the sum of them."""
        now = time.monotonic()
        free = [
            k
            for k in self.communes
            if k not in self.running and self.cooldown_until.get(k, 0) <= now
        ]
        locked: list[tuple[int, FileLock]] = []
        for k in acquire_order(free, self.seed):
            if len(locked) >= want:
                break
            lock = partition_lock(self.group.dir, k)
            if lock.acquire():
                locked.append((k, lock))
        if not locked:
            return
        with ThreadPoolExecutor(len(locked), thread_name_prefix="partition-start") as pool:
            started = list(pool.map(lambda kl: self._start(*kl), locked))
        for (k, lock), running in zip(locked, started, strict=True):
            if running is None:
                self.counters["start_failed"] += 1
                self.cooldown_until[k] = time.monotonic() + 10 * self.group.poll_s
                lock.release()
            else:
                self.running[k] = running
                self.counters["taken"] += 1

    def _start(self, k: int, lock: FileLock) -> Running | None:
        """Build and start partition k's collector (its lock is held); None if it failed."""
        t0 = time.perf_counter()
        communes = self.communes[k]
        try:
            inventory = partition_inventory(self.config.inventory, communes)
            cfg = partition_config(
                self.config, k, self.province, communes, self.group.http_base_port
            )
            collector = Collector(cfg, inventory)
        except Exception:  # a bad partition must not stop the member: logged, retried later
            log.exception("partition %d cannot be built; retried later", k)
            return None
        make_durable(collector)
        if collector.alerts is not None:
            prefix_codes(collector.alerts.router, k)
        running = Running(k, lock, collector, _now_ms(), 0.0)
        self._watch_session(running)
        try:
            collector.start()
        except Exception:
            log.exception("partition %d failed to start; retried later", k)
            self._stop_collector(running)
            return None
        running.start_s = time.perf_counter() - t0
        log.info(
            "partition %d taken: %d communes, %d stations, started in %.2f s",
            k, len(communes), len(inventory.stations), running.start_s,
        )  # fmt: skip
        return running

    def _watch_session(self, running: Running) -> None:
        """Chain paho's callbacks: note each connection; when the session is taken over, stop
        reconnecting at once. Taken over = DISCONNECT reason 0x8E, or (a broker that just closes
        the socket, as Mosquitto 2.0.11 does) ``CONTESTED_DROPS`` drops in a row, each within
        ``CONTESTED_WITHIN_S`` of its connection: two clients with one id knocking each other off.
        """
        client = running.collector.mqtt.client
        inner, inner_connect = client.on_disconnect, client.on_connect
        last_connect = [0.0]
        quick_drops = [0]

        def on_connect(c, userdata, flags, reason_code, properties) -> None:
            if inner_connect is not None:
                inner_connect(c, userdata, flags, reason_code, properties)
            if not reason_code.is_failure:
                last_connect[0] = time.monotonic()
                if running.connected_ms is None:
                    running.connected_ms = _now_ms()

        def on_disconnect(c, userdata, flags, reason_code, properties) -> None:
            quick = time.monotonic() - last_connect[0] < CONTESTED_WITHIN_S
            quick_drops[0] = quick_drops[0] + 1 if quick else 0
            code = getattr(reason_code, "value", reason_code)
            if code == SESSION_TAKEN_OVER or quick_drops[0] >= CONTESTED_DROPS:
                running.taken_over.set()
                c.disconnect()  # state DISCONNECTED: paho's loop ends instead of reconnecting
            if inner is not None:
                inner(c, userdata, flags, reason_code, properties)

        client.on_disconnect = on_disconnect
        client.on_connect = on_connect

    def _release(self, k: int) -> None:
        running = self.running.pop(k)
        self._stop_collector(running)
        running.lock.release()  # only now: the state is saved, everything received is acked

    def _stop_collector(self, running: Running) -> None:
        try:
            running.collector.stop()
        except Exception:  # stop what can be stopped; the lock is released by the caller
            log.exception("partition %d did not stop cleanly", running.k)

    def _write_status(self, members: list[str], share: int) -> None:
        """``status-<member>.json``: what this member holds, for operators and tests."""
        status = {
            "v": 1,
            "member": self.membership.id,
            "pid": os.getpid(),
            "ts_ms": _now_ms(),
            "members": members,
            "share": share,
            "partitions": {
                str(k): {
                    "since_ms": r.since_ms,
                    "start_s": round(r.start_s, 3),
                    "connected_ms": r.connected_ms,
                    "connected": r.collector.mqtt.connected,
                }
                for k, r in sorted(self.running.items())
            },
            "counters": dict(self.counters),
        }
        tmp = self.status_path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(status))
            os.replace(tmp, self.status_path)
        except OSError as err:
            log.warning("cannot write %s: %s", self.status_path, err)

    # --- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        self.membership.join()
        log.info(
            "group member %s: %d partitions with communes (of %d), folder %s",
            self.membership.id, len(self.communes), self.group.partitions, self.group.dir,
        )  # fmt: skip

    def stop(self) -> None:
        self.stop_event.set()
        for k in sorted(self.running):
            self._release(k)
        self.status_path.unlink(missing_ok=True)
        self.membership.leave()
        log.info("group member %s left", self.membership.id)

    def run(self) -> int:
        """Join, poll until SIGTERM/SIGINT, hand everything back. Returns the exit code."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        gc.set_threshold(100_000, 50, 100)  # as Collector.run: fewer young collections
        self.start()
        try:
            while not self.stop_event.is_set():
                try:
                    self.poll()
                except Exception:  # one failed round (a lock folder hiccup) is retried
                    log.exception("group poll failed")
                    self.counters["poll_failed"] += 1
                self.stop_event.wait(self.group.poll_s)
        finally:
            self.stop()
        return 0
