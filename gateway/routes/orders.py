"""Orders: place (idempotent by Idempotency-Key), read (optionally waiting), cancel.

Placing only sends a PlaceOrder command; the saga in the workers decides. The
order id is derived from the customer and the Idempotency-Key, so a retried
request names the same order, and a reused key with another body is a 409.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status

from gateway.auth import Principal
from gateway.commands import (
    cancel_order_command,
    order_id_for,
    place_order_command,
    request_hash,
)
from gateway.deps import (
    AnyRole,
    CustomerOnly,
    CustomerOrAdmin,
    IdempotencyKey,
    PublisherDep,
    RecentOrdersDep,
    StateReaderDep,
)
from gateway.models import (
    OrderAccepted,
    OrderStatus,
    OrderView,
    PlaceOrderRequest,
    error_responses,
)
from gateway.state import RecentOrder, StoredOrder
from streams.topics import ORDER_COMMANDS

router = APIRouter(prefix="/orders", tags=["orders"])

MAX_WAIT_SECONDS = 30.0
# How often a waiting GET asks the worker again.
POLL_INTERVAL_SECONDS = 0.075

OrderIdPath = Annotated[uuid.UUID, Path(description="The id returned when the order was placed")]
KEY_CONFLICT = "Idempotency-Key already used with a different request"


def may_see(principal: Principal, customer_id: str) -> bool:
    """Admins see every order; anyone else (sellers too) only orders they placed."""
    return principal.is_admin or principal.sub == customer_id


def not_found(order_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no order {order_id}")


def to_view(order: StoredOrder) -> OrderView:
    return OrderView.model_validate(order.model_dump(exclude={"request_hash"}))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Place an order (customer)",
    response_description="Accepted; the Location header is where to follow it",
    responses=error_responses(400, 401, 403, 409, 413, 502, 503),
)
async def place_order(
    principal: CustomerOnly,
    idempotency_key: IdempotencyKey,
    body: PlaceOrderRequest,
    request: Request,
    response: Response,
    reader: StateReaderDep,
    recent: RecentOrdersDep,
    publisher: PublisherDep,
) -> OrderAccepted:
    order_id = order_id_for(principal.sub, idempotency_key)
    hash_ = request_hash(body)
    # Claimed before any await, so a concurrent request with the same key and
    # another body gets its 409 here even before the worker knows the order.
    if recent.claim(order_id, RecentOrder(principal.sub, hash_)).request_hash != hash_:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=KEY_CONFLICT)
    response.headers["Location"] = request.app.url_path_for("get_order", order_id=order_id)

    existing = await reader.order(order_id)
    if existing is not None:
        if existing.request_hash != hash_:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=KEY_CONFLICT)
        return OrderAccepted(order_id=order_id, status=existing.status)

    # Not stored yet: send (again, if this is a quick retry; the saga applies a
    # PlaceOrder once per order id, so a duplicate is harmless).
    command = place_order_command(order_id, principal.sub, body, hash_)
    await publisher.publish(ORDER_COMMANDS, command)
    return OrderAccepted(order_id=order_id, status=OrderStatus.PENDING)


@router.get(
    "/{order_id}",
    name="get_order",
    summary="An order's current state, optionally waiting until it settles",
    responses=error_responses(401, 404, 502, 503),
)
async def get_order(
    order_id: OrderIdPath,
    principal: AnyRole,
    reader: StateReaderDep,
    recent: RecentOrdersDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Seconds to wait for CONFIRMED, REJECTED, EXPIRED or CANCELLED; "
            "after that the current state is returned",
        ),
    ] = 0,
) -> OrderView:
    oid = str(order_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        order = await reader.order(oid)
        remaining = deadline - loop.time()
        if order is not None:
            if not may_see(principal, order.customer_id):
                raise not_found(oid)
            if order.status.settled or remaining <= 0:
                return to_view(order)
        elif remaining <= 0:
            # Unknown to the workers. With ?wait it may still be on its way (accepted
            # by this or another gateway a moment ago), so only give up at the deadline.
            raise not_found(oid)
        await asyncio.sleep(min(POLL_INTERVAL_SECONDS, remaining))


@router.post(
    "/{order_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ask to cancel an order (its customer, admin)",
    response_description="Cancellation requested; `status` is the order's status when asked",
    responses=error_responses(401, 403, 404, 409, 502, 503),
)
async def cancel_order(
    order_id: OrderIdPath,
    principal: CustomerOrAdmin,
    reader: StateReaderDep,
    recent: RecentOrdersDep,
    publisher: PublisherDep,
) -> OrderAccepted:
    oid = str(order_id)
    order = await reader.order(oid)
    if order is None:
        # Just placed through this gateway: the cancel follows the PlaceOrder on
        # the same partition, so the saga sees them in order.
        pending = recent.get(oid)
        if pending is None or not may_see(principal, pending.customer_id):
            raise not_found(oid)
        current = OrderStatus.PENDING
    else:
        if not may_see(principal, order.customer_id):
            raise not_found(oid)
        if not order.status.cancellable:
            raise HTTPException(
                status.HTTP_409_CONFLICT, detail=f"order is {order.status}, cannot be cancelled"
            )
        current = order.status
    await publisher.publish(ORDER_COMMANDS, cancel_order_command(oid, principal.sub))
    return OrderAccepted(order_id=oid, status=current)
