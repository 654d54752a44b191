"""Webhook channel: each notification POSTed as JSON (``Notification.to_json_dict``, schema v1).

Usable for chat bots and ticketing. Any non-2xx answer, a timeout or a refused connection is a
failure (the dispatcher retries, then falls back).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from collector.alerts.config import ChannelName, WebhookConfig
from collector.alerts.errors import ChannelError
from collector.alerts.notification import Notification


class WebhookChannel:
    name = ChannelName.WEBHOOK

    def __init__(self, config: WebhookConfig) -> None:
        self.config = config

    def send(self, notification: Notification) -> None:
        body = json.dumps(notification.to_json_dict(), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", **self.config.headers}
        request = urllib.request.Request(self.config.url, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                status = response.status
        except urllib.error.HTTPError as err:
            raise ChannelError(f"webhook {self.config.url}: HTTP {err.code}") from err
        except (urllib.error.URLError, OSError) as err:
            raise ChannelError(f"webhook {self.config.url}: {err}") from err
        if not 200 <= status < 300:
            raise ChannelError(f"webhook {self.config.url}: HTTP {status}")

    def close(self) -> None:
        """Nothing held open."""
