"""The typed messages cannot drift from the schema files, and the envelopes they build
go through the real codec.

`schemas/messages.py` must be what `schemas/generate_messages.py` writes from
`schemas/avro/*.avsc` now; every envelope builder, with every payload branch,
must encode and decode back to itself, with exactly the keys its TypedDicts name;
and a builder must put on the wire the same bytes as the dict the agents and the
gateway built by hand before the builders existed.
"""

from __future__ import annotations

import difflib
import typing
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from schemas import envelopes, generate_messages, messages
from schemas.codec import AvroCodec

# timestamp-millis keeps milliseconds: a value with microseconds would not come back equal.
NOW = datetime(2026, 11, 23, 12, 0, 0, 123000, tzinfo=UTC)
PAYMENT: messages.PaymentMethod = {"method": "card", "token": "tok_ok"}
ORIGIN: messages.MessageOrigin = {"topic": "order-commands", "partition": 3, "offset": 41}

ENVELOPES: dict[str, Callable[[Any], Any]] = {
    "OrderCommand": lambda p: envelopes.order_command("o-1", p, command_id="c-1", issued_at=NOW),
    "OrderEvent": lambda p: envelopes.order_event("o-1", p, event_id="e-1", occurred_at=NOW),
    "InventoryCommand": lambda p: envelopes.inventory_command(
        "TEE-1", p, origin=ORIGIN, command_id="c-1", issued_at=NOW
    ),
    "PaymentCommand": lambda p: envelopes.payment_command(
        "o-1", p, command_id="c-1", issued_at=NOW
    ),
    "CartCommand": lambda p: envelopes.cart_command(
        "cart-1", "ana", p, command_id="c-1", issued_at=NOW
    ),
}

# One payload per branch of every envelope's union.
BRANCHES: list[tuple[str, Any]] = [
    (
        "OrderCommand",
        messages.place_order(
            customer_id="ana",
            lines=[{"sku": "TEE-1", "quantity": 2}, {"sku": "MUG-1", "quantity": 1}],
            payment=PAYMENT,
            request_hash="abc",
        ),
    ),
    ("OrderCommand", messages.cancel_order(requested_by="ana", role="CUSTOMER")),
    ("OrderCommand", messages.expire_order()),
    (
        "OrderEvent",
        messages.stock_reserved(
            sku="TEE-1", quantity=2, unit_price=Decimal("12.34"), currency="BRL"
        ),
    ),
    ("OrderEvent", messages.stock_rejected(sku="TEE-1", reason="OUT_OF_STOCK")),
    ("OrderEvent", messages.payment_result(status="DECLINED", payment_id="p-1", detail="no")),
    (
        "InventoryCommand",
        messages.upsert_product(
            name="Tee",
            price=Decimal("12.34"),
            currency="BRL",
            seller_id="bob",
            low_stock_threshold=5,
            role="ADMIN",
            transfer_to="carol",
        ),
    ),
    ("InventoryCommand", messages.restock(quantity=10, requested_by="bob", role="SELLER")),
    ("InventoryCommand", messages.reserve_stock(order_id="o-1", quantity=2)),
    ("InventoryCommand", messages.release_stock(order_id="o-1")),
    ("InventoryCommand", messages.commit_stock(order_id="o-1")),
    ("InventoryCommand", messages.return_stock(order_id="o-1", quantity=2)),
    (
        "PaymentCommand",
        messages.authorize_payment(amount=Decimal("24.68"), currency="BRL", token="tok_ok"),
    ),
    ("PaymentCommand", messages.capture_payment()),
    ("PaymentCommand", messages.void_payment()),
    ("PaymentCommand", messages.refund_payment()),
    ("CartCommand", messages.set_cart_line(sku="TEE-1", quantity=2)),
    ("CartCommand", messages.remove_cart_line(sku="TEE-1")),
    (
        "CartCommand",
        messages.checkout_cart(order_id="o-1", payment=PAYMENT, request_hash="abc"),
    ),
    ("CartCommand", messages.abandon_cart()),
]


def typed_keys(record_name: str) -> frozenset[str]:
    typed = getattr(messages, record_name.rsplit(".", 1)[-1])
    assert typing.is_typeddict(typed), record_name
    return typed.__required_keys__  # type: ignore[no-any-return]


def test_generated_module_is_what_the_schema_files_say() -> None:
    committed = generate_messages.OUTPUT.read_text()
    generated = generate_messages.render()
    if generated != committed:
        diff = difflib.unified_diff(
            committed.splitlines(), generated.splitlines(), "committed", "generated", lineterm=""
        )
        pytest.fail(
            "schemas/messages.py differs from schemas/avro/*.avsc: "
            "run python -m schemas.generate_messages\n" + "\n".join(list(diff)[:40])
        )


def test_every_envelope_and_branch_is_exercised() -> None:
    unions = {n.removesuffix("_PAYLOAD_BRANCHES") for n in dir(messages) if n.endswith("_BRANCHES")}
    assert {generate_messages.constant(e) for e in ENVELOPES} == unions
    for envelope in ENVELOPES:
        names = getattr(messages, f"{generate_messages.constant(envelope)}_PAYLOAD_BRANCHES")
        assert [p[0] for e, p in BRANCHES if e == envelope] == list(names)


