"""E-mail channel: SMTP (STARTTLS, implicit TLS or plain for a local relay) with optional login.

Messages are UTF-8 (``email.message.EmailMessage`` encodes the Vietnamese subject as RFC 2047
and the body as quoted-printable/base64), so diacritics survive every hop.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from collector.alerts.config import ChannelName, EmailConfig, EmailSecurity
from collector.alerts.errors import ChannelError, RecipientUnreachable
from collector.alerts.notification import Notification


def build_message(config: EmailConfig, notification: Notification) -> EmailMessage:
    to = notification.recipient.email
    if not to:
        raise RecipientUnreachable(f"{notification.recipient.id} has no e-mail address")
    msg = EmailMessage()
    msg["From"] = config.sender
    msg["To"] = formataddr((notification.recipient.name, to))
    msg["Subject"] = notification.subject
    msg["Date"] = formatdate(notification.ts_ms / 1000, localtime=False)
    msg["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2] or None)
    if notification.codes:
        msg["X-Loaxa-Codes"] = ",".join(notification.codes)
    msg.set_content(notification.text, charset="utf-8")
    return msg


class EmailChannel:
    name = ChannelName.EMAIL

    def __init__(self, config: EmailConfig, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.ssl_context = ssl_context or ssl.create_default_context()

    def send(self, notification: Notification) -> None:
        msg = build_message(self.config, notification)
        cfg = self.config
        try:
            if cfg.security == EmailSecurity.TLS:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout_s, context=self.ssl_context
                )
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
            with smtp:
                if cfg.security == EmailSecurity.STARTTLS:
                    smtp.starttls(context=self.ssl_context)
                if cfg.username:
                    password = cfg.password.get_secret_value() if cfg.password else ""
                    smtp.login(cfg.username, password)
                smtp.send_message(msg)
        except (smtplib.SMTPException, OSError, ssl.SSLError, UnicodeError) as err:
            raise ChannelError(f"SMTP {cfg.host}:{cfg.port}: {err}") from err

    def close(self) -> None:
        """Nothing held open: one SMTP session per message (alerts are rare)."""
