"""E-mail the export files to the Department, over the same SMTP settings as the alerts
(``collector.alerts.config.EmailConfig``: STARTTLS, implicit TLS or a plain local relay).

The alerts' ``EmailChannel`` sends one text notification to one person; an export needs
attachments and a list of recipients, so this builds its own message and reuses the config.
"""

from __future__ import annotations

import mimetypes
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from collector.alerts.config import EmailConfig, EmailSecurity
from collector.export.errors import DeliveryError

mimetypes.add_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx")


def build_mail(
    config: EmailConfig, to: Sequence[str], subject: str, text: str, files: Sequence[Path]
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = config.sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2] or None)
    msg.set_content(text, charset="utf-8")
    for path in files:
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(
            path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name
        )
    return msg


def send_mail(
    config: EmailConfig, msg: EmailMessage, ssl_context: ssl.SSLContext | None = None
) -> None:
    ctx = ssl_context or ssl.create_default_context()
    try:
        if config.security == EmailSecurity.TLS:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_s, context=ctx
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        with smtp:
            if config.security == EmailSecurity.STARTTLS:
                smtp.starttls(context=ctx)
            if config.username:
                password = config.password.get_secret_value() if config.password else ""
                smtp.login(config.username, password)
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError, ssl.SSLError, UnicodeError) as err:
        raise DeliveryError(f"SMTP {config.host}:{config.port}: {err}") from err
