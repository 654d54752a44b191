"""Protocol messages -> payload fields, checked by building the real loaxa.payloads models."""

from __future__ import annotations

import json

import pytest

from agent.acoustic import AcousticResult
from agent.audio import FLOOR_DBFS, AudioLevels
from agent.convert import (
    agent_event_fields,
    device_info,
    event_fields,
    rejected,
    telemetry_fields,
)
from firmware_protocol import ClusterRecord, Event, EventCode, Hello, Telemetry
from loaxa.payloads import Event as EventPayload
from loaxa.payloads import EventCode as PayloadCode
from loaxa.payloads import Telemetry as TelemetryPayload
from loaxa.payloads import to_json

ENVELOPE = {"station": "cb-01267", "session": 3, "seq": 42, "ts": 1_790_000_000_000}


def payload(fields: dict) -> dict:
    """Validate as the publisher will, and return the JSON the collector will see."""
    return json.loads(to_json(TelemetryPayload(**ENVELOPE, **fields)))


def mcu(**kw) -> Telemetry:
    base = dict(
        uptime_s=3600, amp_state=1, audio_rms=-1850, audio_peak=-612, mains=2205,
        battery=13210, power_flags=0b10, temperature=3150,
        clusters=(ClusterRecord(0, 0, 0b101, -20), ClusterRecord(3, 2, 0b011, -128)),
    )  # fmt: skip
    return Telemetry(**{**base, **kw})


def test_full_mcu_telemetry_with_pcm_levels():
    levels = AudioLevels(-3.0103, -0.0003, 0.01234, False)
    out = payload(telemetry_fields(mcu(), levels, 120, True))
    assert out["controller"] == "ok" and out["uptime_s"] == 3600 and out["agent_uptime_s"] == 120
    assert out["amp"] == "on"
    assert out["audio"] == {
        "rms_dbfs": -3.01, "peak_dbfs": -0.0, "clip_ratio": 0.0123, "silent": False,
        "source": "pcm",
    }  # fmt: skip
    assert out["power"] == {"mains_v": 220.5, "battery_v": 13.21, "on_battery": False}
    assert out["temp_c"] == 31.5 and "fm" not in out
    assert out["clusters"] == [
        {"id": 0, "kind": "wired", "relay_on": True, "fault": False, "feed_ok": True,
         "rms_dbfs": -20.0},
        {"id": 3, "kind": "ip", "relay_on": True, "fault": True, "feed_ok": False},
    ]  # fmt: skip


def test_mcu_level_when_there_is_no_pcm_source():
    out = payload(telemetry_fields(mcu(), None, 5, True))
    assert out["audio"] == {"rms_dbfs": -18.5, "peak_dbfs": -6.12, "silent": False,
                            "clip_ratio": 0.0, "source": "mcu"}  # fmt: skip


def test_mcu_level_with_silence_flag_from_the_meter():
    silent = AudioLevels(-70.0, -60.0, 0.0, True, "mcu")
    out = payload(telemetry_fields(mcu(audio_rms=-7000), silent, 5, True))
    assert out["audio"]["silent"] is True and out["audio"]["source"] == "mcu"


def test_digital_silence_serialises_as_the_floor():
    levels = AudioLevels(FLOOR_DBFS, FLOOR_DBFS, 0.0, True)
    out = payload(telemetry_fields(None, levels, 5, False))
    assert out["audio"]["rms_dbfs"] == FLOOR_DBFS and out["audio"]["silent"] is True


def test_unreachable_controller_reports_no_stale_readings():
    out = payload(telemetry_fields(mcu(), None, 99, False))
    assert out["controller"] == "unreachable"
    assert out["audio"] == {"source": "none", "clip_ratio": 0.0, "silent": False}
    assert "uptime_s" not in out and out["power"] == {"on_battery": False}
    assert out["amp"] == "unknown" and out["clusters"] == []


def test_unknown_sentinels_become_absent():
    m = mcu(audio_rms=-0x8000, audio_peak=-0x8000, mains=0xFFFF, battery=0xFFFF,
            temperature=-0x8000)  # fmt: skip
    out = payload(telemetry_fields(m, None, 1, True))
    assert out["audio"] == {"source": "none", "clip_ratio": 0.0, "silent": False}
    assert out["power"] == {"on_battery": False} and "temp_c" not in out


def test_fm_station():
    out = payload(telemetry_fields(mcu(fm_forward=305, fm_reflected=12), None, 1, True))
    assert out["fm"] == {"forward_w": 30.5, "reflected_w": 1.2}


def test_out_of_range_reading_is_dropped_and_counted_not_fatal():
    before = rejected["audio.rms_dbfs"], rejected["temp_c"]
    m = mcu(audio_rms=500, temperature=20000)  # +5 dBFS, 200 °C: a confused MCU
    out = payload(telemetry_fields(m, None, 1, True))
    assert "rms_dbfs" not in out["audio"] and "temp_c" not in out
    assert (rejected["audio.rms_dbfs"], rejected["temp_c"]) == (before[0] + 1, before[1] + 1)


def test_unknown_amp_state_and_cluster_kind():
    m = mcu(amp_state=9, clusters=(ClusterRecord(0, 7, 1, -10), ClusterRecord(1, 1, 1, -10)))
    out = payload(telemetry_fields(m, None, 1, True))
    assert out["amp"] == "unknown"
    assert [c["id"] for c in out["clusters"]] == [1] and out["clusters"][0]["kind"] == "fm"


def test_acoustic_result_is_reported():
    result = AcousticResult(-31.234, 0.87654, 37.5, "sounding")
    out = payload(telemetry_fields(mcu(), None, 1, True, acoustic=result))
    assert out["audio"]["acoustic_dbfs"] == -31.23 and out["audio"]["acoustic_corr"] == 0.877


def event(**kw) -> dict:
    fields = event_fields(Event(**kw))
    EventPayload(**ENVELOPE, **fields)
    return {k: v for k, v in fields.items() if v is not None}


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"code": EventCode.POWER_LOST}, {"code": "power_lost", "raw_code": 1}),
        ({"code": EventCode.AMP_FAULT, "cluster": 2}, {"code": "amp_fault", "raw_code": 3,
                                                        "cluster": 2}),
        ({"code": EventCode.BATTERY_LOW, "value": 1150}, {"code": "battery_low", "raw_code": 8,
                                                          "value": 1150}),
        ({"code": EventCode.OVER_TEMPERATURE, "value": 7250},
         {"code": "over_temperature", "raw_code": 9, "value": 7250}),
        ({"code": EventCode.REBOOT, "value": 2}, {"code": "reboot", "raw_code": 5, "value": 2}),
        ({"code": 200, "value": -5}, {"code": "unknown", "raw_code": 200, "value": -5}),
    ],
)  # fmt: skip
def test_event_fields(kw, expected):
    assert event(**kw) == {**expected, "origin": "mcu"}


def test_agent_event_fields():
    fields = agent_event_fields(PayloadCode.QUEUE_EVICTED, 17)
    assert EventPayload(**ENVELOPE, **fields).origin == "agent" and fields["value"] == 17


def test_device_info_from_hello():
    info = device_info(Hello(0xC0FFEE, 1, 4, 2, 3, 0, 2, 1))
    assert info == {"firmware": "1.4.2", "hardware": "rev3", "device_id": 0xC0FFEE}


def test_stale_mcu_level_is_not_reported_when_unreachable():
    levels = AudioLevels(-20.0, -10.0, 0.0, False, "mcu")
    out = payload(telemetry_fields(mcu(), levels, 1, False))
    assert out["audio"]["source"] == "none" and "rms_dbfs" not in out["audio"]
