"""Notification tables, one per source topic: ids of the notifications already sent.

Keyed by notification id (UTF-8), valued by the epoch ms it was sent. Each table
has its source topic's partition count, so it stays co-partitioned with it, and
is written only by the agent reading that source (streams.notifications.agents).
"""

from __future__ import annotations

from faust.types import TableT

from core.app import app
from core.topics import CART_EVENTS, ORDERS, STOCK_ALERTS, TopicSpec


def sent_table(source: TopicSpec) -> TableT[bytes, int]:
    return app.Table(
        f"notified-{source.name}",
        default=None,
        key_type=bytes,
        value_type=int,
        # Same partition count as the source, so the table stays co-partitioned with it.
        partitions=source.partitions,
        help=f"Ids of notifications sent (epoch ms) for events on {source.name}.",
    )


sent_for_orders = sent_table(ORDERS)
sent_for_stock_alerts = sent_table(STOCK_ALERTS)
sent_for_carts = sent_table(CART_EVENTS)
