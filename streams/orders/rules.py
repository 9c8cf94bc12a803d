"""The order saga as pure transitions: (order, message) -> (order, effects).

The saga reserves every line on its sku's partition, authorizes the payment
once all lines are held, then commits the stock and captures. A rejected line,
a declined or unavailable payment, expiry or cancellation releases what was
held and voids or refunds what was paid. Each transition is idempotent: a
duplicate or late message leaves a settled order as it is and at most asks
again for a compensation that is itself idempotent.

The saga also decides who may act on an order: only its customer or an admin
may cancel it, and a PlaceOrder for an existing order id must be the same
request (same customer and request hash). Anything else is refused with a
`Reject` effect and leaves the order as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from core.errors import RuleError
from streams.rejections.rules import Reject, RejectionReason


class Status(StrEnum):
    PENDING = "PENDING"
    RESERVED = "RESERVED"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


SETTLED = frozenset({Status.CONFIRMED, Status.REJECTED, Status.EXPIRED, Status.CANCELLED})
CANCELLABLE = frozenset({Status.PENDING, Status.RESERVED, Status.CONFIRMED})


class Reason(StrEnum):
    OUT_OF_STOCK = "OUT_OF_STOCK"
    UNKNOWN_SKU = "UNKNOWN_SKU"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    PAYMENT_UNAVAILABLE = "PAYMENT_UNAVAILABLE"
    RESERVATION_EXPIRED = "RESERVATION_EXPIRED"
    CUSTOMER_CANCELLED = "CUSTOMER_CANCELLED"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"


class LineState(StrEnum):
    REQUESTED = "REQUESTED"
    RESERVED = "RESERVED"
    REJECTED = "REJECTED"
    RELEASED = "RELEASED"
    COMMITTED = "COMMITTED"
    RETURNED = "RETURNED"


class PaymentOutcome(StrEnum):
    AUTHORIZED = "AUTHORIZED"
    DECLINED = "DECLINED"
    UNAVAILABLE = "UNAVAILABLE"
    CAPTURED = "CAPTURED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"


# No answer yet, or no answer in time: an authorization may exist at the provider.
VOIDABLE: frozenset[PaymentOutcome | None] = frozenset({None, PaymentOutcome.UNAVAILABLE})
PAYMENT_PROGRESS: dict[PaymentOutcome | None, int] = {
    PaymentOutcome.AUTHORIZED: 1,
    PaymentOutcome.CAPTURED: 2,
    PaymentOutcome.VOIDED: 3,
    PaymentOutcome.REFUNDED: 3,
}


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int
    state: LineState = LineState.REQUESTED
    unit_price: Decimal | None = None


@dataclass(frozen=True)
class Order:
    order_id: str
    customer_id: str
    status: Status
    lines: tuple[Line, ...]
    payment_token: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    reason: Reason | None = None
    currency: str | None = None
    payment_status: PaymentOutcome | None = None
    request_hash: str = ""

    @property
    def settled(self) -> bool:
        return self.status in SETTLED

    @property
    def total(self) -> Decimal:
        return sum(
            (line.unit_price * line.quantity for line in self.lines if line.unit_price is not None),
            Decimal("0.00"),
        )

    def line(self, sku: str) -> Line | None:
        return next((line for line in self.lines if line.sku == sku), None)


# -- effects: what the agent must send after storing the new order ------------------------


@dataclass(frozen=True)
class Reserve:
    sku: str
    quantity: int


@dataclass(frozen=True)
class Release:
    sku: str


@dataclass(frozen=True)
class Commit:
    sku: str


@dataclass(frozen=True)
class Return:
    sku: str
    quantity: int  # the sku keeps no record of committed orders: the saga says how many


@dataclass(frozen=True)
class Authorize:
    amount: Decimal
    currency: str
    token: str


@dataclass(frozen=True)
class Capture:
    pass


@dataclass(frozen=True)
class Void:
    pass


@dataclass(frozen=True)
class Refund:
    pass


@dataclass(frozen=True)
class Publish:
    """The order's public state changed."""


@dataclass(frozen=True)
class Settle:
    """The order has just settled: its settlement goes to the analytics."""


Effect = (
    Reserve
    | Release
    | Commit
    | Return
    | Authorize
    | Capture
    | Void
    | Refund
    | Publish
    | Settle
    | Reject
)
Outcome = tuple[Order | None, list[Effect]]


# -- transitions --------------------------------------------------------------------------


def place_order(
    order: Order | None,
    *,
    order_id: str,
    customer_id: str,
    lines: list[tuple[str, int]],
    payment_token: str,
    request_hash: str,
    now: datetime,
    ttl: timedelta,
) -> Outcome:
    if order is not None:
        if order.customer_id == customer_id and order.request_hash == request_hash:
            return order, []  # a redelivered or retried PlaceOrder
        # The Idempotency-Key reused with another body: the first request stands.
        return order, [Reject(RejectionReason.IDEMPOTENCY_KEY_REUSED)]
    skus = [sku for sku, _ in lines]
    if not lines or len(set(skus)) != len(skus) or any(q <= 0 for _, q in lines):
        raise RuleError(f"order {order_id}: needs lines with distinct skus and positive quantities")
    new = Order(
        order_id=order_id,
        customer_id=customer_id,
        status=Status.PENDING,
        lines=tuple(Line(sku, quantity) for sku, quantity in lines),
        payment_token=payment_token,
        request_hash=request_hash,
        created_at=now,
        updated_at=now,
        expires_at=now + ttl,
    )
    return new, [*(Reserve(sku, q) for sku, q in lines), Publish()]


