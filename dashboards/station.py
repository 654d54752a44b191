"""Station detail: audio levels, power, battery periods, uptime and reboots, with incidents as
annotations and the inventory's broadcast windows shaded (Grafana time regions, local time)."""

from __future__ import annotations

from collector.inventory import Inventory
from collector.storage import names as n
from dashboards import grafana as g
from dashboards.overview import SINCE_LOOKBACK, C, P, variables

UID = "loaxa-station"
S1 = f'"{n.T_STATION}" =~ /^$station$/'
_W = f"WHERE {P} AND {S1} AND $timeFilter"
_T = f'FROM "{n.TELEMETRY}" {_W}'

STATE = (
    f'SELECT "{n.F_STATE_NAME}" AS "state" FROM "{n.STATION_STATE}" WHERE {P} AND {S1} '
    f'AND {SINCE_LOOKBACK} GROUP BY "{n.T_STATION}"'
)
AUDIO = (
    f'SELECT mean("{n.F_AUDIO_RMS_DBFS}") AS "RMS", max("{n.F_AUDIO_PEAK_DBFS}") AS "Đỉnh" '
    f"{_T} GROUP BY time($__interval) fill(null)"
)
POWER = (
    f'SELECT mean("{n.F_MAINS_V}") AS "Điện lưới", mean("{n.F_BATTERY_V}") AS "Ắc quy" '
    f"{_T} GROUP BY time($__interval) fill(null)"
)
ON_BATTERY = (
    f'SELECT last("{n.F_ON_BATTERY}") AS "Chạy ắc quy" {_T} '
    f"GROUP BY time($__interval) fill(previous)"
)
UPTIME = (
    f'SELECT last("{n.F_UPTIME_S}") AS "Bộ điều khiển", last("{n.F_AGENT_UPTIME_S}") AS "Agent" '
    f"{_T} GROUP BY time($__interval) fill(null)"
)
REBOOTS = (
    f'SELECT count("{n.F_SEQ}") AS "reboots" FROM "{n.EVENT}" {_W} AND "{n.T_CODE}" = \'reboot\''
)
INCIDENTS = (
    f'SELECT "{n.F_INCIDENT_ID}", "{n.T_PHASE}", "{n.T_CAUSE}", "{n.T_STATE}" '
    f'FROM "{n.INCIDENT}" {_W}'
)
BROADCASTS = (  # a raw query needs a field: tags alone return nothing
    f'SELECT "{n.F_START_TS}", "{n.T_ACTION}", "{n.T_SOURCE}", "{n.T_PRIORITY}" '
    f'FROM "{n.BROADCAST}" {_W}'
)


def _annotations(inventory: Inventory) -> list[g.Json]:
    out = [
        {
            "name": "Sự cố",
            "enable": True,
            "iconColor": "red",
            "datasource": g.DATASOURCE,
            "target": {
                "query": INCIDENTS,
                "queryType": "tags",
                "fromAnnotations": True,
                "textColumn": n.F_INCIDENT_ID,
                "tagsColumn": f"{n.T_PHASE},{n.T_CAUSE}",
                "rawQuery": True,
                "refId": "Anno",
            },
        },
        {
            "name": "Chương trình phát",
            "enable": True,
            "iconColor": "green",
            "datasource": g.DATASOURCE,
            "target": {
                "query": BROADCASTS,
                "queryType": "tags",
                "fromAnnotations": True,
                "textColumn": n.T_SOURCE,
                "tagsColumn": f"{n.T_ACTION},{n.T_PRIORITY}",
                "rawQuery": True,
                "refId": "Anno",
            },
        },
    ]
    # Scheduled windows, shaded on every time panel (local province time).
    for schedule in inventory.schedules.values():
        for window in schedule.windows:
            start, end = window.split("-")
            out.append(
                {
                    "name": f"Khung giờ phát {schedule.id} {window}",
                    "enable": True,
                    "iconColor": "rgba(0, 160, 80, 0.15)",
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "target": {
                        "queryType": "timeRegions",
                        "refId": "Anno",
                        "timeRegion": {
                            "from": start,
                            "to": end,
                            "timezone": inventory.province.timezone,
                        },
                    },
                }
            )
    return out


def _series(
    title: str, grid: tuple[int, int, int, int], query: str, unit: str, **kwargs: object
) -> g.Json:
    defaults = {"custom": {"lineWidth": 2, "fillOpacity": 10, "spanNulls": False}}
    return g.panel(
        "timeseries", title, grid, [g.target(query)], unit=unit, defaults=defaults, **kwargs
    )  # type: ignore[arg-type]


def build(inventory: Inventory) -> g.Json:
    station_vars = variables(inventory)
    station_vars[2] = g.query_variable(
        "station",
        "Trạm",
        f'SHOW TAG VALUES FROM "{n.STATION_INFO}" WITH KEY = "{n.T_STATION}" WHERE {P} AND {C}',
        multi=False,
    )
    state = g.panel(
        "state-timeline",
        "Trạng thái",
        (0, 0, 18, 4),
        [g.target(STATE, alias="$tag_station")],
        defaults={"mappings": g.state_mappings(), "color": {"mode": "fixed"}},
        options={"showValue": "auto", "mergeValues": True},
    )
    reboots = g.big_stat("Số lần khởi động lại", (18, 0, 6, 4), REBOOTS, "orange")
    panels = [
        state,
        reboots,
        _series(
            "Âm thanh (RMS / đỉnh)",
            (0, 4, 12, 8),
            AUDIO,
            "dBFS",
            description="Mức âm thanh trên đường dây, dBFS (0 = tối đa).",
        ),
        _series(
            "Điện áp lưới và ắc quy",
            (12, 4, 12, 8),
            POWER,
            "volt",
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "Ắc quy"},
                    "properties": [{"id": "custom.axisPlacement", "value": "right"}],
                }
            ],
        ),
        g.panel(
            "state-timeline",
            "Thời gian chạy ắc quy",
            (0, 12, 12, 4),
            [g.target(ON_BATTERY)],
            defaults={
                "mappings": g.text_mappings(
                    {"true": "Ắc quy", "false": "Điện lưới"}, {"true": "orange", "false": "green"}
                ),
                "color": {"mode": "fixed"},
            },
            options={"showValue": "never", "mergeValues": True},
        ),
        _series(
            "Thời gian hoạt động liên tục",
            (12, 12, 12, 4),
            UPTIME,
            "s",
            description="Giảm về 0 = khởi động lại.",
        ),
    ]
    return g.dashboard(
        UID,
        "Chi tiết trạm truyền thanh",
        panels,
        station_vars,
        time_from="now-24h",
        refresh="1m",
        annotations=_annotations(inventory),
        tags=["station"],
    )
