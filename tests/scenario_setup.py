"""The world of the collector scenario (tests/test_collector_scenario.py): its inventory and
collector config (short thresholds, a broadcast window around "now"), and ``Scenario``, which
starts the real collector in-process against real peers and stops everything again.
"""

from __future__ import annotations

import os
import tty
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from collector.config import load_config
from collector.daemon import Collector
from loaxa.sim.gsm_modem import SimulatedGsmModem
from tests.scenario_peers import AlertFeed, ScriptedFleet, SmtpSink, WebhookSink
from tests.servers import free_port, wait_until
from tests.test_ingest_serial import MultiDropPeer

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
PROVINCE, DB = "cao-bang", "loaxa_scenario"
SILENT, DOWN, BATT, MAINT, FLAP, GW_A, GW_B = (
    "st-silent",
    "st-down",
    "st-batt",
    "st-maint",
    "st-flap",
    "gw-a",
    "gw-b",
)
SCRIPTED = {SILENT: "01273", DOWN: "01273", BATT: "01290", MAINT: "01290", FLAP: "01705"}
PHONE, MAIL, DEPT_MAIL = "+84912345678", "mai.lt@example.vn", "truc.ban@example.vn"
INTERVAL, SILENCE_AFTER, DEAD_AFTER, ESCALATE = 1000, 3000, 1000, 15_000


def inventory_text(now: datetime) -> str:
    """Short thresholds; one window from a minute ago for 15 minutes (may cross midnight)."""
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    window = f"{start:%H:%M}-{start + timedelta(minutes=15):%H:%M}"
    m0, m1 = (now - timedelta(hours=1)), (now + timedelta(hours=1))
    station = 'lat = 22.6\nlon = 106.2\nposition = "demo"\n'
    return f"""
[province]
code = "04"
slug = "{PROVINCE}"
name = "Cao Bằng"
department = "Sở Văn hóa, Thể thao và Du lịch Cao Bằng"
[defaults]
telemetry_interval_s = 1
down_after_intervals = 3
silence_after_min = {SILENCE_AFTER / 60_000}
damping_s = 1
flap_threshold = 3
[[schedules]]
id = "now"
windows = ["{window}"]
[[technicians]]
id = "tech-sms"
name = "Nông Văn Minh"
phone = "{PHONE}"
[[technicians]]
id = "tech-mail"
name = "Lê Thị Mai"
email = "{MAIL}"
[[technicians]]
id = "tech-hook"
name = "Hoàng Văn Hùng"
[[contacts]]
id = "dept"
name = "Trực ban Sở"
email = "{DEPT_MAIL}"
role = "department"
[[upstreams]]
id = "gw-test"
kind = "serial_gateway"
name = "Cổng RS-485 Thục Phán"
[[communes]]
code = "01273"
name = "Phường Thục Phán"
technicians = ["tech-sms"]
escalation = ["dept"]
schedule = "now"
[[communes]]
code = "01290"
name = "Xã Bảo Lâm"
technicians = ["tech-mail"]
schedule = "now"
[[communes]]
code = "01705"
name = "Xã Hòa An"
technicians = ["tech-hook"]
schedule = "now"
thresholds = {{ damping_s = 6 }}  # drops shorter than this (the flaps) open nothing
[[stations]]
id = "{SILENT}"
commune = "01273"
name = "Sông Hiến"
{station}[[stations]]
id = "{DOWN}"
commune = "01273"
name = "Đề Thám"
{station}[[stations]]
id = "{BATT}"
commune = "01290"
name = "Pác Miầu"
{station}[[stations]]
id = "{MAINT}"
commune = "01290"
name = "Vĩnh Phong"
{station}[[stations]]
id = "{FLAP}"
commune = "01705"
name = "Hưng Đạo"
{station}[[stations]]
id = "{GW_A}"
commune = "01705"
name = "Bế Triều"
upstream = "gw-test"
address = 1
{station}[[stations]]
id = "{GW_B}"
commune = "01705"
name = "Nam Tuấn"
upstream = "gw-test"
address = 2
{station}[[maintenance]]
station = "{MAINT}"
start = "{m0:%Y-%m-%dT%H:%M:%S}"
end = "{m1:%Y-%m-%dT%H:%M:%S}"
note = "Thay ắc quy"
"""


