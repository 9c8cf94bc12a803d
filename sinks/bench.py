"""`python -m sinks.bench`: executemany vs COPY staging for upserting a batch of OrderRecords.

Writes `--rows` rows into a fresh table twice per method (first insert, then a
re-upsert of the same keys with new values), best of `--repeat`, against
`DATABASE_URL` (or `--database-url`). The table is dropped afterwards.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import psycopg

from core.settings import get_settings
from schemas import load_schema
from sinks.batch import SinkRecord, Source
from sinks.ddl import table_shape
from sinks.writer import PostgresWriter, WriteMethod


def make_records(table: str, rows: int, version: int) -> list[SinkRecord]:
    shape = table_shape(table, "string", load_schema("OrderRecord"), "order_id")
    now = datetime.now(UTC)
    records = []
    for i in range(rows):
        key = f"order-{i:06d}"
        value = {
            "order_id": key,
            "customer_id": f"customer-{i % 977}",
            "status": "CONFIRMED" if version else "PENDING",
            "reason": None,
            "total": Decimal(f"{(i % 5000) + version}.{i % 100:02d}"),
            "currency": "EUR",
            "line_count": 1 + i % 4,
            "created_at": now,
            "updated_at": now,
        }
        records.append(SinkRecord(Source(table, 0, i, None, None), table, key, value, shape))
    return records


def time_write(writer: PostgresWriter, records: list[SinkRecord]) -> float:
    began = time.perf_counter()
    result = writer.write(records)
    elapsed = time.perf_counter() - began
    assert not result.failures and result.upserted == len(records)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default=get_settings().database_url)
    args = parser.parse_args()
    for method in WriteMethod:
        inserts, upserts = [], []
        for _ in range(args.repeat):
            table = f"bench_{uuid.uuid4().hex[:8]}"
            writer = PostgresWriter(
                args.database_url,
                pk_field="order_id",
                auto_create=True,
                auto_evolve=True,
                method=method,
            )
            writer.ensure_table(make_records(table, 1, 0)[0].shape)  # type: ignore[arg-type]
            inserts.append(time_write(writer, make_records(table, args.rows, 0)))
            upserts.append(time_write(writer, make_records(table, args.rows, 1)))
            writer.close()
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(psycopg.sql.SQL("DROP TABLE {}").format(psycopg.sql.Identifier(table)))
        print(
            f"{method.value:<12} {args.rows} rows: insert best {min(inserts):.3f}s "
            f"(median {sorted(inserts)[len(inserts) // 2]:.3f}s), "
            f"re-upsert best {min(upserts):.3f}s (median {sorted(upserts)[len(upserts) // 2]:.3f}s)"
        )


if __name__ == "__main__":
    main()
