"""Notification rules: who hears what, and ids that repeat exactly when the event does."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from streams.notifications.rules import (
    NOTIFICATION_NAMESPACE,
    OPERATIONS,
    Kind,
    Notification,
    for_abandoned_cart,
    for_order,
    for_stock_alert,
)

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def order(**overrides: Any) -> Notification | None:
    values: dict[str, Any] = {
        "order_id": "o1",
        "customer_id": "alice",
        "status": "CONFIRMED",
        "reason": None,
        "total": Decimal("32.55"),
        "currency": "BRL",
        "updated_at": T0,
    }
    values.update(overrides)
    return for_order(**values)


@pytest.mark.parametrize(
    ("status", "reason", "kind", "text"),
    [
        ("CONFIRMED", None, Kind.ORDER_CONFIRMED, "Your order o1 is confirmed. Total 32.55 BRL."),
        (
            "REJECTED",
            "OUT_OF_STOCK",
            Kind.ORDER_REJECTED,
            "Your order o1 could not be placed: an item is out of stock.",
        ),
        (
            "REJECTED",
            "PAYMENT_DECLINED",
            Kind.ORDER_REJECTED,
            "Your order o1 could not be placed: the payment was declined.",
        ),
        (
            "EXPIRED",
            "RESERVATION_EXPIRED",
            Kind.ORDER_EXPIRED,
            "Your order o1 expired: it was not completed in time.",
        ),
        (
            "CANCELLED",
            "CUSTOMER_CANCELLED",
            Kind.ORDER_CANCELLED,
            "Your order o1 was cancelled: you cancelled it.",
        ),
        ("CANCELLED", None, Kind.ORDER_CANCELLED, "Your order o1 was cancelled."),
    ],
)
def test_settled_orders_tell_the_customer(
    status: str, reason: str | None, kind: Kind, text: str
) -> None:
    expected_id = str(uuid.uuid5(NOTIFICATION_NAMESPACE, f"{kind.value}:o1:{status}"))
    assert order(status=status, reason=reason) == Notification(
        expected_id, kind, "alice", "o1", text, T0
    )


@pytest.mark.parametrize("status", ["PENDING", "RESERVED"])
def test_unsettled_orders_tell_nobody(status: str) -> None:
    assert order(status=status) is None


def test_an_unknown_reason_is_still_said() -> None:
    notification = order(status="REJECTED", reason="SOMETHING_NEW")
    assert notification is not None
    assert notification.message.endswith(": something_new.")


def test_order_id_is_stable_across_records_and_differs_per_status_and_order() -> None:
    # The orders topic repeats a CONFIRMED order (e.g. when the payment is captured):
    # same id, so the agent sends it once; a later cancel is news.
    first, repeat = order(), order(updated_at=T0 + timedelta(seconds=5))
    cancelled = order(status="CANCELLED", reason="CUSTOMER_CANCELLED")
    other = order(order_id="o2")
    assert first is not None and repeat is not None and cancelled is not None and other
    assert first.notification_id == repeat.notification_id
    assert len({first.notification_id, cancelled.notification_id, other.notification_id}) == 3


@pytest.mark.parametrize(("seller", "recipient"), [("s1", "s1"), (None, OPERATIONS)])
def test_low_stock_goes_to_the_seller_or_operations(seller: str | None, recipient: str) -> None:
    alert = for_stock_alert(sku="tee", seller_id=seller, available=2, threshold=5, occurred_at=T0)
    assert alert.kind is Kind.LOW_STOCK
    assert alert.recipient == recipient
    assert alert.subject_id == "tee"
    assert alert.message == "Low stock for tee: 2 available, below the threshold of 5."
    assert alert.created_at == T0


def test_the_same_alert_has_one_id_a_later_fall_another() -> None:
    def alert(at: datetime) -> Notification:
        return for_stock_alert(sku="tee", seller_id="s1", available=2, threshold=5, occurred_at=at)

    assert alert(T0) == alert(T0)
    assert alert(T0).notification_id != alert(T0 + timedelta(milliseconds=1)).notification_id


@pytest.mark.parametrize(("count", "words"), [(1, "1 item"), (3, "3 items")])
def test_abandoned_cart_reminds_the_customer(count: int, words: str) -> None:
    reminder = for_abandoned_cart(
        cart_id="c1", customer_id="alice", item_count=count, occurred_at=T0
    )
    assert reminder == Notification(
        str(uuid.uuid5(NOTIFICATION_NAMESPACE, "CART_ABANDONED:c1:ABANDONED")),
        Kind.CART_ABANDONED,
        "alice",
        "c1",
        f"You left {words} in your cart c1.",
        T0,
    )


def test_kinds_match_the_avro_enum() -> None:
    from schemas import load_schema

    schema = load_schema("NotificationKind")
    assert isinstance(schema, dict)
    assert [k.value for k in Kind] == schema["symbols"]


def test_the_notification_record_round_trips_through_its_schema() -> None:
    from schemas.serdes import InMemoryRegistry, Serdes
    from streams.notifications.records import notification_record

    codec = Serdes(InMemoryRegistry()).codec("notifications-value", "Notification")
    reminder = for_abandoned_cart(cart_id="c1", customer_id="alice", item_count=2, occurred_at=T0)
    record = notification_record(reminder)
    assert codec.decode(codec.encode(record)) == record
    assert record["kind"] == "CART_ABANDONED"
    assert record["recipient"] == "alice"
