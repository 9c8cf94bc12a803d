"""The cart agent's glue, without a broker: open-carts has a deadline exactly while a cart is OPEN.

Commands are built by schemas.envelopes and the schemas.messages builders; the
producer and the tables are fakes (tests.support.agents).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.app import settings
from schemas import envelopes, messages
from streams import sending
from streams.carts import agents
from tests.support.agents import Wire, install

IDLE = timedelta(seconds=settings.cart_idle_seconds)


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    return install(monkeypatch, agents, "carts", "open_carts")


def command(payload: messages.CartCommandPayload, customer: str = "alice") -> messages.CartCommand:
    return envelopes.cart_command("cart-1", customer, payload)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def test_an_open_cart_has_its_idle_deadline(wire: Wire) -> None:
    await agents.apply_cart_command("cart-1", command(messages.set_cart_line(sku="a", quantity=2)))
    stored = agents.carts["cart-1"]
    assert stored["status"] == "OPEN" and stored["items"] == {"a": 2}
    assert agents.open_carts[b"cart-1"] == ms(stored["updated_at"] + IDLE)
    assert wire.on("carts") == [stored]
    assert wire.sent_before_stored()


async def test_every_change_moves_the_deadline(wire: Wire, monkeypatch: pytest.MonkeyPatch) -> None:
    await agents.apply_cart_command("cart-1", command(messages.set_cart_line(sku="a", quantity=2)))
    later = datetime.now(UTC) + timedelta(seconds=30)
    monkeypatch.setattr(sending, "now", lambda: later)
    await agents.apply_cart_command("cart-1", command(messages.remove_cart_line(sku="a")))
    assert agents.open_carts[b"cart-1"] == ms(later + IDLE)


async def test_a_checked_out_cart_leaves_open_carts_and_places_its_order(wire: Wire) -> None:
    await agents.apply_cart_command("cart-1", command(messages.set_cart_line(sku="a", quantity=2)))
    payment: messages.PaymentMethod = {"method": "CARD", "token": "tok_ok"}
    checkout = messages.checkout_cart(order_id="o-1", payment=payment, request_hash="h")
    wire.journal.clear()
    await agents.apply_cart_command("cart-1", command(checkout))

    assert agents.carts["cart-1"]["status"] == "CHECKED_OUT"
    assert b"cart-1" not in agents.open_carts
    [order] = wire.on("order-commands")
    assert order["payload"] == messages.place_order(
        customer_id="alice",
        lines=[{"sku": "a", "quantity": 2}],
        payment=payment,
        request_hash="h",
    )
    # A re-sent checkout places the same command, not just one for the same order.
    assert order["command_id"] == str(uuid.uuid5(agents.CHECKOUT_COMMAND_NAMESPACE, "o-1"))
    assert wire.sent_before_stored()


async def test_an_abandoned_cart_leaves_open_carts_and_says_so(
    wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    await agents.apply_cart_command("cart-1", command(messages.set_cart_line(sku="a", quantity=2)))
    idle_since = agents.carts["cart-1"]["updated_at"] + IDLE
    monkeypatch.setattr(sending, "now", lambda: idle_since)
    wire.journal.clear()
    await agents.apply_cart_command("cart-1", command(messages.abandon_cart()))

    assert agents.carts["cart-1"]["status"] == "ABANDONED"
    assert b"cart-1" not in agents.open_carts
    [event] = wire.on("cart-events")
    assert (event["cart_id"], event["customer_id"], event["item_count"]) == ("cart-1", "alice", 2)
    assert wire.sent_before_stored()


async def test_a_cart_not_yet_idle_is_not_abandoned(wire: Wire) -> None:
    await agents.apply_cart_command("cart-1", command(messages.set_cart_line(sku="a", quantity=2)))
    await agents.apply_cart_command("cart-1", command(messages.abandon_cart()))
    assert agents.carts["cart-1"]["status"] == "OPEN"
    assert b"cart-1" in agents.open_carts


async def test_another_customers_line_is_refused_and_changes_nothing(wire: Wire) -> None:
    await agents.apply_cart_command("cart-1", command(messages.set_cart_line(sku="a", quantity=2)))
    deadline = agents.open_carts[b"cart-1"]
    intruder = command(messages.set_cart_line(sku="b", quantity=1), customer="mallory")
    await agents.apply_cart_command("cart-1", intruder)

    [rejection] = wire.on("command-rejections")
    assert (rejection["command"], rejection["reason"]) == (
        "SET_CART_LINE",
        "CART_OF_ANOTHER_CUSTOMER",
    )
    assert agents.carts["cart-1"]["items"] == {"a": 2}
    assert agents.open_carts[b"cart-1"] == deadline


async def test_the_idle_timer_asks_the_owner_of_each_overdue_cart(wire: Wire) -> None:
    await agents.apply_cart_command("cart-1", command(messages.set_cart_line(sku="a", quantity=2)))
    wire.sent.clear()
    await agents.ask_to_abandon(agents.open_carts[b"cart-1"] - 1)
    assert wire.on("cart-commands") == []

    await agents.ask_to_abandon(agents.open_carts[b"cart-1"])
    [ask] = wire.on("cart-commands")
    assert (ask["cart_id"], ask["customer_id"]) == ("cart-1", "alice")
    assert ask["payload"] == messages.abandon_cart()
