"""Notification agents: one per source topic, sharing the rules and the sender.

Settled orders (public `orders`), low-stock alerts (`stock-alerts`) and abandoned
carts (`cart-events`) become Notifications, sent through `sender` and published
on the public `notifications` topic, keyed by recipient.

The sources are not co-partitioned (different keys), so each agent has its own
table of notification ids already sent (tables.notifications), written only by
that agent. Faust puts a table write on the changelog partition of the event
being processed, so the ids from source partition p live on the worker that
owns p, which is where a redelivered event from p arrives: the repeat is found
and dropped. Keyed by
notification id, the tables also drop a second record about the same thing
(the orders topic carries a CONFIRMED order again when its payment is captured).
A notification is recorded as sent after it went out, so a crash in between
sends it again with the same id: at least once, like everything else here.
"""

from __future__ import annotations

import time
from typing import Any

import faust
from faust.types import TableT

from core.app import app
from core.topics import CART_EVENTS, NOTIFICATIONS, ORDERS, STOCK_ALERTS
from streams import sending
from streams.channels import channel
from streams.notifications import rules
from streams.notifications.records import notification_record
from streams.notifications.senders import LoggingSender, Sender
from streams.steps import consume
from tables.notifications import sent_for_carts, sent_for_orders, sent_for_stock_alerts

# Replace at start-up to deliver through a real channel.
sender: Sender = LoggingSender()


async def deliver(sent: TableT[bytes, int], notification: rules.Notification | None) -> None:
    if notification is None:
        return
    key = notification.notification_id.encode()
    if sent.get(key) is not None:
        return  # already sent: a redelivery or a repeated record about the same thing
    await sender.send(notification)
    await sending.publish(NOTIFICATIONS, notification.recipient, notification_record(notification))
    sent[key] = int(time.time() * 1000)


@app.agent(channel(ORDERS))
async def notify_settled_orders(stream: faust.StreamT[bytes]) -> None:
    await consume(stream, apply_order_record)


async def apply_order_record(key: str, order: dict[str, Any]) -> None:
    notification = rules.for_order(
        order_id=order["order_id"],
        customer_id=order["customer_id"],
        status=order["status"],
        reason=order["reason"],
        total=order["total"],
        currency=order["currency"],
        updated_at=order["updated_at"],
    )
    await deliver(sent_for_orders, notification)


@app.agent(channel(STOCK_ALERTS))
async def notify_low_stock(stream: faust.StreamT[bytes]) -> None:
    await consume(stream, apply_stock_alert)


async def apply_stock_alert(key: str, alert: dict[str, Any]) -> None:
    notification = rules.for_stock_alert(
        sku=alert["sku"],
        seller_id=alert["seller_id"],
        available=alert["available"],
        threshold=alert["threshold"],
        occurred_at=alert["occurred_at"],
    )
    await deliver(sent_for_stock_alerts, notification)


@app.agent(channel(CART_EVENTS))
async def notify_abandoned_carts(stream: faust.StreamT[bytes]) -> None:
    await consume(stream, apply_cart_abandoned)


async def apply_cart_abandoned(key: str, event: dict[str, Any]) -> None:
    notification = rules.for_abandoned_cart(
        cart_id=event["cart_id"],
        customer_id=event["customer_id"],
        item_count=event["item_count"],
        occurred_at=event["occurred_at"],
    )
    await deliver(sent_for_carts, notification)
