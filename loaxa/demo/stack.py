"""Everything `loaxa demo` runs: local Mosquitto and InfluxDB, the collector, a simulated fleet
of real agents on simulated controllers, and local sinks for the alerts (a simulated GSM modem
on a pty receives the SMS, a local SMTP server the e-mail).

The demo inventory is the Cao Bằng demo inventory (config/data/cao-bang, 161 stations in 56
communes) cut to the first ``communes`` communes, with thresholds shortened so that minutes of
demo show what hours of real operation would, and the daily broadcast window moved to include
the current local time so that silent broadcasts can be seen at any hour.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import tomli_w

from collector.config import load_config
from collector.daemon import Collector
from collector.health.events import State
from loaxa.demo.view import Screen, StationRow
from loaxa.localservers import InfluxDB, Mosquitto, free_port
from loaxa.sim.fault_injector import FaultInjector
from loaxa.sim.faults import FaultRates, build_plan
from loaxa.sim.fleet import Fleet
from loaxa.sim.gsm_modem import SimulatedGsmModem
from loaxa.sim.inventory_gen import cao_bang_inventory, write_toml
from loaxa.sim.showcase import with_showcase

log = logging.getLogger(__name__)

# Real-time thresholds for a fleet running `speed` times faster than real time (the telemetry
# interval follows the speed, see demo_inventory).
DEMO_DEFAULTS = {
    "down_after_intervals": 4,
    "silence_after_min": 0.25,
    "unscheduled_after_min": 0.5,
    "damping_s": 6,
    "flap_window_min": 3,
    "flap_threshold": 3,
}


def demo_inventory(communes: int, seed: int, now: datetime, speed: float = 30.0) -> dict[str, Any]:
    """The Cao Bằng demo inventory cut to ``communes`` communes (those with a serial gateway
    first, so the demo shows one), with demo thresholds and a broadcast window around now.
    The agents report every 60 s of simulated time, i.e. every 60/speed real seconds."""
    inv = cao_bang_inventory(seed)
    gateway_communes = {s["commune"] for s in inv["stations"] if s.get("address") is not None}
    ordered = sorted(inv["communes"], key=lambda c: (c["code"] not in gateway_communes, c["code"]))
    keep = {c["code"] for c in ordered[:communes]}
    inv["communes"] = [c for c in inv["communes"] if c["code"] in keep]
    inv["stations"] = [s for s in inv["stations"] if s["commune"] in keep]
    used = {s.get("upstream") for s in inv["stations"]}
    inv["upstreams"] = [u for u in inv.get("upstreams", []) if u["id"] in used]
    ids = {s["id"] for s in inv["stations"]}
    inv["maintenance"] = [
        m for m in inv.get("maintenance", []) if m.get("station") in ids or m.get("commune") in keep
    ]
    interval = max(1, round(60 / speed))
    inv["defaults"] = {**inv["defaults"], **DEMO_DEFAULTS, "telemetry_interval_s": interval}
    start, end = now - timedelta(minutes=20), now + timedelta(hours=3)
    window = f"{start:%H:%M}-{end:%H:%M}"
    for schedule in inv["schedules"]:
        if not schedule.get("always"):
            schedule["windows"] = [window]
    return inv


class MailSink:
    """A local SMTP server (aiosmtpd) that keeps what it receives, as a commune's mail server
    would; the demo shows how many alerts arrived by e-mail."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[tuple[list[str], str]] = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content.decode("utf-8", "replace")))
        return "250 OK"

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


@dataclass
class DemoOptions:
    workdir: Path
    communes: int = 12
    speed: float = 30.0
    seed: int = 1
    lang: str = "vi"
    fault_scale: float = 40.0  # the demo compresses weeks of realistic faults into minutes


