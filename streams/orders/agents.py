"""The order saga agent: one order's state, on the order id's partition.

It reads commands (place, cancel, expire) and replies from inventory and
payments, calls the saga rule, stores the new state, and carries out the
rule's effects: commands to inventory and payments, public records, and the
rejection of a command the rule refused (sent to its requester's log).

Effects are sent before the new state is stored, so a state that survives a
crash never stands for effects that were lost. Each send is appended to the
producer before the next starts, and a table write is queued behind them
(Faust hands changelog records to its producer buffer); the producer keeps one
request in flight per broker, so a changelog record never lands before the
sends appended ahead of it. If the worker dies before the state is stored, the
message was not committed either (Faust flushes sends and changelog writes
before it commits an offset): it is handled again against the old state, the
rule asks for the same effects, and each lands idempotently (stock steps by
their origin, payments by the order id, public records by key, settlements by
order and status in the analytics).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import faust

from core.app import app, settings
from core.errors import RuleError
from core.topics import (
    INVENTORY_COMMANDS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    ORDER_LINES,
    ORDER_SETTLEMENTS,
    ORDERS,
    PAYMENT_COMMANDS,
)
from streams import sending
from streams.dead_letters import handle_event
from streams.orders import rules
from streams.orders.records import (
    line_records,
    order_from_state,
    order_record,
    order_to_state,
    settlement_record,
)
from streams.rejections.agents import send_rejection
from streams.rejections.rules import CommandKind, Reject
from tables.orders import open_orders, orders

# Commands and replies share the agent: both are keyed by order id with the same
# partition count, so one partition's orders table sees everything about its orders.
saga_inbox = app.topic(
    ORDER_COMMANDS.name,
    ORDER_EVENTS.name,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
)

EXPIRY_SCAN_SECONDS = 1.0


@app.agent(saga_inbox)
async def process_order_messages(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        await handle_event(event, partial(apply_order_message, origin=origin_of(event)))


def origin_of(event: faust.EventT[bytes]) -> dict[str, Any]:
    """Where the message being handled was read: every stock step sent for it carries this,
    so a sku recognises a step sent again for the same message (see streams.inventory.rules)."""
    message = event.message
    return {"topic": message.topic, "partition": message.partition, "offset": message.offset}


async def apply_order_message(
    key: str, message: dict[str, Any], origin: dict[str, Any] | None = None
) -> None:
    order_id = message["order_id"]
    if key != order_id:
        raise RuleError(f"message for order {order_id!r} arrived under key {key!r}")
    kind, payload = message["payload"]
    order = order_from_state(orders.get(order_id))
    now = sending.now()

    match kind:
        case "momentum.PlaceOrder":
            new, effects = rules.place_order(
                order,
                order_id=order_id,
                customer_id=payload["customer_id"],
                lines=[(line["sku"], line["quantity"]) for line in payload["lines"]],
                payment_token=payload["payment"]["token"],
                request_hash=payload["request_hash"],
                now=now,
                ttl=timedelta(seconds=settings.reservation_ttl_seconds),
            )
        case "momentum.CancelOrder":
            new, effects = rules.cancel_order(
                order,
                requested_by=payload["requested_by"],
                is_admin=payload["role"] == "ADMIN",
                now=now,
            )
        case "momentum.ExpireOrder":
            new, effects = rules.expire_order(order, now)
        case "momentum.StockReserved":
            new, effects = rules.apply_stock_reserved(
                order, payload["sku"], payload["unit_price"], payload["currency"], now
            )
        case "momentum.StockRejected":
            new, effects = rules.apply_stock_rejected(
                order, payload["sku"], rules.Reason(payload["reason"]), now
            )
        case "momentum.PaymentResult":
            new, effects = rules.apply_payment(order, rules.PaymentOutcome(payload["status"]), now)
        case _:
            raise RuleError(f"unknown order message {kind}")

    effects = await send_rejections(message, kind, payload, effects)
    if new is None or new is order:
        if effects:  # a late reply asking for compensation on an unchanged order
            await carry_out(order, effects, origin)
        if order is not None and order.settled:
            # A settled order still listed as open (its removal was lost) would be
            # asked to expire every second: the timer's ExpireOrder lands here.
            open_orders.pop(order_id.encode(), None)
        return
    # Effects first, then the state that records them (see the module's docstring).
    await carry_out(new, effects, origin)
    if new.settled and (order is None or order.status is not new.status):
        await sending.send(ORDER_SETTLEMENTS, new.status.value, settlement_record(new))
    orders[order_id] = order_to_state(new)
    if new.settled:
        open_orders.pop(order_id.encode(), None)
    elif order is None:
        open_orders[order_id.encode()] = int(new.expires_at.timestamp() * 1000)


REFUSABLE = {
    "momentum.PlaceOrder": (CommandKind.PLACE_ORDER, "customer_id"),
    "momentum.CancelOrder": (CommandKind.CANCEL_ORDER, "requested_by"),
}


async def send_rejections(
    message: dict[str, Any], kind: str, payload: dict[str, Any], effects: list[rules.Effect]
) -> list[rules.Effect]:
    """Send the rejections among `effects` to their requester; the other effects remain."""
    rest: list[rules.Effect] = []
    for effect in effects:
        if not isinstance(effect, Reject):
            rest.append(effect)
            continue
        command, requester_field = REFUSABLE[kind]
        await send_rejection(
            message["command_id"],
            command,
            message["order_id"],
            payload[requester_field],
            effect.reason,
        )
    return rest


async def carry_out(
    order: rules.Order | None, effects: list[rules.Effect], origin: dict[str, Any] | None
) -> None:
    assert order is not None
    oid = order.order_id
    for effect in effects:
        match effect:
            case rules.Reserve(sku, quantity):
                payload: dict[str, Any] = {"order_id": oid, "quantity": quantity}
                await inventory_command(sku, ("momentum.ReserveStock", payload), origin)
            case rules.Release(sku):
                await inventory_command(sku, ("momentum.ReleaseStock", {"order_id": oid}), origin)
            case rules.Commit(sku):
                await inventory_command(sku, ("momentum.CommitStock", {"order_id": oid}), origin)
            case rules.Return(sku, quantity):
                payload = {"order_id": oid, "quantity": quantity}
                await inventory_command(sku, ("momentum.ReturnStock", payload), origin)
            case rules.Authorize(amount, currency, token):
                await payment_command(
                    order.order_id,
                    (
                        "momentum.AuthorizePayment",
                        {"amount": amount, "currency": currency, "token": token},
                    ),
                )
            case rules.Capture():
                await payment_command(order.order_id, ("momentum.CapturePayment", {}))
            case rules.Void():
                await payment_command(order.order_id, ("momentum.VoidPayment", {}))
            case rules.Refund():
                await payment_command(order.order_id, ("momentum.RefundPayment", {}))
            case rules.Publish():
                await sending.publish(ORDERS, order.order_id, order_record(order))
                for line in line_records(order):
                    await sending.publish(ORDER_LINES, line["line_id"], line)


async def inventory_command(
    sku: str, payload: tuple[str, dict[str, Any]], origin: dict[str, Any] | None
) -> None:
    await sending.send(
        INVENTORY_COMMANDS,
        sku,
        {
            "command_id": sending.new_id(),
            "sku": sku,
            "issued_at": sending.now(),
            "payload": payload,
            "origin": origin,
        },
    )


async def payment_command(order_id: str, payload: tuple[str, dict[str, Any]]) -> None:
    await sending.send(
        PAYMENT_COMMANDS,
        order_id,
        {
            "command_id": sending.new_id(),
            "order_id": order_id,
            "issued_at": sending.now(),
            "payload": payload,
        },
    )


@app.timer(interval=EXPIRY_SCAN_SECONDS)  # type: ignore[untyped-decorator]
async def expire_overdue_orders() -> None:
    """Ask the saga to expire open orders past their deadline; the saga decides."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    overdue = [key for key, deadline in open_orders.items() if deadline <= now_ms]
    for key in overdue:
        order_id = key.decode() if isinstance(key, bytes) else str(key)
        await sending.send(
            ORDER_COMMANDS,
            order_id,
            {
                "command_id": sending.new_id(),
                "order_id": order_id,
                "issued_at": sending.now(),
                "payload": ("momentum.ExpireOrder", {}),
            },
        )
