"""SMS PDUs for GSM modems in PDU mode (3GPP TS 27.005 AT+CMGF=0; TPDUs per TS 23.040).

We only *send* UCS-2 (DCS 0x08): Vietnamese needs diacritics the GSM 7-bit alphabet lacks. A
UCS-2 part carries 140 octets = 70 UTF-16 units; a part of a long message gives 6 octets to the
concatenation header (8-bit reference), leaving 67 units. A surrogate pair is never split.

SMS-SUBMIT as written by :func:`encode_submit` (hex, one octet per field unless noted)::

    00            SMSC length 0: use the SMSC stored in the SIM
    11 | 51       first octet: MTI=01 SUBMIT, VPF=10 relative, UDHI (0x40) when multi-part
    00            TP-MR, the modem fills in the message reference
    LL TT DD..    destination: digit count, type (91 international, 81 national), BCD swapped
    00 08 VP      PID, DCS = UCS-2, validity (relative)
    UDL UD..      user-data length in octets, [05 00 03 ref total seq] + UTF-16BE text

Incoming SMS-DELIVER PDUs are decoded with the ``smspdudecoder`` library (GSM 7-bit, UCS-2,
8-bit, concatenation headers), wrapped here so errors become :class:`PduError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from smspdudecoder.easy import read_incoming_sms

from collector.alerts.errors import PduError

UCS2_SINGLE_UNITS = 70
UCS2_PART_UNITS = 67
MAX_PARTS = 255


@dataclass(frozen=True)
class SubmitPdu:
    hex: str  # the whole PDU, SMSC octet included: what follows the "> " prompt
    tpdu_length: int  # octets after the SMSC field: the <length> of AT+CMGS


@dataclass(frozen=True)
class IncomingSms:
    sender: str
    text: str
    sent_at: datetime | None
    part: tuple[str, int, int] | None = None  # (reference key, part number, parts count)


def _utf16_units(text: str) -> list[bytes]:
    """Characters as UTF-16BE code-unit groups (2 bytes, or 4 for a surrogate pair)."""
    return [ch.encode("utf-16-be") for ch in text]


def split_ucs2(text: str) -> list[bytes]:
    """UTF-16BE payloads, one per SMS part; 70 units fit one SMS, else 67 per part."""
    chars = _utf16_units(text)
    if sum(len(c) for c in chars) <= UCS2_SINGLE_UNITS * 2:
        return [b"".join(chars)]
    parts, current = [], b""
    for ch in chars:
        if len(current) + len(ch) > UCS2_PART_UNITS * 2:
            parts.append(current)
            current = b""
        current += ch
    parts.append(current)
    if len(parts) > MAX_PARTS:
        raise PduError(f"text needs {len(parts)} SMS parts, more than {MAX_PARTS}")
    return parts


def encode_address(number: str) -> str:
    """Destination address field: digit count, type of address, swapped BCD digits."""
    digits = number[1:] if number.startswith("+") else number
    if not re.fullmatch(r"\d{1,20}", digits):
        raise PduError(f"phone number {number!r} must be digits with an optional leading +")
    toa = "91" if number.startswith("+") else "81"
    padded = digits + ("F" if len(digits) % 2 else "")
    swapped = "".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2))
    return f"{len(digits):02X}{toa}{swapped}"


def validity_octet(hours: int) -> int:
    """TP-VP relative format (TS 23.040 9.2.3.12.1)."""
    if hours <= 12:
        return hours * 12 - 1  # (VP + 1) x 5 minutes
    if hours <= 24:
        return 143 + (hours - 12) * 2  # 12 h + (VP - 143) x 30 minutes
    return min(166 + -(-hours // 24), 196)  # (VP - 192) days... up to 30 days


def encode_submit(
    number: str, text: str, reference: int = 0, validity_hours: int = 24
) -> list[SubmitPdu]:
    """SMS-SUBMIT PDUs for ``text`` (UCS-2), concatenated with ``reference`` when long."""
    if not text:
        raise PduError("empty SMS text")
    payloads = split_ucs2(text)
    address = encode_address(number)
    vp = validity_octet(validity_hours)
    out = []
    for seq, payload in enumerate(payloads, start=1):
        first = 0x11 | (0x40 if len(payloads) > 1 else 0)
        udh = bytes([5, 0, 3, reference & 0xFF, len(payloads), seq]) if len(payloads) > 1 else b""
        ud = udh + payload
        tpdu = f"{first:02X}00{address}0008{vp:02X}{len(ud):02X}{ud.hex().upper()}"
        out.append(SubmitPdu("00" + tpdu, len(tpdu) // 2))
    return out


def decode_deliver(pdu_hex: str) -> IncomingSms:
    """An SMS-DELIVER PDU (with its SMSC field) as read by AT+CMGL / AT+CMGR."""
    try:
        sms = read_incoming_sms(pdu_hex.strip())
    except Exception as err:  # the library raises assorted errors on malformed input
        raise PduError(f"undecodable SMS-DELIVER PDU {pdu_hex[:40]!r}...: {err}") from err
    part = sms.get("partial") or None
    if part:
        part = (str(part["reference"]), int(part["part_number"]), int(part["parts_count"]))
    return IncomingSms(str(sms["sender"]), str(sms["content"]), sms.get("date"), part)


class Reassembler:
    """Joins the parts of concatenated incoming SMS (keyed by sender and reference)."""

    def __init__(self) -> None:
        self._parts: dict[tuple[str, str, int], dict[int, IncomingSms]] = {}

    def add(self, sms: IncomingSms) -> IncomingSms | None:
        if sms.part is None:
            return sms
        ref, number, count = sms.part
        key = (sms.sender, ref, count)
        parts = self._parts.setdefault(key, {})
        parts[number] = sms
        if len(parts) < count:
            return None
        del self._parts[key]
        text = "".join(parts[i].text for i in sorted(parts))
        return IncomingSms(sms.sender, text, parts[1].sent_at if 1 in parts else sms.sent_at)
