"""The order saga stores a transition with its outbox, then sends; the outbox goes out again.

The saga reads order-commands and order-events, whose offsets are committed
apart, so its state must never be behind what the world has seen (see
tests/unit/test_saga_crash_between_send_and_store.py): it stores the new state
first, with the effects it asks for and where its message was read, and sends
them after. These tests check that nothing is lost when the worker dies between
the two: the outbox goes out again, with its first origin, when its message is
handled again and before the next transition replaces it; and only then, so no
answer to a resent effect makes the saga send it once more.
"""

from __future__ import annotations

from typing import Any

import pytest

from schemas import envelopes, messages
from streams.orders import agents
from tests.support.agents import Wire, install

ORIGIN: messages.MessageOrigin = {"topic": "order-commands", "partition": 0, "offset": 7}


class DyingWire(Wire):
    """A producer that dies after `survive` more sends (None: never)."""

    survive: int | None = None

    async def send(self, spec: Any, key: str, value: Any) -> None:
        if self.survive is not None:
            if self.survive == 0:
                raise ConnectionError("the worker was killed")
            self.survive -= 1
        await super().send(spec, key, value)


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> DyingWire:
    wire = DyingWire()
    install(monkeypatch, agents, "orders", "open_orders")
    from streams import sending

    monkeypatch.setattr(sending, "send", wire.send)
    monkeypatch.setattr(sending, "publish", wire.send)
    for name in ("orders", "open_orders"):
        getattr(agents, name).wire = wire
    return wire


def place() -> messages.OrderCommand:
    return envelopes.order_command(
        "o-1",
        messages.place_order(
            customer_id="alice",
            lines=[{"sku": "a", "quantity": 1}, {"sku": "b", "quantity": 2}],
            payment={"method": "CARD", "token": "tok_ok"},
            request_hash="h",
        ),
    )


def cancel() -> messages.OrderCommand:
    return envelopes.order_command(
        "o-1", messages.cancel_order(requested_by="alice", role="CUSTOMER")
    )


def stock_steps(wire: Wire) -> list[tuple[str, str, int]]:
    """(branch, sku, origin offset) of each inventory command sent."""
    return [
        (c["payload"][0], c["sku"], c["origin"]["offset"]) for c in wire.on("inventory-commands")
    ]


async def test_a_transition_is_stored_with_its_outbox_before_its_effects_go_out(
    wire: DyingWire,
) -> None:
    await agents.apply_order_message("o-1", place(), ORIGIN)
    state = agents.orders["o-1"]
    assert [entry["kind"] for entry in state["outbox"]] == ["RESERVE", "RESERVE", "PUBLISH"]
    assert state["outbox_origin"] == ORIGIN
    assert wire.journal[0] == ("write", "orders")
    assert stock_steps(wire) == [
        (messages.RESERVE_STOCK, "a", 7),
        (messages.RESERVE_STOCK, "b", 7),
    ]


async def test_effects_lost_in_a_crash_go_out_when_their_message_is_handled_again(
    wire: DyingWire,
) -> None:
    wire.survive = 1
    with pytest.raises(ConnectionError):
        await agents.apply_order_message("o-1", place(), ORIGIN)
    assert stock_steps(wire) == [(messages.RESERVE_STOCK, "a", 7)]

    wire.survive = None
    wire.sent.clear()
    await agents.apply_order_message("o-1", place(), ORIGIN)  # not committed: read again
    assert stock_steps(wire) == [
        (messages.RESERVE_STOCK, "a", 7),
        (messages.RESERVE_STOCK, "b", 7),
    ]
    assert len(wire.on("orders")) == 1


async def test_the_outbox_goes_out_again_before_the_next_transition_replaces_it(
    wire: DyingWire,
) -> None:
    wire.survive = 0  # killed before any reserve went out
    with pytest.raises(ConnectionError):
        await agents.apply_order_message("o-1", place(), ORIGIN)
    wire.survive = None
    await agents.apply_order_message("o-1", cancel(), ORIGIN | {"offset": 8})
    # The reserves first, with their own origin (a sku applies each once), then the releases.
    assert stock_steps(wire) == [
        (messages.RESERVE_STOCK, "a", 7),
        (messages.RESERVE_STOCK, "b", 7),
        (messages.RELEASE_STOCK, "a", 8),
        (messages.RELEASE_STOCK, "b", 8),
    ]
    assert [s["status"] for s in wire.on("order-settlements")] == ["CANCELLED"]
    assert [e["kind"] for e in agents.orders["o-1"]["outbox"]] == [
        "RELEASE",
        "RELEASE",
        "PUBLISH",
        "SETTLE",
    ]


async def test_another_message_that_changes_nothing_does_not_send_the_outbox_again(
    wire: DyingWire,
) -> None:
    await agents.apply_order_message("o-1", place(), ORIGIN)
    await agents.apply_order_message("o-1", cancel(), ORIGIN | {"offset": 8})
    wire.sent.clear()
    # A duplicate cancel, elsewhere in the log: an answer to a resent effect would look
    # the same, and resending on it could loop between the saga and another agent.
    await agents.apply_order_message("o-1", cancel(), ORIGIN | {"offset": 9})
    assert wire.sent == []
