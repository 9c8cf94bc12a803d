"""Payments' decisions: what a redelivered authorize repeats, what the saga hears, what is
recorded, and which voids are asked again (streams.payments.rules), and the payment record."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from schemas import load_schema
from schemas.serdes import InMemoryRegistry, Serdes
from streams.payments.records import payment_record
from streams.payments.rules import (
    PaymentStatus,
    VoidFollowUp,
    follow_up_void,
    is_news,
    repeated_authorization,
    settled_status,
    tells_the_saga,
    unanswered,
)

S = PaymentStatus


@pytest.mark.parametrize(
    ("stored", "repeated"),
    [
        ("AUTHORIZED", S.AUTHORIZED),
        ("DECLINED", S.DECLINED),
        # Settled since: the authorization it repeats was granted.
        ("CAPTURED", S.AUTHORIZED),
        ("VOIDED", S.AUTHORIZED),
        ("REFUNDED", S.AUTHORIZED),
        # No answer yet: the provider is asked (it repeats its own first answer).
        ("PENDING", None),
        ("UNAVAILABLE", None),
    ],
)
def test_a_redelivered_authorize_repeats_the_stored_answer(
    stored: str, repeated: PaymentStatus | None
) -> None:
    assert repeated_authorization(stored) is repeated


@pytest.mark.parametrize("status", list(PaymentStatus))
def test_the_saga_hears_every_authorization_but_a_pending_one(status: PaymentStatus) -> None:
    assert tells_the_saga(status) is (status is not S.PENDING)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [(None, True), ("UNAVAILABLE", True), ("PENDING", False), ("AUTHORIZED", False)]
    + [(s.value, False) for s in (S.DECLINED, S.CAPTURED, S.VOIDED, S.REFUNDED)],
)
def test_an_authorization_is_unanswered_when_none_is_stored_or_it_went_unanswered(
    stored: str | None, expected: bool
) -> None:
    assert unanswered(stored) is expected


@pytest.mark.parametrize(
    ("status", "found", "settled"),
    [
        (S.CAPTURED, True, S.CAPTURED),
        (S.VOIDED, True, S.VOIDED),
        # Refused (409): the status that forbade it is what the payment is.
        (S.AUTHORIZED, True, S.AUTHORIZED),
        (None, False, None),  # the provider has no payment for the order
        (S.VOIDED, False, None),
        (None, True, None),
    ],
)
def test_a_settling_answer_names_the_payments_status_unless_nothing_was_found(
    status: PaymentStatus | None, found: bool, settled: PaymentStatus | None
) -> None:
    assert settled_status(status, found=found) is settled


@pytest.mark.parametrize(
    ("stored", "status", "news"),
    [
        (None, S.AUTHORIZED, True),
        ("UNAVAILABLE", S.AUTHORIZED, True),
        ("AUTHORIZED", S.CAPTURED, True),
        ("AUTHORIZED", S.AUTHORIZED, False),
        ("CAPTURED", S.CAPTURED, False),
    ],
)
def test_only_a_changed_status_is_recorded(
    stored: str | None, status: PaymentStatus, news: bool
) -> None:
    assert is_news(stored, status) is news


NOW = 1_000_000
WINDOW = 30_000


@pytest.mark.parametrize(
    ("deadline", "found", "unanswered_", "now", "expected"),
    [
        # Found, or the authorization was answered: not asked again, any entry dropped.
        (None, True, True, NOW, VoidFollowUp(None)),
        (NOW + 5, True, True, NOW, VoidFollowUp(None)),
        (None, False, False, NOW, VoidFollowUp(None)),
        (NOW + 5, False, False, NOW, VoidFollowUp(None)),
        # Nothing found while the authorization may land: asked again for the window.
        (None, False, True, NOW, VoidFollowUp(NOW + WINDOW)),
        # Asked again before: the first deadline stands, not pushed back.
        (NOW + 5, False, True, NOW, VoidFollowUp(NOW + 5)),
        # The window has passed: given up.
        (NOW, False, True, NOW, VoidFollowUp(None, gave_up=True)),
        (NOW - 1, False, True, NOW, VoidFollowUp(None, gave_up=True)),
    ],
)
def test_a_void_that_found_nothing_is_asked_again_while_the_authorization_may_land(
    deadline: int | None, found: bool, unanswered_: bool, now: int, expected: VoidFollowUp
) -> None:
    decided = follow_up_void(
        deadline, found=found, authorization_unanswered=unanswered_, now_ms=now, window_ms=WINDOW
    )
    assert decided == expected


def test_payment_status_matches_its_avro_enum() -> None:
    loaded = load_schema("PaymentStatus")
    assert isinstance(loaded, dict)
    assert [member.value for member in PaymentStatus] == loaded["symbols"]


def test_the_payment_record_round_trips_through_its_schema() -> None:
    codec = Serdes(InMemoryRegistry()).codec("payments-value", "PaymentRecord")
    at = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    record = payment_record("o-1", S.CAPTURED, "pay-1", Decimal("19.90"), "EUR", at)
    assert codec.decode(codec.encode(record)) == record
    assert record["status"] == "CAPTURED"
