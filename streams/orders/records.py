"""Orders between their rule values and their Avro records (state, public, web)."""

from __future__ import annotations

from typing import Any

from schemas import messages
from schemas.money import CENT
from streams.orders import rules
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


def order_to_state(
    order: Order,
    outbox: list[rules.Effect] | None = None,
    outbox_origin: messages.MessageOrigin | None = None,
    correlation_id: str | None = None,
    trace_parent: str | None = None,
) -> dict[str, Any]:
    """The OrderState record, with the effects its transition asked for and their origin,
    and the correlation id and trace context of the request that placed the order."""
    return {
        "outbox": [outbox_entry(effect) for effect in outbox or ()],
        "outbox_origin": outbox_origin,
        "correlation_id": correlation_id,
        "trace_parent": trace_parent,
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


def outbox_entry(effect: rules.Effect) -> messages.OutboxEffect:
    match effect:
        case rules.Reserve(sku, quantity):
            return {"kind": "RESERVE", "sku": sku, "quantity": quantity}
        case rules.Release(sku):
            return {"kind": "RELEASE", "sku": sku, "quantity": None}
        case rules.Commit(sku):
            return {"kind": "COMMIT", "sku": sku, "quantity": None}
        case rules.Return(sku, quantity):
            return {"kind": "RETURN", "sku": sku, "quantity": quantity}
        case rules.Authorize():
            return {"kind": "AUTHORIZE", "sku": None, "quantity": None}
        case rules.Capture():
            return {"kind": "CAPTURE", "sku": None, "quantity": None}
        case rules.Void():
            return {"kind": "VOID", "sku": None, "quantity": None}
        case rules.Refund():
            return {"kind": "REFUND", "sku": None, "quantity": None}
        case rules.Publish():
            return {"kind": "PUBLISH", "sku": None, "quantity": None}
        case rules.Settle():
            return {"kind": "SETTLE", "sku": None, "quantity": None}
    raise ValueError(f"{effect!r} is not kept in an outbox")


def outbox_effects(order: Order, entries: list[messages.OutboxEffect]) -> list[rules.Effect]:
    """The effects an outbox stands for; an authorization's terms come from the order."""
    effects: list[rules.Effect] = []
    for entry in entries:
        sku, quantity = entry["sku"] or "", entry["quantity"] or 0
        match entry["kind"]:
            case "RESERVE":
                effects.append(rules.Reserve(sku, quantity))
            case "RELEASE":
                effects.append(rules.Release(sku))
            case "COMMIT":
                effects.append(rules.Commit(sku))
            case "RETURN":
                effects.append(rules.Return(sku, quantity))
            case "AUTHORIZE":
                assert order.currency is not None
                effects.append(rules.Authorize(order.total, order.currency, order.payment_token))
            case "CAPTURE":
                effects.append(rules.Capture())
            case "VOID":
                effects.append(rules.Void())
            case "REFUND":
                effects.append(rules.Refund())
            case "PUBLISH":
                effects.append(rules.Publish())
            case "SETTLE":
                effects.append(rules.Settle())
    return effects
