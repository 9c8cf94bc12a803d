"""Orders: place (idempotent by Idempotency-Key), read (optionally waiting), cancel.

Placing and cancelling only send a command: no worker is asked, so both are
accepted whenever Kafka takes the command, also while workers restart. The
saga decides: it keeps the first PlaceOrder per order id and refuses one with
another body, and it cancels only for the order's customer or an admin; a
refusal is recorded for the requester (`GET /v1/rejections`). The order id is
derived from the customer and the Idempotency-Key, so a retried request names
the same order; a reused key with another body is a 409 when this process
still remembers the first request, and otherwise refused by the saga.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from starlette.applications import Starlette

from core.topics import ORDER_COMMANDS
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
    StateReaderDep,
    publisher_of,
    recent_orders,
)
from gateway.models import (
    CancelAccepted,
    OrderAccepted,
    OrderView,
    PlaceOrderRequest,
    error_responses,
)
from gateway.state import RecentOrder, StoredOrder
from streams.orders.rules import SETTLED, Status

router = APIRouter(prefix="/orders", tags=["orders"])

MAX_WAIT_SECONDS = 30.0
# A waiting GET asks the worker to hold the read until the order settles, at most
# this long at a time: if the order's partition moves to another worker meanwhile,
# the next slice's read finds it there (streams.orders.views).
WORKER_WAIT_SLICE_SECONDS = 1.0
# How soon a waiting GET asks again when the worker answered at once.
POLL_INTERVAL_SECONDS = 0.075

OrderIdPath = Annotated[uuid.UUID, Path(description="The id returned when the order was placed")]
KEY_CONFLICT = "Idempotency-Key already used with a different request"


def may_see(principal: Principal, customer_id: str) -> bool:
    """Admins see every order; anyone else (sellers too) only orders they placed."""
    return principal.is_admin or principal.sub == customer_id


def not_found(order_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no order {order_id}")


# What `url_path_for` puts where the order id goes; no id has this shape.
_ORDER_ID_SLOT = "{order_id}"


@functools.cache
def _order_path_template(app: Starlette) -> str:
    # Starlette finds a route by name by trying every route in turn (raising and
    # catching NoMatchFound on the way): 8% of a POST in a profile. The path is
    # the same for every order, so it is looked up once per app.
    return app.url_path_for("get_order", order_id=_ORDER_ID_SLOT)


def order_location(app: Starlette, order_id: str) -> str:
    """The path of `GET` for `order_id` in `app` (the Location of an accepted order)."""
    return _order_path_template(app).replace(_ORDER_ID_SLOT, order_id)


def to_view(order: StoredOrder) -> OrderView:
    return OrderView.model_validate(order.model_dump(exclude={"request_hash"}))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Place an order (customer)",
    response_description="Accepted; the Location header is where to follow it",
    responses=error_responses(400, 401, 403, 409, 413, 503),
)
async def place_order(
    principal: CustomerOnly,
    idempotency_key: IdempotencyKey,
    body: PlaceOrderRequest,
    request: Request,
    response: Response,
) -> OrderAccepted:
    """Sends PlaceOrder; `status` is PENDING (accepted), the Location says what became of it."""
    # The hottest route reads the app's parts directly: a dependency per part is a
    # node FastAPI solves per request (gateway.deps).
    recent, publisher = recent_orders(request), publisher_of(request)
    order_id = order_id_for(principal.sub, idempotency_key)
    hash_ = request_hash(body)
    # Claimed before any await, so a concurrent request with the same key and
    # another body gets its 409 here even before the worker knows the order.
    if recent.claim(order_id, RecentOrder(principal.sub, hash_)).request_hash != hash_:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=KEY_CONFLICT)
    response.headers["Location"] = order_location(request.app, order_id)
    # Sent every time, retries too: the saga applies the first PlaceOrder per order
    # id, ignores the same one again and refuses one with another body.
    command = place_order_command(order_id, principal.sub, body, hash_)
    await publisher.publish(ORDER_COMMANDS, command)
    return OrderAccepted(order_id=order_id, status=Status.PENDING, command_id=command["command_id"])


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
        # The worker holds the read until the order settles, a slice at a time.
        held = min(WORKER_WAIT_SLICE_SECONDS, max(0.0, deadline - loop.time()))
        asked = loop.time()
        order = await reader.read("orders", oid, StoredOrder, wait=held)
        remaining = deadline - loop.time()
        if order is not None:
            if not may_see(principal, order.customer_id):
                raise not_found(oid)
            if order.status in SETTLED or remaining <= 0:
                return to_view(order)
        elif remaining <= 0:
            # Unknown to the workers. With ?wait it may still be on its way (accepted
            # by this or another gateway a moment ago), so only give up at the deadline.
            raise not_found(oid)
        if loop.time() - asked < held / 2:
            # Answered unsettled without holding the read (an unknown order, or a worker
            # that does not hold): ask again after a poll interval.
            await asyncio.sleep(min(POLL_INTERVAL_SECONDS, remaining))


@router.post(
    "/{order_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ask to cancel an order (its customer, admin)",
    response_description="Cancellation requested; the saga decides, a refusal is recorded "
    "for the caller at /v1/rejections (UNKNOWN_ORDER, ORDER_NOT_CANCELLABLE)",
    responses=error_responses(401, 403, 503),
)
async def cancel_order(
    order_id: OrderIdPath,
    principal: CustomerOrAdmin,
    publisher: PublisherDep,
) -> CancelAccepted:
    oid = str(order_id)
    # Who may cancel is decided by the saga, from the order it holds: the command
    # says who asks. An order of someone else is refused as if it did not exist.
    command = cancel_order_command(oid, principal)
    await publisher.publish(ORDER_COMMANDS, command)
    return CancelAccepted(order_id=oid, command_id=command["command_id"])
