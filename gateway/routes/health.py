"""Liveness and readiness: `/health` (the process answers) and `/ready` (it can work)."""

from __future__ import annotations

import asyncio
import logging

import httpx
from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from gateway.deps import ProducerDep, RegistryHttpDep
from gateway.models import HealthBody, NotReadyBody, ReadyBody, ReadyChecks

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

OK = "ok"
# A failing check says what is unavailable; why and where (addresses) go to the log.
UNAVAILABLE = "unavailable"
RETRY_AFTER_SECONDS = 1  # as the gateway's other 503s


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
    reasons = {"kafka": kafka, "schema_registry": schema_registry}
    failing = [name for name, reason in reasons.items() if reason is not None]
    checks = ReadyChecks(
        **{name: OK if reason is None else UNAVAILABLE for name, reason in reasons.items()}
    )
    if failing:
        log.warning("not ready: %s", "; ".join(f"{n}: {reasons[n]}" for n in failing))
        body = NotReadyBody(detail=f"not ready: {', '.join(failing)}", checks=checks)
        return JSONResponse(
            body.model_dump(),
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
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
