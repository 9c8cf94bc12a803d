"""The embedded JDBC sink against a real broker (Tansu), schema registry and PostgreSQL.

One module-scoped stack from the launcher's parts: broker, Postgres, the
registry stand-in, the topics, and `python -m sinks` driven by `connectors/`.
Records are encoded with the project's codecs and produced with confluent-kafka,
as the workers publish them. Every test uses its own keys, and waits for
conditions with a deadline, never for a fixed time.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from core.topics import ORDERS, SALES_PER_MINUTE, key_codec, value_codec
from momentum.stack import (
    HOST,
    broker_part,
    create_topics,
    free_port,
    postgres_part,
    postgres_url,
    service_part,
)
from momentum.supervisor import Part, Supervisor
from schemas.codec import AvroCodec
from schemas.registry import SchemaRegistryClient
from schemas.serdes import Serdes

pytestmark = pytest.mark.integration

T = TypeVar("T")
DEADLINE = 60.0
ORDERS_DLQ = "orders.connect-dlq"
ORDERS_GROUP = "connect-momentum-orders-sink"


@dataclass
class Stack:
    sup: Supervisor
    bootstrap: str
    registry_url: str
    postgres: Part
    sink: Part
    serdes: Serdes
    producer: Producer

    @property
    def database_url(self) -> str:
        return postgres_url(self.postgres.port or 0)

    @property
    def sink_url(self) -> str:
        return self.sink.url or ""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Not under pytest's shared basetemp: other sessions on this machine prune it while
    # Postgres (running as another user) still uses its data directory.
    state = Path(tempfile.mkdtemp(prefix="momentum-sink-test-"))
    logs = state / "logs"
    sup = Supervisor(state, {})
    try:
        broker = broker_part(free_port(), logs)
        sup.start(broker)
        bootstrap = broker.url or ""
        postgres = postgres_part(free_port(), state, logs)
        sup.start(postgres)
        registry_port = free_port()
        registry = service_part(
            "schema-registry",
            [
                "-m",
                "momentum.registry_server",
                "--host",
                HOST,
                "--port",
                str(registry_port),
                "--bootstrap-servers",
                bootstrap,
            ],
            registry_port,
            logs,
            "/health",
            {},
        )
        sup.start(registry)
        create_topics(bootstrap, 4)
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SCHEMA_REGISTRY_URL": registry.url or "",
            "DATABASE_URL": postgres_url(postgres.port or 0),
        }
        sink_port = free_port()
        sink = service_part(
            "sink",
            ["-m", "sinks", "--host", HOST, "--port", str(sink_port)],
            sink_port,
            logs,
            "/health",
            env,
        )
        sup.start(sink)
        # librdkafka's own log goes through logging, so pytest keeps it out of the output.
        producer = Producer(
            {"bootstrap.servers": bootstrap, "linger.ms": 5}, logger=logging.getLogger("producer")
        )
        serdes = Serdes(SchemaRegistryClient(registry.url or ""))
        yield Stack(sup, bootstrap, registry.url or "", postgres, sink, serdes, producer)
    finally:
        sup.stop_all()
        if os.environ.get("MOMENTUM_KEEP_TEST_STATE") != "1":
            shutil.rmtree(state, ignore_errors=True)


# -- helpers ---------------------------------------------------------------------------------


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = DEADLINE) -> T:
    """The probe's first truthy answer; fails with `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            answer = probe()
        except (psycopg.Error, httpx.HTTPError) as exc:  # a part that is (re)starting
            last_error = exc
        else:
            if answer:
                return answer
        time.sleep(0.2)
    pytest.fail(f"not within {timeout:.0f}s: {what} (last error: {last_error})")


def order(
    order_id: str, status: str = "PENDING", total: str = "12.50", **changes: Any
) -> dict[str, Any]:
    created = datetime(2026, 11, 23, 12, 0, 0, 123000, tzinfo=UTC)
    return {
        "order_id": order_id,
        "customer_id": "customer-1",
        "status": status,
        "reason": None,
        "total": Decimal(total),
        "currency": "EUR",
        "line_count": 2,
        "created_at": created,
        "updated_at": created,
        **changes,
    }


