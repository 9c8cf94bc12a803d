"""The order saga agent: one order's state, on the order id's partition.

It reads commands (place, cancel, expire) and replies from inventory and
payments, calls the saga rule, stores the new state, and carries out the
rule's effects: commands to inventory and payments, public records, and the
rejection of a command the rule refused (sent to its requester's log).

The new state is stored first, together with the effects it asks for (its
outbox) and where its message was read; the effects are sent after. So the
state is never behind what the world has seen: the saga reads two topics whose
offsets are committed apart, and after a crash a message from one may be
handled before a message from the other is read again, which must find the
state that message had made. No effect is lost either: the outbox is sent
again, with its first origin, when its message is handled again (it was not
committed if its sends were not flushed: Faust flushes before it commits) and
before the next transition replaces it (the producer keeps one request in
flight per broker and does not linger, so a later state that landed means the
sends appended before it landed too). Each lands once: stock steps by their
origin, payments by the order id, public records by key, settlements by order
and status in the analytics. Only those two moments send an outbox again, so
no answer to a resent effect can make the saga send it once more.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from core import observe, tracing
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
from schemas import envelopes, messages
from streams import metrics, sending
from streams.orders import rules
from streams.orders.changes import order_changes
from streams.orders.records import (
    line_records,
    order_from_state,
    order_record,
    order_to_state,
    outbox_effects,
    settlement_record,
)
from streams.rejections.agents import send_rejection
from streams.rejections.rules import CommandKind, Reject
from streams.steps import check_key, consume, overdue
from tables.orders import open_orders, orders

log = logging.getLogger(__name__)

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
    await consume(stream, apply_order_message, per_event=lambda event: {"origin": origin_of(event)})


def origin_of(event: faust.EventT[bytes]) -> messages.MessageOrigin:
    """Where the message being handled was read: every stock step sent for it carries this,
    so a sku recognises a step sent again for the same message (see streams.inventory.rules)."""
    message = event.message
    return {"topic": message.topic, "partition": message.partition, "offset": message.offset}


# A refused command: which kind it was, and who asked (the rejection goes to their log).
Refusal = tuple[CommandKind, str]


async def apply_order_message(
    key: str,
    message: messages.OrderCommand | messages.OrderEvent,
    origin: messages.MessageOrigin | None = None,
) -> None:
    order_id = message["order_id"]
    check_key(key, order_id, "message for order")
    state = orders.get(order_id)
    order = order_from_state(state)
    now = sending.now()
    refusal: Refusal | None = None

    match message["payload"]:
        case (messages.PLACE_ORDER, payload):
            refusal = (CommandKind.PLACE_ORDER, payload["customer_id"])
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
        case (messages.CANCEL_ORDER, payload):
            refusal = (CommandKind.CANCEL_ORDER, payload["requested_by"])
            new, effects = rules.cancel_order(
                order,
                requested_by=payload["requested_by"],
                is_admin=payload["role"] == "ADMIN",
                now=now,
            )
        case (messages.EXPIRE_ORDER, _):
            new, effects = rules.expire_order(order, now)
        case (messages.STOCK_RESERVED, payload):
            new, effects = rules.apply_stock_reserved(
                order, payload["sku"], payload["unit_price"], payload["currency"], now
            )
        case (messages.STOCK_REJECTED, payload):
            new, effects = rules.apply_stock_rejected(
                order, payload["sku"], rules.Reason(payload["reason"]), now
            )
        case (messages.PAYMENT_RESULT, payload):
            new, effects = rules.apply_payment(order, rules.PaymentOutcome(payload["status"]), now)
        case (kind, _):
            raise RuleError(f"unknown order message {kind}")

    effects = await send_rejections(message, refusal, effects)
    if new is None or new is order:
        if order is not None and state is not None and same_origin(state, origin):
            # The message of the last transition, handled again: its effects may not
            # all have gone out before the worker stopped.
            await resend_outbox(order, state)
        if effects:  # a late reply asking for compensation on an unchanged order
            await carry_out(order, effects, origin)
        if order is not None and order.settled:
            # A settled order still listed as open (its removal was lost) would be
            # asked to expire every second: the timer's ExpireOrder lands here.
            open_orders.pop(order_id.encode(), None)
        return
    if new.settled and (order is None or order.status is not new.status):
        effects = [*effects, rules.Settle()]
    if order is not None and state is not None:
        # The last transition's effects go out (again) before its outbox is replaced.
        await resend_outbox(order, state)
    # The state first, with the effects it asks for; then the effects (see the docstring).
    # The order keeps the correlation id and the trace it was placed under (the expiry
    # timer sends under them).
    kept = state or {}
    correlation_id = kept.get("correlation_id") or observe.current().correlation_id
    trace_parent = kept.get("trace_parent") or tracing.current_traceparent()
    orders[order_id] = order_to_state(new, effects, origin, correlation_id, trace_parent)
    order_changes.changed(order_id)  # a GET waiting on this order answers now
    if order is None or order.status is not new.status:
        log_transition(order, new)
    if new.settled:
        open_orders.pop(order_id.encode(), None)
    elif order is None:
        open_orders[order_id.encode()] = int(new.expires_at.timestamp() * 1000)
    await carry_out(new, effects, origin)


def log_transition(order: rules.Order | None, new: rules.Order) -> None:
    """One INFO line per change of an order's status (its ids come from core.observe)."""
    before = order.status.value if order is not None else None
    reason = new.reason.value if new.reason else None
    log.info(
        "order %s: %s -> %s%s",
        new.order_id,
        before or "new",
        new.status.value,
        f" ({reason})" if reason else "",
        extra={"order_status": new.status.value, "previous_status": before, "reason": reason},
    )
    if new.settled:
        metrics.ORDERS_SETTLED.labels(status=new.status.value, reason=reason or "").inc()


