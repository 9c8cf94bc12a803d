"""Stock per sku: sellers restock, anyone signed in reads on hand, reserved, available."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from gateway.commands import restock_command
from gateway.deps import AnyRole, PublisherDep, SellerOrAdmin, SkuPath, StateReaderDep
from gateway.models import CommandAccepted, InventoryView, Restock, error_responses
from gateway.routes.products import ensure_may_manage
from streams.topics import INVENTORY_COMMANDS

router = APIRouter(prefix="/inventory", tags=["inventory"])


@router.post(
    "/{sku}/restock",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Add stock to a sku (seller, admin)",
    responses=error_responses(401, 403, 413, 502, 503),
)
async def restock(
    sku: SkuPath,
    body: Restock,
    principal: SellerOrAdmin,
    reader: StateReaderDep,
    publisher: PublisherDep,
) -> CommandAccepted:
    await ensure_may_manage(principal, sku, reader)
    await publisher.publish(INVENTORY_COMMANDS, restock_command(sku, body.quantity))
    return CommandAccepted(sku=sku)


@router.get(
    "/{sku}",
    summary="Stock of a sku now",
    responses=error_responses(401, 404, 502, 503),
)
async def get_inventory(sku: SkuPath, _: AnyRole, reader: StateReaderDep) -> InventoryView:
    stock = await reader.inventory(sku)
    if stock is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no stock record for {sku}")
    return stock