@dataclass
class DemoStack:
    options: DemoOptions
    started_ms: int = 0
    faults: list[str] = field(default_factory=list)
    _stack: list[Any] = field(default_factory=list)

    def start(self) -> DemoStack:
        o, work = self.options, self.options.workdir
        work.mkdir(parents=True, exist_ok=True)
        self.started_ms = int(time.time() * 1000)
        for sub in ("mosquitto", "influxdb", "fleet", "collector", "export"):
            (work / sub).mkdir(exist_ok=True)
        self.broker = self._push(Mosquitto(work / "mosquitto").start())
        self.influx = self._push(InfluxDB(work / "influxdb").start())
        self.modem = self._push(SimulatedGsmModem().start())
        self.mail = self._push(MailSink().start())
        now = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
        inv = demo_inventory(o.communes, o.seed, now, o.speed)
        self.inventory_path = write_toml(inv, work / "inventory.toml", how="loaxa demo")
        self.fleet = Fleet(
            self.inventory_path,
            "127.0.0.1",
            self.broker.port,
            work / "fleet",
            interval_s=60,
            speed=o.speed,
            seed=o.seed,
        )
        gateways = sorted({s["upstream"] for s in inv["stations"] if s.get("address") is not None})
        self.collector_config = self._write_collector_config(gateways)
        self.collector = Collector(load_config(self.collector_config))
        self.collector.start()
        self._stack.append(self.collector)
        self._push(self.fleet.start())
        plan = build_plan(
            self.fleet.inventory,
            30 * 86400,
            o.seed,
            FaultRates().scaled(o.fault_scale),
            self.fleet.station_ids,
        )
        # one fault of every kind in the first simulated hour: a short demo shows them all
        plan = with_showcase(plan, self.fleet.inventory, self.fleet.station_ids)
        self.injector = self._push(FaultInjector(self.fleet, plan, on_event=self._on_fault).start())
        return self

    def _push(self, thing: Any) -> Any:
        self._stack.append(thing)
        return thing

    def _on_fault(self, text: str, *_: Any) -> None:
        self.faults.append(text)
        log.info("fault: %s", text)

    def _write_collector_config(self, gateways: list[str]) -> Path:
        work = self.options.workdir / "collector"
        config: dict[str, Any] = {
            "inventory": str(self.inventory_path),
            "daemon": {
                "state_db": str(work / "state.sqlite"),
                "health_tick_s": 1.0,
                "alert_tick_s": 2.0,
            },
            "mqtt": {
                "host": "127.0.0.1",
                "port": self.broker.port,
                "client_id": "loaxa-demo-collector",
            },
            "serial_gateways": [
                {
                    "id": gw,
                    "url": str(self.options.workdir / "fleet" / f"{gw}.tty"),
                    "baudrate": 115200,
                    "poll_interval_s": 2.0,
                    "dead_after_s": 12.0,
                    "reopen_after_s": 1.0,
                }
                for gw in gateways
            ],
            "influx": {
                "api": "v1",
                "url": self.influx.url,
                "db": "loaxa",
                "create_database": True,
                "flush_interval_ms": 500,
            },
            "spool": {
                "path": str(work / "spool.sqlite"),
                "dead_letter_path": str(work / "dead-letter.jsonl"),
            },
            "alerts": {
                "channel_order": ["sms", "email"],
                "copy_to": ["mqtt", "email"],
                "routing": {"escalate_after_min": 2, "remind_every_min": 1, "group_window_s": 5},
                "sms": {"enabled": True, "port": self.modem.port, "poll_interval_s": 2},
                "email": {
                    "enabled": True,
                    "host": "127.0.0.1",
                    "port": self.mail.port,
                    "security": "none",
                    "sender": "loaxa-demo@localhost",
                },
                "mqtt": {"enabled": True},
            },
            "http": {"enabled": True, "host": "127.0.0.1", "port": free_port()},
        }
        path = work / "collector.toml"
        path.write_bytes(tomli_w.dumps(config).encode())
        return path

    def screen(self) -> Screen:
        now = int(time.time() * 1000)
        view = self.collector.health.view(now)
        inv = self.collector.inventory
        states: dict[State, int] = {}
        rows = []
        for sid, st in view.stations.items():
            states[st.state] = states.get(st.state, 0) + 1
            if not st.state.operating and st.state is not State.UNKNOWN:
                techs = inv.technicians_for(sid)
                station = inv.stations[sid]
                rows.append(
                    StationRow(
                        sid,
                        inv.communes[station.commune].name,
                        st.state,
                        st.since_ms,
                        st.cause.value if st.cause else None,
                        f"{techs[0].name} {techs[0].phone}" if techs else "-",
                    )
                )
        rows.sort(key=lambda r: r.since_ms or 0)
        alerts = [f"SMS {s.number}: {s.text}" for s in self.modem.sent[-6:]]
        alerts.append(f"e-mail: {len(self.mail.messages)}")
        faults = self.faults[-6:]
        comp = view.compliance
        return Screen(
            inv.province.name,
            now,
            inv.province.timezone,
            comp.goal_percent,
            comp.operating,
            comp.counted,
            states,
            rows,
            alerts,
            faults,
        )

    def stop(self) -> None:
        """Stop everything started, newest first; never leaves a process behind."""
        while self._stack:
            thing = self._stack.pop()
            try:
                thing.stop()
            except Exception:  # keep stopping the rest
                log.exception("stopping %s failed", type(thing).__name__)

    def stop_all_but_influx(self) -> None:
        """Stop the faults, let the collector write its spool to InfluxDB (the export reads
        InfluxDB; what stays in the spool would be missing from it), then stop the collector
        and the fleet (the collector first: its serial gateways would report the lines gone)."""
        self._stop(self.injector)
        deadline = time.monotonic() + 30.0
        while self.collector.storage.snapshot().get("spool_depth", 0) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
        self._stop(self.collector)
        self._stop(self.fleet)

    def _stop(self, thing: Any) -> None:
        if thing in self._stack:
            self._stack.remove(thing)
            thing.stop()
