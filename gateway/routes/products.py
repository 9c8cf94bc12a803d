"""Catalog entries: sellers upsert their products, anyone signed in reads them."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from gateway.auth import Principal
from gateway.commands import upsert_product_command
from gateway.deps import AnyRole, PublisherDep, SellerOrAdmin, SkuPath, StateReaderDep
from gateway.models import CommandAccepted, ProductUpsert, ProductView, error_responses
from gateway.state import StateReads
from streams.topics import INVENTORY_COMMANDS

router = APIRouter(prefix="/products", tags=["products"])


@router.put(
    "/{sku}",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Create or change a product (seller, admin)",
    responses=error_responses(401, 403, 413, 502, 503),
)
async def upsert_product(
    sku: SkuPath,
    body: ProductUpsert,
    principal: SellerOrAdmin,
    reader: StateReaderDep,
    publisher: PublisherDep,
) -> CommandAccepted:
    """Sends UpsertProduct for the sku; the token's subject becomes the seller."""
    await ensure_may_manage(principal, sku, reader)
    await publisher.publish(INVENTORY_COMMANDS, upsert_product_command(sku, body, principal.sub))
    return CommandAccepted(sku=sku)


@router.get(
    "/{sku}",
    summary="A product as the catalog has it now",
    responses=error_responses(401, 404, 502, 503),
)
async def get_product(sku: SkuPath, _: AnyRole, reader: StateReaderDep) -> ProductView:
    product = await reader.product(sku)
    if product is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no product {sku}")
    return product


async def ensure_may_manage(principal: Principal, sku: str, reader: StateReads) -> None:
    """403 unless the caller may change the sku: admins any, sellers their own or new ones.

    Best effort (a product the workers have not stored yet passes), but it keeps
    one seller from repricing or restocking another seller's catalog entry.
    """
    if principal.is_admin:
        return
    product = await reader.product(sku)
    if product is not None and product.seller_id != principal.sub:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail=f"sku {sku} belongs to another seller"
        )
