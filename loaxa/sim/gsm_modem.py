"""A simulated GSM modem on a real pty: answers the AT commands loaxa's SMS channel uses.

Supported (3GPP TS 27.005 / 27.007 subset): ``AT``, ``ATE0``/``ATE1``, ``AT+CMEE=<n>``,
``AT+CMGF=0|1``, ``AT+CSCS=<set>``, ``AT+CNMI=...``, ``AT+CMGS=<length>`` (PDU mode only: prompt
``"\\r\\n> "``, then the PDU hex ended by Ctrl-Z, or Esc to cancel; answers ``+CMGS: <mr>`` + OK,
or ``+CMS ERROR: 304`` when the length does not match), ``AT+CMGL=<stat>`` (PDU listing: stat 0
unread, 1 read, 4 all), ``AT+CMGR=<index>``, ``AT+CMGD=<index>``. Anything else: ``ERROR``.

Sent SMS are decoded with ``smspdudecoder`` (independent of loaxa's encoder, so a test checks one
against the other) and concatenated parts joined: ``sent`` holds whole messages.
``inject_sms(sender, text)`` stores an SMS-DELIVER in memory and raises the ``+CMTI`` URC, as
when a technician replies "OK 123". ``unplug()`` closes the pty master: the client sees EIO.
``fail_next_sends`` makes the next N ``AT+CMGS`` answer ``+CMS ERROR: 500``.
"""

from __future__ import annotations

import os
import re
import select
import threading
import tty
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import StringIO

from smspdudecoder.codecs import GSM, UCS2
from smspdudecoder.elements import Date
from smspdudecoder.fields import SMSSubmit

SMSC = "+84980200030"


@dataclass
class SentSms:
    number: str
    text: str
    pdus: list[str] = field(default_factory=list)


def _bcd_address(number: str) -> tuple[int, str, str]:
    digits = number.lstrip("+")
    padded = digits + ("F" if len(digits) % 2 else "")
    swapped = "".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2))
    return len(digits), "91" if number.startswith("+") else "81", swapped


def encode_deliver(sender: str, text: str, when: datetime | None = None) -> str:
    """An SMS-DELIVER PDU as a phone's reply arrives: GSM 7-bit when it can, else UCS-2."""
    n, toa, digits = _bcd_address(SMSC)
    smsc = f"{(len(digits) // 2 + 1):02X}{toa}{digits}"
    n, toa, digits = _bcd_address(sender)
    scts = Date.encode(when or datetime.now(UTC)).upper()
    if all(ch in GSM.ALPHABET for ch in text):
        dcs, udl, ud = "00", len(text), GSM.encode(text)
    else:
        dcs, ud = "08", UCS2.encode(text)
        udl = len(ud) // 2
    return f"{smsc}04{n:02X}{toa}{digits}00{dcs}{scts}{udl:02X}{ud}"


