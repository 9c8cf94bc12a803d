"""A waiting GET is answered when the saga stores the settled order, not on a poll's tick.

`streams.orders.changes` carries the news from the saga to the orders view in
the worker; `streams.orders.views.settled_or_current` holds the read until the
order settles or the wait is over.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from streams.orders import views
from streams.orders.changes import OrderChanges
from streams.orders.rules import Order


async def test_a_waiter_hears_the_change_at_once() -> None:
    changes = OrderChanges()
    loop = asyncio.get_running_loop()
    began = loop.time()
    loop.call_later(0.05, changes.changed, "o-1")
    assert await changes.next_change("o-1", within=5.0)
    assert loop.time() - began < 1.0


async def test_a_waiter_gives_up_at_its_deadline_and_leaves_nothing_behind() -> None:
    changes = OrderChanges()
    changes.changed("o-2")  # news nobody waited for is not kept
    assert not await changes.next_change("o-1", within=0.05)
    assert not await changes.next_change("o-2", within=0.05)
    assert changes._waiting == {}


class Orders(dict):  # type: ignore[type-arg]
    """The orders table as the view reads it; a write tells the waiters, as the saga does."""

    def __init__(self, changes: OrderChanges) -> None:
        super().__init__()
        self.changes = changes

    def store(self, order_id: str, state: dict[str, Any]) -> None:
        self[order_id] = state
        self.changes.changed(order_id)


@pytest.fixture
def orders(monkeypatch: pytest.MonkeyPatch) -> Orders:
    changes = OrderChanges()
    table = Orders(changes)
    monkeypatch.setattr(views, "order_changes", changes)
    monkeypatch.setattr(views, "orders", table)
    monkeypatch.setattr(views, "order_from_state", lambda state: state and Settled(state))
    return table


class Settled:
    """Enough of an order for the view: its status and whether that is final."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.status = state["status"]
        self.settled = self.status in {"CONFIRMED", "REJECTED", "EXPIRED", "CANCELLED"}


async def test_the_held_read_answers_when_the_order_settles(orders: Orders) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    loop.call_later(0.05, orders.store, "o-1", {"status": "PENDING"})
    loop.call_later(0.10, orders.store, "o-1", {"status": "RESERVED"})
    loop.call_later(0.15, orders.store, "o-1", {"status": "CONFIRMED"})
    order = await views.settled_or_current("o-1", None, 10.0)
    assert order is not None and order.status == "CONFIRMED"
    assert loop.time() - began < 2.0


async def test_the_held_read_answers_the_current_state_when_the_wait_is_over(
    orders: Orders,
) -> None:
    orders.store("o-1", {"status": "RESERVED"})
    current = cast(Order, Settled(orders["o-1"]))
    order = await views.settled_or_current("o-1", current, 0.1)
    assert order is not None and order.status == "RESERVED"
    assert await views.settled_or_current("o-2", None, 0.05) is None


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(None, 0.0), ("", 0.0), ("2.5", 2.5), ("-1", 0.0), ("1e9", 30.0), ("nan", 0.0), ("x", 0.0)],
)
def test_the_wait_asked_is_read_within_bounds(raw: str | None, seconds: float) -> None:
    assert views.wait_seconds(raw) == seconds