@pytest.mark.parametrize(("envelope", "payload"), BRANCHES, ids=[p[0] for _, p in BRANCHES])
def test_built_envelope_round_trips_through_the_codec(envelope: str, payload: Any) -> None:
    value = ENVELOPES[envelope](payload)
    codec = AvroCodec(envelope, schema_id=1)
    decoded = codec.decode(codec.encode(value))
    assert decoded == value
    kind, body = decoded["payload"]
    assert set(decoded) == typed_keys(envelope)
    assert set(body) == typed_keys(kind)


def test_builders_make_a_fresh_id_and_the_time_by_default() -> None:
    before = datetime.now(UTC)
    first = envelopes.order_command("o-1", messages.expire_order())
    second = envelopes.order_event(
        "o-1", messages.payment_result(status="AUTHORIZED", payment_id="p-1", detail=None)
    )
    after = datetime.now(UTC)
    assert uuid.UUID(first["command_id"]).version == 4
    assert uuid.UUID(second["event_id"]).version == 4
    assert first["command_id"] != second["event_id"]
    assert before <= first["issued_at"] <= second["occurred_at"] <= after
    assert (
        envelopes.inventory_command("TEE-1", messages.commit_stock(order_id="o"))["origin"] is None
    )


# (envelope, the dict as built by hand before the builders, the same built by them). By hand,
# the gateway's InventoryCommand has no "origin" and the payments agent's PaymentResult no
# "detail": fastavro writes their defaults (null), which the builders spell out.
HAND_BUILT: list[tuple[str, dict[str, Any], Any]] = [
    (  # gateway/commands.py place_order_command
        "OrderCommand",
        {
            "command_id": "c-1",
            "order_id": "o-1",
            "issued_at": NOW,
            "payload": (
                messages.PLACE_ORDER,
                {
                    "customer_id": "ana",
                    "lines": [{"sku": "TEE-1", "quantity": 2}],
                    "payment": {"method": "card", "token": "tok_ok"},
                    "request_hash": "abc",
                },
            ),
        },
        envelopes.order_command(
            "o-1",
            messages.place_order(
                customer_id="ana",
                lines=[{"sku": "TEE-1", "quantity": 2}],
                payment=PAYMENT,
                request_hash="abc",
            ),
            command_id="c-1",
            issued_at=NOW,
        ),
    ),
    (  # gateway/commands.py restock_command
        "InventoryCommand",
        {
            "command_id": "c-1",
            "sku": "TEE-1",
            "issued_at": NOW,
            "payload": (
                messages.RESTOCK,
                {"quantity": 3, "requested_by": "bob", "role": "SELLER"},
            ),
        },
        envelopes.inventory_command(
            "TEE-1",
            messages.restock(quantity=3, requested_by="bob", role="SELLER"),
            command_id="c-1",
            issued_at=NOW,
        ),
    ),
    (  # streams/orders/agents.py inventory_command
        "InventoryCommand",
        {
            "command_id": "c-1",
            "sku": "TEE-1",
            "issued_at": NOW,
            "payload": (messages.RESERVE_STOCK, {"order_id": "o-1", "quantity": 2}),
            "origin": ORIGIN,
        },
        envelopes.inventory_command(
            "TEE-1",
            messages.reserve_stock(order_id="o-1", quantity=2),
            origin=ORIGIN,
            command_id="c-1",
            issued_at=NOW,
        ),
    ),
    (  # streams/payments/agents.py reply
        "OrderEvent",
        {
            "event_id": "e-1",
            "order_id": "o-1",
            "occurred_at": NOW,
            "payload": (messages.PAYMENT_RESULT, {"status": "AUTHORIZED", "payment_id": "p-1"}),
        },
        envelopes.order_event(
            "o-1",
            messages.payment_result(status="AUTHORIZED", payment_id="p-1", detail=None),
            event_id="e-1",
            occurred_at=NOW,
        ),
    ),
    (  # streams/payments/agents.py ask_unconfirmed_voids_again
        "PaymentCommand",
        {
            "command_id": "c-1",
            "order_id": "o-1",
            "issued_at": NOW,
            "payload": (messages.VOID_PAYMENT, {}),
        },
        envelopes.payment_command("o-1", messages.void_payment(), command_id="c-1", issued_at=NOW),
    ),
    (  # streams/carts/agents.py abandon_idle_carts
        "CartCommand",
        {
            "command_id": "c-1",
            "cart_id": "cart-1",
            "customer_id": "ana",
            "issued_at": NOW,
            "payload": (messages.ABANDON_CART, {}),
        },
        envelopes.cart_command(
            "cart-1", "ana", messages.abandon_cart(), command_id="c-1", issued_at=NOW
        ),
    ),
]


@pytest.mark.parametrize(
    ("envelope", "hand", "built"), HAND_BUILT, ids=[h["payload"][0] for _, h, _ in HAND_BUILT]
)
def test_builders_put_the_hand_built_bytes_on_the_wire(
    envelope: str, hand: dict[str, Any], built: Any
) -> None:
    codec = AvroCodec(envelope, schema_id=1)
    assert codec.encode(built) == codec.encode(hand)
