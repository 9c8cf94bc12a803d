"""The payments agent's glue, without a broker: the provider's answer becomes the saga's
PaymentResult and the payments record.

Commands are built by schemas.envelopes and the schemas.messages builders; the
provider is scripted, the producer and the tables are fakes (tests.support.agents).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from schemas import envelopes, messages
from streams.payments import agents
from streams.payments.client import (
    AuthorizationResult,
    Operation,
    OperationOutcome,
    OperationResult,
    PaymentStatus,
)
from tests.support.agents import Wire, install


class Provider:
    """Answers every authorization with `status` and every capture with CAPTURED."""

    def __init__(self, status: PaymentStatus) -> None:
        self.status = status
        self.authorizations = 0

    async def authorize(self, order_id: str, *args: Any) -> AuthorizationResult:
        self.authorizations += 1
        payment_id = None if self.status is PaymentStatus.UNAVAILABLE else "pay-1"
        return AuthorizationResult(order_id, self.status, payment_id)

    async def capture(self, order_id: str) -> OperationResult:
        return OperationResult(
            order_id, Operation.CAPTURE, OperationOutcome.DONE, PaymentStatus.CAPTURED, None
        )


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    return install(monkeypatch, agents, "payments", "void_rechecks")


def use(monkeypatch: pytest.MonkeyPatch, provider: Provider) -> Provider:
    monkeypatch.setattr(agents, "provider", lambda: provider)
    monkeypatch.setitem(agents.OPERATIONS, messages.CAPTURE_PAYMENT, Provider.capture)
    return provider


AUTHORIZE = envelopes.payment_command(
    "o-1", messages.authorize_payment(amount=Decimal("9.99"), currency="EUR", token="tok_ok")
)
CAPTURE = envelopes.payment_command("o-1", messages.capture_payment())


def results(wire: Wire) -> list[messages.OrderEventPayload]:
    return [event["payload"] for event in wire.on("order-events")]


@pytest.mark.parametrize(
    ("answer", "payment_id"),
    [
        (PaymentStatus.AUTHORIZED, "pay-1"),
        (PaymentStatus.DECLINED, "pay-1"),
        (PaymentStatus.UNAVAILABLE, None),
    ],
)
async def test_an_authorization_answer_is_told_to_the_saga_and_recorded(
    wire: Wire, monkeypatch: pytest.MonkeyPatch, answer: PaymentStatus, payment_id: str | None
) -> None:
    use(monkeypatch, Provider(answer))
    await agents.apply_payment_command("o-1", AUTHORIZE)

    assert results(wire) == [
        messages.payment_result(status=answer.value, payment_id=payment_id, detail=None)
    ]
    record = agents.payments["o-1"]
    assert (record["status"], record["payment_id"]) == (answer.value, payment_id)
    assert (record["amount"], record["currency"]) == (Decimal("9.99"), "EUR")
    assert wire.on("payments") == [record]
    assert wire.sent_before_stored()


async def test_a_pending_authorization_is_recorded_but_not_told(
    wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, Provider(PaymentStatus.PENDING))
    await agents.apply_payment_command("o-1", AUTHORIZE)
    assert results(wire) == []
    assert agents.payments["o-1"]["status"] == "PENDING"


async def test_a_redelivered_authorization_is_answered_from_the_table(
    wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = use(monkeypatch, Provider(PaymentStatus.AUTHORIZED))
    await agents.apply_payment_command("o-1", AUTHORIZE)
    await agents.apply_payment_command("o-1", AUTHORIZE)
    assert provider.authorizations == 1
    authorized = messages.payment_result(status="AUTHORIZED", payment_id="pay-1", detail=None)
    assert results(wire) == [authorized, authorized]
    assert len(wire.on("payments")) == 1  # the same status is not recorded again


async def test_a_capture_keeps_the_known_payment_id(
    wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, Provider(PaymentStatus.AUTHORIZED))
    await agents.apply_payment_command("o-1", AUTHORIZE)
    await agents.apply_payment_command("o-1", CAPTURE)

    assert results(wire)[-1] == messages.payment_result(
        status="CAPTURED", payment_id="pay-1", detail=None
    )
    record = agents.payments["o-1"]
    assert (record["status"], record["payment_id"], record["amount"]) == (
        "CAPTURED",
        "pay-1",
        Decimal("9.99"),
    )


async def test_a_command_under_another_key_is_refused(
    wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = use(monkeypatch, Provider(PaymentStatus.AUTHORIZED))
    with pytest.raises(agents.RuleError):
        await agents.apply_payment_command("o-2", AUTHORIZE)
    assert provider.authorizations == 0 and wire.sent == []
