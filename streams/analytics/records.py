"""Analytics between its rule values and its Avro records: settlements in, figures out.

The windowed tables' JSON state (figures with the offset they include) is part
of the counting rule itself and stays in streams.analytics.rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from core.errors import RuleError
from schemas.money import CENT
from streams.analytics.rules import Sales, Settlement, SoldLine, Window, as_utc, window_id
from streams.orders.rules import SETTLED, Status


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
