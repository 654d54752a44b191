"""Province overview for the operations-room wall screen (kiosk mode, Vietnamese).

Reads the "now" panels from the latest point per station (no time filter: a station that
went down three days ago is still down), the availability from the collector's month-to-date
rollup, the timeline from ``station_state`` within the dashboard's range.
"""

from __future__ import annotations

from collector.inventory import Inventory
from collector.storage import names as n
from dashboards import grafana as g

UID = "loaxa-overview"

P = f"\"{n.T_PROVINCE}\" = '$province'"
C = f'"{n.T_COMMUNE}" =~ /^$commune$/'
S = f'"{n.T_STATION}" =~ /^$station$/'
_NOT_OPERATING = " AND ".join(
    f"\"state\" <> '{s}'" for s in ("operating", "on_battery", "battery_low", "link_down")
)

# The latest state of every station (one row per station, time = since when).
LATEST_STATE = (
    f'SELECT last("{n.F_STATE_NAME}") AS "state", "{n.T_CAUSE}" FROM "{n.STATION_STATE}" '
    f'WHERE {P} AND {C} AND {S} GROUP BY "{n.T_STATION}"'
)


def count_in_states(*states: str) -> str:
    cond = " OR ".join(f"\"state\" = '{s}'" for s in states)
    return f'SELECT count("state") AS "n" FROM ({LATEST_STATE}) WHERE {cond}'


STATION_INFO = (
    f'SELECT last("{n.F_LAT}") AS "lat", last("{n.F_LON}") AS "lon", '
    f'last("{n.F_STATION_NAME}") AS "name", last("{n.F_COMMUNE_NAME}") AS "commune_name", '
    f'last("{n.F_TECHNICIAN}") AS "technician", last("{n.F_PHONE}") AS "phone" '
    f'FROM "{n.STATION_INFO}" WHERE {P} AND {C} AND {S} GROUP BY "{n.T_STATION}"'
)
PROVINCE_SHARE = (
    f'SELECT last("{n.F_SHARE_PERCENT}") AS "share" FROM "{n.COMPLIANCE}" '
    f"WHERE {P} AND \"{n.T_SCOPE}\" = 'province'"
)
COMMUNES_NOT_OPERATING = (
    f'SELECT count("share") AS "n" FROM (SELECT last("{n.F_SHARE_PERCENT}") AS "share" '
    f'FROM "{n.COMPLIANCE}" WHERE {P} AND "{n.T_SCOPE}" = \'commune\' AND {C} '
    f'GROUP BY "{n.T_COMMUNE}") WHERE "share" < 100'
)
NOT_OPERATING = (
    f'SELECT "state", "{n.T_CAUSE}" FROM ({LATEST_STATE}) WHERE {_NOT_OPERATING} '
    f'GROUP BY "{n.T_STATION}"'
)
COMMUNE_AVAILABILITY = (
    f'SELECT last("{n.F_PERCENT}") AS "percent" FROM "{n.AVAILABILITY}" '
    f"WHERE {P} AND \"{n.T_SCOPE}\" = 'commune' AND \"{n.T_PERIOD}\" = 'month' AND {C} "
    f'AND $timeFilter GROUP BY "{n.T_COMMUNE}"'
)
COMMUNE_NAMES = (
    f'SELECT last("{n.F_COMMUNE_NAME}") AS "commune_name" FROM "{n.STATION_INFO}" '
    f'WHERE {P} AND {C} GROUP BY "{n.T_COMMUNE}"'
)
# The transitions themselves (a state timeline holds each value until the next point), from
# LOOKBACK before the range so the state at the left edge is drawn.
LOOKBACK = "35d"
SINCE_LOOKBACK = f"time >= ${{__from}}ms - {LOOKBACK} AND time <= ${{__to}}ms"
TIMELINE = (
    f'SELECT "{n.F_STATE_NAME}" AS "state" FROM "{n.STATION_STATE}" WHERE {P} AND {C} AND {S} '
    f'AND {SINCE_LOOKBACK} GROUP BY "{n.T_STATION}"'
)

_COLUMNS = {
    "Time": "Từ lúc",
    "station": "Mã trạm",
    "name": "Trạm",
    "commune_name": "Xã/phường",
    "state": "Trạng thái",
    "cause": "Nguyên nhân",
    "technician": "Kỹ thuật viên",
    "phone": "Điện thoại",
}


def variables(inventory: Inventory) -> list[g.Json]:
    return [
        g.constant_variable("province", inventory.province.slug),
        g.query_variable(
            "commune",
            "Xã/phường",
            f'SHOW TAG VALUES FROM "{n.STATION_INFO}" WITH KEY = "{n.T_COMMUNE}" WHERE {P}',
        ),
        g.query_variable(
            "station",
            "Trạm",
            f'SHOW TAG VALUES FROM "{n.STATION_INFO}" WITH KEY = "{n.T_STATION}" WHERE {P} AND {C}',
        ),
    ]


def _share_gauge(goal: float) -> g.Json:
    return g.panel(
        "gauge",
        "Xã có hệ thống truyền thanh đang hoạt động",
        (0, 0, 8, 8),
        [g.target(PROVINCE_SHARE)],
        unit="percent",
        description=f"Tỷ lệ xã/phường mà mọi đài bắt buộc đang hoạt động; mục tiêu {goal:g}%.",
        defaults={
            "min": 0,
            "max": 100,
            "decimals": 1,
            "color": {"mode": "thresholds"},
            "thresholds": g.thresholds((None, "red"), (goal - 5, "orange"), (goal, "green")),
        },
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showThresholdMarkers": True,
            "text": {"titleSize": 22, "valueSize": 80},
        },
    )


