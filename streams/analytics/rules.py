"""Per-minute analytics as pure functions: which settlements count, and how.

Windows are tumbling minutes in event time (sizes and expiries in tables.windows,
shared with the tables): a settlement's `settled_at` picks its window, never the
clock of the worker that happens to read it. A window is `[start, end)` with
`start` on a whole UTC minute, and it is named
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

Crash safety without transactions: counting a settlement writes several table
entries (each sku's sales, the status count, the counted marker), each its own
changelog record, and a crash may keep any subset of them. So every entry says
in itself what it already holds: a figure carries the offset (on the
one-partition order-settlements topic) of the last settlement it includes, and
the marker carries the offset of the settlement that counted it. Settlements
are handled in offset order, and every figure is cumulative, so a figure whose
offset is at least a settlement's already includes it. Handling a message
again after a crash (the consumer resumes from its last committed offset, and
Faust flushes every changelog write before committing one) writes exactly the
entries that are missing and skips the ones that survived: the figure and its
"counted" mark are one record, so the pair cannot be split (`count_settlement`).
A different message for the same (order, status), such as a saga re-sending a
settlement, finds the marker with another offset and counts nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from streams.orders.rules import Status
from tables.windows import DEDUP_WINDOW, WINDOW, WINDOW_EXPIRES

# Settlements for windows that ended longer ago than this are dropped: the window
# may be gone already, and re-creating it would publish the late settlement's
# figures alone over the complete ones. The margin keeps us clear of the expiry.
LATE_AFTER = WINDOW_EXPIRES - timedelta(minutes=5)

SALES_STATUS = Status.CONFIRMED
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

    def to_state(self, offset: int) -> dict[str, Any]:
        # JSON for the windowed table: Decimal as a string keeps it exact. `offset`:
        # the last settlement these figures include.
        return {
            "units": self.units,
            "revenue": str(self.revenue),
            "currency": self.currency,
            "offset": offset,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> Sales | None:
        if state is None:
            return None
        return cls(int(state["units"]), Decimal(state["revenue"]), str(state["currency"]))


# -- windows ------------------------------------------------------------------------------


def as_utc(at: datetime) -> datetime:
    # Avro timestamp-millis decode as aware UTC; a naive value can only mean UTC here.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


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


# -- counting once, crash or not -------------------------------------------------------------

# The offset of figures written before they carried one: they include nothing we can name.
UNKNOWN_OFFSET = -1


def offset_of(state: Any) -> int:
    """The offset of the last settlement a stored figure includes."""
    if isinstance(state, Mapping):
        return int(state.get("offset", UNKNOWN_OFFSET))
    return UNKNOWN_OFFSET


def orders_from_state(state: Any) -> int | None:
    """A stored status count: `{"orders", "offset"}` (or a bare int, as first written)."""
    if state is None:
        return None
    if isinstance(state, Mapping):
        return int(state["orders"])
    return int(state)


def orders_to_state(orders: int, offset: int) -> dict[str, Any]:
    return {"orders": orders, "offset": offset}


def is_another_message(marker: Any, offset: int) -> bool:
    """True when a stored counted marker was written for a message other than `offset`.

    Markers hold the offset that counted them; `True` is a marker from before they
    did, so it can only be treated as another message.
    """
    if marker is None:
        return False
    if isinstance(marker, bool) or not isinstance(marker, int):
        return True
    return marker != offset


@dataclass(frozen=True)
class Counting:
    """What handling one settlement writes and publishes."""

    duplicate: bool
    # Table entries to write: sales per sku, the status count, the counted marker.
    sales_writes: dict[str, dict[str, Any]]
    orders_write: dict[str, Any] | None
    marker_write: int | None
    # The figures to publish afterwards (new or, when nothing changed, current).
    sales: dict[str, Sales]
    orders: int | None
    left_out: list[tuple[str, Sales, Sales]]  # (sku, more, current) in another currency


def count_settlement(
    settlement: Settlement,
    offset: int,
    marker: Any,
    sales_states: Mapping[str, Any],
    orders_state: Any,
) -> Counting:
    """Count a settlement read at `offset` once, given what the tables hold now.

    `marker` is the stored counted marker for the settlement (None if absent),
    `sales_states` each sold sku's stored figures in the window, `orders_state`
    the status's stored count. A figure already holding this offset is left as
    it is, so a message handled again after a crash completes what is missing.
    """
    sold, _ = sales_of(settlement)
    current = {sku: Sales.from_state(sales_states.get(sku)) for sku in sold}
    if is_another_message(marker, offset):
        published = {sku: figures for sku, figures in current.items() if figures is not None}
        return Counting(True, {}, None, None, published, orders_from_state(orders_state), [])

    writes: dict[str, dict[str, Any]] = {}
    published = {}
    left_out: list[tuple[str, Sales, Sales]] = []
    for sku, more in sold.items():
        figures = current[sku]
        if figures is not None and offset_of(sales_states.get(sku)) >= offset:
            published[sku] = figures  # counted before a crash: this entry survived
            continue
        added = add_sales(figures, more)
        if added is None:
            assert figures is not None
            left_out.append((sku, more, figures))
            continue
        writes[sku] = added.to_state(offset)
        published[sku] = added
    orders = orders_from_state(orders_state)
    orders_write = None
    if orders is None or offset_of(orders_state) < offset:
        orders = count_order(orders)
        orders_write = orders_to_state(orders, offset)
    return Counting(False, writes, orders_write, offset, published, orders, left_out)
