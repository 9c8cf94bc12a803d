"""Batch handling before the write: dedupe by key, grouping by shape, offsets to commit."""

from __future__ import annotations

from typing import Any

import pytest

from sinks.batch import SinkRecord, Source, dedupe, group_deletes, group_upserts, next_offsets
from sinks.ddl import Column, TableShape

SHAPE_V1 = TableShape(
    "orders", Column("order_id", "text", False), (Column("status", "text", False),)
)
SHAPE_V2 = TableShape(
    "orders",
    Column("order_id", "text", False),
    (Column("status", "text", False), Column("note", "text", True)),
)


def rec(
    key: str,
    status: str | None,
    offset: int,
    table: str = "orders",
    shape: TableShape = SHAPE_V1,
    partition: int = 0,
) -> SinkRecord:
    value: dict[str, Any] | None = None if status is None else {"order_id": key, "status": status}
    source = Source(table, partition, offset, key.encode(), None if status is None else b"v")
    return SinkRecord(source, table, key, value, None if value is None else shape)


def statuses(records: list[SinkRecord]) -> list[tuple[str, str | None]]:
    return [(r.key, r.value["status"] if r.value else None) for r in records]


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        (
            [("a", "PENDING"), ("b", "PENDING"), ("a", "CONFIRMED")],
            [("b", "PENDING"), ("a", "CONFIRMED")],
        ),
        ([("a", "PENDING"), ("a", None)], [("a", None)]),  # tombstone last: delete
        ([("a", None), ("a", "PENDING")], [("a", "PENDING")]),  # re-created after delete
        ([("a", "PENDING"), ("a", "PENDING")], [("a", "PENDING")]),
        ([], []),
    ],
)
def test_dedupe_keeps_the_last_record_per_key(
    batch: list[tuple[str, str | None]], expected: list[tuple[str, str | None]]
) -> None:
    records = [rec(k, s, i) for i, (k, s) in enumerate(batch)]
    assert statuses(dedupe(records)) == expected


def test_dedupe_is_per_table() -> None:
    records = [rec("a", "PENDING", 0, table="orders"), rec("a", "PAID", 1, table="payments")]
    assert len(dedupe(records)) == 2


def test_upserts_group_by_shape_and_deletes_by_table() -> None:
    records = [
        rec("a", "PENDING", 0),
        rec("b", "PENDING", 1, shape=SHAPE_V2),
        rec("c", None, 2),
        rec("d", "PENDING", 3),
    ]
    upserts = group_upserts(records)
    assert {shape: [r.key for r in rs] for shape, rs in upserts.items()} == {
        SHAPE_V1: ["a", "d"],
        SHAPE_V2: ["b"],
    }
    assert {t: [r.key for r in rs] for t, rs in group_deletes(records).items()} == {"orders": ["c"]}


def test_row_follows_the_shape_with_the_key_first_and_missing_fields_null() -> None:
    assert rec("a", "PENDING", 0).row() == ("a", "PENDING")
    assert rec("a", "PENDING", 0, shape=SHAPE_V2).row() == ("a", "PENDING", None)


def test_offsets_to_commit_are_one_past_the_highest_per_partition() -> None:
    records = [
        rec("a", "X", 7),
        rec("b", "X", 3),
        rec("c", "X", 4, partition=1),
        rec("d", None, 9, table="other"),
    ]
    assert next_offsets(r.source for r in records) == {
        ("orders", 0): 8,
        ("orders", 1): 5,
        ("other", 0): 10,
    }
