"""The collector daemon: assembles ingest, storage, health and alerts, and runs them.

Data path: MQTT / serial gateways -> Pipeline (validate) -> StorageSink (spool, durable) ->
MQTT ACK. After the append the health engine observes the messages; its events go to the alerts
service, the state store (incident history) and InfluxDB (state and incident points).

Threads: paho's network loop and the MQTT ingest worker, one per serial gateway, the storage
drainer, the alert dispatcher, apscheduler (health tick, alert tick), the HTTP server. The
health engine is pure and single-threaded: ``HealthFeed`` serialises every call with a lock.

Stop (SIGTERM/SIGINT): inputs first (received messages are stored and ACKed), then the jobs,
then a last state save, then alerts and storage. Anything not stored is not ACKed, so the
broker delivers it again to the next run.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from collector.alerts.service import AlertService
from collector.config import CollectorConfig
from collector.export.schedule import register_export_jobs
from collector.export.settings import reader_for
from collector.health.engine import HealthEngine
from collector.health.store import HealthStore
from collector.http import HealthReport, HttpEndpoint
from collector.ingest.health_feed import HealthFeed, now_ms
from collector.ingest.mqtt import MqttIngest
from collector.ingest.ops_client import OpsClient
from collector.ingest.pipeline import Pipeline
from collector.ingest.serial_gateway import SerialGateway
from collector.ingest.sink import StorageSink
from collector.ingest.stats import IngestStats
from collector.ingest.validate import RejectReason
from collector.inventory import Inventory, load_inventory
from collector.metrics import (
    CollectorMetrics,
    alerts_families,
    fleet_families,
    gauge,
    ingest_families,
    labelled_gauge,
    storage_families,
)
from collector.storage import Storage
from collector.storage.points import clock_skew_point, reject_point
from collector.storage.writers import Writer
from dashboards.feed_job import run_once as feed_run_once

log = logging.getLogger("collector")


class WriteWatch:
    """Wraps the storage writer to tell /healthz whether InfluxDB takes writes right now: the
    storage unit retries connection errors silently (no alarm), which is right for it but
    is exactly what an operator's probe must see."""

    def __init__(self, inner: Writer) -> None:
        self.inner = inner
        self.last_ok_ms: int | None = None
        self.last_failure_ms: int | None = None

    def write(self, lines: Sequence[str]) -> None:
        try:
            self.inner.write(lines)
        except Exception:
            self.last_failure_ms = now_ms()
            raise
        self.last_ok_ms = now_ms()

    def close(self) -> None:
        self.inner.close()

    @property
    def writable(self) -> bool:
        if self.last_failure_ms is None:
            return True
        return self.last_ok_ms is not None and self.last_ok_ms > self.last_failure_ms


