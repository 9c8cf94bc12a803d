"""A void that finds no payment is asked again while a timed-out authorization may land.

Seen under load in the fault-injection suite: an authorization timed out on our
side (the order was rejected as PAYMENT_UNAVAILABLE and voided), the void reached
the provider first and found nothing, then the authorization landed and its hold
stayed on the card. The payments agent's glue runs here against a scripted
provider, with the tables and the producer replaced by plain values.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from core import observe
from schemas import envelopes, messages
from streams import sending
from streams.payments import agents
from streams.payments.client import (
    AuthorizationResult,
    Operation,
    OperationOutcome,
    OperationResult,
    PaymentStatus,
)


class Table(dict):  # type: ignore[type-arg]
    """Enough of a Faust table for the agent: get, set, pop, items."""


class Provider:
    """The card provider as the void sees it: no payment until `land()` is called."""

    def __init__(self) -> None:
        self.landed = False

    def land(self) -> None:
        self.landed = True

    async def authorize(self, order_id: str, *args: Any) -> AuthorizationResult:
        return AuthorizationResult(order_id, PaymentStatus.UNAVAILABLE)

    async def void(self, order_id: str) -> OperationResult:
        if not self.landed:
            return OperationResult(order_id, Operation.VOID, OperationOutcome.NOT_FOUND)
        return OperationResult(
            order_id, Operation.VOID, OperationOutcome.DONE, PaymentStatus.VOIDED, "pay-1"
        )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    sent: list[tuple[str, str, Any]] = []
    correlations: list[str | None] = []  # the correlation id each message went under

    async def send(spec: Any, key: str, value: Any) -> None:
        sent.append((spec.name, key, value))
        correlations.append(observe.current().correlation_id)

    provider = Provider()
    monkeypatch.setattr(sending, "send", send)
    monkeypatch.setattr(sending, "publish", send)
    monkeypatch.setattr(agents, "payments", Table())
    monkeypatch.setattr(agents, "void_rechecks", Table())
    monkeypatch.setattr(agents, "provider", lambda: provider)
    monkeypatch.setitem(agents.OPERATIONS, messages.VOID_PAYMENT, Provider.void)
    return {"sent": sent, "provider": provider, "correlations": correlations}


AUTHORIZE = envelopes.payment_command(
    "o-1", messages.authorize_payment(amount=Decimal("9.99"), currency="EUR", token="tok_ok")
)
VOID = envelopes.payment_command("o-1", messages.void_payment())


def replies(sent: list[tuple[str, str, Any]]) -> list[str]:
    return [value["payload"][1]["status"] for topic, _, value in sent if topic == "order-events"]


async def test_a_void_after_an_unanswered_authorization_is_asked_again_until_it_lands(
    world: dict[str, Any],
) -> None:
    await agents.apply_payment_command("o-1", AUTHORIZE)
    assert replies(world["sent"]) == ["UNAVAILABLE"]

    await agents.apply_payment_command("o-1", VOID)  # reaches the provider first
    assert "o-1" in agents.void_rechecks

    world["sent"].clear()
    await agents.resend_unconfirmed_voids()
    asked = [value["payload"][0] for topic, _, value in world["sent"]]
    assert asked == [messages.VOID_PAYMENT]

    world["provider"].land()  # the timed-out authorization lands at last
    world["sent"].clear()
    await agents.apply_payment_command("o-1", VOID)
    assert replies(world["sent"]) == ["VOIDED"]
    assert "o-1" not in agents.void_rechecks


async def test_asking_stops_when_the_window_has_passed(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await agents.apply_payment_command("o-1", AUTHORIZE)
    await agents.apply_payment_command("o-1", VOID)
    deadline = agents.void_rechecks["o-1"]["deadline_ms"]
    monkeypatch.setattr(agents, "epoch_ms", lambda: deadline)
    await agents.apply_payment_command("o-1", VOID)
    assert "o-1" not in agents.void_rechecks


async def test_a_void_of_an_answered_authorization_is_not_asked_again(
    world: dict[str, Any],
) -> None:
    agents.payments["o-1"] = {"status": "DECLINED", "payment_id": "pay-1"}
    await agents.apply_payment_command("o-1", VOID)
    assert "o-1" not in agents.void_rechecks


async def test_the_void_asked_again_carries_the_first_voids_correlation_id(
    world: dict[str, Any],
) -> None:
    with observe.bound(observe.Ids("corr-cancel", "o-1")):
        await agents.apply_payment_command("o-1", AUTHORIZE)
        await agents.apply_payment_command("o-1", VOID)
    world["correlations"].clear()
    await agents.resend_unconfirmed_voids()  # the timer: no message in hand, no ids bound
    assert world["correlations"] == ["corr-cancel"]
    assert observe.current().correlation_id is None
