"""Reproduction of the all-faults chaos failure (issue 7, open): a worker killed
between a transition's sends and its store leaves the world ahead of the state.

The saga reads order-commands and order-events, whose offsets are committed
apart. Killed after it sent CONFIRMED's effects (commit, capture, the public
record) but before it stored CONFIRMED, the worker handles, after its restart,
an ExpireOrder from order-commands before the AUTHORIZED reply is read again from
order-events: the expiry is decided against RESERVED, and the order settles
twice (CONFIRMED, then EXPIRED), its capture never refunded. This test fails on
the "effects before state" agents; the outbox design (README, Reliability) is
meant to make it pass.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from schemas import envelopes, messages
from streams import sending
from streams.orders import agents
from tests.support.agents import FakeTable, Wire, install

COMMANDS: messages.MessageOrigin = {"topic": "order-commands", "partition": 0, "offset": 1}
EVENTS: messages.MessageOrigin = {"topic": "order-events", "partition": 0, "offset": 1}


class DyingTable(FakeTable):
    """A table whose next write never happens: the worker was killed just before it."""

    dying = False

    def __setitem__(self, key: Any, value: Any) -> None:
        if self.dying:
            self.dying = False
            raise SystemExit("SIGKILL")
        super().__setitem__(key, value)


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    wire = install(monkeypatch, agents, "open_orders")
    monkeypatch.setattr(agents, "orders", DyingTable("orders", wire))
    return wire


async def test_an_expiry_read_before_the_replayed_authorization_does_not_settle_twice(
    wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    place = envelopes.order_command(
        "o-1",
        messages.place_order(
            customer_id="alice",
            lines=[{"sku": "a", "quantity": 1}],
            payment={"method": "CARD", "token": "tok_ok"},
            request_hash="h",
        ),
    )
    await agents.apply_order_message("o-1", place, COMMANDS)
    reserved = messages.stock_reserved(
        sku="a", quantity=1, unit_price=Decimal("9.99"), currency="EUR"
    )
    await agents.apply_order_message("o-1", envelopes.order_event("o-1", reserved), EVENTS)
    assert agents.orders["o-1"]["status"] == "RESERVED"

    authorized = envelopes.order_event(
        "o-1", messages.payment_result(status="AUTHORIZED", payment_id="pay-1", detail=None)
    )
    agents.orders.dying = True
    with pytest.raises(SystemExit):
        await agents.apply_order_message("o-1", authorized, EVENTS | {"offset": 2})

    # Restarted: an ExpireOrder on order-commands is read first, past the deadline...
    later = sending.now() + timedelta(days=1)
    monkeypatch.setattr(sending, "now", lambda: later)
    expire = envelopes.order_command("o-1", messages.expire_order())
    await agents.apply_order_message("o-1", expire, COMMANDS | {"offset": 2})
    # ...then the AUTHORIZED reply again, from order-events' committed offset.
    await agents.apply_order_message("o-1", authorized, EVENTS | {"offset": 2})

    published = [record["status"] for record in wire.on("orders")]
    settled = {status for status in published if status not in ("PENDING", "RESERVED")}
    assert len(settled) == 1, published
