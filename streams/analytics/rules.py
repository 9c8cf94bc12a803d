"""Per-minute analytics as pure functions: which settlements count, and how.

Windows are tumbling minutes in event time: a settlement's `settled_at` picks
its window, never the clock of the worker that happens to read it. A window is
`[start, end)` with `start` on a whole UTC minute, and it is named
`<subject>@<start, ISO-8601 UTC>`, e.g. `tee-black-m@2026-11-02T12:01:00Z` or
`CONFIRMED@2026-11-02T12:01:00Z`. ISO rather than epoch millis because analysts
read these ids in terminals and in Postgres, and the format still sorts by time.
Skus and statuses cannot contain `@`, so an id splits unambiguously.

Sales (units, revenue) come from CONFIRMED settlements only; every settled
status is counted in the orders-per-status figures. An order confirmed and
later cancelled therefore stays in its minute's sales and is counted once under
CONFIRMED and once under CANCELLED: the figures are what happened in each
minute, not a net that changes history.

A settlement counts once per (order id, status), whatever the delivery
guarantee; the agent remembers what it has counted (see `counted_key`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from streams.errors import RuleError
from streams.orders.rules import SETTLED, Status

WINDOW = timedelta(minutes=1)
# Windows stay in the tables (and can still be updated) this long, then expire.
WINDOW_EXPIRES = timedelta(hours=1)
# Settlements for windows that ended longer ago than this are dropped: the window
# may be gone already, and re-creating it would publish the late settlement's
# figures alone over the complete ones. The margin keeps us clear of the expiry.
LATE_AFTER = WINDOW_EXPIRES - timedelta(minutes=5)
# Counted (order, status) pairs live in windows of this size (expiring like the
# figures) and are looked up in the settlement's window and the one before, so a
# duplicate is caught even when it carries a later settled_at (a saga replay):
# any duplicate settled less than DEDUP_WINDOW after the original.
DEDUP_WINDOW = timedelta(hours=1)
# Long enough that the previous window is still there for any settlement that is
# not too late (see LATE_AFTER).
DEDUP_EXPIRES = 2 * DEDUP_WINDOW

SALES_STATUS = Status.CONFIRMED
CENT = Decimal("0.01")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True)
class SoldLine:
    sku: str
    quantity: int
    unit_price: Decimal
    currency: str


@dataclass(frozen=True)
class Settlement:
    order_id: str
    status: Status
    settled_at: datetime
    lines: tuple[SoldLine, ...]


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime  # exclusive


@dataclass(frozen=True)
class Sales:
    """One sku's figures in one window; revenue is exact (not yet rounded)."""

    units: int
    revenue: Decimal
    currency: str

    def to_state(self) -> dict[str, Any]:
        # JSON for the windowed table: Decimal as a string keeps it exact.
        return {"units": self.units, "revenue": str(self.revenue), "currency": self.currency}

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> Sales | None:
        if state is None:
            return None
        return cls(int(state["units"]), Decimal(state["revenue"]), str(state["currency"]))


# -- reading a settlement -----------------------------------------------------------------


def as_utc(at: datetime) -> datetime:
    # Avro timestamp-millis decode as aware UTC; a naive value can only mean UTC here.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def settlement_from_record(record: Mapping[str, Any]) -> Settlement:
    """An OrderSettled record as a Settlement; RuleError if it is not a settled status."""
    try:
        status = Status(record["status"])
    except ValueError as exc:
        raise RuleError(f"unknown order status {record['status']!r}") from exc
    if status not in SETTLED:
        raise RuleError(f"order {record['order_id']} is {status}, not settled")
    order_currency = record.get("currency") or ""
    lines = tuple(
        SoldLine(
            sku=line["sku"],
            quantity=int(line["quantity"]),
            unit_price=Decimal(line["unit_price"]),
            currency=line["currency"] or order_currency,
        )
        for line in record.get("lines", ())
    )
    return Settlement(record["order_id"], status, as_utc(record["settled_at"]), lines)


# -- windows ------------------------------------------------------------------------------


def epoch_ms(at: datetime) -> int:
    return (as_utc(at) - EPOCH) // MILLISECOND


def window_of(at: datetime, size: timedelta = WINDOW) -> Window:
    """The tumbling window of `size` that holds `at` (integer millis, so exact)."""
    size_ms = size // MILLISECOND
    at_ms = epoch_ms(at)
    start = EPOCH + timedelta(milliseconds=at_ms - at_ms % size_ms)
    return Window(start, start + size)


def window_id(subject: str, window: Window) -> str:
    return f"{subject}@{window.start:%Y-%m-%dT%H:%M:%SZ}"


def is_too_late(settled_at: datetime, now: datetime) -> bool:
    return window_of(settled_at).end <= now - LATE_AFTER


# -- idempotency ---------------------------------------------------------------------------


def counted_key(settlement: Settlement) -> str:
    """What a settlement is counted as: an order reaches each status at most once."""
    return f"{settlement.order_id}:{settlement.status.value}"


def dedup_windows(settled_at: datetime) -> tuple[Window, Window]:
    """The window a counted pair is stored in, and the previous one, also searched."""
    here = window_of(settled_at, DEDUP_WINDOW)
    return here, Window(here.start - DEDUP_WINDOW, here.start)


# -- figures -------------------------------------------------------------------------------


def counts_as_sale(settlement: Settlement) -> bool:
    return settlement.status is SALES_STATUS


def sales_of(settlement: Settlement) -> tuple[dict[str, Sales], list[SoldLine]]:
    """Units and revenue per sku of a confirmed settlement (none for other statuses).

    A sku has one currency in the catalog; should one order's lines of a sku
    disagree, the first line's currency wins and the others come back as left out.
    """
    sold: dict[str, Sales] = {}
    left_out: list[SoldLine] = []
    if not counts_as_sale(settlement):
        return sold, left_out
    for line in settlement.lines:
        more = Sales(line.quantity, line.unit_price * line.quantity, line.currency)
        added = add_sales(sold.get(line.sku), more)
        if added is None:
            left_out.append(line)
        else:
            sold[line.sku] = added
    return sold, left_out


def add_sales(current: Sales | None, more: Sales) -> Sales | None:
    """The window's figures with `more` added; None if `more` is in another currency.

    The window keeps the first currency it saw: adding amounts of two currencies
    would make a number that means nothing.
    """
    if current is None:
        return more
    if more.currency != current.currency:
        return None
    return Sales(current.units + more.units, current.revenue + more.revenue, current.currency)


def count_order(current: int | None) -> int:
    return (current or 0) + 1


# -- published records ---------------------------------------------------------------------


def sales_record(sku: str, window: Window, sales: Sales) -> dict[str, Any]:
    """SalesPerMinute (topic sales-per-minute), keyed by its window_id."""
    return {
        "window_id": window_id(sku, window),
        "sku": sku,
        "window_start": window.start,
        "window_end": window.end,
        "units": sales.units,
        "revenue": sales.revenue.quantize(CENT),
        "currency": sales.currency,
    }


def orders_record(status: Status, window: Window, orders: int) -> dict[str, Any]:
    """OrdersPerMinute (topic orders-per-minute), keyed by its window_id."""
    return {
        "window_id": window_id(status.value, window),
        "status": status.value,
        "window_start": window.start,
        "window_end": window.end,
        "orders": orders,
    }
