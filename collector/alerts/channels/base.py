"""The channel interface the dispatcher drives."""

from __future__ import annotations

from typing import Protocol

from collector.alerts.config import ChannelName
from collector.alerts.notification import Notification


class Channel(Protocol):
    name: ChannelName

    def send(self, notification: Notification) -> None:
        """Deliver or raise ChannelError (RecipientUnreachable when there is no address)."""

    def close(self) -> None:
        """Release sockets / ports; the channel may be used again afterwards."""