def apply_stock_reserved(
    order: Order | None, sku: str, unit_price: Decimal, currency: str, now: datetime
) -> Outcome:
    line = order.line(sku) if order else None
    if order is None or line is None:
        return order, []
    if order.settled or line.state in (LineState.RELEASED, LineState.REJECTED):
        # A grant that arrived after the order gave up: hand the stock back.
        if order.status is Status.CONFIRMED:
            return order, []
        return order, [Release(sku)]
    if line.state is not LineState.REQUESTED:
        return order, []
    lines = _with_line(order, replace(line, state=LineState.RESERVED, unit_price=unit_price))
    if order.currency is not None and currency != order.currency:
        # One payment cannot add amounts in two currencies: the held line goes back too.
        return _give_up(replace(order, lines=lines), Status.REJECTED, Reason.CURRENCY_MISMATCH, now)
    updated = replace(order, lines=lines, currency=currency, updated_at=now)
    if all(line.state is LineState.RESERVED for line in lines):
        updated = replace(updated, status=Status.RESERVED)
        assert updated.currency is not None
        return updated, [Authorize(updated.total, updated.currency, order.payment_token), Publish()]
    return updated, [Publish()]


def apply_stock_rejected(order: Order | None, sku: str, reason: Reason, now: datetime) -> Outcome:
    line = order.line(sku) if order else None
    if order is None or line is None or order.settled or line.state is not LineState.REQUESTED:
        return order, []
    lines = _with_line(order, replace(line, state=LineState.REJECTED))
    rejected = replace(order, lines=lines, reason=reason, updated_at=now)
    return _give_up(rejected, Status.REJECTED, reason, now)


def apply_payment(order: Order | None, outcome: PaymentOutcome, now: datetime) -> Outcome:
    if order is None:
        return order, []
    if outcome is PaymentOutcome.AUTHORIZED:
        if order.status is Status.RESERVED:
            lines = tuple(replace(line, state=LineState.COMMITTED) for line in order.lines)
            confirmed = replace(
                order, status=Status.CONFIRMED, lines=lines, payment_status=outcome, updated_at=now
            )
            return confirmed, [*(Commit(line.sku) for line in lines), Capture(), Publish()]
        if order.status in (Status.REJECTED, Status.EXPIRED, Status.CANCELLED) and (
            order.payment_status in VOIDABLE
        ):
            # Authorized after the order gave up: let the hold go.
            return replace(order, payment_status=PaymentOutcome.VOIDED, updated_at=now), [Void()]
        return order, []
    if outcome in (PaymentOutcome.DECLINED, PaymentOutcome.UNAVAILABLE):
        if order.status is not Status.RESERVED:
            return order, []
        reason = (
            Reason.PAYMENT_DECLINED
            if outcome is PaymentOutcome.DECLINED
            else Reason.PAYMENT_UNAVAILABLE
        )
        declined = replace(order, payment_status=outcome)
        return _give_up(declined, Status.REJECTED, reason, now)
    # CAPTURED, VOIDED, REFUNDED: bookkeeping only, and only forwards (a replayed
    # CAPTURED must not undo a REFUNDED).
    if PAYMENT_PROGRESS[outcome] <= PAYMENT_PROGRESS.get(order.payment_status, 0):
        return order, []
    return replace(order, payment_status=outcome, updated_at=now), [Publish()]


def cancel_order(
    order: Order | None, *, requested_by: str, is_admin: bool, now: datetime
) -> Outcome:
    """Cancel for its customer or an admin; anyone else is told the order does not exist."""
    if order is None or not (is_admin or requested_by == order.customer_id):
        return order, [Reject(RejectionReason.UNKNOWN_ORDER)]
    if order.status is Status.CANCELLED:
        return order, []  # already what was asked (also a redelivered cancel)
    if order.status not in CANCELLABLE:
        return order, [Reject(RejectionReason.ORDER_NOT_CANCELLABLE)]
    if order.status is Status.CONFIRMED:
        lines = tuple(replace(line, state=LineState.RETURNED) for line in order.lines)
        cancelled = replace(
            order,
            status=Status.CANCELLED,
            reason=Reason.CUSTOMER_CANCELLED,
            lines=lines,
            updated_at=now,
        )
        effects: list[Effect] = [Return(line.sku, line.quantity) for line in lines]
        return cancelled, [*effects, Refund(), Publish()]
    return _give_up(order, Status.CANCELLED, Reason.CUSTOMER_CANCELLED, now)


def expire_order(order: Order | None, now: datetime) -> Outcome:
    if order is None or order.settled or now < order.expires_at:
        return order, []
    return _give_up(order, Status.EXPIRED, Reason.RESERVATION_EXPIRED, now)


def is_open_past_deadline(order: Order, now: datetime) -> bool:
    return not order.settled and now >= order.expires_at


def _give_up(order: Order, status: Status, reason: Reason, now: datetime) -> Outcome:
    """Settle without payment: release every line that may hold stock, void a pending hold."""
    effects: list[Effect] = []
    lines = []
    for line in order.lines:
        if line.state in (LineState.REQUESTED, LineState.RESERVED):
            effects.append(Release(line.sku))
            line = replace(line, state=LineState.RELEASED)
        lines.append(line)
    if order.status is Status.RESERVED and order.payment_status in (
        None,
        PaymentOutcome.UNAVAILABLE,
    ):
        # An authorization may be in flight or recorded after a time-out; voiding is
        # idempotent at the provider and harmless when nothing was authorized.
        effects.append(Void())
    settled = replace(order, status=status, reason=reason, lines=tuple(lines), updated_at=now)
    return settled, [*effects, Publish()]


def _with_line(order: Order, new_line: Line) -> tuple[Line, ...]:
    return tuple(new_line if line.sku == new_line.sku else line for line in order.lines)
