"""Refused commands: what the agents declined of the caller's commands, and why.

Commands are answered 202 before any agent has seen them; an agent that
refuses one (another seller's sku, another customer's cart or order, a reused
Idempotency-Key, ...) records a rejection for the requester. This route reads
that log: the caller's own, newest first; admins may read anyone's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from gateway.deps import AnyRole, StateReaderDep
from gateway.models import RejectionsView, error_responses

router = APIRouter(prefix="/rejections", tags=["rejections"])


@router.get(
    "",
    summary="The caller's refused commands, newest first (the latest 100)",
    responses=error_responses(401, 403, 502, 503),
)
async def list_rejections(
    principal: AnyRole,
    reader: StateReaderDep,
    command_id: Annotated[
        str | None, Query(max_length=64, description="Only the rejection of this command")
    ] = None,
    requested_by: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Admins: another requester")
    ] = None,
) -> RejectionsView:
    who = requested_by or principal.sub
    if who != principal.sub and not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only admins read others' rejections")
    log = await reader.read("rejections", who, RejectionsView, query="requested_by")
    rejections = log.rejections if log is not None else []
    if command_id is not None:
        rejections = [r for r in rejections if r.command_id == command_id]
    return RejectionsView(requested_by=who, rejections=rejections)
