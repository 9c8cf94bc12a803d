"""The carts flow's web view: a cart's live state, for the gateway."""

from __future__ import annotations

from faust.web import Request, Response, View

from core.app import app
from streams.carts.records import cart_from_state, cart_view
from streams.web import found
from tables.carts import carts


@app.page("/carts/{cart_id}/")
@app.table_route(table=carts.table, match_info="cart_id")
async def get_cart(web: View, request: Request, cart_id: str) -> Response:
    cart = cart_from_state(carts.get(cart_id))
    return found(web, cart_view(cart) if cart is not None else None, f"cart {cart_id}")
