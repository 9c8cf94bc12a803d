"""The payments agent: talks to the card provider for one order at a time.

The order id is the provider's idempotency key, so a redelivered command never
charges twice; the payments table remembers the last answer so a redelivered
authorize is answered without calling the provider again.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import faust

from streams import sending
from streams.app import app, settings
from streams.channels import channel
from streams.dead_letters import handle_event
from streams.errors import RuleError
from streams.orders.records import CENT
from streams.payments.client import CardProviderClient
from streams.topics import ORDER_EVENTS, PAYMENT_COMMANDS, PAYMENTS
from tables.payments import payments

log = logging.getLogger(__name__)

# Answers that end an authorization; a redelivered authorize repeats them.
AUTHORIZE_ANSWERED = {"AUTHORIZED", "DECLINED", "CAPTURED", "VOIDED", "REFUNDED"}

_client: CardProviderClient | None = None


def provider() -> CardProviderClient:
    global _client
    if _client is None:
        _client = CardProviderClient(settings.payment_provider_url)
    return _client


@app.agent(channel(PAYMENT_COMMANDS))
async def process_payment_commands(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        await handle_event(event, apply_payment_command)


async def apply_payment_command(key: str, command: dict[str, Any]) -> None:
    order_id = command["order_id"]
    if key != order_id:
        raise RuleError(f"payment command for order {order_id!r} arrived under key {key!r}")
    kind, payload = command["payload"]
    current = payments.get(order_id)

    match kind:
        case "momentum.AuthorizePayment":
            if current and current["status"] in AUTHORIZE_ANSWERED:
                status = "DECLINED" if current["status"] == "DECLINED" else "AUTHORIZED"
                await reply(order_id, status, current["payment_id"])
                return
            result = await provider().authorize(
                order_id, Decimal(payload["amount"]).quantize(CENT), payload["currency"],
                payload["token"],
            )
            amount, currency = payload["amount"], payload["currency"]
        case "momentum.CapturePayment":
            result = await provider().capture(order_id)
        case "momentum.VoidPayment":
            result = await provider().void(order_id)
        case "momentum.RefundPayment":
            result = await provider().refund(order_id)
        case _:
            raise RuleError(f"unknown payment command {kind}")

    status = result.status.value
    if kind != "momentum.AuthorizePayment":
        if current is None:
            return  # nothing was ever authorized for this order: nothing to record
        amount, currency = current["amount"], current["currency"]
    record = {
        "order_id": order_id,
        "status": status,
        "payment_id": result.payment_id or (current or {}).get("payment_id"),
        "amount": amount,
        "currency": currency,
        "updated_at": sending.now(),
    }
    if current is None or current["status"] != status:
        payments[order_id] = record
        await sending.publish(PAYMENTS, order_id, record)
    await reply(order_id, status, record["payment_id"])


async def reply(order_id: str, status: str, payment_id: str | None) -> None:
    await sending.send(
        ORDER_EVENTS,
        order_id,
        {
            "event_id": sending.new_id(),
            "order_id": order_id,
            "occurred_at": sending.now(),
            "payload": ("momentum.PaymentResult", {"status": status, "payment_id": payment_id}),
        },
    )
