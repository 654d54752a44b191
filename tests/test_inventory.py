"""Inventory loader: the example file loads, errors name the key path, references are checked."""

from __future__ import annotations

import tomllib
from copy import deepcopy
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.inventory import InventoryError, load_inventory, parse_inventory

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "inventory.example.toml"


@pytest.fixture
def data() -> dict:
    with open(EXAMPLE, "rb") as fh:
        return tomllib.load(fh)


def test_example_loads_with_indexes_and_overrides():
    inv = load_inventory(EXAMPLE)
    assert inv.province.slug == "cao-bang"
    assert set(inv.communes) == {"01273", "01290"}
    assert inv.stations["cb-01282"].address == 3
    # commune override (5) then station override (-45) on top of the defaults
    t = inv.thresholds_for("cb-01309")
    assert (t.down_after_intervals, t.silence_threshold_dbfs, t.damping_s) == (5, -45.0, 60)
    assert inv.thresholds_for("cb-01267").down_after_intervals == 3
    assert [x.id for x in inv.technicians_for("cb-01290")] == ["tech-be"]
    assert [c.id for c in inv.escalation_for("cb-01267")] == ["dept-duty"]
    assert inv.schedule_for("cb-01290").always
    assert inv.schedule_for("cb-01267").windows == ["05:30-06:30", "17:00-18:30"]
    assert [s.id for s in inv.children_of("relay-bao-lam")] == ["cb-01290", "cb-01309"]


def test_maintenance_local_time_is_converted_to_utc_ms():
    inv = load_inventory(EXAMPLE)
    (m,) = inv.maintenance
    start = datetime(2026, 12, 2, 8, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    assert m.start_ms == int(start.timestamp() * 1000)
    assert m.end_ms - m.start_ms == 3 * 3600 * 1000
    assert inv.in_maintenance("cb-01267", m.start_ms) is m
    assert inv.in_maintenance("cb-01267", m.end_ms) is None
    assert inv.in_maintenance("cb-01282", m.start_ms) is None


def test_maintenance_with_offset_and_commune_scope(data):
    data["maintenance"] = [
        {"commune": "01290", "start": "2026-12-02T01:00:00+00:00", "end": "2026-12-02T02:00:00Z"}
    ]
    inv = parse_inventory(data)
    start = int(datetime(2026, 12, 2, 1, tzinfo=ZoneInfo("UTC")).timestamp() * 1000)
    assert inv.in_maintenance("cb-01290", start) is not None
    assert inv.in_maintenance("cb-01309", start) is not None
    assert inv.in_maintenance("cb-01267", start) is None


def _mutate(data: dict, path: list, value) -> dict:
    out = deepcopy(data)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ["stations", 1, "commune"],
            "09999",
            "stations[1].commune: station 'cb-01282': unknown commune '09999'",
        ),
        (
            ["stations", 2, "upstream"],
            "relay-x",
            "stations[2].upstream: station 'cb-01290' claims unknown upstream 'relay-x'",
        ),
        (
            ["stations", 0, "schedule"],
            "nightly",
            "stations[0].schedule: unknown schedule 'nightly'",
        ),
        (
            ["communes", 0, "technicians"],
            ["tech-nong", "ghost"],
            "communes[0].technicians[1]: unknown technician 'ghost'",
        ),
        (
            ["communes", 1, "escalation"],
            ["nobody"],
            "communes[1].escalation[0]: unknown contact 'nobody'",
        ),
        (["communes", 1, "schedule"], "weekly", "communes[1].schedule: unknown schedule 'weekly'"),
        (
            ["stations", 0, "address"],
            7,
            "stations[0].address: an RS-485 address needs upstream = a serial_gateway",
        ),
        (
            ["maintenance", 0, "station"],
            "cb-99999",
            "maintenance[0].station: unknown station 'cb-99999'",
        ),
        (
            ["maintenance", 0, "end"],
            "2026-12-02T07:00:00",
            "maintenance[0].end: must be after start",
        ),
        (
            ["maintenance", 0, "start"],
            "yesterday",
            "maintenance[0].start: 'yesterday' is not an ISO 8601",
        ),
    ],
)
def test_cross_reference_errors_name_the_key(data, path, value, message):
    with pytest.raises(InventoryError) as err:
        parse_inventory(_mutate(data, path, value))
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        (["stations", 2, "lat"], 123.0, "stations[2].lat"),
        (["stations", 0, "position"], "guessed", "stations[0].position"),
        (["technicians", 0, "phone"], "0912345678", "technicians[0].phone"),
        (["schedules", 0, "windows"], ["05:30-6:30"], "schedules[0].windows"),
        (["schedules", 0, "windows"], ["25:00-26:00"], "schedules[0].windows"),
        (["province", "timezone"], "Asia/Hanoi_Typo", "province.timezone"),
        (["defaults", "damping_s"], -1, "defaults.damping_s"),
        (
            ["stations", 3, "thresholds"],
            {"silence_after": 3},
            "stations[3].thresholds.silence_after",
        ),
        (["contacts", 0, "role"], "boss", "contacts[0].role"),
    ],
)
def test_schema_errors_name_the_key_path(data, path, value, key):
    with pytest.raises(InventoryError) as err:
        parse_inventory(_mutate(data, path, value))
    assert f"\n  {key}" in str(err.value)


def test_duplicates_and_schedule_shape(data):
    dup = deepcopy(data)
    dup["stations"].append(deepcopy(dup["stations"][0]))
    with pytest.raises(InventoryError, match=r"stations\[4\]\.id: duplicate id 'cb-01267'"):
        parse_inventory(dup)
    both = _mutate(data, ["schedules", 1, "windows"], ["05:00-06:00"])
    with pytest.raises(InventoryError, match=r"schedules\[1\]: .*either windows or always"):
        parse_inventory(both)
    same_addr = deepcopy(data)
    extra = deepcopy(same_addr["stations"][1]) | {"id": "cb-01705"}
    same_addr["stations"].append(extra)
    with pytest.raises(InventoryError, match=r"stations\[4\]\.address: address 3 already used"):
        parse_inventory(same_addr)


def test_file_errors_are_inventory_errors(tmp_path):
    with pytest.raises(InventoryError, match="cannot read inventory"):
        load_inventory(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[province\n")
    with pytest.raises(InventoryError, match="not valid TOML"):
        load_inventory(bad)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(InventoryError, match="province: Field required"):
        load_inventory(empty)
