"""AT-command client for a GSM modem in PDU mode (3GPP TS 27.005), over pyserial.

Conversation (``>>`` we send, ``<<`` the modem answers)::

    >> AT / ATE0 / AT+CMEE=1 / AT+CMGF=0 / AT+CNMI=2,1,0,0,0     << OK each (echo ignored)
    >> AT+CMGS=<tpdu octets>\\r    << \\r\\n>\\x20        (prompt)
    >> <pdu hex>\\x1a                << +CMGS: <mr>  OK  |  +CMS ERROR: <n>  |  ERROR
    >> AT+CMGL=4                    << (+CMGL: <idx>,<stat>,,<len> \\n <pdu>)*  OK
    >> AT+CMGD=<idx>                << OK
    URC at any time: +CMTI: "SM",<idx>   (new SMS stored: read it with AT+CMGL)

One lock serialises the port: the dispatcher thread sends while the inbox poller reads.
Every failure (timeout, ERROR, +CMS ERROR, port gone) raises :class:`ModemError`; the port is
closed and reopened on the next call, so a modem plugged back in is picked up.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable

import serial

from collector.alerts.errors import ModemError
from collector.alerts.pdu import IncomingSms, PduError, SubmitPdu, decode_deliver

log = logging.getLogger(__name__)
_INIT = ("AT", "ATE0", "AT+CMEE=1", "AT+CMGF=0", "AT+CNMI=2,1,0,0,0")
_FINAL_ERR = re.compile(r"^(ERROR|\+CMS ERROR: .*|\+CME ERROR: .*)$")


class GsmModem:
    def __init__(
        self,
        url: str,
        baudrate: int = 115200,
        timeout_s: float = 10.0,
        opener: Callable[..., serial.SerialBase] = serial.serial_for_url,
    ) -> None:
        self.url, self.baudrate, self.timeout_s, self._opener = url, baudrate, timeout_s, opener
        self._port: serial.SerialBase | None = None
        self._buf = b""
        self._lock = threading.RLock()
        self.new_sms_hint = threading.Event()  # set by a +CMTI URC

    # --- port ---------------------------------------------------------------------------
    def _ensure_open(self) -> serial.SerialBase:
        if self._port is None:
            try:
                self._port = self._opener(self.url, baudrate=self.baudrate, timeout=0.05)
            except (serial.SerialException, OSError, ValueError) as err:
                raise ModemError(f"cannot open modem {self.url}: {err}") from err
            self._buf = b""
            try:
                for cmd in _INIT:
                    self._command(cmd)
            except ModemError:
                self.close()
                raise
        return self._port

    def close(self) -> None:
        with self._lock:
            if self._port is not None:
                with contextlib.suppress(serial.SerialException, OSError):
                    self._port.close()
            self._port = None

    def _io(self, fn: Callable[[], object]) -> object:
        try:
            return fn()
        except (serial.SerialException, OSError) as err:
            self.close()
            raise ModemError(f"modem {self.url} I/O failed: {err}") from err

    def _read_until(self, done: Callable[[bytes], bool], what: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        port = self._port
        assert port is not None
        while not done(self._buf):
            if time.monotonic() > deadline:
                raise ModemError(f"modem {self.url}: no {what} within {self.timeout_s}s")
            chunk = self._io(lambda: port.read(port.in_waiting or 1))
            self._buf += chunk  # type: ignore[operator]

    def _take_response(self, echo: str) -> list[str]:
        """Lines up to the final OK / ERROR; URCs are noted and dropped; echo is dropped."""

        def final(buf: bytes) -> bool:
            lines = buf.decode(errors="replace").replace("\r", "\n").split("\n")[:-1]
            return any(ln.strip() == "OK" or _FINAL_ERR.match(ln.strip()) for ln in lines)

        self._read_until(final, f"answer to {echo}")
        text = self._buf.decode(errors="replace").replace("\r", "\n")
        lines, out = text.split("\n"), []
        for i, raw in enumerate(lines):
            line = raw.strip()
            if not line or line == echo:
                continue
            if line.startswith("+CMTI:"):
                self.new_sms_hint.set()
                continue
            if line == "OK" or _FINAL_ERR.match(line):
                self._buf = "\n".join(lines[i + 1 :]).encode()
                if line != "OK":
                    raise ModemError(f"modem {self.url}: {echo} -> {line}")
                return out
            out.append(line)
        raise AssertionError("unreachable: final line was seen")

    def _command(self, cmd: str) -> list[str]:
        port = self._port
        assert port is not None
        self._io(lambda: port.write(cmd.encode("ascii") + b"\r"))
        return self._take_response(cmd)

    # --- public -------------------------------------------------------------------------
    def command(self, cmd: str) -> list[str]:
        with self._lock:
            self._ensure_open()
            return self._command(cmd)

    def send_pdu(self, pdu: SubmitPdu) -> int:
        """One SMS part; returns the message reference the network gave it."""
        with self._lock:
            port = self._ensure_open()
            cmd = f"AT+CMGS={pdu.tpdu_length}"
            self._io(lambda: port.write(cmd.encode("ascii") + b"\r"))

            def prompt_or_error(buf: bytes) -> bool:
                return b"> " in buf or b"ERROR" in buf

            self._read_until(prompt_or_error, "'> ' prompt")
            if b"> " not in self._buf:
                return self._expect_mr(cmd)  # raises with the modem's error
            self._buf = self._buf[self._buf.index(b"> ") + 2 :]
            self._io(lambda: port.write(pdu.hex.encode("ascii") + b"\x1a"))
            return self._expect_mr(cmd)

    def _expect_mr(self, cmd: str) -> int:
        for line in self._take_response(cmd):
            if m := re.match(r"\+CMGS:\s*(\d+)", line):
                return int(m.group(1))
        raise ModemError(f"modem {self.url}: {cmd} gave OK without +CMGS")

    def read_messages(self) -> list[IncomingSms]:
        """Every stored SMS (AT+CMGL=4), deleted after reading; undecodable ones are logged."""
        with self._lock:
            self.new_sms_hint.clear()
            lines = self.command("AT+CMGL=4")
            out, indexes = [], []
            for header, pdu in itertools.pairwise(lines):
                m = re.match(r"\+CMGL:\s*(\d+)", header)
                if not m:
                    continue
                indexes.append(int(m.group(1)))
                try:
                    out.append(decode_deliver(pdu))
                except PduError as err:
                    log.warning("modem %s: SMS %s dropped: %s", self.url, m.group(1), err)
            for index in indexes:
                self.command(f"AT+CMGD={index}")
            return out
