"""Stock per sku: sellers restock, anyone signed in reads on hand, reserved, available.

A restock asks no worker: the inventory agent takes it only for an existing
product, from its seller or an admin, and records a refusal for the caller
(`GET /v1/rejections`).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from core.topics import INVENTORY_COMMANDS
from gateway.commands import restock_command
from gateway.deps import AnyRole, PublisherDep, SellerOrAdmin, SkuPath, StateReaderDep
from gateway.models import CommandAccepted, InventoryView, Restock, error_responses

router = APIRouter(prefix="/inventory", tags=["inventory"])


@router.post(
    "/{sku}/restock",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Add stock to a sku (its seller, admin)",
    responses=error_responses(401, 403, 413, 503),
)
async def restock(
    sku: SkuPath,
    body: Restock,
    principal: SellerOrAdmin,
    publisher: PublisherDep,
) -> CommandAccepted:
    command = restock_command(sku, body.quantity, principal)
    await publisher.publish(INVENTORY_COMMANDS, command)
    return CommandAccepted(sku=sku, command_id=command["command_id"])


@router.get(
    "/{sku}",
    summary="Stock of a sku now",
    responses=error_responses(401, 404, 502, 503),
)
async def get_inventory(sku: SkuPath, _: AnyRole, reader: StateReaderDep) -> InventoryView:
    stock = await reader.read("inventory", sku, InventoryView)
    if stock is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no stock record for {sku}")
    return stock
