"""Shared fixtures: real Mosquitto and InfluxDB servers, started per test on free ports."""

from __future__ import annotations

import pytest

from tests.servers import InfluxDB, Mosquitto


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
