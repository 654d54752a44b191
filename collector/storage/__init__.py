"""InfluxDB storage: schema (SCHEMA.md), line-protocol encoder, durable spool, v1/v2 writers."""

from collector.storage.config import (
    InfluxApi,
    InfluxConfig,
    SpoolConfig,
    SpoolFullPolicy,
    StorageConfig,
)
from collector.storage.errors import SpoolFullError, StorageError
from collector.storage.points import (
    clock_skew_point,
    compliance_point,
    incident_point,
    points_for_payload,
    reject_point,
    state_point,
)
from collector.storage.service import Storage
from collector.storage.spool import Spool

__all__ = [
    "InfluxApi",
    "InfluxConfig",
    "Spool",
    "SpoolConfig",
    "SpoolFullError",
    "SpoolFullPolicy",
    "Storage",
    "StorageConfig",
    "StorageError",
    "clock_skew_point",
    "compliance_point",
    "incident_point",
    "points_for_payload",
    "reject_point",
    "state_point",
]
