"""Shared fixtures: real Mosquitto and InfluxDB servers, started per test on free ports."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from tests.servers import InfluxDB, Mosquitto

# Property tests judge results, not speed: Hypothesis' default 200 ms deadline and its too_slow
# health check fail ("Unreliable test timings") on a loaded CI machine. Tests that pass their
# own @settings keep them; what they leave unset comes from here.
settings.register_profile(
    "loaxa", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("loaxa")


@pytest.fixture
def mosquitto(tmp_path_factory):
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield broker
    broker.stop()


@pytest.fixture
def influxdb(tmp_path_factory):
    server = InfluxDB(tmp_path_factory.mktemp("influxdb")).start()
    yield server
    server.stop()
