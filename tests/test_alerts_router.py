"""AlertRouter: routing, storm grouping and cap, reminders, escalation, acknowledgement, recovery.

Pure logic with a fake clock: a day of alerts replays in milliseconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from collector.alerts.config import RoutingConfig
from collector.alerts.errors import UnknownIncident
from collector.alerts.notification import NotificationKind as NK
from collector.alerts.router import AlertRouter, parse_reply
from collector.health.events import Cause, HealthEvent, HealthEventKind, Incident, State
from collector.inventory import load_inventory

MIN = 60_000
T0 = 1_780_000_000_000  # 2026-05-28 20:26:40 UTC = 03:26 local (UTC+7)


@dataclass
class Person:
    id: str
    name: str
    phone: str
    email: str
    language: str = "vi"
    role: str | None = None


@dataclass
class Place:
    name: str
    commune: str = ""
    upstream: str | None = None


@dataclass
class Province:
    timezone: str = "Asia/Ho_Chi_Minh"


@dataclass
class FakeInventory:
    """The shape of collector/inventory.py's Inventory that the router uses."""

    stations: dict[str, Place]
    communes: dict[str, Place]
    upstreams: dict[str, Place]
    technicians: dict[str, Person]
    contacts: dict[str, Person]
    routes: dict[str, list[str]] = field(default_factory=dict)  # commune -> technician ids
    province: Province = field(default_factory=Province)

    def technicians_for(self, station: str) -> list[Person]:
        return [self.technicians[t] for t in self.routes.get(self.stations[station].commune, [])]

    def escalation_for(self, station: str) -> list[Person]:
        return list(self.contacts.values())


def make_inventory(n_stations: int = 3) -> FakeInventory:
    stations = {f"cb-{i:05d}": Place(f"Nà Lầu {i}", "01273", "gw-1") for i in range(n_stations)}
    stations["cb-09999"] = Place("Hà Quảng", "01279")
    return FakeInventory(
        stations=stations,
        communes={"01273": Place("Xã Quang Trung"), "01279": Place("Xã Trường Hà")},
        upstreams={"gw-1": Place("Cổng RS-485 Hòa An")},
        technicians={
            "t-lan": Person("t-lan", "Nông Thị Lan", "+84912345678", "lan@example.vn"),
            "t-john": Person("t-john", "John Smith", "+84900000001", "john@example.org", "en"),
            "t-hai": Person("t-hai", "Bế Văn Hải", "+84987654321", "hai@example.vn"),
        },
        contacts={
            "c-dist": Person(
                "c-dist", "Phòng VH Hòa An", "+84911111111", "d@example.vn", role="district"
            ),
            "c-dept": Person(
                "c-dept", "Sở VHTT Cao Bằng", "+84922222222", "s@example.vn", role="department"
            ),
        },
        routes={"01273": ["t-lan", "t-john"], "01279": ["t-hai"]},
    )


def opened(station: str, at: int, **kw) -> HealthEvent:
    commune = "01279" if station == "cb-09999" else "01273"
    inc = Incident(
        f"{station}:{at}",
        station,
        commune,
        kw.pop("state", State.DOWN),
        kw.pop("cause", Cause.POWER),
        at,
        **kw,
    )
    return HealthEvent(HealthEventKind.INCIDENT_OPENED, at, station, commune, inc)


def closed(event: HealthEvent, at: int) -> HealthEvent:
    inc = event.incident
    done = Incident(inc.id, inc.station, inc.commune, inc.state, inc.cause, inc.opened_ms, at)
    return HealthEvent(HealthEventKind.INCIDENT_CLOSED, at, inc.station, inc.commune, done)


def router(**cfg) -> AlertRouter:
    base = {"group_window_s": 60, "escalate_after_min": 30, "remind_every_min": 10}
    return AlertRouter(make_inventory(cfg.pop("n", 3)), RoutingConfig(**{**base, **cfg}))


