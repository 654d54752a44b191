"""SMS channel: notifications as UCS-2 SMS through a GSM modem, and replies as acknowledgements."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from collector.alerts.channels.modem import GsmModem
from collector.alerts.config import ChannelName, SmsConfig
from collector.alerts.errors import ModemError, RecipientUnreachable
from collector.alerts.notification import Notification
from collector.alerts.pdu import IncomingSms, Reassembler, encode_submit

log = logging.getLogger(__name__)


class SmsChannel:
    name = ChannelName.SMS

    def __init__(self, config: SmsConfig, modem: GsmModem | None = None) -> None:
        self.config = config
        self.modem = modem or GsmModem(config.port, config.baudrate, config.timeout_s)
        self._reference = 0

    def send(self, notification: Notification) -> None:
        phone = notification.recipient.phone
        if not phone:
            raise RecipientUnreachable(f"{notification.recipient.id} has no phone number")
        self._reference = (self._reference + 1) % 256
        pdus = encode_submit(phone, notification.text, self._reference, self.config.validity_hours)
        for pdu in pdus:
            self.modem.send_pdu(pdu)
        log.info("SMS to %s sent in %d part(s)", phone, len(pdus))

    def close(self) -> None:
        self.modem.close()


class SmsInbox:
    """Reads stored SMS every ``poll_interval_s`` (AT+CMGL, then AT+CMGD) and hands each whole
    message (parts joined) to ``on_message(sms)``; the daemon passes it to the router's
    ``apply_reply``."""

    def __init__(
        self, modem: GsmModem, on_message: Callable[[IncomingSms], None], poll_interval_s: float
    ) -> None:
        self.modem, self.on_message, self.poll_interval_s = modem, on_message, poll_interval_s
        self.received = 0
        self.errors = 0
        self._joiner = Reassembler()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> int:
        try:
            messages = self.modem.read_messages()
        except ModemError as err:
            self.errors += 1
            log.warning("SMS inbox: %s", err)
            return 0
        handled = 0
        for sms in messages:
            whole = self._joiner.add(sms)
            if whole is None:
                continue
            self.received += 1
            handled += 1
            try:
                self.on_message(whole)
            except Exception:  # a bad reply must not stop the inbox
                self.errors += 1
                log.exception("SMS inbox: handling the SMS from %s failed", whole.sender)
        return handled

    def start(self) -> SmsInbox:
        self._thread = threading.Thread(target=self._run, name="sms-inbox", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.poll_interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
