"""Rejections between their rule values and their Avro records (event, table, web)."""

from __future__ import annotations

from typing import Any

from streams.rejections.rules import CommandKind, Rejection, RejectionReason


def rejection_from_record(record: dict[str, Any]) -> Rejection:
    return Rejection(
        command_id=record["command_id"],
        command=CommandKind(record["command"]),
        subject=record["subject"],
        requested_by=record["requested_by"],
        reason=RejectionReason(record["reason"]),
        rejected_at=record["rejected_at"],
    )


def rejection_record(rejection: Rejection) -> dict[str, Any]:
    """CommandRejected (topic command-rejections, and the items of a RejectionLog)."""
    return {
        "command_id": rejection.command_id,
        "command": rejection.command.value,
        "subject": rejection.subject,
        "requested_by": rejection.requested_by,
        "reason": rejection.reason.value,
        "rejected_at": rejection.rejected_at,
    }


def log_from_state(record: dict[str, Any] | None) -> tuple[Rejection, ...]:
    if record is None:
        return ()
    return tuple(rejection_from_record(item) for item in record["rejections"])


def log_to_state(requested_by: str, log: tuple[Rejection, ...]) -> dict[str, Any]:
    """RejectionLog (rejections table)."""
    return {
        "requested_by": requested_by,
        "rejections": [rejection_record(rejection) for rejection in log],
    }


def log_view(requested_by: str, log: tuple[Rejection, ...]) -> dict[str, Any]:
    """JSON for the worker's web view, newest first."""
    return {
        "requested_by": requested_by,
        "rejections": [
            {
                "command_id": rejection.command_id,
                "command": rejection.command.value,
                "subject": rejection.subject,
                "reason": rejection.reason.value,
                "rejected_at": rejection.rejected_at.isoformat(),
            }
            for rejection in reversed(log)
        ],
    }
