"""FastAPI dependencies, as `Annotated` aliases the routes take as parameters.

The app's long-lived parts (settings, publisher, state reader, recent orders)
live on `app.state`, put there by `gateway.main.create_app`; routes reach them
through these aliases, or, on `POST /v1/orders`, where each dependency node is a
measurable share of the request, through the plain accessors `publisher_of` and
`recent_orders`. Either way tests swap a part by setting it on `app.state`.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Header, HTTPException, Path, Request, status

from core.settings import Settings
from gateway.auth import Principal, Role, authenticate, require_roles
from gateway.commands import CommandPublisher
from gateway.models import ID_DESCRIPTION, SKU_PATTERN
from gateway.producer import CommandProducer
from gateway.state import RecentOrders, StateReads

MAX_IDEMPOTENCY_KEY_LENGTH = 64

# Every dependency here is `async def` although none awaits: FastAPI runs a plain
# `def` dependency in a worker thread, a thread hop per dependency per request
# (three on POST /v1/orders, about a fifth of the gateway's time in a profile).


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def publisher_of(request: Request) -> CommandPublisher:
    publisher: CommandPublisher = request.app.state.publisher
    return publisher


async def get_publisher(request: Request) -> CommandPublisher:
    return publisher_of(request)


async def get_producer(request: Request) -> CommandProducer:
    producer: CommandProducer = request.app.state.producer
    return producer


async def get_registry_http(request: Request) -> httpx.AsyncClient:
    """HTTP client with the schema registry as base URL (for the readiness check)."""
    client: httpx.AsyncClient = request.app.state.registry_http
    return client


async def get_state_reader(request: Request) -> StateReads:
    reader: StateReads = request.app.state.state_reader
    return reader


def recent_orders(request: Request) -> RecentOrders:
    recent: RecentOrders = request.app.state.recent_orders
    return recent


async def get_idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="1-64 characters; a retry with the same key names the same order.",
        ),
    ] = None,
) -> str:
    # 400 rather than FastAPI's 422: the header is protocol, not body validation.
    if not idempotency_key:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="Idempotency-Key header required")
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail=f"Idempotency-Key longer than {MAX_IDEMPOTENCY_KEY_LENGTH} characters",
        )
    return idempotency_key


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
PublisherDep = Annotated[CommandPublisher, Depends(get_publisher)]
ProducerDep = Annotated[CommandProducer, Depends(get_producer)]
RegistryHttpDep = Annotated[httpx.AsyncClient, Depends(get_registry_http)]
StateReaderDep = Annotated[StateReads, Depends(get_state_reader)]
IdempotencyKey = Annotated[str, Depends(get_idempotency_key)]

# Who may call: any valid token, or only some roles.
AnyRole = Annotated[Principal, Depends(authenticate)]
SellerOrAdmin = Annotated[Principal, Depends(require_roles(Role.SELLER, Role.ADMIN))]
CustomerOnly = Annotated[Principal, Depends(require_roles(Role.CUSTOMER))]
CustomerOrAdmin = Annotated[Principal, Depends(require_roles(Role.CUSTOMER, Role.ADMIN))]

SkuPath = Annotated[str, Path(pattern=SKU_PATTERN, description=ID_DESCRIPTION)]
