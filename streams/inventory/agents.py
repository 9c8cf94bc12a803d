"""The inventory agent: one sku's catalog entry and stock, on the sku's partition.

Thin: decode, look up, call the rule, store, reply to the order saga, publish.
Upserts and restocks carry who sent them; the rules decide whether that seller
(or admin) may, and a refusal goes to the requester's rejections log.
"""

from __future__ import annotations

import logging
from datetime import datetime

import faust

from core.app import app
from core.errors import RuleError
from core.topics import (
    INVENTORY,
    INVENTORY_COMMANDS,
    ORDER_EVENTS,
    PRODUCTS,
    STOCK_ALERTS,
)
from schemas import envelopes, messages
from streams import metrics, sending
from streams.channels import channel
from streams.inventory import rules
from streams.inventory.records import (
    inventory_record,
    origin_from_record,
    product_from_state,
    product_to_state,
    stock_from_state,
    stock_to_state,
)
from streams.rejections.agents import send_rejection
from streams.rejections.rules import CommandKind, Reject, RejectionReason
from streams.steps import check_key, consume, send_then_store
from tables.inventory import catalog, inventory

log = logging.getLogger(__name__)


@app.agent(channel(INVENTORY_COMMANDS))
async def process_inventory_commands(stream: faust.StreamT[bytes]) -> None:
    await consume(stream, apply_inventory_command)


async def apply_inventory_command(key: str, command: messages.InventoryCommand) -> None:
    sku = command["sku"]
    check_key(key, sku, "inventory command for sku")
    origin = origin_from_record(command.get("origin"))
    table_key = sku
    before = stock_from_state(sku, inventory.get(table_key))
    product = product_from_state(catalog.get(table_key))
    now = sending.now()

    # Only a catalog command may create the sku's stock row.
    creates = False
    match command["payload"]:
        case (messages.UPSERT_PRODUCT, payload):
            requester = rules.Requester(payload["seller_id"], payload["role"] == "ADMIN")
            decided = rules.decide_upsert(
                product,
                requester,
                sku=sku,
                name=payload["name"],
                price=payload["price"],
                currency=payload["currency"],
                transfer_to=payload["transfer_to"],
            )
            if isinstance(decided, Reject):
                await reject(command, CommandKind.UPSERT_PRODUCT, requester, decided.reason)
                return
            product = decided
            entry = product_to_state(product, now)
            await send_then_store(sending.publish(PRODUCTS, sku, entry), catalog, table_key, entry)
            creates = table_key not in inventory
            after = rules.set_threshold(before, payload["low_stock_threshold"])
        case (messages.RESTOCK, payload):
            requester = rules.Requester(payload["requested_by"], payload["role"] == "ADMIN")
            refused = rules.authorize_restock(product, requester)
            if refused is not None:
                await reject(command, CommandKind.RESTOCK, requester, refused.reason)
                return
            creates = table_key not in inventory
            after = rules.restock(before, command["command_id"], payload["quantity"])
        case (messages.RESERVE_STOCK, payload):
            order_id = payload["order_id"]
            after, decision = rules.decide_reservation(
                before, product, order_id, payload["quantity"], origin
            )
            await reply_to_order(order_id, sku, decision)
            count_reservation(decision)
        case (messages.RELEASE_STOCK, payload):
            after = rules.release(before, payload["order_id"], origin)
        case (messages.COMMIT_STOCK, payload):
            after = rules.commit(before, payload["order_id"], origin)
        case (messages.RETURN_STOCK, payload):
            after = rules.return_stock(before, payload["order_id"], payload["quantity"], origin)
        case (kind, _):
            raise RuleError(f"unknown inventory command {kind}")

    # Sent before the state is stored, as in the order saga (streams.orders.agents).
    if after != before or creates:
        sends = publish_levels(before, after, product, now, moved=creates)
        await send_then_store(sends, inventory, table_key, stock_to_state(after, now))


async def publish_levels(
    before: rules.Stock,
    after: rules.Stock,
    product: rules.Product | None,
    now: datetime,
    *,
    moved: bool,
) -> None:
    """The public record only when a figure moved (a step may change only `applied`), and
    the low-stock alert when availability fell below the threshold."""
    if levels(after) == levels(before) and not moved:
        return
    sku = after.sku
    await sending.publish(INVENTORY, sku, inventory_record(after, now))
    if rules.crossed_low_stock(before, after):
        alert: messages.StockAlert = {
            "sku": sku,
            "seller_id": product.seller_id if product else None,
            "available": after.available,
            "threshold": after.low_stock_threshold,
            "occurred_at": now,
        }
        await sending.send(STOCK_ALERTS, sku, alert)


def count_reservation(decision: rules.Reservation) -> None:
    if isinstance(decision, rules.Granted):
        metrics.RESERVATIONS.labels(outcome="granted", reason="").inc()
    else:
        metrics.RESERVATIONS.labels(outcome="rejected", reason=decision.reason.value).inc()


def levels(stock: rules.Stock) -> tuple[int, int, int]:
    return stock.on_hand, stock.reserved, stock.low_stock_threshold


async def reject(
    command: messages.InventoryCommand,
    kind: CommandKind,
    requester: rules.Requester,
    reason: RejectionReason,
) -> None:
    await send_rejection(command["command_id"], kind, command["sku"], requester.id, reason)


async def reply_to_order(order_id: str, sku: str, decision: rules.Reservation) -> None:
    payload: messages.OrderEventPayload
    if isinstance(decision, rules.Granted):
        payload = messages.stock_reserved(
            sku=sku,
            quantity=decision.quantity,
            unit_price=decision.unit_price,
            currency=decision.currency,
        )
    else:
        payload = messages.stock_rejected(sku=sku, reason=decision.reason.value)
    await sending.send(ORDER_EVENTS, order_id, envelopes.order_event(order_id, payload))
