"""The gateway's FastAPI app: HTTP commands in, Avro commands to Kafka, reads from workers.

`create_app` wires one app from settings and (for tests) injected parts;
`app` is the module-level instance for `uvicorn gateway.main:app`.
"""

from __future__ import annotations

import email.message
import json
import logging
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx
from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import tracing
from core.http_observe import NATIVE_TELEMETRY_OFF, observe_requests
from core.kafka_clients import aiokafka_config, registry_auth
from core.observe import configure_logging
from core.settings import Settings, get_settings
from gateway.auth import InsecureSecret, require_secret
from gateway.commands import CommandPublisher
from gateway.metrics import gateway_metrics
from gateway.producer import CommandProducer, KafkaCommandProducer, ProducerUnavailable
from gateway.ratelimit import RateLimitMiddleware
from gateway.routes import ROOT_ROUTERS, ROUTERS
from gateway.state import RecentOrders, StateReader, StateReads, WorkerUnavailable
from schemas.errors import RegistryUnavailable
from schemas.registry import SchemaRegistryClient
from schemas.serdes import Serdes

log = logging.getLogger(__name__)

API_PREFIX = "/v1"
# A restarting worker is back, or Kafka's leader moved, within seconds.
RETRY_AFTER_SECONDS = "1"

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


class UnacceptableNumber(ValueError):
    """A number Python's json module reads but that is no JSON number, or fits no field."""


# Longer integers are beyond every field's range; Python refuses to convert
# integers of more than 4300 digits anyway (and would answer a bare 400).
MAX_INTEGER_DIGITS = 100


def _refuse_constant(name: str) -> Any:
    raise UnacceptableNumber(f"{name} is not a JSON number; send a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnacceptableNumber(f"{text} is out of range; send a finite number")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise UnacceptableNumber(f"an integer of {len(text)} digits is out of range")
    return int(text)


_MAY_HOLD_BAD_NUMBER = re.compile(rb"NaN|Infinity|\d[eE]|\d{%d}" % (MAX_INTEGER_DIGITS + 1))


def number_problem(body: bytes) -> str | None:
    """Why `body` holds a number no field accepts (NaN, Infinity, 1e400, ...); None if none.

    Python's `json.loads`, which FastAPI uses, reads unquoted `NaN`, `Infinity` and
    `-Infinity`, and `1e400` as infinity; JSON has none of them. Malformed JSON is
    not judged here: FastAPI answers it.
    """
    # A body none of whose bytes could start such a number needs no second parse:
    # a NaN or infinity constant is spelled out, an infinite float has an exponent
    # or more than 308 digits, a refused integer more than MAX_INTEGER_DIGITS.
    if _MAY_HOLD_BAD_NUMBER.search(body) is None:
        return None
    try:
        json.loads(
            body, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int
        )
    except UnacceptableNumber as exc:
        return str(exc)
    except (ValueError, RecursionError):
        return None
    return None


def _read_as_json(scope: Scope) -> bool:
    """Whether FastAPI parses this request's body as JSON (its own rule)."""
    content_type = dict(scope["headers"]).get(b"content-type")
    # The usual answers, without parsing the header as a MIME message each time.
    if content_type is None or content_type == b"application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type.decode("latin-1")
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class StrictJsonNumbers:
    """422 with a reason for JSON bodies holding NaN, Infinity or out-of-range numbers.

    Left to the routes, such a number reaches validation as a float NaN or
    infinity, and the 422 that echoes it cannot be written as JSON: the client
    got a 500 and a reset connection. Sits inside `BodySizeLimit`, so the body
    is bounded and arrives in one message.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _read_as_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                pending: Message = message
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                pending = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                break
        body = pending.get("body", b"")
        problem = number_problem(body) if body else None
        if problem is not None:
            error = {"type": "json_invalid", "loc": ["body"], "msg": problem, "input": None}
            response = JSONResponse({"detail": [error]}, status_code=422)
            await response(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return pending
            return await receive()

        await self.app(scope, replay, send)


def _finite(value: Any) -> Any:
    """`value` with every float that JSON cannot write (NaN, infinities) as a string."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


RETRY_AFTER = {"Retry-After": RETRY_AFTER_SECONDS}

# What a client is told; where the part lives (URLs, addresses) goes to the log only.
WORKER_UNAVAILABLE = "live state unavailable: no worker answered; retry later"
WORKER_MALFORMED = "a worker answered with an unexpected body"


def unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE, headers=RETRY_AFTER
    )


