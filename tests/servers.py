"""Real servers for tests (the implementation is shared with ``loaxa demo``)."""

from loaxa.localservers import InfluxDB, Mosquitto, _binary, _Process, free_port, wait_until

__all__ = ["InfluxDB", "Mosquitto", "_Process", "_binary", "free_port", "wait_until"]
