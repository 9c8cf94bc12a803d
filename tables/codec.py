"""Tables whose values are Confluent wire-format Avro, with string keys.

Faust's stores pick their serializers from the table's key and value types, so
the tables hold raw bytes and `AvroTable` encodes and decodes at the edge. The
changelogs then carry registered schemas, like every other topic. Keys are the
UTF-8 bytes of the message keys, so they hash to the same partitions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faust

from core.topics import get_serdes
from schemas.codec import AvroCodec


class AvroTable:
    def __init__(self, table: faust.types.TableT[bytes, bytes], record_name: str) -> None:
        self.table = table
        self.record_name = record_name
        self.subject = f"{table.app.conf.id}-{table.name}-changelog-value"
        self._codec: AvroCodec | None = None

    @property
    def codec(self) -> AvroCodec:
        if self._codec is None:
            self._codec = get_serdes().codec(self.subject, self.record_name)
        return self._codec

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self.table.get(key.encode())
        return None if raw is None else dict(self.codec.decode(raw))

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        self.table[key.encode()] = self.codec.encode(value)

    def pop(self, key: str) -> None:
        """Remove `key`'s row (a tombstone in the changelog), if there is one."""
        self.table.pop(key.encode(), None)

    def __contains__(self, key: str) -> bool:
        return key.encode() in self.table

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for key, raw in self.table.items():
            yield key.decode(), self.codec.decode(raw)


def bytes_table(
    app: faust.App, name: str, help: str, value_type: type = bytes
) -> faust.types.TableT[bytes, Any]:
    return app.Table(name, default=None, key_type=bytes, value_type=value_type, help=help)