def _counts() -> list[g.Json]:
    specs = [
        ("Xã không hoạt động", COMMUNES_NOT_OPERATING, "red"),
        ("Trạm mất tín hiệu", count_in_states("down"), "red"),
        ("Trạm im lặng", count_in_states("silent"), "purple"),
        ("Trạm chạy ắc quy", count_in_states("on_battery", "battery_low"), "orange"),
        ("Trạm bảo trì", count_in_states("maintenance"), "blue"),
    ]
    grids = [(8, 0, 5, 4), (13, 0, 5, 4), (18, 0, 6, 4), (8, 4, 8, 4), (16, 4, 8, 4)]
    out = []
    for (title, query, colour), grid in zip(specs, grids, strict=True):
        out.append(g.big_stat(title, grid, query, colour))
    return out


def _geomap(inventory: Inventory) -> g.Json:
    lats = [s.lat for s in inventory.stations.values()] or [0.0]
    lons = [s.lon for s in inventory.stations.values()] or [0.0]
    view = {
        "id": "coords",
        "lat": (min(lats) + max(lats)) / 2,
        "lon": (min(lons) + max(lons)) / 2,
        "zoom": 8,
    }
    layer = {
        "type": "markers",
        "name": "Trạm",
        "tooltip": True,
        "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
        "config": {
            "showLegend": True,
            "style": {
                "size": {"fixed": 10},
                "color": {"field": "state", "fixed": "#5a5a5a"},
                "text": {"field": "name", "mode": "field"},
                "symbol": {"fixed": "img/icons/marker/circle.svg"},
            },
        },
    }
    return g.panel(
        "geomap",
        "Bản đồ trạm theo trạng thái",
        (0, 8, 12, 14),
        [g.target(STATION_INFO, "A", table=True), g.target(LATEST_STATE, "B", table=True)],
        description="Vị trí lấy từ danh mục trạm (station_info); màu theo trạng thái hiện tại.",
        defaults={"mappings": g.state_mappings(), "color": {"mode": "fixed"}},
        options={
            "view": view,
            "controls": {"showZoom": True},
            "basemap": {"type": "default"},
            "layers": [layer],
        },
        transformations=[g.join_by("station")],
    )


def _down_table() -> g.Json:
    hide = ["Time 1", "lat", "lon", "Time 2"]
    return g.panel(
        "table",
        "Trạm không hoạt động",
        (12, 8, 12, 14),
        [g.target(NOT_OPERATING, "A", table=True), g.target(STATION_INFO, "B", table=True)],
        description="Từ lúc: thời điểm chuyển sang trạng thái hiện tại.",
        defaults={"custom": {"align": "left"}},
        overrides=[
            {
                "matcher": {"id": "byName", "options": "state"},
                "properties": [
                    {"id": "mappings", "value": g.state_mappings()},
                    {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                ],
            },
            {
                "matcher": {"id": "byName", "options": "cause"},
                "properties": [{"id": "mappings", "value": g.text_mappings(g.CAUSE_LABEL)}],
            },
        ],
        options={"showHeader": True, "cellHeight": "lg", "footer": {"show": False}},
        transformations=[
            g.join_by("station", "inner"),
            g.sort_by("Time 1"),  # oldest first; before organize, which renames it
            g.organize(
                {"Time 1": "Từ lúc", **_COLUMNS},
                hide=hide[1:],
                order=[
                    "Time 1",
                    "name",
                    "commune_name",
                    "state",
                    "cause",
                    "technician",
                    "phone",
                    "station",
                ],
            ),
        ],
    )


def _availability(goal: float) -> g.Json:
    return g.panel(
        "bargauge",
        "Tỷ lệ hoạt động theo xã, từ đầu tháng (thấp nhất trước)",
        (0, 22, 12, 12),
        [g.target(COMMUNE_AVAILABILITY, "A", table=True), g.target(COMMUNE_NAMES, "B", table=True)],
        unit="percent",
        defaults={
            "min": 0,
            "max": 100,
            "decimals": 2,
            "displayName": "${__data.fields.commune_name}",
            "color": {"mode": "thresholds"},
            "thresholds": g.thresholds((None, "red"), (goal - 1, "orange"), (goal, "green")),
        },
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "/^percent$/", "values": True},
            "orientation": "horizontal",
            "displayMode": "basic",
            "showUnfilled": True,
            "text": {"titleSize": 18, "valueSize": 22},
        },
        transformations=[g.join_by("commune", "inner"), g.sort_by("percent")],
    )


def _timeline() -> g.Json:
    return g.panel(
        "state-timeline",
        "Diễn biến sự cố",
        (12, 22, 12, 12),
        [g.target(TIMELINE, alias="$tag_station")],
        defaults={"mappings": g.state_mappings(), "color": {"mode": "fixed"}},
        options={
            "showValue": "never",
            "mergeValues": True,
            "rowHeight": 0.8,
            "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"},
        },
    )


def build(inventory: Inventory) -> g.Json:
    goal = inventory.province.goal_percent
    panels = [
        _share_gauge(goal),
        *_counts(),
        _geomap(inventory),
        _down_table(),
        _availability(goal),
        _timeline(),
    ]
    return g.dashboard(
        UID,
        f"Truyền thanh cơ sở {inventory.province.name} — Toàn tỉnh",
        panels,
        variables(inventory),
        time_from="now/M",
        refresh="1m",
        tags=["overview"],
    )
