"""Prometheus metrics of the collector, in a registry of its own (not the global one).

Every unit already keeps plain counters (``IngestStats``, ``Storage.snapshot()``,
``AlertService.stats()``); they are read at scrape time by callback collectors, so the hot path
never takes the Prometheus client's locks per message.

Names (``loaxa_`` prefix):
    loaxa_ingest_messages_total{kind}        accepted messages
    loaxa_ingest_rejected_total{reason}      rejected messages, reason from RejectReason
    loaxa_station_clock_skew_seconds{station} receive time minus reading time (live messages)
    loaxa_ingest_backlog                     messages received, not yet stored
    loaxa_mqtt_connected                     1 when the broker session is up
    loaxa_serial_gateway_up{gateway}         1 when the gateway's line answered recently
    loaxa_unknown_stations                   distinct unknown station ids seen (bounded)
    loaxa_spool_depth                        points in the durable spool, not yet in InfluxDB
    loaxa_influx_write_seconds               InfluxDB write latency (summary: _count, _sum)
    loaxa_influx_points_written_total        points InfluxDB accepted
    loaxa_influx_last_write_seconds          latency of the latest write
    loaxa_alerts_total{channel,outcome}      alert deliveries (sent, failed, fallback ...)
    loaxa_alert_router_total{counter}        router counters: acknowledged, capped, ...
    loaxa_alerts_undelivered_total           notifications no channel delivered
    loaxa_stations{state}                    stations per health state (HealthFeed.view())
    loaxa_open_incidents                     incidents open now (maintenance ones included)
    loaxa_compliance_percent                 share of counted communes operating (NaN: none)
    loaxa_upstreams_down                     gateways/relays/uplinks down now
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from collector.health.events import State
from collector.health.fleet_view import FleetView
from collector.ingest.stats import IngestStats
from collector.ingest.validate import RejectReason


class _Callback(Collector):
    def __init__(self, fn: Callable[[], Iterable[Metric]]) -> None:
        self._fn = fn

    def collect(self) -> Iterable[Metric]:
        return list(self._fn())


class CollectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()

    def add_callback(self, fn: Callable[[], Iterable[Metric]]) -> None:
        """Register ``fn``; it yields metric families each time /metrics is scraped."""
        self.registry.register(_Callback(fn))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def ingest_families(stats: IngestStats) -> Iterable[Metric]:
    accepted, rejected, skews = stats.snapshot()
    unknown_count = len(stats.unknown_stations)
    messages = CounterMetricFamily(
        "loaxa_ingest_messages", "Accepted messages by kind", labels=["kind"]
    )
    for kind, n in sorted(accepted.items()):
        messages.add_metric([kind], n)
    rejects = CounterMetricFamily(
        "loaxa_ingest_rejected", "Rejected messages by reason", labels=["reason"]
    )
    for reason in RejectReason:  # every reason, zeros included, so alert rules can rate() it
        rejects.add_metric([reason.value], rejected.get(reason, 0))
    skew = GaugeMetricFamily(
        "loaxa_station_clock_skew_seconds",
        "Receive time minus reading time of the latest live message",
        labels=["station"],
    )
    for station, ms in sorted(skews.items()):
        skew.add_metric([station], ms / 1000)
    unknown = GaugeMetricFamily(
        "loaxa_unknown_stations", "Distinct unknown station ids seen", value=unknown_count
    )
    return [messages, rejects, skew, unknown]


def storage_families(snap: Mapping[str, object]) -> Iterable[Metric]:
    """From ``collector.storage.Storage.snapshot()``."""
    write = SummaryMetricFamily("loaxa_influx_write_seconds", "InfluxDB write latency")
    write.add_metric(
        [],
        count_value=_num(snap, "batches_written_total"),
        sum_value=_num(snap, "write_seconds_total"),
    )
    return [
        write,
        CounterMetricFamily(
            "loaxa_influx_points_written",
            "Points InfluxDB accepted",
            value=_num(snap, "points_written_total"),
        ),
        GaugeMetricFamily(
            "loaxa_influx_last_write_seconds",
            "Latency of the latest write",
            value=_num(snap, "last_write_seconds"),
        ),
        GaugeMetricFamily(
            "loaxa_spool_depth",
            "Points spooled, not yet in InfluxDB",
            value=_num(snap, "spool_depth"),
        ),
        CounterMetricFamily(
            "loaxa_influx_retries", "Write retries", value=_num(snap, "retries_total")
        ),
    ]


def alerts_families(stats: Mapping[str, object]) -> Iterable[Metric]:
    """From ``collector.alerts.service.AlertService.stats()``: {"channels": {ch: {outcome: n}}}."""
    family = CounterMetricFamily(
        "loaxa_alerts", "Alert deliveries by channel and outcome", labels=["channel", "outcome"]
    )
    channels = stats.get("channels")
    if isinstance(channels, Mapping):
        for channel, outcomes in sorted(channels.items()):
            for outcome, n in sorted(dict(outcomes).items()):
                family.add_metric([str(channel), str(outcome)], float(n))
    router = CounterMetricFamily(
        "loaxa_alert_router",
        "Alert router counters (acknowledged, capped, ...)",
        labels=["counter"],
    )
    counters = stats.get("router")
    if isinstance(counters, Mapping):
        for name, n in sorted(counters.items()):
            router.add_metric([str(name)], float(n))
    undelivered = CounterMetricFamily(
        "loaxa_alerts_undelivered",
        "Notifications no channel could deliver",
        value=float(stats.get("undelivered", 0) or 0),  # type: ignore[arg-type]
    )
    return [family, router, undelivered]


def _num(snap: Mapping[str, object], key: str) -> float:
    value = snap.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def gauge(name: str, doc: str, value: Callable[[], float]) -> Callable[[], Iterable[Metric]]:
    def families() -> Iterable[Metric]:
        return [GaugeMetricFamily(name, doc, value=float(value()))]

    return families


def labelled_gauge(
    name: str, doc: str, label: str, values: Callable[[], Mapping[str, float]]
) -> Callable[[], Iterable[Metric]]:
    def families() -> Iterable[Metric]:
        family = GaugeMetricFamily(name, doc, labels=[label])
        for key, v in sorted(values().items()):
            family.add_metric([key], float(v))
        return [family]

    return families


def fleet_families(view: FleetView) -> Iterable[Metric]:
    """The health engine's picture (``HealthFeed.view()``): bounded labels (State values)."""
    per_state = GaugeMetricFamily("loaxa_stations", "Stations per health state", labels=["state"])
    counts = {state.value: 0 for state in State}
    for station in view.stations.values():
        counts[station.state.value] += 1
    for state, n in counts.items():
        per_state.add_metric([state], float(n))
    percent = view.compliance.percent
    return [
        per_state,
        GaugeMetricFamily(
            "loaxa_open_incidents", "Incidents open now", value=len(view.open_incidents)
        ),
        GaugeMetricFamily(
            "loaxa_compliance_percent",
            "Share of counted communes whose radio system operates",
            value=float("nan") if percent is None else percent,
        ),
        GaugeMetricFamily(
            "loaxa_upstreams_down", "Shared upstreams down now", value=len(view.upstreams_down)
        ),
    ]
