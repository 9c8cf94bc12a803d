"""Refused commands: the requester's log (once per command, bounded) and its records."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from schemas import load_schema
from schemas.serdes import InMemoryRegistry, Serdes
from streams.rejections.records import log_from_state, log_to_state, log_view, rejection_record
from streams.rejections.rules import (
    REJECTIONS_KEPT,
    CommandKind,
    Rejection,
    RejectionReason,
    record_rejection,
)

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def rejection(n: int, reason: RejectionReason = RejectionReason.UNKNOWN_ORDER) -> Rejection:
    return Rejection(
        command_id=f"cmd-{n}",
        command=CommandKind.CANCEL_ORDER,
        subject=f"order-{n}",
        requested_by="bob",
        reason=reason,
        rejected_at=T0 + timedelta(seconds=n),
    )


def test_a_rejection_is_appended() -> None:
    assert record_rejection((), rejection(1)) == (rejection(1),)
    assert record_rejection((rejection(1),), rejection(2)) == (rejection(1), rejection(2))


def test_the_same_command_refused_again_is_kept_once() -> None:
    log = record_rejection((), rejection(1))
    # A redelivered command is refused again, later: still one entry, the first.
    later = dataclasses.replace(rejection(1), rejected_at=T0 + timedelta(days=1))
    assert record_rejection(log, later) is log


def test_the_log_keeps_the_latest_rejections_only() -> None:
    log: tuple[Rejection, ...] = ()
    for n in range(REJECTIONS_KEPT + 5):
        log = record_rejection(log, rejection(n))
    assert len(log) == REJECTIONS_KEPT
    assert log[0] == rejection(5)
    assert log[-1] == rejection(REJECTIONS_KEPT + 4)


@pytest.mark.parametrize(
    ("enum", "schema"),
    [(RejectionReason, "RejectionReason"), (CommandKind, "CommandKind")],
)
def test_enums_match_their_avro_schemas(enum: type, schema: str) -> None:
    loaded = load_schema(schema)
    assert isinstance(loaded, dict)
    assert [member.value for member in enum] == loaded["symbols"]


def test_records_round_trip_through_their_schemas() -> None:
    serdes = Serdes(InMemoryRegistry())
    event = serdes.codec("command-rejections-value", "CommandRejected")
    table = serdes.codec("rejections-changelog-value", "RejectionLog")
    log = (rejection(1), rejection(2, RejectionReason.CART_CLOSED))
    assert event.decode(event.encode(rejection_record(log[0]))) == rejection_record(log[0])
    stored = table.decode(table.encode(log_to_state("bob", log)))
    assert log_from_state(stored) == log
    view = log_view("bob", log)
    # Newest first, and no requester echoed per entry.
    assert [r["command_id"] for r in view["rejections"]] == ["cmd-2", "cmd-1"]
    assert view["rejections"][0] == {
        "command_id": "cmd-2",
        "command": "CANCEL_ORDER",
        "subject": "order-2",
        "reason": "CART_CLOSED",
        "rejected_at": (T0 + timedelta(seconds=2)).isoformat(),
    }
