"""Small builders for Grafana dashboard JSON (plain dicts, Grafana 10/11, schemaVersion 39).

Plain dicts rather than grafana-foundation-sdk: the dashboards use a handful of panel kinds and
the JSON stays readable in review. Every query goes to one InfluxDB datasource with a fixed uid
(``DATASOURCE_UID``), the same uid the provisioning file and ``loaxa dashboards push`` use.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 39
DATASOURCE_UID = "loaxa-influxdb"
DATASOURCE = {"type": "influxdb", "uid": DATASOURCE_UID}
TIMEZONE = "Asia/Ho_Chi_Minh"

Json = dict[str, Any]

# Colours and Vietnamese labels of the health states (collector/health/events.py State).
STATE_STYLE: dict[str, tuple[str, str]] = {
    "operating": ("green", "Hoạt động"),
    "on_battery": ("yellow", "Chạy ắc quy"),
    "battery_low": ("orange", "Ắc quy yếu"),
    "link_down": ("blue", "Mất kết nối (vẫn phát)"),
    "silent": ("purple", "Im lặng"),
    "down": ("red", "Mất tín hiệu"),
    "maintenance": ("#8e8e8e", "Bảo trì"),
    "unknown": ("#5a5a5a", "Chưa rõ"),
}
CAUSE_LABEL: dict[str, str] = {
    "power": "Mất điện",
    "network": "Mất mạng",
    "equipment": "Hỏng thiết bị",
    "audio_chain": "Mất âm thanh",
    "upstream": "Lỗi trạm trung gian",
    "unknown": "Chưa rõ",
}


def text_mappings(labels: dict[str, str], colours: dict[str, str] | None = None) -> list[Json]:
    """One value mapping: raw value -> Vietnamese text (and colour)."""
    options = {}
    for i, (value, text) in enumerate(labels.items()):
        options[value] = {"text": text, "index": i}
        if colours and value in colours:
            options[value]["color"] = colours[value]
    return [{"type": "value", "options": options}]


def state_mappings() -> list[Json]:
    return text_mappings(
        {k: label for k, (_, label) in STATE_STYLE.items()},
        {k: colour for k, (colour, _) in STATE_STYLE.items()},
    )


def target(query: str, ref: str = "A", table: bool = False, alias: str | None = None) -> Json:
    """A raw InfluxQL query (works on InfluxDB 1.x, 2.x through DBRP, 3.x)."""
    out: Json = {
        "refId": ref,
        "datasource": DATASOURCE,
        "query": query,
        "rawQuery": True,
        "resultFormat": "table" if table else "time_series",
    }
    if alias:
        out["alias"] = alias
    return out


def panel(
    kind: str,
    title: str,
    grid: tuple[int, int, int, int],
    targets: list[Json],
    *,
    unit: str | None = None,
    description: str = "",
    options: Json | None = None,
    defaults: Json | None = None,
    overrides: list[Json] | None = None,
    transformations: list[Json] | None = None,
) -> Json:
    """A panel at grid (x, y, w, h) (24 columns wide)."""
    x, y, w, h = grid
    field_defaults: Json = dict(defaults or {})
    if unit:
        field_defaults["unit"] = unit
    out: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {"defaults": field_defaults, "overrides": overrides or []},
        "options": options or {},
    }
    if transformations:
        out["transformations"] = transformations
    return out


def thresholds(*steps: tuple[float | None, str]) -> Json:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


def big_stat(
    title: str, grid: tuple[int, int, int, int], query: str, colour: str, description: str = ""
) -> Json:
    """A count readable across the room; zero is green, anything else the alarm colour."""
    return panel(
        "stat",
        title,
        grid,
        [target(query)],
        description=description,
        defaults={
            "noValue": "0",  # a count over no matching station returns no row
            "decimals": 0,
            "color": {"mode": "thresholds"},
            "thresholds": thresholds((None, "green"), (1, colour)),
        },
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value",  # the title names it
            "justifyMode": "center",
            "text": {"titleSize": 22, "valueSize": 72},
        },
    )


def join_by(field: str, mode: str = "outer") -> Json:
    return {"id": "joinByField", "options": {"byField": field, "mode": mode}}


def organize(
    rename: dict[str, str], hide: list[str] | None = None, order: list[str] | None = None
) -> Json:
    return {
        "id": "organize",
        "options": {
            "renameByName": rename,
            "excludeByName": {name: True for name in hide or []},
            "indexByName": {name: i for i, name in enumerate(order or [])},
        },
    }


def sort_by(field: str, desc: bool = False) -> Json:
    return {"id": "sortBy", "options": {"sort": [{"field": field, "desc": desc}]}}


def query_variable(name: str, label: str, query: str, multi: bool = True) -> Json:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": 1,  # on dashboard load: new stations appear without editing the dashboard
        "multi": multi,
        "includeAll": multi,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {},
        "sort": 1,
    }


def constant_variable(name: str, value: str) -> Json:
    return {
        "type": "constant",
        "name": name,
        "query": value,
        "hide": 2,
        "current": {"text": value, "value": value},
    }


def dashboard(
    uid: str,
    title: str,
    panels: list[Json],
    variables: list[Json],
    *,
    time_from: str,
    time_to: str = "now",
    refresh: str = "1m",
    annotations: list[Json] | None = None,
    tags: list[str] | None = None,
) -> Json:
    for i, p in enumerate(panels, start=1):
        p["id"] = i
    builtin = {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }
    return {
        "uid": uid,
        "title": title,
        "tags": ["loaxa", *(tags or [])],
        "timezone": TIMEZONE,
        "editable": False,
        "graphTooltip": 1,
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": time_from, "to": time_to},
        "timepicker": {},
        "templating": {"list": variables},
        "annotations": {"list": [builtin, *(annotations or [])]},
        "panels": panels,
        "links": [
            {
                "type": "dashboards",
                "tags": ["loaxa"],
                "asDropdown": True,
                "title": "Bảng điều khiển loaxa",
            }
        ],
    }
