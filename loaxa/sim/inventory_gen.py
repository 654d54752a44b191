"""Inventories for demos, tests and benchmarks (inventory format version 1, collector/inventory.py).

- :func:`cao_bang_inventory`: the Cao Bằng demo built from public GSO facts in
  ``config/data/cao-bang/`` (56 communes/wards since 1 July 2025; one station per former commune,
  161, id ``cb-<former code>`` in the 2025 commune it merged into; one technician per former
  district; a department duty contact; two RS-485 serial gateways with a few stations behind
  them). Positions are DEMO positions scattered around rough district centres inside the
  province extent, marked ``position = "demo"``; technicians' names and phone numbers are made up.
- :func:`synthetic_inventory`: N stations (10k, 100k) in a made-up province, for scale tests.

Both return plain dicts shaped like the TOML file (``parse_inventory`` accepts them) and are
deterministic for a given seed. :func:`write_toml` writes one with a header comment.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import tomli_w

DATA_DIR = Path(__file__).resolve().parents[2] / "config" / "data" / "cao-bang"
LAT_RANGE = (22.356, 23.120)  # province extent, 22°21'21"N .. 23°07'12"N
LON_RANGE = (105.271, 106.840)  # 105°16'15"E .. 106°50'25"E

# Rough centres of the former districts (for demo positions only; not surveyed).
_DISTRICT_CENTRES = {
    "040": (22.666, 106.258),  # Thành phố Cao Bằng
    "042": (22.780, 105.480),  # Bảo Lâm
    "043": (22.940, 105.670),  # Bảo Lạc
    "045": (22.900, 106.100),  # Hà Quảng
    "047": (22.830, 106.520),  # Trùng Khánh
    "048": (22.700, 106.690),  # Hạ Lang
    "049": (22.560, 106.450),  # Quảng Hòa
    "051": (22.720, 106.150),  # Hòa An
    "052": (22.650, 105.950),  # Nguyên Bình
    "053": (22.480, 106.320),  # Thạch An
}
_GIVEN = ["Văn Minh", "Thị Hoa", "Văn Hùng", "Thị Lan", "Đức Thắng", "Thị Mai", "Văn Tùng",
          "Thị Hằng", "Văn Khánh", "Thị Nga"]  # fmt: skip
_SURNAMES = ["Nông", "Bế", "Hoàng", "Lương", "Đàm", "Triệu", "La", "Lục", "Mã", "Hà"]
# (gateway id, former district, stations behind it, display name)
_GATEWAYS = [("gw-thuc-phan", "040", 4, "Cổng RS-485 Thục Phán"),
             ("gw-hoa-an", "051", 3, "Cổng RS-485 Hòa An")]  # fmt: skip
SCHEDULES = [
    {"id": "daily", "windows": ["05:30-06:30", "17:00-18:30"]},
    {"id": "fm-24h", "always": True},
]
DEFAULTS = {
    "telemetry_interval_s": 60, "down_after_intervals": 3, "silence_threshold_dbfs": -50.0,
    "silence_after_min": 5, "unscheduled_after_min": 10, "battery_low_v": 11.5,
    "damping_s": 60, "flap_window_min": 60, "flap_threshold": 3,
}  # fmt: skip
DEPARTMENT = {
    "id": "dept-duty", "name": "Trực ban Sở Văn hóa, Thể thao và Du lịch", "role": "department",
    "phone": "+842063851234", "email": "truc.ban@example.vn", "language": "vi",
}  # fmt: skip


def _read_csv(name: str, data_dir: Path) -> list[dict[str, str]]:
    with open(data_dir / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _short_name(name: str) -> str:
    for prefix in ("Thành phố ", "Huyện ", "Thị trấn ", "Phường ", "Xã "):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _clusters(rng: random.Random) -> list[str]:
    count = rng.choices([1, 2, 3, 4], weights=[3, 4, 2, 1])[0]
    return sorted(rng.choices(["wired", "fm", "ip"], weights=[55, 30, 15], k=count))


def _position(
    rng: random.Random, centre: tuple[float, float], spread: float
) -> tuple[float, float]:
    lat = min(max(rng.gauss(centre[0], spread), LAT_RANGE[0]), LAT_RANGE[1])
    lon = min(max(rng.gauss(centre[1], spread * 1.3), LON_RANGE[0]), LON_RANGE[1])
    return round(lat, 5), round(lon, 5)


def _technicians(districts: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for i, code in enumerate(sorted(districts)):
        out.append({
            "id": f"tech-{code}",
            "name": f"{_SURNAMES[i % 10]} {_GIVEN[(i * 3) % 10]}",
            "phone": f"+84912000{int(code):03d}",  # demo number
            "email": f"kythuat.{code}@example.vn",
            "language": "vi",
        })  # fmt: skip
    return out


def cao_bang_inventory(
    seed: int = 0, data_dir: Path = DATA_DIR, telemetry_interval_s: int = 60
) -> dict[str, Any]:
    """The Cao Bằng demo inventory as a dict (161 stations in 56 communes).
    ``telemetry_interval_s``: what the collector expects; a sped-up fleet reports every
    ``60 / speed`` s (loaxa/sim/fleet.py), so a demo at speed 30 wants 2 here."""
    rng = random.Random(seed)
    communes_2025 = _read_csv("communes_2025.csv", data_dir)
    former = _read_csv("former_communes.csv", data_dir)
    districts = {row["former_district_code"]: row["former_district"] for row in former}
    techs_of: dict[str, set[str]] = defaultdict(set)
    for row in former:
        techs_of[row["new_code"]].add(f"tech-{row['former_district_code']}")
    communes = [
        {"code": c["code"], "name": c["name"], "technicians": sorted(techs_of[c["code"]]),
         "escalation": ["dept-duty"], "schedule": "daily"}
        for c in communes_2025
    ]  # fmt: skip
    stations = []
    for row in former:
        lat, lon = _position(rng, _DISTRICT_CENTRES[row["former_district_code"]], 0.05)
        station = {
            "id": f"cb-{row['former_code']}",
            "commune": row["new_code"],
            "name": f"{_short_name(row['former_name'])} (cũ)",
            "clusters": _clusters(rng),
            "lat": lat, "lon": lon, "position": "demo",
        }  # fmt: skip
        if "fm" in station["clusters"] and rng.random() < 0.25:
            station["schedule"] = "fm-24h"  # FM rebroadcast channel on air around the clock
        stations.append(station)
    upstreams = _attach_gateways(rng, stations, former)
    return {
        "province": {
            "code": "04", "slug": "cao-bang", "name": "Cao Bằng",
            "department": "Sở Văn hóa, Thể thao và Du lịch Cao Bằng",
            "timezone": "Asia/Ho_Chi_Minh", "goal_percent": 100,
        },
        "defaults": {**DEFAULTS, "telemetry_interval_s": telemetry_interval_s},
        "schedules": [dict(s) for s in SCHEDULES],
        "technicians": _technicians(districts),
        "contacts": [dict(DEPARTMENT)],
        "upstreams": upstreams,
        "communes": communes,
        "stations": stations,
    }  # fmt: skip


def _attach_gateways(
    rng: random.Random, stations: list[dict[str, Any]], former: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """Put a few stations of a district behind each serial gateway, with RS-485 addresses."""
    upstreams = []
    for gw_id, district, count, name in _GATEWAYS:
        pool = [s for s, row in zip(stations, former, strict=True)
                if row["former_district_code"] == district]  # fmt: skip
        for address, station in enumerate(rng.sample(pool, count), start=1):
            station["upstream"], station["address"] = gw_id, address
            station.pop("schedule", None)  # gateway lines carry daily programs only
        upstreams.append({"id": gw_id, "kind": "serial_gateway", "name": name})
    return upstreams


def synthetic_inventory(
    n_stations: int, seed: int = 0, telemetry_interval_s: int = 60
) -> dict[str, Any]:
    """A made-up province with ``n_stations`` stations, 3 per commune (at most 99,999 communes),
    one technician per 20 communes, a serial gateway per 200 stations (4 stations behind each)."""
    if n_stations < 1:
        raise ValueError("n_stations must be >= 1")
    rng = random.Random(seed)
    n_communes = min(99_999, max(1, (n_stations + 2) // 3))
    n_techs = max(1, n_communes // 20)
    technicians = [
        {"id": f"tech-{i:05d}", "name": f"Kỹ thuật viên {i}", "phone": f"+8491{i:07d}"}
        for i in range(n_techs)
    ]
    communes = [
        {"code": f"{i + 1:05d}", "name": f"Xã {i + 1}", "schedule": "daily",
         "technicians": [f"tech-{i % n_techs:05d}"], "escalation": ["dept-duty"]}
        for i in range(n_communes)
    ]  # fmt: skip
    kinds, rand = ("wired", "fm", "ip"), rng.random
    stations = []
    for i in range(n_stations):
        stations.append({
            "id": f"st-{i:06d}", "commune": f"{i % n_communes + 1:05d}", "name": f"Đài {i}",
            "clusters": [kinds[int(rand() * 3)] for _ in range(1 + int(rand() * 3))],
            "lat": round(8.6 + rand() * 14.7, 5), "lon": round(102.2 + rand() * 7.2, 5),
            "position": "demo",
        })  # fmt: skip
    upstreams = []
    for g in range(n_stations // 200):
        gw_id = f"gw-{g:04d}"
        upstreams.append({"id": gw_id, "kind": "serial_gateway", "name": f"Cổng RS-485 {g}"})
        for address in range(1, 5):
            station = stations[g * 200 + address - 1]
            station["upstream"], station["address"] = gw_id, address
    return {
        "province": {"code": "99", "slug": "synthetic", "name": "Tỉnh mô phỏng",
                     "department": "Sở mô phỏng", "goal_percent": 100},
        "defaults": {**DEFAULTS, "telemetry_interval_s": telemetry_interval_s},
        "schedules": [dict(s) for s in SCHEDULES],
        "technicians": technicians,
        "contacts": [dict(DEPARTMENT)],
        "upstreams": upstreams,
        "communes": communes,
        "stations": stations,
    }  # fmt: skip


HEADER = """\
# loaxa inventory, format version 1 (collector/inventory.py), generated by
#   loaxa simulate make-inventory {how}
# Positions are DEMO positions (position = "demo"), not surveyed; names of technicians and
# phone numbers are made up. Regenerate rather than edit by hand.
"""


def write_toml(inventory: dict[str, Any], path: str | Path, how: str = "") -> Path:
    """Write an inventory dict as TOML (UTF-8) with a header saying how it was made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = HEADER.format(how=how).rstrip() + "\n\n" + tomli_w.dumps(inventory)
    path.write_text(text, encoding="utf-8")
    return path