class SimulatedGsmModem:
    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self.echo, self.pdu_mode = True, False
        self.sent: list[SentSms] = []
        self.commands: list[str] = []
        self.fail_next_sends = 0
        self.inbox: dict[int, list] = {}  # index -> [stat, pdu]
        self._parts: dict[tuple[str, int], dict[int, tuple[str, str]]] = {}
        self._awaiting_pdu: int | None = None
        self._buf = b""
        self._mr = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-gsm-modem", daemon=True)

    def start(self) -> SimulatedGsmModem:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def unplug(self) -> None:
        """The USB modem is pulled out: the pty master goes away, the client gets I/O errors."""
        self._stop.set()
        self._thread.join(5)
        os.close(self._master)
        self._master = -1

    def inject_sms(self, sender: str, text: str) -> int:
        with self._lock:
            index = max(self.inbox, default=0) + 1
            self.inbox[index] = [0, encode_deliver(sender, text)]
        self._write(f'\r\n+CMTI: "SM",{index}\r\n')
        return index

    # --- the line -------------------------------------------------------------------------
    def _write(self, text: str) -> None:
        if self._master >= 0:
            os.write(self._master, text.encode("ascii"))

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(self._master, 4096)
            except OSError:
                return
            self._buf += chunk
            self._consume()

    def _consume(self) -> None:
        while True:
            if self._awaiting_pdu is not None:
                end = min(
                    (i for i in (self._buf.find(b"\x1a"), self._buf.find(b"\x1b")) if i >= 0),
                    default=-1,
                )
                if end < 0:
                    return
                body, cancel = self._buf[:end], self._buf[end] == 0x1B
                self._buf = self._buf[end + 1 :]
                length, self._awaiting_pdu = self._awaiting_pdu, None
                self._write("\r\nOK\r\n" if cancel else self._submit(body.decode().strip(), length))
                continue
            end = self._buf.find(b"\r")
            if end < 0:
                return
            line, self._buf = self._buf[:end].decode(errors="replace"), self._buf[end + 1 :]
            line = line.strip()
            if line:
                if self.echo:
                    self._write(line + "\r")
                self.commands.append(line)
                self._write(self._command(line))

    def _command(self, line: str) -> str:
        cmd = line.upper()
        ok = "\r\nOK\r\n"
        if cmd in ("AT", "ATZ") or cmd.startswith(("AT+CSCS", "AT+CNMI", "AT+CMEE")):
            return ok
        if cmd in ("ATE0", "ATE1"):
            self.echo = cmd == "ATE1"
            return ok
        if m := re.fullmatch(r"AT\+CMGF=([01])", cmd):
            self.pdu_mode = m.group(1) == "0"
            return ok
        if m := re.fullmatch(r"AT\+CMGS=(\d+)", cmd):
            if not self.pdu_mode:
                return "\r\n+CMS ERROR: 302\r\n"
            self._awaiting_pdu = int(m.group(1))
            return "\r\n> "
        if m := re.fullmatch(r"AT\+CMGL=(\d)", cmd):
            return self._list(int(m.group(1))) + ok
        if m := re.fullmatch(r"AT\+CMGR=(\d+)", cmd):
            listing = self._list(4, only=int(m.group(1)))
            return (
                listing.replace("+CMGL: ", "+CMGR: ") + ok if listing else "\r\n+CMS ERROR: 321\r\n"
            )
        if m := re.fullmatch(r"AT\+CMGD=(\d+)(,\d)?", cmd):
            with self._lock:
                self.inbox.pop(int(m.group(1)), None)
            return ok
        return "\r\nERROR\r\n"

    def _list(self, stat: int, only: int | None = None) -> str:
        out = []
        with self._lock:
            for index, entry in sorted(self.inbox.items()):
                if (only is not None and index != only) or (stat != 4 and entry[0] != stat):
                    continue
                pdu = entry[1]
                smsc_octets = int(pdu[:2], 16) + 1
                out.append(f"\r\n+CMGL: {index},{entry[0]},,{len(pdu) // 2 - smsc_octets}\r\n{pdu}")
                entry[0] = 1  # now read
        return "".join(out) + ("\r\n" if out else "")

    def _submit(self, pdu: str, length: int) -> str:
        if self.fail_next_sends > 0:
            self.fail_next_sends -= 1
            return "\r\n+CMS ERROR: 500\r\n"
        try:
            smsc_octets = int(pdu[:2], 16) + 1
            if len(pdu) // 2 - smsc_octets != length:
                return "\r\n+CMS ERROR: 304\r\n"
            sms = SMSSubmit.decode(StringIO(pdu))
        except Exception:  # the sim answers like a modem: a bad PDU is an error, not a crash
            return "\r\n+CMS ERROR: 304\r\n"
        number = sms["recipient"]["number"]
        if sms["recipient"]["toa"]["ton"] == "international":
            number = "+" + number
        text = sms["user_data"]["data"]
        self._mr = (self._mr + 1) % 256
        header = sms["user_data"].get("header") or {}
        concat = [e["data"] for e in header.get("elements", []) if e["iei"] in (0, 8)]
        if not concat:
            self.sent.append(SentSms(number, text, [pdu]))
        else:
            info = concat[0]
            parts = self._parts.setdefault((number, info["reference"]), {})
            parts[info["part_number"]] = (text, pdu)
            if len(parts) == info["parts_count"]:
                del self._parts[(number, info["reference"])]
                ordered = [parts[i] for i in sorted(parts)]
                self.sent.append(
                    SentSms(number, "".join(t for t, _ in ordered), [p for _, p in ordered])
                )
        return f"\r\n+CMGS: {self._mr}\r\n\r\nOK\r\n"
