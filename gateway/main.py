"""The gateway's FastAPI app: HTTP commands in, Avro commands to Kafka, reads from workers.

`create_app` wires one app from settings and (for tests) injected parts;
`app` is the module-level instance for `uvicorn gateway.main:app`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import httpx
from fastapi import APIRouter, FastAPI, Request, status
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import InsecureSecret, require_secret
from gateway.commands import CommandPublisher, RegistryUnavailable
from gateway.producer import CommandProducer, KafkaCommandProducer, ProducerUnavailable
from gateway.ratelimit import RateLimitMiddleware
from gateway.routes import carts, health, inventory, orders, products, rejections
from gateway.state import RecentOrders, StateReader, StateReads, WorkerUnavailable
from schemas.registry import SchemaRegistryClient
from schemas.serdes import Serdes
from streams.settings import Settings, get_settings

log = logging.getLogger(__name__)

API_PREFIX = "/v1"
# A restarting worker is back, or Kafka's leader moved, within seconds.
RETRY_AFTER_SECONDS = "1"
# Every resource router under /v1.
V1_ROUTERS: tuple[APIRouter, ...] = (
    products.router,
    inventory.router,
    orders.router,
    carts.router,
    rejections.router,
)

TITLE = "Momentum gateway"
DESCRIPTION = """\
HTTP ingress of Momentum, the order pipeline of a multi-seller marketplace.

Writes are commands: they are validated, sent to Kafka and answered with
`202 Accepted`, also while workers restart; the stream workers decide what
happens, and a command they refuse is listed at `GET /v1/rejections`. Reads are
the workers' live state (503 with `Retry-After` while no worker answers).
Every `/v1` route needs `Authorization: Bearer <JWT>` (HS256, claims `sub`,
`role` = customer, seller or admin, and `exp`). Errors are `{"detail": ...}`.
"""


def _version() -> str:
    try:
        return version("momentum")
    except PackageNotFoundError:
        return "0.0.0"


class BodySizeLimit:
    """413 for bodies over `max_bytes`, by Content-Length or as the body streams in.

    The body is read here, up to the limit, before the app sees it; the limits
    are small (tens of KiB), so buffering costs nothing and no route can forget
    the check.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                pending: Message = message  # the client left; let the app see it
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                pending = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                break

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return pending
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {self.max_bytes} bytes"},
            status_code=413,
        )
        await response(scope, receive, send)


def _install_error_handlers(app: FastAPI) -> None:
    # Parts that are away are the client's 503 (or 502 for nonsense), never a 500.
    # Only reads meet a missing worker; commands meet only Kafka and the registry.
    async def worker_unavailable(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WorkerUnavailable)
        if exc.malformed:
            return JSONResponse({"detail": exc.detail}, status_code=status.HTTP_502_BAD_GATEWAY)
        return JSONResponse(
            {"detail": exc.detail},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )

    async def dependency_unavailable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )

    app.add_exception_handler(WorkerUnavailable, worker_unavailable)
    app.add_exception_handler(ProducerUnavailable, dependency_unavailable)
    app.add_exception_handler(RegistryUnavailable, dependency_unavailable)


def create_app(
    settings: Settings | None = None,
    producer: CommandProducer | None = None,
    state_reader: StateReads | None = None,
    *,
    serdes: Serdes | None = None,
) -> FastAPI:
    """One gateway app. Injected parts are used as given (tests); the rest from settings.

    The app starts and stops whatever it is given in its lifespan.
    """
    settings = settings or get_settings()
    producer = producer or KafkaCommandProducer(settings.bootstrap_list)
    reader = state_reader or StateReader(settings.worker_url)
    registry_client = None
    if serdes is None:
        registry_client = SchemaRegistryClient(settings.schema_registry_url)
        serdes = Serdes(registry_client)
    publisher = CommandPublisher(serdes, producer)
    registry_http = httpx.AsyncClient(base_url=settings.schema_registry_url, timeout=2.0)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # No tokens without a strong secret: refuse to start, saying why.
        try:
            require_secret(settings.jwt_secret)
        except InsecureSecret as exc:
            log.critical("the gateway cannot start: %s", exc)
            raise
        # Neither Kafka nor the registry has to be up for the gateway to start:
        # /ready says what is missing, and requests answer 503 until it is back.
        await producer.start()
        try:
            await publisher.prepare()
        except RegistryUnavailable as exc:
            log.warning("command schemas not registered yet: %s", exc)
        try:
            yield
        finally:
            await producer.stop()
            await reader.aclose()
            await registry_http.aclose()
            if registry_client is not None:
                registry_client.close()

    app = FastAPI(title=TITLE, description=DESCRIPTION, version=_version(), lifespan=lifespan)
    app.state.settings = settings
    app.state.producer = producer
    app.state.publisher = publisher
    app.state.state_reader = reader
    app.state.recent_orders = RecentOrders()
    app.state.registry_http = registry_http

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Added last, so outermost: a flood is refused before any body is read.
    app.add_middleware(RateLimitMiddleware, settings=settings)
    _install_error_handlers(app)
    app.include_router(health.router)
    for router in V1_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    return app


app = create_app()
