"""One exception tree for collector.alerts."""

from __future__ import annotations


class AlertError(Exception):
    """Base of every error raised by collector.alerts."""


class TemplateError(AlertError):
    """A template file is missing, malformed or uses a field the router does not supply."""


class UnknownIncident(AlertError):
    """An acknowledgement named an incident or code that has no open alert."""


class ChannelError(AlertError):
    """A channel could not deliver a notification (retried, then the next channel is tried)."""


class RecipientUnreachable(ChannelError):
    """The recipient has no address for this channel (no phone, no e-mail): not retried."""


class ModemError(ChannelError):
    """The GSM modem answered ERROR / +CMS ERROR, timed out, or its port is gone."""


class PduError(AlertError):
    """An SMS PDU that cannot be encoded or decoded."""
