"""Frame and message codec: CRC, header checks, encode errors, units (FP-FRAME, FP-MSG)."""

from __future__ import annotations

import pytest
from cobs import cobs

from firmware_protocol import (
    Ack,
    BadLengthError,
    BadVersionError,
    ClusterRecord,
    CobsError,
    CrcError,
    EncodeError,
    Event,
    EventCode,
    FieldRangeError,
    Frame,
    Hello,
    MessageType,
    Nack,
    NackReason,
    OversizeError,
    PayloadSizeError,
    Playback,
    Poll,
    ProtocolError,
    Telemetry,
    TimeSync,
    Unknown,
    UnknownTypeError,
    crc16,
    decode_body,
    decode_frame,
    decode_message,
    encode_body,
    encode_frame,
    message_from_fields,
)


def test_crc_check_value() -> None:
    """FP-FRAME-7: CRC-16/CCITT-FALSE of "123456789" is 0x29B1; of nothing, the init 0xFFFF."""
    assert crc16(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF


def test_error_tree() -> None:
    """FP-RX-3: one base class; every specific error derives from it."""
    for cls in (CrcError, OversizeError, BadVersionError, UnknownTypeError, BadLengthError,
                CobsError, EncodeError, FieldRangeError, PayloadSizeError):  # fmt: skip
        assert issubclass(cls, ProtocolError)
    assert issubclass(FieldRangeError, EncodeError) and issubclass(PayloadSizeError, EncodeError)


def test_frame_layout_little_endian() -> None:
    """FP-FRAME-6: version, address, seq, type, flags, payload, CRC, integers little-endian."""
    body = encode_body(0x1234, 0xABCD, 0x05, 0x02, Ack(0x0102, 0x03).pack())
    assert body[:10] == bytes([1, 0x34, 0x12, 0xCD, 0xAB, 0x05, 0x02, 0x02, 0x01, 0x03])
    assert int.from_bytes(body[-2:], "little") == crc16(body[:-2])
    wire = encode_frame(Frame(0x1234, 0xABCD, Ack(0x0102, 3), 0x02))
    assert wire == cobs.encode(body) + b"\x00" and b"\x00" not in wire[:-1]


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (Frame(0x10000, 0, Poll()), FieldRangeError),
        (Frame(1, -1, Poll()), FieldRangeError),
        (Frame(1, 0, Poll(), 0x04), FieldRangeError),
        (Frame(1, 0, Hello(device_id=2**32)), FieldRangeError),
        (Frame(1, 0, Hello(1, fw_major=256)), FieldRangeError),
        (Frame(1, 0, Telemetry(audio_rms=-32769)), FieldRangeError),
        (Frame(1, 0, Telemetry(clusters=(ClusterRecord(1, rms=128),))), FieldRangeError),
        (Frame(1, 0, Telemetry(clusters=tuple(ClusterRecord(i) for i in range(17)))),
         FieldRangeError),
        (Frame(1, 0, Event(code=1.5)), FieldRangeError),  # type: ignore[arg-type]
        (Frame(1, 0, TimeSync(unix_ms=-1)), FieldRangeError),
        (Frame(1, 0, Unknown(0x01, b"")), FieldRangeError),
        (Frame(1, 0, Unknown(0x100, b"")), FieldRangeError),
        (Frame(1, 0, Unknown(0x7F, bytes(248))), PayloadSizeError),
    ],
)  # fmt: skip
def test_encode_rejects_out_of_range(frame: Frame, error: type[EncodeError]) -> None:
    """FP-MSG-3: a value that does not fit its wire field raises a specific EncodeError."""
    with pytest.raises(error):
        encode_frame(frame)


def _body(version: int = 1, type_code: int = 0x10, payload: bytes = b"\x02") -> bytes:
    head = bytes([version, 0x12, 0, 7, 0, type_code, 0]) + payload
    return head + crc16(head).to_bytes(2, "little")