class Collector:
    def __init__(self, config: CollectorConfig, inventory: Inventory | None = None) -> None:
        """``inventory``: instead of ``config.inventory``'s (a group partition's share of it)."""
        self.config = config
        self.inventory = inventory if inventory is not None else load_inventory(config.inventory)
        province = self.inventory.province.slug
        config.daemon.state_db.parent.mkdir(parents=True, exist_ok=True)
        self.storage = Storage(config.storage)
        self.write_watch = WriteWatch(self.storage.writer)
        self.storage.drainer.writer = self.write_watch  # the drainer's writes, observed
        self.store = HealthStore(config.daemon.state_db)
        engine = HealthEngine(self.inventory, config.health)
        saved = self.store.load()
        if saved is not None:
            engine.restore(saved)
        self.ops = OpsClient(config.mqtt)
        self.alerts = None
        if config.alerts.enabled:
            self.alerts = AlertService.from_config(
                config.alerts, self.inventory, self.ops.client, province
            )
            self.ops.on_connect.append(self._attach_acks)
            self.alerts.persist = self._write_alerts_state
        self._alerts_state = config.daemon.state_db.with_suffix(".alerts.json")
        self.health = HealthFeed(engine, self.store, self.storage, self.alerts)
        self.stop_event = threading.Event()
        self.stats = IngestStats(
            config.validation.reject_log_every_s, int(config.validation.skew_warn_s * 1000)
        )
        self.sink = StorageSink(self.storage, on_stored=self.health.observe)
        self.pipeline = Pipeline(
            lambda: self.inventory,
            config.validation.limits(),
            self.sink,
            self.stats,
            stop=self.stop_event,
        )
        self.mqtt = MqttIngest(config.mqtt, self.pipeline)
        self.gateways = [
            SerialGateway(
                g,
                province,
                self._stations_on(g.id),
                self.pipeline,
                on_state=self.health.upstream_state,
            )
            for g in config.serial_gateways
        ]
        self.metrics = self._metrics()
        self.http = (
            HttpEndpoint(config.http, self.health_report, self.metrics)
            if config.http.enabled
            else None
        )
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self._rejects_written: dict[RejectReason, int] = {}
        self._skews_written_ms = 0
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not every tick in the log

    def _stations_on(self, gateway: str):
        def stations() -> dict[int, tuple[str, str]]:
            return {
                s.address: (s.id, s.commune)
                for s in self.inventory.stations.values()
                if s.upstream == gateway and s.address is not None
            }

        return stations

    def _attach_acks(self) -> None:
        if self.alerts is not None and self.alerts.acks is not None:
            self.alerts.acks.attach()

    # --- observability ------------------------------------------------------------------
    def _metrics(self) -> CollectorMetrics:
        m = CollectorMetrics()
        m.add_callback(lambda: ingest_families(self.stats))
        m.add_callback(lambda: storage_families(self.storage.snapshot()))
        m.add_callback(
            gauge("loaxa_ingest_backlog", "Received, not yet stored", lambda: self.mqtt.backlog)
        )
        m.add_callback(
            gauge(
                "loaxa_mqtt_connected",
                "1 when the broker session is up",
                lambda: self.mqtt.connected,
            )
        )
        m.add_callback(
            labelled_gauge(
                "loaxa_serial_gateway_up",
                "1 when the line answers",
                "gateway",
                lambda: {g.config.id: bool(g.up) for g in self.gateways},
            )
        )
        if self.alerts is not None:
            alerts = self.alerts
            m.add_callback(lambda: alerts_families(alerts.stats()))
        m.add_callback(lambda: fleet_families(self.health.view()))
        return m

    def health_report(self) -> HealthReport:
        snap = self.storage.snapshot()
        checks = {
            "broker_connected": self.mqtt.connected,
            "influx_writable": snap.get("alarm_active") is None and self.write_watch.writable,
            "spool_not_full": not snap.get("spool_full"),
        }
        for g in self.gateways:
            checks[f"gateway_{g.config.id}_up"] = bool(g.up)
        info = {
            "spool_depth": snap.get("spool_depth", 0),
            "ingest_backlog": self.mqtt.backlog,
            "last_error": snap.get("last_error"),
        }
        return HealthReport(checks, info)

    # --- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        log.info(
            "collector starting: %d stations in %s, state in %s",
            len(self.inventory.stations),
            self.config.inventory,
            self.config.daemon.state_db,
        )
        self._restore_alerts()
        self.storage.start()
        if self.alerts is not None:
            self.alerts.start()
        self.ops.start()
        self.mqtt.start()
        for g in self.gateways:
            g.start()
        d = self.config.daemon
        self.scheduler.add_job(
            self._job(self.health.tick),
            "interval",
            seconds=d.health_tick_s,
            id="health_tick",
            coalesce=True,
            max_instances=1,
        )
        self.scheduler.add_job(
            self._job(self._write_rejects),
            "interval",
            seconds=d.health_tick_s,
            id="rejects",
            coalesce=True,
        )
        if self.alerts is not None:
            self.scheduler.add_job(
                self._job(self._alert_tick),
                "interval",
                seconds=d.alert_tick_s,
                id="alert_tick",
                coalesce=True,
                max_instances=1,
            )
        if d.dashboard_feed_s > 0:
            self.scheduler.add_job(
                self._job(self._dashboard_feed),
                "interval",
                seconds=d.dashboard_feed_s,
                id="dashboard_feed",
                coalesce=True,
                max_instances=1,
                next_run_time=datetime.now(UTC) + timedelta(seconds=min(10.0, d.dashboard_feed_s)),
            )
        self.scheduler.add_job(
            self._job(self._midnight_checkpoint),
            "cron",
            hour=0,
            minute=0,
            second=30,
            timezone=self.inventory.province.tz,
            id="state_checkpoint",
            coalesce=True,
        )
        smtp = self.config.alerts.email if self.config.alerts.email.enabled else None
        self.export_jobs = register_export_jobs(
            self.scheduler, self.config.export, self.config.influx, self.inventory, smtp
        )
        self.scheduler.start()
        if self.http is not None:
            self.http.start()

    def _midnight_checkpoint(self) -> None:
        """Every station's state at today's local midnight, so each day (and month) of the
        export starts from a known state."""
        tz = self.inventory.province.tz
        midnight = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
        written = self.health.checkpoint(int(midnight.timestamp() * 1000))
        log.info("state checkpoint at %s: %d stations", midnight.isoformat(), written)

    def _dashboard_feed(self) -> None:
        """station_info and month-to-date availability for the dashboards, read back from what
        this daemon stored (the same arithmetic as the export)."""
        reader = reader_for(self.config.influx)
        feed_run_once(self.inventory, reader, self.storage.append, now_ms(), with_compliance=False)

    def _job(self, fn):
        def run() -> None:
            try:
                fn()
            except Exception:  # a failing job is logged; the next run tries again
                log.exception("job %s failed", fn.__name__)

        run.__name__ = fn.__name__
        return run

    def _write_rejects(self) -> None:
        """Rejects per reason since the last run, as ``ingest_reject`` points, and the clock skew
        of stations refused for their timestamps, as ``clock_skew`` points (dashboards)."""
        _, rejected, _ = self.stats.snapshot()
        now, province = now_ms(), self.inventory.province.slug
        lines = [
            reject_point(now, province, reason.value, n - self._rejects_written.get(reason, 0))
            for reason, n in rejected.items()
            if n > self._rejects_written.get(reason, 0)
        ]
        for station, skew in self.stats.rejected_clocks(self._skews_written_ms).items():
            known = self.inventory.stations.get(station)
            if known is not None:
                lines.append(clock_skew_point(now, province, known.commune, station, skew))
        self._skews_written_ms = now
        if lines:
            self.storage.append(lines)
        self._rejects_written = rejected

    def _alert_tick(self) -> None:
        assert self.alerts is not None
        self.alerts.tick()
        self._save_alerts()

    def stop(self) -> None:
        log.info("collector stopping")
        self.stop_event.set()
        for g in self.gateways:
            g.stop()
        self.mqtt.stop(self.config.daemon.shutdown_timeout_s)
        self.scheduler.shutdown(wait=True)
        self.health.tick()
        if self.alerts is not None:
            self._save_alerts()
            self.alerts.stop()
        self.ops.stop()
        self.storage.stop()
        if self.http is not None:
            self.http.stop()
        self.store.close()
        log.info("collector stopped")

    def _save_alerts(self) -> None:
        if self.alerts is not None:
            self.alerts.save()

    def _write_alerts_state(self, state: dict[str, object]) -> None:
        """``AlertService.persist``: called under the service's lock, so writers never race."""
        tmp = self._alerts_state.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self._alerts_state)  # atomic: a crash leaves the previous file whole

    def _restore_alerts(self) -> None:
        if self.alerts is not None and self._alerts_state.exists():
            self.alerts.restore(json.loads(self._alerts_state.read_text()))

    def run(self) -> int:
        """Start, wait for SIGTERM/SIGINT, stop cleanly. Returns the exit code."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        # Long-lived start-up objects out of the GC's sight, and fewer young collections: at
        # thousands of messages/s the default thresholds cost ~30 % of the ingest time.
        gc.collect()
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)
        self.start()
        self.stop_event.wait()
        self.stop()
        return 0
