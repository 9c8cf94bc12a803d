"""Windowed analytics tables: tumbling windows in event time, one partition each.

One partition, like order-settlements, so each table's changelog is
co-partitioned with the topic that feeds it. Keys are plain strings (sku,
status, order_id:status) and values small JSON: Faust stores a windowed key as
`(key, (start, end))`, which only its JSON serializer can write.

Faust picks a window from a timestamp. These tables have no default time: an
access that does not name one (`at(table, moment)`) fails instead of
quietly using the Kafka record's timestamp or the wall clock.

Expiry: Faust drops a window `expires` after it ends (by the wall clock), and
the changelogs are compacted and deleted after the same retention. Faust does
not re-arm expiry for windows restored from a changelog, so after a recovery
those stay in the local store until the partition is next rebuilt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn, cast

from faust.tables.wrappers import WindowWrapper

from core.app import app
from core.topics import ORDER_SETTLEMENTS
from tables.windows import DEDUP_EXPIRES, DEDUP_WINDOW, WINDOW, WINDOW_EXPIRES


def event_time_required(event: Any = None) -> NoReturn:
    raise RuntimeError("analytics tables need an explicit event time: use at(table, moment)")


def at(table: WindowWrapper, moment: datetime) -> WindowWrapper:
    """The table with its windows chosen by `moment` (the event time of the settlement)."""
    return cast(WindowWrapper, table.relative_to(moment))


def windowed_table(name: str, help: str, size: float, expires: float) -> WindowWrapper:
    table = app.Table(
        name, default=None, key_type=str, partitions=ORDER_SETTLEMENTS.partitions, help=help
    )
    wrapper = cast(WindowWrapper, table.tumbling(size, expires=expires))
    return cast(WindowWrapper, wrapper.relative_to(event_time_required))


sales_per_minute = windowed_table(
    "analytics-sales-per-minute",
    "Units, exact revenue and currency per sku per minute, from CONFIRMED settlements.",
    WINDOW.total_seconds(),
    WINDOW_EXPIRES.total_seconds(),
)
orders_per_minute = windowed_table(
    "analytics-orders-per-minute",
    "Settled orders per status per minute.",
    WINDOW.total_seconds(),
    WINDOW_EXPIRES.total_seconds(),
)
# The (order id, status) pairs already counted, each with the offset of the
# settlement that counted it: what makes a settlement sent again change nothing.
# Windowed by settled_at so it stays bounded.
counted_settlements = windowed_table(
    "analytics-counted-settlements",
    "Settlements already counted, as order_id:status -> offset, per hour of settled_at.",
    DEDUP_WINDOW.total_seconds(),
    DEDUP_EXPIRES.total_seconds(),
)
