"""Agents with one input topic send a message's effects before they store its state.

A worker killed between the two must never leave a stored state whose effects
were lost: handled again (it was not committed), the message finds the old
state and asks for the same effects. The order saga reads two topics and keeps
an outbox instead (tests/unit/test_order_outbox.py). These tests run the
agents' handlers with the producer and the tables replaced by a journal, no
broker involved.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from core.app import app
from schemas import envelopes, messages
from streams import sending
from streams.inventory import agents as inventory_agents
from streams.inventory.rules import Product
from streams.orders import agents as order_agents


class Journal:
    """Sends and table writes, in the order the agent made them."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []
        self.fail_after_sends: int | None = None

    async def send(self, spec: Any, key: str, value: Any) -> None:
        sends = sum(1 for kind, _ in self.entries if kind == "send")
        if self.fail_after_sends is not None and sends >= self.fail_after_sends:
            raise ConnectionError("the producer died")  # a worker killed mid-sends
        self.entries.append(("send", spec.name))

    def sends(self) -> list[str]:
        return [name for kind, name in self.entries if kind == "send"]

    def first_write(self) -> int:
        return next(i for i, (kind, _) in enumerate(self.entries) if kind == "write")

    def last_send(self) -> int:
        return max(i for i, (kind, _) in enumerate(self.entries) if kind == "send")


class JournalTable:
    """A table that journals its writes; values are kept as given."""

    def __init__(self, name: str, journal: Journal) -> None:
        self.name = name
        self.journal = journal
        self.data: dict[Any, Any] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __contains__(self, key: Any) -> bool:
        return key in self.data

    def __setitem__(self, key: Any, value: Any) -> None:
        self.journal.entries.append(("write", self.name))
        self.data[key] = value

    def pop(self, key: Any, default: Any = None) -> Any:
        if key in self.data:
            self.journal.entries.append(("write", self.name))
        return self.data.pop(key, default)


@pytest.fixture
def journal(monkeypatch: pytest.MonkeyPatch) -> Journal:
    journal = Journal()
    monkeypatch.setattr(sending, "send", journal.send)
    monkeypatch.setattr(sending, "publish", journal.send)
    for module, names in (
        (order_agents, ("orders", "open_orders")),
        (inventory_agents, ("inventory", "catalog")),
    ):
        for name in names:
            monkeypatch.setattr(module, name, JournalTable(name, journal))
    return journal


def place_order(order_id: str = "o-1") -> messages.OrderCommand:
    return envelopes.order_command(
        order_id,
        messages.place_order(
            customer_id="alice",
            lines=[{"sku": "a", "quantity": 1}, {"sku": "b", "quantity": 2}],
            payment={"method": "CARD", "token": "tok_ok"},
            request_hash="h",
        ),
        command_id="c-1",
    )


ORIGIN: messages.MessageOrigin = {"topic": "order-commands", "partition": 0, "offset": 7}


async def test_a_settled_order_left_open_is_taken_off_the_expiry_list(journal: Journal) -> None:
    await order_agents.apply_order_message("o-1", place_order(), ORIGIN)
    cancel = envelopes.order_command(
        "o-1", messages.cancel_order(requested_by="alice", role="CUSTOMER"), command_id="c-3"
    )
    await order_agents.apply_order_message("o-1", cancel, ORIGIN | {"offset": 8})
    # The removal from open-orders was lost in a crash: the order is listed again.
    order_agents.open_orders.data[b"o-1"] = 0
    timer_asks = envelopes.order_command("o-1", messages.expire_order(), command_id="c-3")
    await order_agents.apply_order_message("o-1", timer_asks, ORIGIN | {"offset": 9})
    assert b"o-1" not in order_agents.open_orders.data


async def test_a_restock_publishes_the_new_level_before_it_is_stored(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    product = Product("a", "A", Decimal("1.00"), "EUR", "seller")
    monkeypatch.setattr(inventory_agents, "product_from_state", lambda record: product)
    restock = envelopes.inventory_command(
        "a", messages.restock(quantity=5, requested_by="seller", role="SELLER"), command_id="r-1"
    )
    await inventory_agents.apply_inventory_command("a", restock)
    assert journal.sends() == ["inventory"]
    assert journal.last_send() < journal.first_write()


def test_the_producer_does_not_linger() -> None:
    """Effects before state holds only if a later batch cannot leave before an earlier one."""
    assert app.conf.producer_linger == 0