def _install_error_handlers(app: FastAPI) -> None:
    # Parts that are away are the client's 503 (or 502 for nonsense), never a 500.
    async def worker_unavailable(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WorkerUnavailable)
        log.warning("%s %s: %s", request.method, request.url.path, exc.detail)
        if exc.malformed:
            return JSONResponse(
                {"detail": WORKER_MALFORMED}, status_code=status.HTTP_502_BAD_GATEWAY
            )
        return unavailable(WORKER_UNAVAILABLE)

    async def kafka_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return unavailable("Kafka unavailable: the command was not accepted; retry later")

    async def registry_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return unavailable("schema registry unavailable: the command was not sent; retry later")

    async def invalid_request(_: Request, exc: Exception) -> JSONResponse:
        # FastAPI's own handler, except that an echoed NaN or infinity is written as a
        # string: JSON has no such numbers, and failing to encode one was a 500.
        assert isinstance(exc, RequestValidationError)
        return JSONResponse(
            {"detail": jsonable_encoder(_finite(exc.errors()))},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    app.add_exception_handler(WorkerUnavailable, worker_unavailable)
    app.add_exception_handler(ProducerUnavailable, kafka_unavailable)
    app.add_exception_handler(RegistryUnavailable, registry_unavailable)
    app.add_exception_handler(RequestValidationError, invalid_request)


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
    producer = producer or KafkaCommandProducer(
        settings.bootstrap_list, security=aiokafka_config(settings)
    )
    reader = state_reader or StateReader(settings.worker_url)
    registry_client = None
    if serdes is None:
        registry_client = SchemaRegistryClient(
            settings.schema_registry_url, auth=registry_auth(settings)
        )
        serdes = Serdes(registry_client)
    metrics = gateway_metrics()
    publisher = CommandPublisher(serdes, producer, sent=metrics.commands)
    registry_http = httpx.AsyncClient(
        base_url=settings.schema_registry_url, timeout=2.0, auth=registry_auth(settings)
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.log_format == "json":
            # Served by a bare `uvicorn gateway.main:app` (compose), uvicorn's own text
            # set-up is in place: JSON lines from here on (core.observe).
            configure_logging("INFO", "json")
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

    # Spans per request when an OTLP endpoint is set (core.tracing); off by default.
    tracing.setup("momentum-gateway")
    # /docs and /redoc with Swagger UI's and ReDoc's assets served by the gateway
    # itself (fastapi-offline), not from a CDN: they work without internet.
    app = FastAPIOffline(
        title=TITLE,
        description=DESCRIPTION,
        version=_version(),
        lifespan=lifespan,
        **NATIVE_TELEMETRY_OFF,
    )
    app.state.settings = settings
    app.state.producer = producer
    app.state.publisher = publisher
    app.state.state_reader = reader
    app.state.recent_orders = RecentOrders()
    app.state.registry_http = registry_http

    # Added last, runs first: the size limit bounds what the number check reads.
    app.add_middleware(StrictJsonNumbers)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Added last, so outermost: a flood is refused before any body is read.
    app.add_middleware(RateLimitMiddleware, settings=settings, refused=metrics.refused)
    # Outermost of all: every answer is counted and carries the request's correlation id.
    observe_requests(app, registry=metrics.registry, correlate=True)
    _install_error_handlers(app)
    for router in ROOT_ROUTERS:
        app.include_router(router)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    return app


app = create_app()