def test_new_incident_pages_technicians_in_their_language():
    r = router()
    out = r.on_event(opened("cb-00001", T0), T0)
    by = {n.recipient.id: n for n in out}
    assert set(by) == {"t-lan", "t-john"}
    code = by["t-lan"].codes[0]
    assert by["t-lan"].text == (
        f"[loaxa] Đài Nà Lầu 1 (Xã Quang Trung) MẤT TÍN HIỆU từ 03:26 29/05/2026. "
        f"Nguyên nhân: mất điện. Trả lời OK {code} để xác nhận."
    )
    assert by["t-john"].text.startswith("[loaxa] Station Nà Lầu 1 (Xã Quang Trung) DOWN since")
    assert by["t-lan"].kind == NK.ALERT and by["t-lan"].incident_ids == ("cb-00001:" + str(T0),)


def test_maintenance_and_upstream_children_do_not_page_upstream_pages_once():
    r = router()
    assert r.on_event(opened("cb-00000", T0, maintenance=True), T0) == []
    down = HealthEvent(HealthEventKind.UPSTREAM_DOWN, T0, None, None, upstream="gw-1")
    out = r.on_event(down, T0)
    assert {n.recipient.id for n in out} == {"t-lan", "t-john"}
    lan = next(n for n in out if n.recipient.id == "t-lan")
    assert "Cổng RS-485 Hòa An NGỪNG HOẠT ĐỘNG" in lan.text and "3 đài" in lan.text
    for i in range(3):
        child = opened(f"cb-{i:05d}", T0 + 1000, cause=Cause.UPSTREAM, upstream="gw-1")
        assert r.on_event(child, T0 + 1000) == []
    assert r.on_event(down, T0 + 2000) == []  # repeated UPSTREAM_DOWN: still one page
    assert r.stats["suppressed_maintenance"] == 1 and r.stats["suppressed_upstream_child"] == 3
    back = HealthEvent(
        HealthEventKind.UPSTREAM_RESTORED, T0 + 95 * MIN, None, None, upstream="gw-1"
    )
    rec = r.on_event(back, T0 + 95 * MIN)
    assert {n.kind for n in rec} == {NK.UPSTREAM_RESTORED}
    assert any("đã hoạt động lại sau 1 giờ 35 phút" in n.text for n in rec)


def test_recovery_names_the_outage_length():
    r = router()
    ev = opened("cb-09999", T0)
    r.on_event(ev, T0)
    out = r.on_event(closed(ev, T0 + 135 * MIN), T0 + 135 * MIN)
    assert [n.kind for n in out] == [NK.RECOVERY]
    assert "đã hoạt động lại sau 2 giờ 15 phút gián đoạn" in out[0].text
    assert r.alerts == {}


def test_reminders_then_escalation_level_by_level_until_acknowledged():
    r = router(remind_every_min=10, escalate_after_min=30, max_reminders=2)
    ev = opened("cb-09999", T0)
    code = r.on_event(ev, T0)[0].codes[0]
    kinds = []
    for minute in range(1, 70):
        kinds += [(minute, n.kind, n.recipient.id) for n in r.tick(T0 + minute * MIN)]
    assert kinds == [
        (10, NK.REMINDER, "t-hai"),
        (20, NK.REMINDER, "t-hai"),
        (30, NK.ESCALATION, "c-dist"),
        (60, NK.ESCALATION, "c-dept"),
    ]
    confirm = r.acknowledge_code(code, "Bế Văn Hải", T0 + 61 * MIN)
    assert {n.recipient.id for n in confirm} == {"c-dist", "c-dept"}
    assert "đã được Bế Văn Hải xác nhận" in confirm[0].text
    assert all(not r.tick(T0 + m * MIN) for m in range(62, 200, 7))  # silence after the ack
    rec = r.on_event(closed(ev, T0 + 200 * MIN), T0 + 200 * MIN)
    assert {n.recipient.id for n in rec} == {"t-hai", "c-dist", "c-dept"}


