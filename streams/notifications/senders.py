"""Where notifications go out: a `Sender` protocol and its default, a log line.

A real channel (e-mail, push, a webhook) implements `send`; it may see the same
notification twice after a crash (at-least-once), and can drop the repeat by
`notification_id`.
"""

from __future__ import annotations

import logging
from typing import Protocol

from streams.notifications.rules import Notification

log = logging.getLogger(__name__)


class Sender(Protocol):
    async def send(self, notification: Notification) -> None: ...


class LoggingSender:
    """Writes one log line per notification: enough for development and the demo."""

    async def send(self, notification: Notification) -> None:
        log.info(
            "notify %s [%s] %s: %s",
            notification.recipient,
            notification.kind.value,
            notification.notification_id,
            notification.message,
        )
