"""Measurement, tag and field names of the InfluxDB schema (SCHEMA.md, schema v1).

The one place these names are spelled: encoders, tests and dashboards' queries import them.
Tags are bounded vocabularies only (province, commune, station, cluster id and enum values);
sequence numbers, ids and timestamps are fields, never tags.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

# Measurements
TELEMETRY = "telemetry"
CLUSTER = "cluster"
EVENT = "event"
BROADCAST = "broadcast"
STATUS = "status"
STATION_STATE = "station_state"
INCIDENT = "incident"
COMPLIANCE = "compliance"
INGEST_REJECT = "ingest_reject"
CLOCK_SKEW = "clock_skew"

MEASUREMENTS = (
    TELEMETRY,
    CLUSTER,
    EVENT,
    BROADCAST,
    STATUS,
    STATION_STATE,
    INCIDENT,
    COMPLIANCE,
    INGEST_REJECT,
    CLOCK_SKEW,
)

# Incident phases (tag values of T_PHASE)
PHASE_OPEN = "open"
PHASE_RECLASSIFIED = "reclassified"
PHASE_CLOSE = "close"
INCIDENT_PHASES = (PHASE_OPEN, PHASE_RECLASSIFIED, PHASE_CLOSE)

# Dashboard feeds (SCHEMA.md; encoders in points.py, built from the inventory and the health
# timelines by dashboards/feeds.py)
STATION_INFO = "station_info"
AVAILABILITY = "availability"
MEASUREMENTS += (STATION_INFO, AVAILABILITY)

# Tags
T_PROVINCE = "province"  # topic slug, e.g. "cao-bang"
T_COMMUNE = "commune"  # 5-digit GSO code, e.g. "01273"
T_STATION = "station"  # inventory id, e.g. "cb-01267"
T_CLUSTER = "cluster"  # loudspeaker cluster id 0..255
T_CLUSTER_KIND = "cluster_kind"  # wired | fm | ip
T_CODE = "code"  # event code (EventCode)
T_ORIGIN = "origin"  # mcu | agent
T_ACTION = "action"  # broadcast start | stop
T_SOURCE = "source"  # ProgramSource
T_PRIORITY = "priority"  # Priority
T_DETECTED_BY = "detected_by"  # mcu | audio
T_STATE = "state"  # status online|offline; station_state/incident State
T_CAUSE = "cause"  # Cause
T_PHASE = "phase"  # incident open | reclassified | close
T_SCOPE = "scope"  # compliance province | commune; availability station | commune
T_REASON = "reason"  # ingest reject reason (bounded vocabulary, [a-z0-9_])

# Fields shared by the payload measurements
F_SESSION = "session"
F_SEQ = "seq"
F_BACKFILL = "backfill"

# telemetry fields
F_CONTROLLER_OK = "controller_ok"
F_UPTIME_S = "uptime_s"
F_AGENT_UPTIME_S = "agent_uptime_s"
F_AMP = "amp"
F_AUDIO_RMS_DBFS = "audio_rms_dbfs"
F_AUDIO_PEAK_DBFS = "audio_peak_dbfs"
F_AUDIO_CLIP_RATIO = "audio_clip_ratio"
F_AUDIO_SILENT = "audio_silent"
F_AUDIO_SOURCE = "audio_source"
F_ACOUSTIC_DBFS = "acoustic_dbfs"
F_ACOUSTIC_CORR = "acoustic_corr"
F_MAINS_V = "mains_v"
F_BATTERY_V = "battery_v"
F_ON_BATTERY = "on_battery"
F_TEMP_C = "temp_c"
F_FM_FORWARD_W = "fm_forward_w"
F_FM_REFLECTED_W = "fm_reflected_w"
F_CLUSTERS = "clusters"  # number of clusters reported

# cluster fields
F_RELAY_ON = "relay_on"
F_FAULT = "fault"
F_FEED_OK = "feed_ok"
F_RMS_DBFS = "rms_dbfs"

# event fields
F_EVENT_CLUSTER = "cluster_id"
F_VALUE = "value"
F_RAW_CODE = "raw_code"

# broadcast fields
F_START_TS = "start_ts"
F_END_TS = "end_ts"
F_DURATION_S = "duration_s"
F_CLUSTER_LIST = "cluster_list"  # "1,2,5"

# status fields
F_ONLINE = "online"
F_AGENT_VERSION = "agent_version"
F_FIRMWARE = "firmware"
F_HARDWARE = "hardware"
F_DEVICE_ID = "device_id"
F_STATUS_REASON = "reason"

# station_state fields
F_STATE_NAME = "state_name"  # the state again, as a field, for state-timeline panels
F_OPERATING = "operating"
F_LINK_DOWN = "link_down"

# incident fields
F_INCIDENT_ID = "incident_id"
F_OPENED_MS = "opened_ms"
F_CLOSED_MS = "closed_ms"
F_UPSTREAM = "upstream"
F_MAINTENANCE = "maintenance"
F_OPEN = "open"  # 1 on the open point, 0 on the close point: sum() gives open incidents

# compliance fields
F_OPERATING_COUNT = "operating"
F_REQUIRED_COUNT = "required"
F_SHARE_PERCENT = "share_percent"
F_GOAL_PERCENT = "goal_percent"
F_GOAL_MET = "goal_met"
F_NAME = "name"

# ingest_reject / clock_skew fields
F_COUNT = "count"
F_DETAIL = "detail"
F_SKEW_MS = "skew_ms"

# station_info fields (the inventory, for maps and "who to call" tables)
F_STATION_NAME = "station_name"
F_COMMUNE_NAME = "commune_name"
F_LAT = "lat"
F_LON = "lon"
F_REQUIRED = "required"
F_POSITION = "position"  # demo | surveyed
F_TECHNICIAN = "technician"  # names, "; "-separated
F_PHONE = "phone"  # phones, "; "-separated

# availability tags and fields (period to date, written periodically by the collector)
T_PERIOD = "period"  # month
F_PERCENT = "percent"
F_OPERATING_S = "operating_s"
F_DOWN_S = "down_s"
F_MAINTENANCE_S = "maintenance_s"
F_UNKNOWN_S = "unknown_s"
F_PERIOD_START_MS = "period_start_ms"
