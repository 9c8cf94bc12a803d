"""The cart agent: one cart's state, on the cart id's partition; and the idle-cart timer.

Thin: decode, look up, call the cart rule, store, then send what the rule asks
for (the order on checkout, CartAbandoned, a refused command's rejection) and
publish the cart.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import faust

from core.app import app, settings
from core.errors import RuleError
from core.topics import CART_COMMANDS, CART_EVENTS, CARTS, ORDER_COMMANDS
from schemas import envelopes, messages
from streams import sending
from streams.carts import rules
from streams.carts.records import (
    abandoned_record,
    cart_from_state,
    cart_record,
    place_order_payload,
)
from streams.channels import channel
from streams.rejections.agents import send_rejection
from streams.rejections.rules import CommandKind, Reject
from streams.steps import check_key, consume, overdue, send_then_store
from tables.carts import carts, open_carts

ABANDON_SCAN_SECONDS = 2.0
# Fixed forever: a checkout's PlaceOrder command id is derived from its order id, so
# a re-sent PlaceOrder is the same command, not merely one for the same order.
CHECKOUT_COMMAND_NAMESPACE = uuid.UUID("0b6f5c2e-8d1a-5e3f-a4b7-c9d2e1f03a58")


@app.agent(channel(CART_COMMANDS))
async def process_cart_commands(stream: faust.StreamT[bytes]) -> None:
    await consume(stream, apply_cart_command)


async def apply_cart_command(key: str, command: messages.CartCommand) -> None:
    cart_id = command["cart_id"]
    check_key(key, cart_id, "cart command for cart")
    customer_id = command["customer_id"]
    cart = cart_from_state(carts.get(cart_id))
    now = sending.now()

    # What a refusal is recorded as (the timer's AbandonCart is never refused).
    refused_as: CommandKind | None = None
    match command["payload"]:
        case (messages.SET_CART_LINE, payload):
            refused_as = CommandKind.SET_CART_LINE
            new, effects = rules.set_line(
                cart,
                cart_id=cart_id,
                customer_id=customer_id,
                sku=payload["sku"],
                quantity=payload["quantity"],
                now=now,
            )
        case (messages.REMOVE_CART_LINE, payload):
            refused_as = CommandKind.REMOVE_CART_LINE
            new, effects = rules.remove_line(
                cart, customer_id=customer_id, sku=payload["sku"], now=now
            )
        case (messages.CHECKOUT_CART, payload):
            refused_as = CommandKind.CHECKOUT_CART
            new, effects = rules.check_out(
                cart,
                customer_id=customer_id,
                order_id=payload["order_id"],
                payment=rules.Payment(payload["payment"]["method"], payload["payment"]["token"]),
                request_hash=payload["request_hash"],
                now=now,
            )
        case (messages.ABANDON_CART, _):
            new, effects = rules.abandon(
                cart,
                customer_id=customer_id,
                now=now,
                idle=timedelta(seconds=settings.cart_idle_seconds),
            )
        case (kind, _):
            raise RuleError(f"unknown cart command {kind}")

    for effect in effects:
        if isinstance(effect, Reject):
            if refused_as is None:
                raise RuleError(f"cart {cart_id}: the timer's abandon cannot be refused")
            await send_rejection(
                command["command_id"], refused_as, cart_id, customer_id, effect.reason
            )
    if new is None:
        return
    # Effects first, then the state that records them, as in the order saga
    # (streams.orders.agents): a stored checkout never stands for a lost PlaceOrder.
    if new is cart:
        await carry_out(new, effects)
    else:
        await send_then_store(carry_out(new, effects), carts, cart_id, cart_record(new))
    track_deadline(new)


def track_deadline(cart: rules.Cart) -> None:
    """Keep open-carts in step with the cart: its idle deadline while OPEN, else no entry."""
    key = cart.cart_id.encode()
    current = open_carts.get(key)
    if cart.status is rules.Status.OPEN:
        idle = timedelta(seconds=settings.cart_idle_seconds)
        deadline = int(cart.idle_deadline(idle).timestamp() * 1000)
        # Also corrects a deadline stored under another idle setting, so the timer
        # does not keep asking about a cart the rule finds not yet idle.
        if current != deadline:
            open_carts[key] = deadline
    elif current is not None:
        open_carts.pop(key, None)


async def carry_out(cart: rules.Cart, effects: list[rules.Effect]) -> None:
    for effect in effects:
        match effect:
            case rules.PlaceOrder():
                order = envelopes.order_command(
                    effect.order_id,
                    place_order_payload(effect),
                    command_id=str(uuid.uuid5(CHECKOUT_COMMAND_NAMESPACE, effect.order_id)),
                )
                await sending.send(ORDER_COMMANDS, effect.order_id, order)
            case rules.Abandoned():
                await sending.send(CART_EVENTS, cart.cart_id, abandoned_record(cart, effect))
            case rules.Publish():
                await sending.publish(CARTS, cart.cart_id, cart_record(cart))


@app.timer(interval=ABANDON_SCAN_SECONDS)  # type: ignore[untyped-decorator]
async def abandon_idle_carts() -> None:
    await ask_to_abandon(int(datetime.now(UTC).timestamp() * 1000))


async def ask_to_abandon(now_ms: int) -> None:
    """Ask the cart agent to abandon open carts past their idle deadline; the rule decides."""
    for cart_id in overdue(open_carts, now_ms):
        cart = carts.get(cart_id)
        if cart is None:
            continue
        # As the cart's owner: the rule checks ownership on every command alike.
        abandon = envelopes.cart_command(cart_id, cart["customer_id"], messages.abandon_cart())
        await sending.send(CART_COMMANDS, cart_id, abandon)
