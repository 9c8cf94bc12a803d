"""The inventory flow's web views: a sku's stock and its catalog entry, for the gateway."""

from __future__ import annotations

from faust.web import Request, Response, View

from core.app import app
from streams.inventory.records import (
    inventory_view,
    product_from_state,
    product_view,
    stock_from_state,
)
from streams.web import found
from tables.inventory import catalog, inventory


@app.page("/inventory/{sku}/")
@app.table_route(table=inventory.table, match_info="sku")
async def get_inventory(web: View, request: Request, sku: str) -> Response:
    record = inventory.get(sku)
    view = inventory_view(stock_from_state(sku, record)) if record is not None else None
    return found(web, view, f"sku {sku}")


@app.page("/products/{sku}/")
@app.table_route(table=catalog.table, match_info="sku")
async def get_product(web: View, request: Request, sku: str) -> Response:
    product = product_from_state(catalog.get(sku))
    return found(web, product_view(product) if product is not None else None, f"product {sku}")