def config_text(tmp: Path, mqtt: int, influx: str, modem: str, smtp: int, hook: str, line: str):
    return f"""
inventory = "{tmp / "inventory.toml"}"
[daemon]
state_db = "state.sqlite"
health_tick_s = 0.5
alert_tick_s = 0.5
[mqtt]
port = {mqtt}
client_id = "collector-scenario"
[influx]
url = "{influx}"
db = "{DB}"
create_database = true
flush_interval_ms = 100
[spool]
path = "spool.sqlite"
dead_letter_path = "dead.jsonl"
[http]
port = {free_port()}
[health]
backfill_settle_s = 1
[alerts]
channel_order = ["sms", "email", "webhook"]
copy_to = ["mqtt"]
[alerts.routing]
escalate_after_min = {ESCALATE / 60_000}
max_reminders = 0
group_window_s = 0
cap_per_window = 100
[alerts.sms]
enabled = true
port = "{modem}"
timeout_s = 3
poll_interval_s = 0.1
[alerts.email]
enabled = true
host = "127.0.0.1"
port = {smtp}
security = "none"
sender = "loaxa@example.vn"
[alerts.webhook]
enabled = true
url = "{hook}"
[alerts.mqtt]
enabled = true
[[serial_gateways]]
id = "gw-test"
url = "{line}"
poll_interval_s = 0.3
response_timeout_s = 0.2
retries = 1
dead_after_s = {DEAD_AFTER / 1000}
"""


class Scenario:
    """Everything the scenario runs against; ``close()`` leaves no process or thread behind."""

    def __init__(self, tmp: Path, mosquitto, influxdb) -> None:
        self.influx = influxdb
        self.modem = SimulatedGsmModem().start()
        self.smtp = SmtpSink().start()
        self.hook = WebhookSink().start()
        master, slave = os.openpty()
        tty.setraw(slave)
        self.line_fds = (master, slave)
        self.peer = MultiDropPeer(master, [1, 2])
        self.peer.thread.start()
        (tmp / "inventory.toml").write_text(inventory_text(datetime.now(TZ)), encoding="utf-8")
        self.config_path = tmp / "collector.toml"
        self.config_path.write_text(
            config_text(
                tmp,
                mosquitto.port,
                influxdb.url,
                self.modem.port,
                self.smtp.port,
                self.hook.url,
                os.ttyname(slave),
            ),
            encoding="utf-8",
        )
        self.config = load_config(self.config_path)
        self.feed = AlertFeed(mosquitto.port, PROVINCE)
        self.collector = Collector(self.config)
        self.collector.start()
        self.running = True
        self.fleet = ScriptedFleet(mosquitto.port, PROVINCE, SCRIPTED).start(list(SCRIPTED))

    def view(self):
        return self.collector.health.view()

    def note(self, kind: str, recipient: str, about: str, timeout: float = 30) -> dict:
        """Wait for the one notification of ``kind`` to ``recipient`` about a station or
        upstream on the MQTT feed (every notification is copied there)."""

        def found() -> list[dict]:
            return [
                n
                for n in self.feed.received
                if n["kind"] == kind
                and n["recipient"]["id"] == recipient
                and about in (n["station"], n["upstream"])
            ]

        (n,) = wait_until(found, timeout, what=f"{kind} to {recipient} about {about}")
        return n

    def router_count(self, counter: str) -> int:
        return self.collector.alerts.stats()["router"].get(counter, 0)

    def stop_collector(self) -> None:
        if self.running:
            self.running = False
            self.collector.stop()

    def close(self) -> None:
        self.fleet.close()
        self.stop_collector()
        self.feed.close()
        self.peer.stop.set()
        for fd in self.line_fds:
            os.close(fd)
        self.peer.thread.join(5)
        self.hook.stop()
        self.smtp.stop()
        self.modem.stop()
