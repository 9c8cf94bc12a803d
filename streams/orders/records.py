"""Orders between their rule values and their Avro records (state, public, web)."""

from __future__ import annotations

from typing import Any

from schemas.money import CENT
from streams.orders.rules import Line, LineState, Order, PaymentOutcome, Reason, Status


def order_from_state(record: dict[str, Any] | None) -> Order | None:
    if record is None:
        return None
    return Order(
        order_id=record["order_id"],
        customer_id=record["customer_id"],
        status=Status(record["status"]),
        reason=Reason(record["reason"]) if record["reason"] else None,
        lines=tuple(
            Line(
                sku=line["sku"],
                quantity=line["quantity"],
                state=LineState(line["state"]),
                unit_price=line["unit_price"],
            )
            for line in record["lines"]
        ),
        currency=record["currency"],
        payment_token=record["payment_token"],
        request_hash=record["request_hash"],
        payment_status=PaymentOutcome(record["payment_status"])
        if record["payment_status"]
        else None,
        created_at=record["created_at"],
        updated_at=record["updated_at"],
        expires_at=record["expires_at"],
    )


def order_to_state(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "status": order.status.value,
        "reason": order.reason.value if order.reason else None,
        "lines": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "state": line.state.value,
            }
            for line in order.lines
        ],
        "currency": order.currency,
        "payment_token": order.payment_token,
        "request_hash": order.request_hash,
        "payment_status": order.payment_status.value if order.payment_status else None,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "expires_at": order.expires_at,
    }


def order_record(order: Order) -> dict[str, Any]:
    """The public OrderRecord (topic orders)."""
    return {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "status": order.status.value,
        "reason": order.reason.value if order.reason else None,
        "total": order.total.quantize(CENT),
        "currency": order.currency,
        "line_count": len(order.lines),
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def line_records(order: Order) -> list[dict[str, Any]]:
    """Public OrderLineRecords (topic order-lines) for the lines that have a price."""
    return [
        {
            "line_id": f"{order.order_id}:{line.sku}",
            "order_id": order.order_id,
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "currency": order.currency or "",
        }
        for line in order.lines
        if line.unit_price is not None
    ]


def settlement_record(order: Order) -> dict[str, Any]:
    """OrderSettled (topic order-settlements), for the per-minute analytics."""
    return {
        "order_id": order.order_id,
        "status": order.status.value,
        "total": order.total.quantize(CENT),
        "currency": order.currency,
        "lines": line_records(order),
        "settled_at": order.updated_at,
    }


def order_view(order: Order) -> dict[str, Any]:
    """JSON for the worker's web view; the gateway shapes its response from this."""
    return {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "status": order.status.value,
        "reason": order.reason.value if order.reason else None,
        "lines": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": str(line.unit_price) if line.unit_price is not None else None,
            }
            for line in order.lines
        ],
        "total": str(order.total.quantize(CENT)),
        "currency": order.currency,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "request_hash": order.request_hash,
        "payment_status": order.payment_status.value if order.payment_status else None,
    }