def codecs(stack: Stack) -> tuple[AvroCodec, AvroCodec]:
    return key_codec(ORDERS, stack.serdes), value_codec(ORDERS, stack.serdes)


def produce_orders(
    stack: Stack, records: list[tuple[str, dict[str, Any] | bytes | None]], topic: str = ORDERS.name
) -> list[Message]:
    """Produce (key, value) pairs in order; a dict is encoded, bytes go as they are."""
    keys, values = codecs(stack)
    delivered: list[Message] = []

    def report(err: Any, msg: Message) -> None:
        assert err is None, err
        delivered.append(msg)

    for key, value in records:
        encoded = values.encode(value) if isinstance(value, dict) else value
        stack.producer.produce(topic, key=keys.encode(key), value=encoded, on_delivery=report)
    assert stack.producer.flush(30) == 0
    return delivered


def query(stack: Stack, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(stack.database_url, connect_timeout=2) as conn:
        return conn.execute(sql, params).fetchall()


def orders_like(stack: Stack, prefix: str) -> list[tuple[Any, ...]]:
    return query(
        stack,
        "SELECT order_id, customer_id, status, reason, total, currency, line_count, created_at,"
        " updated_at FROM orders WHERE order_id LIKE %s ORDER BY order_id",
        prefix + "%",
    )


def status(stack: Stack) -> dict[str, Any]:
    response = httpx.get(f"{stack.sink_url}/status", timeout=5)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def dead_letters(stack: Stack, topic: str, key: bytes) -> list[Message]:
    """Every message on a dead-letter topic with this key, read from the beginning."""
    consumer = Consumer(
        {
            "bootstrap.servers": stack.bootstrap,
            "group.id": f"test-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        found: list[Message] = []
        # Read until the topic is quiet (Tansu's ListOffsets undercounts the end).
        idle = 0
        while idle < 2:
            batch = [m for m in consumer.consume(500, 0.5) if m.error() is None]
            idle = idle + 1 if not batch else 0
            found += [m for m in batch if m.key() == key]
        return found
    finally:
        consumer.close()


def headers_of(message: Message) -> dict[str, str]:
    return {k: (v or b"").decode() for k, v in message.headers() or []}


def committed_offsets(stack: Stack, topic: str, group: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": stack.bootstrap, "group.id": group})
    try:
        metadata = consumer.list_topics(topic, timeout=5)
        partitions = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        return {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
    finally:
        consumer.close()


def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:8]}-"


# -- tests -------------------------------------------------------------------------------------


def test_upserts_land_with_schema_types(stack: Stack) -> None:
    p = prefix()
    produce_orders(
        stack, [(f"{p}{i:03d}", order(f"{p}{i:03d}", total=f"{i}.25")) for i in range(20)]
    )
    rows = wait_for(
        lambda: (r := orders_like(stack, p)) and len(r) == 20 and r, "20 orders written"
    )
    first = rows[0]
    assert first[:7] == (f"{p}000", "customer-1", "PENDING", None, Decimal("0.25"), "EUR", 2)
    assert first[7] == datetime(2026, 11, 23, 12, 0, 0, 123000, tzinfo=UTC)
    assert rows[19][4] == Decimal("19.25")
    types = dict(
        query(
            stack,
            "SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns"
            " JOIN pg_attribute ON attrelid = 'orders'::regclass AND attname = column_name"
            " WHERE table_name = 'orders'",
        )
    )
    assert types == {
        "order_id": "text",
        "customer_id": "text",
        "status": "text",
        "reason": "text",
        "total": "numeric(12,2)",
        "currency": "text",
        "line_count": "integer",
        "created_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
    }
    assert query(
        stack,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON"
        " a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = 'orders'::regclass AND i.indisprimary",
    ) == [("order_id",)]


def test_a_later_record_for_the_same_key_updates_the_row(stack: Stack) -> None:
    p = prefix()
    a, b = f"{p}a", f"{p}b"
    produce_orders(stack, [(a, order(a)), (b, order(b))])
    wait_for(lambda: len(orders_like(stack, p)) == 2, "both orders written")
    # b twice in one produce call: most likely one batch, deduplicated to the last.
    produce_orders(
        stack,
        [
            (a, order(a, "CONFIRMED", "99.99")),
            (b, order(b, "RESERVED")),
            (b, order(b, "REJECTED", reason="OUT_OF_STOCK")),
        ],
    )
    rows = wait_for(
        lambda: (
            (r := orders_like(stack, p)) and r[0][2] == "CONFIRMED" and r[1][2] == "REJECTED" and r
        ),
        "both orders updated",
    )
    assert rows[0][4] == Decimal("99.99")
    assert rows[1][3] == "OUT_OF_STOCK"
    assert len(rows) == 2


def test_a_tombstone_deletes_the_row(stack: Stack) -> None:
    p = prefix()
    keep, gone = f"{p}keep", f"{p}gone"
    produce_orders(stack, [(keep, order(keep)), (gone, order(gone))])
    wait_for(lambda: len(orders_like(stack, p)) == 2, "both orders written")
    produce_orders(stack, [(gone, None)])
    rows = wait_for(lambda: (r := orders_like(stack, p)) and len(r) == 1 and r, "tombstone applied")
    assert rows[0][0] == keep
    # A tombstone then a record for the same key: the row comes back.
    produce_orders(stack, [(gone, None), (gone, order(gone, "CANCELLED"))])
    wait_for(lambda: len(orders_like(stack, p)) == 2, "order re-created after its tombstone")


def test_replaying_the_same_records_changes_nothing(stack: Stack) -> None:
    p = prefix()
    records: list[tuple[str, dict[str, Any] | bytes | None]] = [
        (f"{p}{i:03d}", order(f"{p}{i:03d}", "CONFIRMED", f"{i}.10")) for i in range(50)
    ]
    records.append((f"{p}000", None))  # the first order is deleted again at the end
    produce_orders(stack, records)
    before = wait_for(lambda: (r := orders_like(stack, p)) and len(r) == 49 and r, "49 orders")
    written = status(stack)["written"]["orders"]
    produce_orders(stack, records)  # what a crash between the Postgres and the offset commit does
    wait_for(
        lambda: status(stack)["written"]["orders"] >= written + len(records),
        "the replayed records were written",
    )
    assert orders_like(stack, p) == before


def test_a_malformed_record_goes_to_the_dead_letter_topic_and_its_neighbours_land(
    stack: Stack,
) -> None:
    p = prefix()
    keys, _ = codecs(stack)
    good1, bad, good2, nul = f"{p}good1", f"{p}bad", f"{p}good2", f"{p}nul"
    delivered = produce_orders(
        stack,
        [
            (good1, order(good1)),
            (bad, b"garbage"),
            # Decodes, but Postgres refuses NUL in text: found by the row-by-row retry.
            (nul, order(nul, customer_id="nul\x00byte")),
            (good2, order(good2)),
        ],
    )
    rows = wait_for(lambda: (r := orders_like(stack, p)) and len(r) == 2 and r, "good orders")
    assert [r[0] for r in rows] == [good1, good2]

    bad_message = next(m for m in delivered if m.key() == keys.encode(bad))
    letters = wait_for(lambda: dead_letters(stack, ORDERS_DLQ, keys.encode(bad)), "dead letter")
    assert len(letters) == 1
    assert letters[0].value() == b"garbage"
    headers = headers_of(letters[0])
    assert headers["__connect.errors.topic"] == "orders"
    assert headers["__connect.errors.partition"] == str(bad_message.partition())
    assert headers["__connect.errors.offset"] == str(bad_message.offset())
    assert headers["__connect.errors.stage"] == "VALUE_CONVERTER"
    assert headers["__connect.errors.connector.name"] == "momentum-orders-sink"
    assert headers["__connect.errors.exception.message"].startswith("bad-magic-byte")

    letters = wait_for(lambda: dead_letters(stack, ORDERS_DLQ, keys.encode(nul)), "NUL letter")
    headers = headers_of(letters[0])
    assert headers["__connect.errors.stage"] == "TASK_PUT"
    assert headers["__connect.errors.exception.class.name"].startswith("psycopg.")
    assert "0x00" in headers["__connect.errors.exception.message"]
    counted = status(stack)["dead_letters"]["orders"]
    assert counted >= 2


def test_a_tombstone_where_deletes_are_disabled_is_dead_lettered(stack: Stack) -> None:
    window = f"sku-1@{uuid.uuid4().hex}"
    key = key_codec(SALES_PER_MINUTE, stack.serdes).encode(window)
    stack.producer.produce(SALES_PER_MINUTE.name, key=key, value=None)
    assert stack.producer.flush(30) == 0
    letters = wait_for(
        lambda: dead_letters(stack, "sales-per-minute.connect-dlq", key), "tombstone letter"
    )
    assert "delete.enabled=false" in headers_of(letters[0])["__connect.errors.exception.message"]
    assert letters[0].value() is None


def restart_postgres(stack: Stack) -> None:
    """Start Postgres again on the same data directory and port (a fresh Part: no initdb)."""
    old = stack.postgres
    new = dataclasses.replace(old, process=None, state="stopped", restarts=0, _log_file=None)
    stack.sup.start(new)
    stack.postgres = new


def test_a_postgres_outage_delays_but_loses_nothing(stack: Stack) -> None:
    p = prefix()
    total, chunk = 500, 50
    wait_for(lambda: status(stack)["lag"]["orders"] == 0, "the orders sink caught up")
    produced = threading.Event()
    errors: list[BaseException] = []
    db_down = threading.Event()

    def load() -> None:
        try:
            for start in range(0, total, chunk):
                if start == 2 * chunk:
                    db_down.wait(30)  # the rest arrives while Postgres is away
                produce_orders(
                    stack,
                    [
                        (f"{p}{i:04d}", order(f"{p}{i:04d}", total=f"{i}.00"))
                        for i in range(start, start + chunk)
                    ],
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            produced.set()

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    wait_for(lambda: len(orders_like(stack, p)) >= chunk, "the first records landed")
    stack.postgres.stop()  # SIGINT: fast shutdown; clients get refused connections
    db_down.set()
    assert produced.wait(DEADLINE) and not errors, errors

    seen = wait_for(
        lambda: (
            (s := status(stack))
            and not s["db_available"]
            and s["connectors"]["momentum-orders-sink"]["retries"] > 0
            and s["lag"]["orders"] > 0
            and s
        ),
        "the sink reports the outage and its lag",
    )
    assert seen["connectors"]["momentum-orders-sink"]["state"] == "waiting"
    # Nothing is committed while the batch cannot be written.
    held = committed_offsets(stack, ORDERS.name, ORDERS_GROUP)
    wait_for(
        lambda: (
            status(stack)["connectors"]["momentum-orders-sink"]["retries"]
            >= seen["connectors"]["momentum-orders-sink"]["retries"] + 4
        ),
        "more retries",
    )
    assert committed_offsets(stack, ORDERS.name, ORDERS_GROUP) == held

    restart_postgres(stack)
    rows = wait_for(
        lambda: (r := orders_like(stack, p)) and len(r) == total and r,
        f"all {total} orders written after the outage",
    )
    assert [r[4] for r in rows] == [Decimal(f"{i}.00") for i in range(total)]
    final = wait_for(
        lambda: (s := status(stack)) and s["db_available"] and s["lag"]["orders"] == 0 and s,
        "the sink caught up",
    )
    assert final["connectors"]["momentum-orders-sink"]["state"] == "running"


def test_status_and_metrics_report_every_connector(stack: Stack) -> None:
    data = status(stack)
    assert set(data["connectors"]) == {
        "momentum-orders-sink",
        "momentum-order-lines-sink",
        "momentum-payments-sink",
        "momentum-inventory-sink",
        "momentum-sales-per-minute-sink",
    }
    assert set(data["lag"]) == {
        "orders",
        "order-lines",
        "payments",
        "inventory",
        "sales-per-minute",
    }
    metrics = httpx.get(f"{stack.sink_url}/metrics", timeout=5)
    assert metrics.headers["content-type"].startswith("text/plain")
    written = data["written"]["orders"]
    assert f'momentum_sink_records_written_total{{topic="orders"}} {written}' in metrics.text
    assert "momentum_sink_db_available 1" in metrics.text


def test_the_sink_exits_cleanly_on_sigterm(stack: Stack) -> None:
    process = stack.sink.process
    assert process is not None
    stack.sink.stop()
    assert process.returncode == 0
    log = Path(stack.sink.log).read_text()
    assert "Traceback" not in log
