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

from streams import metrics, sending
from streams.analytics import rules
from streams.app import app
from streams.channels import channel
from streams.dead_letters import handle_event
from streams.orders.rules import Status
from streams.topics import ORDER_SETTLEMENTS, ORDERS_PER_MINUTE, SALES_PER_MINUTE
from tables.analytics import at, counted_settlements, orders_per_minute, sales_per_minute

log = logging.getLogger(__name__)


@app.agent(channel(ORDER_SETTLEMENTS))
async def aggregate_settlements(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        await handle_event(event, apply_settlement)


def window_value(table: WindowWrapper, key: str) -> Any | None:
    try:
        return table[key].value()
    except KeyError:
        return None


async def apply_settlement(key: str, record: dict[str, Any]) -> None:
    settlement = rules.settlement_from_record(record)
    if rules.is_too_late(settlement.settled_at, sending.now()):
        log.warning(
            "settlement %s of order %s at %s is too late for its window; not counted",
            settlement.status,
            settlement.order_id,
            settlement.settled_at.isoformat(),
        )
        metrics.count("analytics_late", ORDER_SETTLEMENTS.name)
        return

    # Event time: every table access names its moment, the start of settled_at's
    # minute, so Faust files it under the window the rules chose, never under the
    # Kafka record's timestamp or this worker's clock.
    window = rules.window_of(settlement.settled_at)
    sales = at(sales_per_minute, window.start)
    orders = at(orders_per_minute, window.start)
    sold, left_out = rules.sales_of(settlement)
    for line in left_out:
        log.warning(
            "order %s: line of %s in %s, but its first line was in another currency; left out",
            settlement.order_id,
            line.sku,
            line.currency,
        )
    status = settlement.status.value

    marker = rules.counted_key(settlement)
    here, before = rules.dedup_windows(settlement.settled_at)
    counted_here = at(counted_settlements, here.start)
    if marker in counted_here or marker in at(counted_settlements, before.start):
        # Counted already (a redelivery). Publish the current figures again: if the
        # first attempt stopped before its sends, this completes it; if not, the
        # same records once more change nothing on the compacted topics.
        metrics.count("analytics_duplicates", ORDER_SETTLEMENTS.name)
        for sku in sold:
            figures = rules.Sales.from_state(window_value(sales, sku))
            if figures is not None:
                await publish_sales(sku, window, figures)
        count = window_value(orders, status)
        if count is not None:
            await publish_orders(settlement.status, window, int(count))
        return

    updated: dict[str, rules.Sales] = {}
    for sku, more in sold.items():
        current = rules.Sales.from_state(window_value(sales, sku))
        figures = rules.add_sales(current, more)
        if figures is None:
            assert current is not None
            log.warning(
                "order %s: %s sold in %s, but %s already counts in %s; left out",
                settlement.order_id,
                sku,
                more.currency,
                rules.window_id(sku, window),
                current.currency,
            )
            continue
        sales[sku] = figures.to_state()
        updated[sku] = figures
    count = rules.count_order(window_value(orders, status))
    orders[status] = count
    # Marked after the figures, in the same event: a redelivery after a rebalance
    # finds it. Only a hard crash between the changelog writes of this one event
    # could leave figures without marker (Faust does not write two changelogs
    # atomically); then the settlement is counted again rather than lost.
    counted_here[marker] = True

    for sku, figures in updated.items():
        await publish_sales(sku, window, figures)
    await publish_orders(settlement.status, window, count)


async def publish_sales(sku: str, window: rules.Window, figures: rules.Sales) -> None:
    await sending.publish(
        SALES_PER_MINUTE, rules.window_id(sku, window), rules.sales_record(sku, window, figures)
    )


async def publish_orders(status: Status, window: rules.Window, count: int) -> None:
    await sending.publish(
        ORDERS_PER_MINUTE,
        rules.window_id(status.value, window),
        rules.orders_record(status, window, count),
    )
