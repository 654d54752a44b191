"""Monthly compliance: the figures of the monthly export (issue 4) for the month picked.

Availability comes from the collector's ``availability`` rollup (the last point inside the
month is the month's figure; maintenance and unknown time are neither up nor down); outages and
time to restore from closed ``incident`` points outside maintenance; broadcast minutes from
``broadcast`` stop points.
"""

from __future__ import annotations

from collector.inventory import Inventory
from collector.storage import names as n
from dashboards import grafana as g
from dashboards.overview import C, P, variables

UID = "loaxa-compliance"

_AVAIL = (
    f'SELECT last("{n.F_PERCENT}") AS "percent", last("{n.F_DOWN_S}") / 60 AS "down_min", '
    f'last("{n.F_MAINTENANCE_S}") / 60 AS "maintenance_min", '
    f'last("{n.F_UNKNOWN_S}") / 3600 AS "no_data_h" FROM "{n.AVAILABILITY}" '
    f"WHERE {P} AND \"{n.T_PERIOD}\" = 'month' AND {C} AND $timeFilter AND "
)
COMMUNE_TABLE = _AVAIL + f'"{n.T_SCOPE}" = \'commune\' GROUP BY "{n.T_COMMUNE}"'
STATION_TABLE = _AVAIL + f'"{n.T_SCOPE}" = \'station\' GROUP BY "{n.T_STATION}"'
COMMUNES_MEETING_GOAL = (
    f'SELECT count("p") AS "n" FROM (SELECT last("{n.F_PERCENT}") AS "p" FROM '
    f'"{n.AVAILABILITY}" WHERE {P} AND "{n.T_SCOPE}" = \'commune\' AND "{n.T_PERIOD}" = '
    f'\'month\' AND {C} AND $timeFilter GROUP BY "{n.T_COMMUNE}") WHERE "p" >= $goal'
)
COMMUNES_COUNTED = (
    f'SELECT count("p") AS "n" FROM (SELECT last("{n.F_PERCENT}") AS "p" FROM '
    f'"{n.AVAILABILITY}" WHERE {P} AND "{n.T_SCOPE}" = \'commune\' AND "{n.T_PERIOD}" = '
    f"'month' AND {C} AND $timeFilter GROUP BY \"{n.T_COMMUNE}\")"
)
OUTAGES = (
    f'SELECT count("{n.F_DURATION_S}") AS "outages", sum("{n.F_DURATION_S}") / 60 AS "minutes", '
    f'max("{n.F_DURATION_S}") / 60 AS "longest_min", mean("{n.F_DURATION_S}") / 60 AS "mttr_min" '
    f'FROM "{n.INCIDENT}" WHERE {P} AND {C} AND "{n.T_PHASE}" = \'close\' AND '
    f'"{n.F_MAINTENANCE}" = false AND $timeFilter GROUP BY "{n.T_CAUSE}"'
)
BROADCAST_HOURS = (
    f'SELECT sum("{n.F_DURATION_S}") / 3600 AS "hours" FROM "{n.BROADCAST}" '
    f'WHERE {P} AND {C} AND "{n.T_ACTION}" = \'stop\' AND $timeFilter GROUP BY "{n.T_SOURCE}"'
)
PROVINCE_SHARE = (
    f'SELECT last("{n.F_SHARE_PERCENT}") AS "Tỷ lệ xã hoạt động" FROM "{n.COMPLIANCE}" '
    f"WHERE {P} AND \"{n.T_SCOPE}\" = 'province' AND $timeFilter GROUP BY time(1h) fill(previous)"
)
SOURCE_LABEL = {
    "provincial_relay": "Tiếp sóng Đài tỉnh",
    "national_relay": "Tiếp sóng Đài quốc gia",
    "local_bulletin": "Bản tin địa phương",
    "fm_rebroadcast": "Phát lại FM",
    "other": "Khác",
}

_TABLE_COLUMNS = {
    "percent": "Tỷ lệ hoạt động",
    "down_min": "Mất tín hiệu (phút)",
    "maintenance_min": "Bảo trì (phút)",
    "no_data_h": "Không có dữ liệu (giờ)",
    "commune": "Mã xã",
    "station": "Mã trạm",
    "commune_name": "Xã/phường",
}


def _table(title: str, grid: tuple[int, int, int, int], query: str, goal: float) -> g.Json:
    return g.panel(
        "table",
        title,
        grid,
        [g.target(query, table=True)],
        defaults={"decimals": 1},
        overrides=[
            {
                "matcher": {"id": "byName", "options": "percent"},
                "properties": [
                    {"id": "unit", "value": "percent"},
                    {"id": "decimals", "value": 2},
                    {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                    {"id": "thresholds", "value": g.thresholds((None, "red"), (goal, "green"))},
                    {"id": "color", "value": {"mode": "thresholds"}},
                ],
            }
        ],
        options={"showHeader": True, "sortBy": [{"displayName": "percent", "desc": False}]},
        transformations=[g.sort_by("percent"), g.organize(_TABLE_COLUMNS, hide=["Time"])],
    )


def build(inventory: Inventory) -> g.Json:
    goal = inventory.province.goal_percent
    vars_ = [*variables(inventory)[:2], g.constant_variable("goal", f"{goal:g}")]
    panels = [
        g.big_stat("Xã đạt mục tiêu", (0, 0, 6, 5), COMMUNES_MEETING_GOAL, "green"),
        g.big_stat("Xã có dữ liệu", (6, 0, 6, 5), COMMUNES_COUNTED, "blue"),
        g.panel(
            "timeseries",
            "Tỷ lệ xã hoạt động theo giờ",
            (12, 0, 12, 5),
            [g.target(PROVINCE_SHARE)],
            unit="percent",
            defaults={"min": 0, "max": 100},
        ),
        _table("Theo xã/phường (thấp nhất trước)", (0, 5, 12, 12), COMMUNE_TABLE, goal),
        _table("Theo trạm (thấp nhất trước)", (12, 5, 12, 12), STATION_TABLE, goal),
        g.panel(
            "table",
            "Sự cố theo nguyên nhân (ngoài bảo trì)",
            (0, 17, 12, 8),
            [g.target(OUTAGES, table=True)],
            defaults={"decimals": 1},
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "cause"},
                    "properties": [{"id": "mappings", "value": g.text_mappings(g.CAUSE_LABEL)}],
                }
            ],
            transformations=[
                g.organize(
                    {
                        "cause": "Nguyên nhân",
                        "outages": "Số lần",
                        "minutes": "Tổng (phút)",
                        "longest_min": "Dài nhất (phút)",
                        "mttr_min": "Khắc phục TB (phút)",
                    },
                    hide=["Time"],
                )
            ],
        ),
        g.panel(
            "barchart",
            "Giờ phát theo nguồn chương trình",
            (12, 17, 12, 8),
            [g.target(BROADCAST_HOURS, table=True)],
            unit="h",
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "source"},
                    "properties": [{"id": "mappings", "value": g.text_mappings(SOURCE_LABEL)}],
                }
            ],
            options={"xField": "source", "orientation": "horizontal"},
            transformations=[g.organize({}, hide=["Time"])],
        ),
    ]
    return g.dashboard(
        UID,
        "Báo cáo tuân thủ hằng tháng",
        panels,
        vars_,
        time_from="now/M",
        time_to="now/M",
        refresh="",
        tags=["compliance"],
    )
