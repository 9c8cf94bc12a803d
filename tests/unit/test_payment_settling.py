"""Captures, voids and refunds wait out a provider outage before they are parked."""

from __future__ import annotations

import pytest

from streams.payments import agents
from streams.payments.client import (
    Operation,
    OperationOutcome,
    OperationResult,
    PaymentStatus,
)


class ScriptedCapture:
    """A capture that answers UNAVAILABLE `outage` times, then CAPTURED."""

    def __init__(self, outage: int) -> None:
        self.outage = outage
        self.calls = 0

    async def __call__(self, client: object, order_id: str) -> OperationResult:
        self.calls += 1
        if self.calls <= self.outage:
            return OperationResult(order_id, Operation.CAPTURE, OperationOutcome.UNAVAILABLE)
        return OperationResult(
            order_id, Operation.CAPTURE, OperationOutcome.DONE, PaymentStatus.CAPTURED, "p-1"
        )


@pytest.fixture
def patience(monkeypatch: pytest.MonkeyPatch) -> object:
    def set_patience(seconds: float) -> None:
        settings = agents.settings.model_copy(
            update={
                "payment_settle_patience_seconds": seconds,
                "payment_breaker_reset_seconds": 0.01,
            }
        )
        monkeypatch.setattr(agents, "settings", settings)

    monkeypatch.setattr(agents, "provider", lambda: None)
    return set_patience


async def test_a_short_outage_is_waited_out(patience) -> None:  # type: ignore[no-untyped-def]
    patience(5.0)
    capture = ScriptedCapture(outage=3)
    result = await agents.settling(capture, "o-1")
    assert result.outcome is OperationOutcome.DONE
    assert result.status is PaymentStatus.CAPTURED
    assert capture.calls == 4


async def test_out_of_patience_hands_back_the_refusal(patience) -> None:  # type: ignore[no-untyped-def]
    patience(0.0)
    capture = ScriptedCapture(outage=100)
    result = await agents.settling(capture, "o-1")
    assert result.outcome is OperationOutcome.UNAVAILABLE
    assert capture.calls == 1