def test_decode_body_errors_in_order() -> None:
    """FP-RX-3: oversize, short, CRC, version, payload length, each its own error."""
    with pytest.raises(OversizeError):
        decode_body(bytes(257))
    with pytest.raises(BadLengthError):
        decode_body(_body()[:8])
    with pytest.raises(CrcError):
        decode_body(_body()[:-1] + b"\x00")
    with pytest.raises(BadVersionError) as version_err:
        decode_body(_body(version=2))
    assert version_err.value.header.seq == 7  # CRC was good: the receiver may NACK reason 4
    with pytest.raises(BadLengthError) as length_err:
        decode_body(_body(payload=b"\x02\x02"))
    assert length_err.value.header.type == 0x10
    assert decode_body(_body(type_code=0x55)).message == Unknown(0x55, b"\x02")


def test_decode_frame_cobs_and_size_errors() -> None:
    """FP-FRAME-4, FP-FRAME-5: COBS overrun and over-long runs are specific errors."""
    with pytest.raises(CobsError):
        decode_frame(b"\x05\x01\x00")
    with pytest.raises(OversizeError):
        decode_frame(b"\x01" * 259 + b"\x00")
    with pytest.raises(CobsError):
        decode_frame(b"\x02\x00\x01\x00")  # a delimiter inside the run


def test_unpack_wrong_size_and_unknown_type() -> None:
    """FP-MSG-2: a known type with the wrong payload size is BadLengthError."""
    with pytest.raises(BadLengthError):
        Hello.unpack(bytes(12))
    with pytest.raises(BadLengthError):
        Telemetry.unpack(bytes(21))
    with pytest.raises(UnknownTypeError):
        decode_message(0x7F, b"", allow_unknown=False)
    assert decode_message(MessageType.POLL, b"\x01") == Poll(1)


def test_telemetry_units_and_sentinels() -> None:
    """FP-MSG-4: properties give physical units, None for the unknown sentinels."""
    t = Telemetry(audio_rms=-301, audio_peak=-5, mains=2205, battery=13150, power_flags=0b101,
                  temperature=-250, fm_forward=1234, fm_reflected=56)  # fmt: skip
    assert (t.audio_rms_dbfs, t.audio_peak_dbfs, t.mains_v) == (-3.01, -0.05, 220.5)
    assert (t.battery_v, t.temperature_c, t.fm_forward_w, t.fm_reflected_w) == (
        13.15, -2.5, 123.4, 5.6)  # fmt: skip
    assert (t.on_battery, t.mains_present, t.door_open) == (True, False, True)
    u = Telemetry()
    assert [u.audio_rms_dbfs, u.audio_peak_dbfs, u.mains_v, u.battery_v, u.temperature_c,
            u.fm_forward_w, u.fm_reflected_w] == [None] * 7  # fmt: skip
    assert ClusterRecord(1).rms_dbfs is None and ClusterRecord(1, rms=-12).rms_dbfs == -12


def test_enum_views_keep_unknown_codes_raw() -> None:
    """FP-MSG-5: codes outside the tables stay raw ints; the enum view is None."""
    assert Event(code=8).event_code is EventCode.BATTERY_LOW
    assert Event(code=200).event_code is None and Event(code=200).code == 200
    assert Nack(1, 2, 4).reason_enum is NackReason.UNSUPPORTED_VERSION
    assert Playback(1, cluster_mask=0b1001).cluster_ids == (0, 3)
    assert Hello(1, 1, 2, 3).firmware_version == "1.2.3"


def test_message_from_fields_checks_counts() -> None:
    """FP-VEC-2: the flat form has exactly the SPEC field count (TELEMETRY: 11 + 1 + 4k)."""
    with pytest.raises(FieldRangeError):
        message_from_fields(0x05, [1])
    with pytest.raises(FieldRangeError):
        message_from_fields(0x02, [0] * 11 + [1])
    assert message_from_fields(0x02, [0] * 11 + [1, 4, 1, 2, -3]).clusters == (
        ClusterRecord(4, 1, 2, -3),)  # fmt: skip
