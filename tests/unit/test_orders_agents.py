"""The order saga agent's glue, without a broker: typed messages in, open-orders kept in step.

The handler is called with envelopes built by schemas.envelopes and payloads by
the schemas.messages builders (what the gateway and the other agents send); the
producer and the tables are fakes (tests.support.agents).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.app import settings
from schemas import envelopes, messages
from streams.orders import agents
from tests.support.agents import Wire, install

ORIGIN: messages.MessageOrigin = {"topic": "order-commands", "partition": 0, "offset": 7}


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    return install(monkeypatch, agents, "orders", "open_orders")


def place(order_id: str = "o-1", *lines: tuple[str, int]) -> messages.OrderCommand:
    return envelopes.order_command(
        order_id,
        messages.place_order(
            customer_id="alice",
            lines=[{"sku": sku, "quantity": qty} for sku, qty in lines or (("a", 1),)],
            payment={"method": "CARD", "token": "tok_ok"},
            request_hash="h",
        ),
    )


def reply(order_id: str, payload: messages.OrderEventPayload) -> messages.OrderEvent:
    return envelopes.order_event(order_id, payload)


def stored_before(wire: Wire, topic: str) -> bool:
    """The orders table was written before the first send on `topic` (the saga's outbox)."""
    return wire.journal.index(("write", "orders")) < wire.journal.index(("send", topic))


def at(offset: int) -> messages.MessageOrigin:
    return ORIGIN | {"offset": offset}


async def test_a_placed_order_is_listed_open_until_its_deadline(wire: Wire) -> None:
    before = datetime.now(UTC)
    await agents.apply_order_message("o-1", place("o-1", ("a", 1), ("b", 2)), ORIGIN)

    deadline = agents.open_orders[b"o-1"]
    ttl = timedelta(seconds=settings.reservation_ttl_seconds)
    assert int((before + ttl).timestamp() * 1000) <= deadline
    assert deadline == int(agents.orders["o-1"]["expires_at"].timestamp() * 1000)
    reserves = wire.on("inventory-commands")
    assert [c["payload"] for c in reserves] == [
        messages.reserve_stock(order_id="o-1", quantity=1),
        messages.reserve_stock(order_id="o-1", quantity=2),
    ]
    assert [c["sku"] for c in reserves] == ["a", "b"]
    assert all(c["origin"] == ORIGIN for c in reserves)  # stamped with where it was read
    assert stored_before(wire, "inventory-commands")  # the saga keeps an outbox: state first


async def test_a_placed_order_again_does_not_move_its_deadline(wire: Wire) -> None:
    await agents.apply_order_message("o-1", place(), ORIGIN)
    deadline = agents.open_orders[b"o-1"]
    await agents.apply_order_message("o-1", place(), at(8))
    assert agents.open_orders[b"o-1"] == deadline


async def test_an_order_that_settles_leaves_open_orders(wire: Wire) -> None:
    await agents.apply_order_message("o-1", place(), ORIGIN)
    rejected = messages.stock_rejected(sku="a", reason="OUT_OF_STOCK")
    wire.journal.clear()
    await agents.apply_order_message("o-1", reply("o-1", rejected), at(8))

    assert agents.orders["o-1"]["status"] == "REJECTED"
    assert b"o-1" not in agents.open_orders
    assert wire.on("order-settlements")[0]["status"] == "REJECTED"
    assert stored_before(wire, "order-settlements")  # the saga keeps an outbox


async def test_a_confirmed_order_asks_for_capture_and_commits_its_stock(wire: Wire) -> None:
    await agents.apply_order_message("o-1", place(), ORIGIN)
    reserved = messages.stock_reserved(
        sku="a", quantity=1, unit_price=Decimal("9.99"), currency="EUR"
    )
    await agents.apply_order_message("o-1", reply("o-1", reserved), at(8))
    assert wire.on("payment-commands")[-1]["payload"] == messages.authorize_payment(
        amount=Decimal("9.99"), currency="EUR", token="tok_ok"
    )
    authorized = messages.payment_result(status="AUTHORIZED", payment_id="p-1", detail=None)
    await agents.apply_order_message("o-1", reply("o-1", authorized), at(9))

    assert agents.orders["o-1"]["status"] == "CONFIRMED"
    assert b"o-1" not in agents.open_orders
    assert wire.branches("payment-commands")[-1] == messages.CAPTURE_PAYMENT
    assert wire.branches("inventory-commands")[-1] == messages.COMMIT_STOCK


async def test_a_refused_cancel_goes_to_the_requesters_rejections(wire: Wire) -> None:
    await agents.apply_order_message("o-1", place(), ORIGIN)
    cancel = envelopes.order_command(
        "o-1", messages.cancel_order(requested_by="bob", role="CUSTOMER")
    )
    await agents.apply_order_message("o-1", cancel, at(8))

    [rejection] = wire.on("command-rejections")
    assert (rejection["command_id"], rejection["requested_by"]) == (cancel["command_id"], "bob")
    assert rejection["reason"] == "UNKNOWN_ORDER"
    assert b"o-1" in agents.open_orders  # the order stays as it was


async def test_a_message_under_another_key_is_refused(wire: Wire) -> None:
    with pytest.raises(agents.RuleError):
        await agents.apply_order_message("o-2", place("o-1"), ORIGIN)
    assert wire.sent == [] and "o-1" not in agents.orders


async def test_the_expiry_timer_asks_only_for_overdue_orders(wire: Wire) -> None:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    agents.open_orders[b"late"] = now_ms - 1
    agents.open_orders[b"early"] = now_ms + 60_000
    await agents.ask_to_expire(now_ms)

    [command] = wire.on("order-commands")
    assert command["order_id"] == "late"
    assert command["payload"] == messages.expire_order()
