"""The embedded stand-in for Confluent Schema Registry (Avro only).

Serves the subset of the Schema Registry REST API that Confluent's clients
(`confluent_kafka.schema_registry`: SchemaRegistryClient, AvroSerializer,
AvroDeserializer) and our own `schemas.registry` client use, with the real
registry's paths, bodies, content type and error codes, so that code tried
against the embedded stack behaves the same against the production registry.
State lives in a `registry_store` store; the Kafka-backed one survives a restart
of this process for as long as the broker keeps its `_schemas` topic.

    python -m momentum.registry_server --port 8081 --bootstrap-servers 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.http_observe import observe_requests
from core.observe import configure_logging
from momentum.registry_store import (
    KafkaStore,
    MemoryStore,
    Reference,
    StoredSchema,
    SubjectVersion,
    invalid_schema,
    parse_references,
)
from schemas.errors import RegistryError

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

log = logging.getLogger(__name__)


class RegistryResponse(JSONResponse):
    media_type = CONTENT_TYPE


def error_response(status: int, error_code: int, message: str) -> RegistryResponse:
    return RegistryResponse({"error_code": error_code, "message": message}, status_code=status)


async def read_json(request: Request) -> Any:
    # Parsed by hand: clients send the registry's own content types (or none), and
    # FastAPI's body models would answer those with its own error shape.
    raw = await request.body()
    try:
        return json.loads(raw) if raw else {}
    except ValueError as exc:
        raise RegistryError(400, 400, f"Unparsable request body: {exc}") from exc
    except RecursionError as exc:
        raise RegistryError(400, 400, "Unparsable request body: nested too deeply") from exc


async def read_schema_request(request: Request) -> tuple[str, tuple[Reference, ...]]:
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
        raise invalid_schema("the request needs a 'schema' string")
    schema_type = body.get("schemaType") or "AVRO"
    if schema_type != "AVRO":
        raise invalid_schema(f"schemaType {schema_type} is not supported here, only AVRO")
    return body["schema"], parse_references(body.get("references"))


SchemaRequest = Annotated[tuple[str, tuple[Reference, ...]], Depends(read_schema_request)]


async def read_level(request: Request) -> object:
    body = await read_json(request)
    return body.get("compatibility") if isinstance(body, dict) else None


# Module level, not in create_app: FastAPI resolves string annotations in module globals.
Level = Annotated[object, Depends(read_level)]


def schema_body(stored: StoredSchema) -> dict[str, Any]:
    # The real registry leaves out schemaType for Avro and references when there are none.
    body: dict[str, Any] = {"schema": stored.schema}
    if stored.references:
        body["references"] = [r.to_json() for r in stored.references]
    return body


def version_body(found: SubjectVersion, stored: StoredSchema) -> dict[str, Any]:
    return {
        "subject": found.subject,
        "version": found.version,
        "id": found.id,
        **schema_body(stored),
    }


def create_app(store: MemoryStore) -> FastAPI:
    """The registry's HTTP API over a store (a `KafkaStore`, or a `MemoryStore` in tests)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        store.start()
        yield
        await run_in_threadpool(store.close)

    app = FastAPI(
        title="Momentum schema registry",
        lifespan=lifespan,
        default_response_class=RegistryResponse,
    )
    app.state.store = store

    @app.exception_handler(RegistryError)
    async def registry_error(_request: Request, exc: RegistryError) -> RegistryResponse:
        return error_response(exc.http_status, exc.error_code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> RegistryResponse:
        return error_response(exc.status_code, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> RegistryResponse:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return error_response(422, 422, details)

    @app.get("/")
    def root() -> dict[str, Any]:
        return {}

    @app.get("/health")
    def health() -> RegistryResponse:
        if store.ready:
            return RegistryResponse({"status": "ok"})
        return RegistryResponse({"status": "loading", "error": store.load_error}, status_code=503)

    @app.get("/schemas/types")
    def schema_types() -> list[str]:
        return ["AVRO"]

    @app.get("/schemas/ids/{schema_id}")
    def get_schema(schema_id: int) -> dict[str, Any]:
        return schema_body(store.schema(schema_id))

    @app.get("/schemas/ids/{schema_id}/schema")
    def get_raw_schema(schema_id: int) -> Any:
        return json.loads(store.schema(schema_id).schema)

    @app.get("/schemas/ids/{schema_id}/versions")
    def get_schema_versions(schema_id: int) -> list[dict[str, Any]]:
        return [
            {"subject": found.subject, "version": found.version}
            for found in store.versions_of_id(schema_id)
        ]

    @app.get("/schemas/ids/{schema_id}/subjects")
    def get_schema_subjects(schema_id: int) -> list[str]:
        return sorted({found.subject for found in store.versions_of_id(schema_id)})

    @app.get("/subjects")
    def list_subjects(
        prefix: Annotated[str, Query(alias="subjectPrefix")] = "",
    ) -> list[str]:
        return [s for s in store.subjects() if s.startswith(prefix)]

    @app.post("/subjects/{subject}")
    def lookup_schema(subject: str, body: SchemaRequest) -> dict[str, Any]:
        return version_body(*store.lookup(subject, *body))

    @app.get("/subjects/{subject}/versions")
    def list_versions(subject: str) -> list[int]:
        return store.versions(subject)

    @app.post("/subjects/{subject}/versions")
    def register_schema(subject: str, body: SchemaRequest) -> dict[str, Any]:
        return {"id": store.register(subject, *body)}

    @app.get("/subjects/{subject}/versions/{version}")
    def get_version(subject: str, version: str) -> dict[str, Any]:
        return version_body(*store.version(subject, version))

    @app.get("/subjects/{subject}/versions/{version}/schema")
    def get_version_schema(subject: str, version: str) -> Any:
        return json.loads(store.version(subject, version)[1].schema)

    def compatibility_body(problems: list[str], verbose: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"is_compatible": not problems}
        if verbose:
            body["messages"] = problems
        return body

    @app.post("/compatibility/subjects/{subject}/versions/{version}")
    def test_compatibility(
        subject: str, version: str, body: SchemaRequest, verbose: bool = False
    ) -> dict[str, Any]:
        problems = store.test_compatibility(subject, *body, version=version)
        return compatibility_body(problems, verbose)

    @app.post("/compatibility/subjects/{subject}/versions")
    def test_compatibility_all(
        subject: str, body: SchemaRequest, verbose: bool = False
    ) -> dict[str, Any]:
        return compatibility_body(store.test_compatibility(subject, *body), verbose)

    @app.get("/config")
    def get_global_config() -> dict[str, Any]:
        return {"compatibilityLevel": store.get_compatibility()}

    @app.get("/config/{subject}")
    def get_subject_config(
        subject: str, default_to_global: Annotated[bool, Query(alias="defaultToGlobal")] = False
    ) -> dict[str, Any]:
        return {"compatibilityLevel": store.get_compatibility(subject, default_to_global)}

    @app.put("/config")
    def set_global_config(level: Level) -> dict[str, Any]:
        return {"compatibility": store.set_compatibility(level)}

    @app.put("/config/{subject}")
    def set_subject_config(subject: str, level: Level) -> dict[str, Any]:
        return {"compatibility": store.set_compatibility(level, subject)}

    observe_requests(app)
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m momentum.registry_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--bootstrap-servers", required=True, help="Kafka HOST:PORT[,...]")
    parser.add_argument("--topic", default="_schemas", help="where schemas are kept")
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--end-offsets-from-fetch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="replay the topic to the end a fetch's high watermark says, for brokers whose "
        "ListOffsets falls short of it (Tansu); default: MOMENTUM_END_OFFSETS_FROM_FETCH",
    )
    return parser.parse_args(argv)


def exit_cleanly(signum: int, _frame: FrameType | None) -> None:
    log.info("stopped by %s", signal.Signals(signum).name)
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging(args.log_level)
    from_fetch = args.end_offsets_from_fetch
    if from_fetch is None:
        from core.settings import get_settings

        from_fetch = get_settings().end_offsets_from_fetch
    store = KafkaStore(args.bootstrap_servers, topic=args.topic, end_offsets_from_fetch=from_fetch)
    log.info("schema registry on http://%s:%d, topic %s", args.host, args.port, args.topic)
    # uvicorn catches SIGTERM/SIGINT, shuts down gracefully (the lifespan closes the
    # store), then re-raises the signal through the handler it found installed. With
    # this one the process ends with status 0 instead of dying by the signal.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, exit_cleanly)
    uvicorn.run(
        create_app(store),
        host=args.host,
        port=args.port,
        # None: uvicorn's loggers (access log included) go through the root handler, stderr.
        log_config=None,
        log_level=args.log_level.lower(),
    )


if __name__ == "__main__":
    main()