def same_origin(state: dict[str, Any], origin: messages.MessageOrigin | None) -> bool:
    return origin is not None and state.get("outbox_origin") == origin


async def resend_outbox(order: rules.Order, state: dict[str, Any]) -> None:
    """Send the last transition's effects again, with the origin they were first sent with."""
    effects = outbox_effects(order, state.get("outbox") or [])
    await carry_out(order, effects, state.get("outbox_origin"))


async def send_rejections(
    message: messages.OrderCommand | messages.OrderEvent,
    refusal: Refusal | None,
    effects: list[rules.Effect],
) -> list[rules.Effect]:
    """Send the rejections among `effects` to their requester; the other effects remain."""
    rest: list[rules.Effect] = []
    for effect in effects:
        if not isinstance(effect, Reject):
            rest.append(effect)
            continue
        command_id = message.get("command_id")
        if refusal is None or not isinstance(command_id, str):
            raise RuleError(f"order {message['order_id']}: a reply cannot be refused")
        command, requester = refusal
        await send_rejection(command_id, command, message["order_id"], requester, effect.reason)
    return rest


async def carry_out(
    order: rules.Order | None, effects: list[rules.Effect], origin: messages.MessageOrigin | None
) -> None:
    assert order is not None
    oid = order.order_id
    for effect in effects:
        match effect:
            case rules.Reserve(sku, quantity):
                await inventory_command(
                    sku, messages.reserve_stock(order_id=oid, quantity=quantity), origin
                )
            case rules.Release(sku):
                await inventory_command(sku, messages.release_stock(order_id=oid), origin)
            case rules.Commit(sku):
                await inventory_command(sku, messages.commit_stock(order_id=oid), origin)
            case rules.Return(sku, quantity):
                await inventory_command(
                    sku, messages.return_stock(order_id=oid, quantity=quantity), origin
                )
            case rules.Authorize(amount, currency, token):
                await payment_command(
                    oid, messages.authorize_payment(amount=amount, currency=currency, token=token)
                )
            case rules.Capture():
                await payment_command(oid, messages.capture_payment())
            case rules.Void():
                await payment_command(oid, messages.void_payment())
            case rules.Refund():
                await payment_command(oid, messages.refund_payment())
            case rules.Publish():
                await sending.publish(ORDERS, oid, order_record(order))
                for line in line_records(order):
                    await sending.publish(ORDER_LINES, line["line_id"], line)
            case rules.Settle():
                await sending.send(ORDER_SETTLEMENTS, order.status.value, settlement_record(order))


async def inventory_command(
    sku: str, payload: messages.InventoryCommandPayload, origin: messages.MessageOrigin | None
) -> None:
    command = envelopes.inventory_command(sku, payload, origin=origin)
    await sending.send(INVENTORY_COMMANDS, sku, command)


async def payment_command(order_id: str, payload: messages.PaymentCommandPayload) -> None:
    await sending.send(PAYMENT_COMMANDS, order_id, envelopes.payment_command(order_id, payload))


@app.timer(interval=EXPIRY_SCAN_SECONDS)  # type: ignore[untyped-decorator]
async def expire_overdue_orders() -> None:
    await ask_to_expire(int(datetime.now(UTC).timestamp() * 1000))


async def ask_to_expire(now_ms: int) -> None:
    """Ask the saga to expire open orders past their deadline; the saga decides."""
    for order_id in overdue(open_orders, now_ms):
        command = envelopes.order_command(order_id, messages.expire_order())
        state = orders.get(order_id)
        # Under the order's own correlation id and trace: one order is one of each.
        kept = state or {}
        ids = observe.Ids(kept.get("correlation_id"), order_id, command["command_id"])
        with (
            tracing.continuing("expire overdue order", kept.get("trace_parent"), order_id),
            observe.bound(ids),
        ):
            await sending.send(ORDER_COMMANDS, order_id, command)
