"""The inventory agent: one sku's catalog entry and stock, on the sku's partition.

Thin: decode, look up, call the rule, store, reply to the order saga, publish.
Upserts and restocks carry who sent them; the rules decide whether that seller
(or admin) may, and a refusal goes to the requester's rejections log.
"""

from __future__ import annotations

import logging
from typing import Any

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
from streams import sending
from streams.channels import channel
from streams.dead_letters import handle_event
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
from tables.inventory import catalog, inventory

log = logging.getLogger(__name__)


@app.agent(channel(INVENTORY_COMMANDS))
async def process_inventory_commands(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        await handle_event(event, apply_inventory_command)


async def apply_inventory_command(key: str, command: dict[str, Any]) -> None:
    sku = command["sku"]
    if key != sku:
        raise RuleError(f"inventory command for sku {sku!r} arrived under key {key!r}")
    kind, payload = command["payload"]
    origin = origin_from_record(command.get("origin"))
    table_key = sku
    before = stock_from_state(sku, inventory.get(table_key))
    product = product_from_state(catalog.get(table_key))
    now = sending.now()

    match kind:
        case "momentum.UpsertProduct":
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
            await sending.publish(PRODUCTS, sku, product_to_state(product, now))
            catalog[table_key] = product_to_state(product, now)
            after = rules.set_threshold(before, payload["low_stock_threshold"])
        case "momentum.Restock":
            requester = rules.Requester(payload["requested_by"], payload["role"] == "ADMIN")
            refused = rules.authorize_restock(product, requester)
            if refused is not None:
                await reject(command, CommandKind.RESTOCK, requester, refused.reason)
                return
            after = rules.restock(before, command["command_id"], payload["quantity"])
        case "momentum.ReserveStock":
            order_id = payload["order_id"]
            after, decision = rules.decide_reservation(
                before, product, order_id, payload["quantity"], origin
            )
            await reply_to_order(order_id, sku, decision)
        case "momentum.ReleaseStock":
            after = rules.release(before, payload["order_id"], origin)
        case "momentum.CommitStock":
            after = rules.commit(before, payload["order_id"], origin)
        case "momentum.ReturnStock":
            after = rules.return_stock(before, payload["order_id"], payload["quantity"], origin)
        case _:
            raise RuleError(f"unknown inventory command {kind}")

    creates = kind in ("momentum.UpsertProduct", "momentum.Restock") and table_key not in inventory
    # The public record only when a figure moved (a step may change only `applied`).
    # Sent before the state is stored, as in the order saga (streams.orders.agents).
    if levels(after) != levels(before) or creates:
        await sending.publish(INVENTORY, sku, inventory_record(after, now))
        if rules.crossed_low_stock(before, after):
            await sending.send(
                STOCK_ALERTS,
                sku,
                {
                    "sku": sku,
                    "seller_id": product.seller_id if product else None,
                    "available": after.available,
                    "threshold": after.low_stock_threshold,
                    "occurred_at": now,
                },
            )
    if after != before or creates:
        inventory[table_key] = stock_to_state(after, now)


def levels(stock: rules.Stock) -> tuple[int, int, int]:
    return stock.on_hand, stock.reserved, stock.low_stock_threshold


async def reject(
    command: dict[str, Any],
    kind: CommandKind,
    requester: rules.Requester,
    reason: RejectionReason,
) -> None:
    await send_rejection(command["command_id"], kind, command["sku"], requester.id, reason)


async def reply_to_order(order_id: str, sku: str, decision: rules.Reservation) -> None:
    if isinstance(decision, rules.Granted):
        payload: tuple[str, dict[str, Any]] = (
            "momentum.StockReserved",
            {
                "sku": sku,
                "quantity": decision.quantity,
                "unit_price": decision.unit_price,
                "currency": decision.currency,
            },
        )
    else:
        payload = ("momentum.StockRejected", {"sku": sku, "reason": decision.reason.value})
    await sending.send(
        ORDER_EVENTS,
        order_id,
        {
            "event_id": sending.new_id(),
            "order_id": order_id,
            "occurred_at": sending.now(),
            "payload": payload,
        },
    )
