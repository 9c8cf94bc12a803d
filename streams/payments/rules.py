"""Payments as pure functions: what the saga hears, what is recorded, which voids are asked again.

The agent (streams.payments.agents) talks to the card provider through
streams.payments.client, whose answers are values; these functions decide what
those answers and the stored payment mean. No Faust, no I/O: the agent passes
in the stored status, the provider's answer and the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PaymentStatus(StrEnum):
    """What the provider said about a payment: the symbols of momentum.PaymentStatus."""

    PENDING = "PENDING"
    AUTHORIZED = "AUTHORIZED"
    DECLINED = "DECLINED"
    UNAVAILABLE = "UNAVAILABLE"
    CAPTURED = "CAPTURED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"


# Answers that end an authorization; a redelivered authorize repeats them.
AUTHORIZE_ANSWERED = frozenset(
    {
        PaymentStatus.AUTHORIZED,
        PaymentStatus.DECLINED,
        PaymentStatus.CAPTURED,
        PaymentStatus.VOIDED,
        PaymentStatus.REFUNDED,
    }
)


def repeated_authorization(stored: str) -> PaymentStatus | None:
    """The answer a redelivered authorize repeats, given the stored payment's status.

    None when the provider must be asked: the authorization is pending or went
    unanswered. A payment captured, voided or refunded since was authorized.
    """
    if stored not in AUTHORIZE_ANSWERED:
        return None
    return PaymentStatus.DECLINED if stored == PaymentStatus.DECLINED else PaymentStatus.AUTHORIZED


def tells_the_saga(authorization: PaymentStatus) -> bool:
    """Whether the saga hears of an authorization now: a pending one waits for the card
    holder, and the order expires meanwhile."""
    return authorization is not PaymentStatus.PENDING


def unanswered(stored: str | None) -> bool:
    """True when the order's authorization got no answer (none stored, or UNAVAILABLE),
    so it may still land at the provider."""
    return stored is None or stored == PaymentStatus.UNAVAILABLE


def settled_status(status: PaymentStatus | None, *, found: bool) -> PaymentStatus | None:
    """The payment's status after a capture, void or refund, for the saga and the table.

    None when the provider has no payment for the order (`found` false) or said no
    status: nothing authorized for this order (yet), so nothing to release.
    """
    return status if found else None


def is_news(stored: str | None, status: PaymentStatus) -> bool:
    """Whether `status` changes the stored payment; the same status is not recorded again."""
    return stored != status


@dataclass(frozen=True)
class VoidFollowUp:
    """What becomes of a void's entry in void-rechecks."""

    # Epoch ms until which the void is asked again; None: it is not asked again.
    deadline: int | None
    # The late-authorization window passed and no authorization landed.
    gave_up: bool = False


def follow_up_void(
    deadline: int | None,
    *,
    found: bool,
    authorization_unanswered: bool,
    now_ms: int,
    window_ms: int,
) -> VoidFollowUp:
    """Whether a void is asked again, given its stored deadline (None: not yet asked again).

    An authorization that timed out on our side can still reach the provider after
    the saga's void did (the void then finds nothing): without asking again, that
    hold would stay on the card. So a void that found no payment while the
    authorization may still land is asked again until it finds the payment or the
    window (`window_ms` from the first miss) has passed.
    """
    if found or not authorization_unanswered:
        return VoidFollowUp(None)
    if deadline is None:
        return VoidFollowUp(now_ms + window_ms)
    if now_ms >= deadline:
        return VoidFollowUp(None, gave_up=True)
    return VoidFollowUp(deadline)
