"""What one consumed batch becomes before it is written: pure functions, no I/O.

A batch is deduplicated by (table, key) with the last record winning, so the
upsert never touches a row twice in one statement and a tombstone that comes
last deletes the row. The offsets to commit cover every consumed record, the
ones written, superseded and dead-lettered alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sinks.ddl import TableShape


@dataclass(frozen=True)
class Source:
    """Where a record came from, for dead-letter headers and offset commits."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class SinkRecord:
    source: Source
    table: str
    key: Any
    value: dict[str, Any] | None  # None is a tombstone
    shape: TableShape | None  # None for tombstones

    @property
    def is_tombstone(self) -> bool:
        return self.value is None

    def row(self) -> tuple[Any, ...]:
        """The values in the shape's column order: the key, then the value's fields."""
        assert self.shape is not None and self.value is not None
        return (self.key, *(self.value.get(name) for name in self.shape.value_fields))


@dataclass(frozen=True)
class DeadLetter:
    source: Source
    stage: str  # Kafka Connect's stage names: KEY_CONVERTER, VALUE_CONVERTER, TASK_PUT
    error: str  # a qualified exception class name
    message: str


def dedupe(records: Iterable[SinkRecord]) -> list[SinkRecord]:
    """The last record per (table, key), in the order those last records arrived."""
    last: dict[tuple[str, Any], SinkRecord] = {}
    for record in records:
        ident = (record.table, record.key)
        last.pop(ident, None)  # re-insert so the order follows the latest arrival
        last[ident] = record
    return list(last.values())


def group_upserts(records: Sequence[SinkRecord]) -> dict[TableShape, list[SinkRecord]]:
    """Upserts grouped by shape: one statement per (table, writer schema)."""
    groups: dict[TableShape, list[SinkRecord]] = {}
    for record in records:
        if record.shape is not None and not record.is_tombstone:
            groups.setdefault(record.shape, []).append(record)
    return groups


def group_deletes(records: Sequence[SinkRecord]) -> dict[str, list[SinkRecord]]:
    groups: dict[str, list[SinkRecord]] = {}
    for record in records:
        if record.is_tombstone:
            groups.setdefault(record.table, []).append(record)
    return groups


def next_offsets(sources: Iterable[Source]) -> dict[tuple[str, int], int]:
    """The offset to commit per partition: one past the highest consumed."""
    offsets: dict[tuple[str, int], int] = {}
    for s in sources:
        tp = (s.topic, s.partition)
        offsets[tp] = max(offsets.get(tp, 0), s.offset + 1)
    return offsets
