"""GroupMember in-process, round by round (``poll()``), against real Mosquitto and InfluxDB:
fair share between two members, graceful hand-over, a session taken over by another client is
let go (never fought for), stop frees every lock."""

from __future__ import annotations

import threading

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from collector.config import load_config
from collector.group.locks import is_locked
from collector.group.member import GroupConfigError, GroupMember
from tests.faults.test_f16_group_rig import PARTITIONS, write_config
from tests.servers import wait_until


@pytest.fixture
def config(tmp_path, mosquitto, influxdb):
    return load_config(write_config(tmp_path, mosquitto.port, influxdb.url, "http://127.0.0.1:9/"))


@pytest.fixture
def members(config):
    before = set(threading.enumerate())
    made: list[GroupMember] = []

    def make() -> GroupMember:
        m = GroupMember(config)
        m.start()
        made.append(m)
        return m

    yield make
    for m in made:
        if m.membership._lock is not None:
            m.stop()
    wait_until(
        lambda: not [t for t in threading.enumerate() if t not in before and t.is_alive()],
        15,
        what="every partition's threads ended",
    )


def connected(member: GroupMember) -> bool:
    return all(r.collector.mqtt.connected for r in member.running.values())


def test_two_members_share_and_hand_over(members, config):
    a = members()
    a.poll()
    assert set(a.running) == set(range(PARTITIONS))
    wait_until(lambda: connected(a), 30, what="A's partitions connected")
    b = members()
    b.poll()  # two members: share 2, but nothing is free yet
    assert not b.running
    a.poll()  # A is above its share: hands back its highest partitions
    assert set(a.running) == {0, 1} and a.counters["handed_back"] == 2
    b.poll()
    assert set(b.running) == {2, 3}
    wait_until(lambda: connected(b), 30, what="B's partitions connected")
    a.stop()  # A leaves: B takes everything at its next round
    b.poll()
    assert set(b.running) == set(range(PARTITIONS))
    status = b.status_path.read_text()
    assert '"members": ["' + b.membership.id + '"]' in status
    b.stop()
    assert not any(is_locked(config.group.dir / f"partition-{k}.lock") for k in range(4))
    assert not list(config.group.dir.glob("member-*.lock"))


def test_session_taken_over_is_let_go_not_fought(members, config, mosquitto):
    a = members()
    a.poll()
    wait_until(lambda: connected(a), 30, what="connected")
    rogue = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{config.mqtt.client_id}-p1",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    rogue.connect("127.0.0.1", mosquitto.port, 30)
    rogue.loop_start()
    try:
        wait_until(lambda: a.running[1].taken_over.is_set(), 30, what="takeover seen")
        a.poll()
        assert 1 not in a.running and a.counters["taken_over"] == 1
        assert not is_locked(config.group.dir / "partition-1.lock")
        a.poll()  # cooling down: partition 1 is not taken again
        assert set(a.running) == {0, 2, 3}
        # nobody takes the session back from it (it may be between its own reconnects)
        wait_until(rogue.is_connected, 10, what="the other client holds the session")
    finally:
        rogue.disconnect()
        rogue.loop_stop()


def test_serial_gateways_are_refused(config):
    cfg = config.model_copy(update={"serial_gateways": [{"id": "gw", "url": "loop://"}]})
    with pytest.raises(GroupConfigError, match="serial_gateways"):
        GroupMember(cfg)
    sms = config.alerts.model_copy(
        update={"sms": config.alerts.sms.model_copy(update={"enabled": True})}
    )
    with pytest.raises(GroupConfigError, match=r"alerts\.sms: partitions cannot share"):
        GroupMember(config.model_copy(update={"alerts": sms}))
    with pytest.raises(GroupConfigError, match=r"no \[group\]"):
        GroupMember(config.model_copy(update={"group": None}))
