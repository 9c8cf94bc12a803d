"""Liveness and readiness: `/health` (the process answers) and `/ready` (it can work)."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from gateway.deps import ProducerDep, RegistryHttpDep
from gateway.models import HealthBody, NotReadyBody, ReadyBody, ReadyChecks

router = APIRouter(tags=["health"])

OK = "ok"


@router.get("/health", summary="The process is up")
async def health() -> HealthBody:
    return HealthBody()


@router.get(
    "/ready",
    response_model=ReadyBody,
    summary="Kafka and the schema registry are reachable",
    responses={503: {"model": NotReadyBody, "description": "Kafka or the registry is not"}},
)
async def ready(producer: ProducerDep, registry: RegistryHttpDep) -> ReadyBody | JSONResponse:
    kafka, schema_registry = await asyncio.gather(producer.check(), check_registry(registry))
    checks = ReadyChecks(kafka=kafka or OK, schema_registry=schema_registry or OK)
    failing = [name for name, reason in checks.model_dump().items() if reason != OK]
    if failing:
        body = NotReadyBody(detail=f"not ready: {', '.join(failing)}", checks=checks)
        return JSONResponse(body.model_dump(), status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    return ReadyBody(checks=checks)


async def check_registry(client: httpx.AsyncClient) -> str | None:
    """None when `GET /subjects` answers 200, else why not."""
    try:
        response = await client.get("/subjects")
    except httpx.HTTPError as exc:
        return f"schema registry unreachable: {type(exc).__name__}: {exc}"
    if response.status_code != 200:
        return f"schema registry answered {response.status_code}"
    return None
