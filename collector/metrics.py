"""Prometheus metrics of the collector, in a registry of its own (not the global one).

Counters the hot path already keeps (``IngestStats``, spool depth, connection state) are read
at scrape time by a custom collector, so ingest never takes the Prometheus client's locks per
message. Events that happen rarely (an Influx write, an alert sent) use ordinary
``Histogram``/``Counter`` objects.

Names (``loaxa_`` prefix):
    loaxa_ingest_messages_total{kind}        accepted messages
    loaxa_ingest_rejected_total{reason}      rejected messages, reason from RejectReason
    loaxa_station_clock_skew_seconds{station} receive time minus reading time (live messages)
    loaxa_ingest_backlog                     messages received, not yet stored
    loaxa_mqtt_connected                     1 when the broker session is up
    loaxa_serial_gateway_up{gateway}         1 when the gateway's line answered recently
    loaxa_spool_depth                        points in the durable spool, not yet in InfluxDB
    loaxa_influx_write_seconds               InfluxDB write latency (histogram)
    loaxa_alerts_total{channel,outcome}      alert deliveries
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

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
        self.write_seconds = Histogram(
            "loaxa_influx_write_seconds",
            "InfluxDB write latency",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.alerts = Counter(
            "loaxa_alerts",
            "Alert deliveries by channel and outcome",
            ["channel", "outcome"],
            registry=self.registry,
        )

    def add_callback(self, fn: Callable[[], Iterable[Metric]]) -> None:
        """Register ``fn``; it yields metric families each time /metrics is scraped."""
        self.registry.register(_Callback(fn))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def ingest_families(stats: IngestStats) -> Iterable[Metric]:
    accepted, rejected, skews = stats.snapshot()
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
    return [messages, rejects, skew]


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
