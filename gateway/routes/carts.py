"""Carts (customers only): set and remove lines, read the cart, check it out as an order.

Writes send CartCommands and ask no worker, so they are accepted while workers
restart; the cart agent decides. A cart belongs to the customer whose first
line created it: the cart rule refuses another customer's commands, and
commands a cart cannot take (closed, empty at checkout, full), and records the
refusal for the caller (`GET /v1/rejections`). Another customer's cart reads as
a 404.

Checkout happens once per cart. The order id is derived from the cart id, so
every retry, with any Idempotency-Key, names the same order. The
Idempotency-Key header is still required, as for `POST /v1/orders`, so clients
retry both the same way.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response, status

from core.topics import CART_COMMANDS
from gateway.auth import Principal
from gateway.commands import CommandPublisher, request_hash
from gateway.deps import (
    CustomerOnly,
    IdempotencyKey,
    PublisherDep,
    SkuPath,
    StateReaderDep,
)
from gateway.models import (
    CART_ID_PATTERN,
    ID_DESCRIPTION,
    CartCommandAccepted,
    CartItemUpdate,
    CartView,
    CheckoutAccepted,
    CheckoutRequest,
    error_responses,
)
from gateway.routes.orders import order_location
from gateway.state import StateReads
from schemas import messages
from schemas.envelopes import cart_command
from schemas.messages import CartCommand

router = APIRouter(prefix="/carts", tags=["carts"])

CartIdPath = Annotated[str, Path(pattern=CART_ID_PATTERN, description=ID_DESCRIPTION)]


class StoredCart(CartView):
    """A cart as the worker returns it, with the order it became (if any)."""

    order_id: str | None = None


# Apart from the placed-order namespace, so no customer name can produce a cart's order id.
CART_ORDER_ID_NAMESPACE = uuid.UUID("3f5c2a9e-7d41-5b08-a6e3-1c9d4b2e8f70")


def cart_order_id(cart_id: str) -> str:
    """The one order a cart can become: every checkout retry names it."""
    return str(uuid.uuid5(CART_ORDER_ID_NAMESPACE, cart_id))


def not_found(cart_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no cart {cart_id}")


async def read_own_cart(
    principal: Principal, cart_id: str, reader: StateReads
) -> StoredCart | None:
    """The caller's cart, None if the workers do not know it; 404 if it is someone else's."""
    cart = await reader.read("carts", cart_id, StoredCart)
    if cart is None:
        return None
    if cart.customer_id != principal.sub:
        raise not_found(cart_id)
    return cart


async def send(publisher: CommandPublisher, command: CartCommand) -> CartCommandAccepted:
    await publisher.publish(CART_COMMANDS, command)
    return CartCommandAccepted(cart_id=command["cart_id"], command_id=command["command_id"])


@router.put(
    "/{cart_id}/items/{sku}",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Set a line's quantity, creating the cart if needed (customer)",
    responses=error_responses(401, 403, 413, 503),
)
async def set_cart_item(
    cart_id: CartIdPath,
    sku: SkuPath,
    body: CartItemUpdate,
    principal: CustomerOnly,
    publisher: PublisherDep,
) -> CartCommandAccepted:
    payload = messages.set_cart_line(sku=sku, quantity=body.quantity)
    return await send(publisher, cart_command(cart_id, principal.sub, payload))


@router.delete(
    "/{cart_id}/items/{sku}",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Remove a line (customer)",
    responses=error_responses(401, 403, 503),
)
async def remove_cart_item(
    cart_id: CartIdPath,
    sku: SkuPath,
    principal: CustomerOnly,
    publisher: PublisherDep,
) -> CartCommandAccepted:
    payload = messages.remove_cart_line(sku=sku)
    return await send(publisher, cart_command(cart_id, principal.sub, payload))


@router.get(
    "/{cart_id}",
    name="get_cart",
    summary="A cart's current lines and status (its customer)",
    responses=error_responses(401, 403, 404, 502, 503),
)
async def get_cart(
    cart_id: CartIdPath, principal: CustomerOnly, reader: StateReaderDep
) -> CartView:
    cart = await read_own_cart(principal, cart_id, reader)
    if cart is None:
        raise not_found(cart_id)
    return CartView.model_validate(cart.model_dump(exclude={"order_id"}))


@router.post(
    "/{cart_id}/checkout",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Check the cart out as an order, once (customer)",
    response_description="Accepted; the Location header is the order to follow",
    responses=error_responses(400, 401, 403, 413, 503),
)
async def checkout_cart(
    cart_id: CartIdPath,
    principal: CustomerOnly,
    idempotency_key: IdempotencyKey,  # checked (400), but the cart id names the order
    body: CheckoutRequest,
    request: Request,
    response: Response,
    publisher: PublisherDep,
) -> CheckoutAccepted:
    order_id = cart_order_id(cart_id)
    response.headers["Location"] = order_location(request.app, order_id)
    payload = messages.checkout_cart(
        order_id=order_id,
        payment={"method": body.payment.method, "token": body.payment.token},
        request_hash=request_hash(body),
    )
    command = cart_command(cart_id, principal.sub, payload)
    await publisher.publish(CART_COMMANDS, command)
    return CheckoutAccepted(order_id=order_id, command_id=command["command_id"])
