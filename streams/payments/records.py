"""Payments between their rule values and their Avro records (table and public topic)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from streams.payments.rules import PaymentStatus


def payment_record(
    order_id: str,
    status: PaymentStatus,
    payment_id: str | None,
    amount: Decimal,
    currency: str,
    updated_at: datetime,
) -> dict[str, Any]:
    """PaymentRecord: the payments table and the public payments topic hold the same record."""
    return {
        "order_id": order_id,
        "status": status.value,
        "payment_id": payment_id,
        "amount": amount,
        "currency": currency,
        "updated_at": updated_at,
    }
