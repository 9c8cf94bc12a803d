"""Notifications between their rule values and their Avro record (the public topic)."""

from __future__ import annotations

from typing import Any

from streams.notifications.rules import Notification


def notification_record(notification: Notification) -> dict[str, Any]:
    """The public Notification record (topic notifications)."""
    return {
        "notification_id": notification.notification_id,
        "kind": notification.kind.value,
        "recipient": notification.recipient,
        "subject_id": notification.subject_id,
        "message": notification.message,
        "created_at": notification.created_at,
    }
