"""Catalog entries: sellers upsert their products, anyone signed in reads them.

An upsert asks no worker: the inventory agent, which holds the product, decides
whether the caller may (the first seller to create a sku owns it; only that
seller or an admin may change it; an admin keeps the owner unless the body names
another `seller_id`). A refusal is recorded for the caller (`GET /v1/rejections`).
Here only the token's role is checked, and that a seller names no other seller.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from core.topics import INVENTORY_COMMANDS
from gateway.commands import upsert_product_command
from gateway.deps import AnyRole, PublisherDep, SellerOrAdmin, SkuPath, StateReaderDep
from gateway.models import CommandAccepted, ProductUpsert, ProductView, error_responses

router = APIRouter(prefix="/products", tags=["products"])


@router.put(
    "/{sku}",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Create or change a product (seller, admin)",
    responses=error_responses(401, 403, 413, 503),
)
async def upsert_product(
    sku: SkuPath,
    body: ProductUpsert,
    principal: SellerOrAdmin,
    publisher: PublisherDep,
) -> CommandAccepted:
    """Sends UpsertProduct for the sku, from the token's subject."""
    if body.seller_id not in (None, principal.sub) and not principal.is_admin:
        # A fast path only: the inventory agent refuses it too (TRANSFER_NOT_ALLOWED).
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail="only an admin may name a product's seller"
        )
    command = upsert_product_command(sku, body, principal)
    await publisher.publish(INVENTORY_COMMANDS, command)
    return CommandAccepted(sku=sku, command_id=command["command_id"])


@router.get(
    "/{sku}",
    summary="A product as the catalog has it now",
    responses=error_responses(401, 404, 502, 503),
)
async def get_product(sku: SkuPath, _: AnyRole, reader: StateReaderDep) -> ProductView:
    product = await reader.read("products", sku, ProductView)
    if product is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no product {sku}")
    return product
