"""The rejections agent: each requester's refused commands, on the requester's partition.

Agents that refuse a command call `send_rejection`; this agent appends the
record to the requester's log (once per command id) for the API to read.
"""

from __future__ import annotations

from typing import Any

import faust

from core.app import app
from core.topics import COMMAND_REJECTIONS
from streams import sending
from streams.channels import channel
from streams.rejections.records import (
    log_from_state,
    log_to_state,
    rejection_from_record,
    rejection_record,
)
from streams.rejections.rules import CommandKind, Rejection, RejectionReason, record_rejection
from streams.steps import check_key, consume
from tables.rejections import rejections


async def send_rejection(
    command_id: str,
    command: CommandKind,
    subject: str,
    requested_by: str,
    reason: RejectionReason,
) -> None:
    """Tell the requester (through the rejections log) that a command was refused."""
    rejection = Rejection(command_id, command, subject, requested_by, reason, sending.now())
    await sending.send(COMMAND_REJECTIONS, requested_by, rejection_record(rejection))


@app.agent(channel(COMMAND_REJECTIONS))
async def process_rejections(stream: faust.StreamT[bytes]) -> None:
    await consume(stream, apply_rejection)


async def apply_rejection(key: str, record: dict[str, Any]) -> None:
    rejection = rejection_from_record(record)
    check_key(key, rejection.requested_by, "rejection for")
    log = log_from_state(rejections.get(key))
    updated = record_rejection(log, rejection)
    if updated is not log:
        rejections[key] = log_to_state(key, updated)