def test_sms_reply_acknowledges_and_names_the_sender():
    r = router()
    code = r.on_event(opened("cb-00001", T0), T0)[0].codes[0]
    out = r.apply_reply(f"ok {code}", "0912345678", T0 + MIN)
    assert [n.recipient.id for n in out] == ["t-john"]  # Lan acked: John is told
    assert "acknowledged by Nông Thị Lan" in out[0].text
    assert r.alerts[f"cb-00001:{T0}"].acked_by == "Nông Thị Lan"
    assert r.apply_reply("xin chào", "0912345678", T0) == [] and r.stats["reply_not_ack"] == 1
    with pytest.raises(UnknownIncident):
        r.acknowledge("nope", "x", T0)


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("OK 123", ["123"]),
        ("ok123", ["123"]),
        (" Ok: 101, 102 ", ["101", "102"]),
        ("OKE", []),
        ("123", []),
        ("OK", []),
        ("NOT OK 123", []),
    ],
)
def test_parse_reply(text, codes):
    assert parse_reply(text) == codes


def test_storm_groups_per_technician_and_caps():
    r = router(n=40, group_window_s=60, cap_per_window=3, cap_window_min=60)
    first = r.on_event(opened("cb-00000", T0), T0)
    assert len(first) == 2  # quiet line: the first alert leaves at once
    for i in range(1, 40):
        assert r.on_event(opened(f"cb-{i:05d}", T0 + i * 100), T0 + i * 100) == []
    grouped = r.tick(T0 + 60_000)
    assert [n.kind for n in grouped] == [NK.ALERT_GROUP, NK.ALERT_GROUP]
    lan = next(n for n in grouped if n.recipient.id == "t-lan")
    assert lan.text.startswith("[loaxa] 39 đài gặp sự cố: Nà Lầu 1 (Xã Quang Trung)")
    assert len(lan.codes) == 39 and len(set(lan.codes)) == 39
    # Reminders are grouped too: one per person at +10 min (3rd message, at the cap) ...
    reminders = r.tick(T0 + 10 * MIN)
    assert [(n.kind, len(n.codes)) for n in reminders] == [(NK.REMINDER, 40)] * 2
    assert r.stats["capped"] == 0
    # ... and the next round is over the cap of 3 per hour: dropped and counted, one per person.
    assert r.tick(T0 + 20 * MIN) == []
    assert r.stats["capped"] == 2
    # The cap window slides: an hour after the first message there is room again.
    later = r.tick(T0 + 60 * MIN + 1000)  # also both escalation levels are due: one message each
    assert sorted((n.kind, n.recipient.id, len(n.codes)) for n in later) == [
        (NK.ESCALATION, "c-dept", 40),
        (NK.ESCALATION, "c-dist", 40),
        (NK.REMINDER, "t-john", 40),
        (NK.REMINDER, "t-lan", 40),
    ]


def test_incident_closed_inside_the_group_window_is_not_sent():
    r = router()
    r.on_event(opened("cb-00000", T0), T0)
    ev = opened("cb-00001", T0 + 1000)
    assert r.on_event(ev, T0 + 1000) == []
    assert r.on_event(closed(ev, T0 + 2000), T0 + 2000) == []  # nobody was told: no recovery
    assert r.tick(T0 + 61_000) == []


def test_snapshot_restore_keeps_codes_escalation_and_windows():
    r = router()
    ev = opened("cb-09999", T0)
    code = r.on_event(ev, T0)[0].codes[0]
    r.on_event(opened("cb-00000", T0), T0)
    r.on_event(opened("cb-00001", T0 + 10), T0 + 10)  # waits in Lan's and John's window
    data = json.loads(json.dumps(r.snapshot()))
    again = router()
    again.restore(data)
    assert len(again.tick(T0 + 60_000)) == 2  # the waiting alert still leaves
    esc = [n for n in again.tick(T0 + 30 * MIN) if n.kind == NK.ESCALATION]
    assert {n.recipient.id for n in esc} == {"c-dist"}
    assert again.acknowledge_code(code, "t-hai", T0 + 31 * MIN)
    assert again.on_event(opened("cb-00002", T0 + 32 * MIN), T0 + 32 * MIN)[0].codes[0] != code


def test_unknown_station_is_logged_not_raised():
    inv = load_inventory(Path(__file__).resolve().parents[1] / "config/inventory.example.toml")
    r = AlertRouter(inv, RoutingConfig())
    ev = opened("cb-nowhere", T0)
    assert r.on_event(ev, T0) == []
    assert r.stats["no_technician"] == 1
    assert r.tick(T0 + 40 * MIN) == []  # nobody to remind or escalate to, and no crash
