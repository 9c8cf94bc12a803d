"""The analytics agent: per-minute sales and settled orders, from order-settlements.

For each OrderSettled it picks the minute of `settled_at` (event time), adds the
settlement to that minute's windowed figures unless this (order, status) was
counted before, and publishes the minute's new figures on sales-per-minute and
orders-per-minute (compacted, keyed by window id: the latest record per window
is its figure so far).
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.tables.wrappers import WindowWrapper

from core.app import app
from core.topics import ORDER_SETTLEMENTS, ORDERS_PER_MINUTE, SALES_PER_MINUTE
from streams import metrics, sending
from streams.analytics import records, rules
from streams.channels import channel
from streams.orders.rules import Status
from streams.steps import consume
from tables.analytics import at, counted_settlements, orders_per_minute, sales_per_minute

log = logging.getLogger(__name__)


@app.agent(channel(ORDER_SETTLEMENTS))
async def aggregate_settlements(stream: faust.StreamT[bytes]) -> None:
    await consume(
        stream, apply_settlement, per_event=lambda event: {"offset": event.message.offset}
    )


def window_value(table: WindowWrapper, key: str) -> Any | None:
    try:
        return table[key].value()
    except KeyError:
        return None


async def apply_settlement(key: str, record: dict[str, Any], offset: int) -> None:
    """Count the settlement read at `offset` (order-settlements has one partition) once."""
    settlement = records.settlement_from_record(record)
    if rules.is_too_late(settlement.settled_at, sending.now()):
        log.warning(
            "settlement %s of order %s at %s is too late for its window; not counted",
            settlement.status,
            settlement.order_id,
            settlement.settled_at.isoformat(),
        )
        metrics.ANALYTICS_LATE.labels(topic=ORDER_SETTLEMENTS.name).inc()
        return

    # Event time: every table access names its moment, the start of settled_at's
    # minute, so Faust files it under the window the rules chose, never under the
    # Kafka record's timestamp or this worker's clock.
    window = rules.window_of(settlement.settled_at)
    sales = at(sales_per_minute, window.start)
    orders = at(orders_per_minute, window.start)
    status = settlement.status.value
    for line in rules.sales_of(settlement)[1]:
        log.warning(
            "order %s: line of %s in %s, but its first line was in another currency; left out",
            settlement.order_id,
            line.sku,
            line.currency,
        )

    marker = rules.counted_key(settlement)
    here, before = rules.dedup_windows(settlement.settled_at)
    counted_here = at(counted_settlements, here.start)
    found = window_value(counted_here, marker)
    if found is None:
        found = window_value(at(counted_settlements, before.start), marker)
    sold = {line.sku for line in settlement.lines}
    counting = rules.count_settlement(
        settlement,
        offset,
        found,
        {sku: window_value(sales, sku) for sku in sold},
        window_value(orders, status),
    )
    if counting.duplicate:
        # Counted already (a redelivery). Publish the current figures again: if the
        # first attempt stopped before its sends, this completes it; if not, the
        # same records once more change nothing on the compacted topics.
        metrics.ANALYTICS_DUPLICATES.labels(topic=ORDER_SETTLEMENTS.name).inc()
    for sku, more, current in counting.left_out:
        log.warning(
            "order %s: %s sold in %s, but %s already counts in %s; left out",
            settlement.order_id,
            sku,
            more.currency,
            rules.window_id(sku, window),
            current.currency,
        )

    # Each write says in itself what it includes (see streams.analytics.rules): any
    # of them may be lost in a crash, and handling this message again completes them.
    for sku, state in counting.sales_writes.items():
        sales[sku] = state
    if counting.orders_write is not None:
        orders[status] = counting.orders_write
    if counting.marker_write is not None:
        counted_here[marker] = counting.marker_write

    for sku, figures in counting.sales.items():
        await publish_sales(sku, window, figures)
    if counting.orders is not None:
        await publish_orders(settlement.status, window, counting.orders)


async def publish_sales(sku: str, window: rules.Window, figures: rules.Sales) -> None:
    await sending.publish(
        SALES_PER_MINUTE, rules.window_id(sku, window), records.sales_record(sku, window, figures)
    )


async def publish_orders(status: Status, window: rules.Window, count: int) -> None:
    await sending.publish(
        ORDERS_PER_MINUTE,
        rules.window_id(status.value, window),
        records.orders_record(status, window, count),
    )
