"""The sink service: dead-letter headers, backoff, consumer settings, metrics, waiting batches."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

import pytest
from confluent_kafka import TopicPartition
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core.retrying import fixed_wait, retry
from sinks import service
from sinks.api import create_app, metrics_registry
from sinks.batch import DeadLetter, SinkRecord, Source
from sinks.config import parse_connector
from sinks.decode import WriterSchemas
from sinks.service import (
    BACKOFF,
    BatchAbandoned,
    ConnectorTask,
    consumer_config,
    dead_letter_headers,
)
from sinks.writer import DatabaseUnavailable, WriteResult


def connector(**extra: str) -> dict[str, object]:
    config = {
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "topics": "orders",
        "table.name.format": "orders",
        "insert.mode": "upsert",
        "pk.mode": "record_key",
        "pk.fields": "order_id",
        **extra,
    }
    return {"name": "momentum-orders-sink", "config": config}


def test_dead_letter_headers_are_connects_context_headers() -> None:
    letter = DeadLetter(
        Source("orders", 2, 249, b"k", b"garbage"),
        "VALUE_CONVERTER",
        "schemas.codec.DecodeError",
        "bad-magic-byte: first byte 0x67, expected 0x00",
    )
    headers = dict(dead_letter_headers(letter, "momentum-orders-sink"))
    assert headers == {
        "__connect.errors.topic": b"orders",
        "__connect.errors.partition": b"2",
        "__connect.errors.offset": b"249",
        "__connect.errors.connector.name": b"momentum-orders-sink",
        "__connect.errors.task.id": b"0",
        "__connect.errors.stage": b"VALUE_CONVERTER",
        "__connect.errors.class.name": b"io.confluent.connect.avro.AvroConverter",
        "__connect.errors.exception.class.name": b"schemas.codec.DecodeError",
        "__connect.errors.exception.message": b"bad-magic-byte: first byte 0x67, expected 0x00",
    }


def test_backoff_doubles_from_a_fifth_of_a_second_up_to_five() -> None:
    slept: list[float] = []
    outages = iter(range(7))

    def write() -> None:
        if next(outages, None) is not None:
            raise DatabaseUnavailable("Postgres away")

    retry(write, retry_on=DatabaseUnavailable, wait=BACKOFF, sleep=slept.append)
    assert slept == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_consumer_joins_connects_group_and_reads_committed() -> None:
    config = consumer_config("b:9092", parse_connector(connector()))
    assert config["group.id"] == "connect-momentum-orders-sink"
    assert config["enable.auto.commit"] is False
    assert config["auto.offset.reset"] == "earliest"
    assert config["isolation.level"] == "read_committed"
    assert (config["session.timeout.ms"], config["heartbeat.interval.ms"]) == (10000, 1000)
    # Well inside the read model's 1 s (librdkafka's default is 500 ms).
    assert config["fetch.wait.max.ms"] == service.SINK_FETCH_WAIT_MS < 500


def test_an_override_of_the_fetch_wait_wins() -> None:
    overridden = parse_connector(connector(**{"consumer.override.fetch.wait.max.ms": "50"}))
    assert consumer_config("b:9092", overridden)["fetch.wait.max.ms"] == "50"


def test_consumer_overrides_win() -> None:
    document = connector(**{"consumer.override.auto.offset.reset": "latest"})
    assert consumer_config("b:9092", parse_connector(document))["auto.offset.reset"] == "latest"


STATUS = {
    "connectors": {"momentum-orders-sink": {"retries": 3, "state": "waiting"}},
    "lag": {"orders": 12},
    "written": {"orders": 500},
    "dead_letters": {"orders": 1},
    "db_available": False,
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(name, labels) -> value of every sample in a Prometheus text page."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_are_the_status_figures_under_their_names_and_labels() -> None:
    status = cast(dict[str, Any], STATUS)
    page = samples(generate_latest(metrics_registry(lambda: status)).decode())
    assert page == {
        ("momentum_sink_lag_records", (("topic", "orders"),)): 12,
        ("momentum_sink_records_written_total", (("topic", "orders"),)): 500,
        ("momentum_sink_dead_letters_total", (("topic", "orders"),)): 1,
        ("momentum_sink_retries_total", (("connector", "momentum-orders-sink"),)): 3,
        ("momentum_sink_connector_running", (("connector", "momentum-orders-sink"),)): 0,
        ("momentum_sink_db_available", ()): 0,
    }


def test_metrics_are_served_as_prometheus_text_read_at_each_scrape() -> None:
    status: dict[str, Any] = dict(STATUS)

    class Service:
        def status(self) -> dict[str, Any]:
            return status

    client = TestClient(create_app(cast(Any, Service())))  # no lifespan: nothing starts
    first = client.get("/metrics")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/plain; version=")
    assert 'momentum_sink_records_written_total{topic="orders"} 500' in first.text
    status["written"] = {"orders": 501}
    assert 'momentum_sink_records_written_total{topic="orders"} 501' in client.get("/metrics").text


# A connector task's batch while Postgres is away, with the consumer and the writer faked.


class FakeMessage:
    def __init__(self, offset: int) -> None:
        self._offset = offset

    def topic(self) -> str:
        return "orders"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"v"

    def error(self) -> None:
        return None


class FakeConsumer:
    def __init__(self, strays: list[list[FakeMessage]] | None = None) -> None:
        self.strays = strays or []  # what each poll while paused hands back
        self.paused = False
        self.commits: list[list[tuple[str, int, int]]] = []

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("orders", 0)]

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused = True

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused = False

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        return self.strays.pop(0) if self.strays else []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])


class FlakyWriter:
    def __init__(self, outages: int) -> None:
        self.outages = outages
        self.writes = 0

    def write(self, records: list[SinkRecord]) -> WriteResult:
        self.writes += 1
        if self.writes <= self.outages:
            raise DatabaseUnavailable("Postgres away")
        return WriteResult(upserted=len(records))


def waiting_task(
    monkeypatch: pytest.MonkeyPatch, consumer: FakeConsumer, writer: FlakyWriter
) -> ConnectorTask:
    # Long enough for one poll while paused.
    monkeypatch.setattr(service, "BACKOFF", fixed_wait(0.01))
    task = ConnectorTask(
        parse_connector(connector()),
        "b:9092",
        "postgresql://nowhere/db",
        WriterSchemas(lambda _id: None),
        cast(Any, None),  # no dead letters in these batches
        threading.Event(),
    )
    task._consumer = cast(Any, consumer)
    task.writer = cast(Any, writer)
    task._last_lag_refresh = time.monotonic()  # no lag refresh (and no broker) while waiting

    def decode_all(sources: Any) -> tuple[list[SinkRecord], list[DeadLetter]]:
        return [SinkRecord(s, "orders", "k", {}, None) for s in sources], []

    monkeypatch.setattr(task, "_decode_all", decode_all)
    return task


def test_a_batch_waits_for_postgres_with_its_partitions_paused_then_commits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer, writer = FakeConsumer(), FlakyWriter(outages=2)
    task = waiting_task(monkeypatch, consumer, writer)
    task._handle(cast(Any, [FakeMessage(7), FakeMessage(8)]))
    assert writer.writes == 3
    assert (task.stats.retries, task.stats.state, task.stats.db_available) == (2, "running", True)
    assert consumer.paused is False
    assert consumer.commits == [[("orders", 0, 9)]]
    assert task.stats.written["orders"] == 2


def test_records_handed_out_while_waiting_mean_a_rebalance_and_abandon_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer, writer = FakeConsumer(strays=[[FakeMessage(0)]]), FlakyWriter(outages=1)
    task = waiting_task(monkeypatch, consumer, writer)
    with pytest.raises(BatchAbandoned, match="revoked"):
        task._handle(cast(Any, [FakeMessage(7)]))
    assert writer.writes == 1
    assert consumer.commits == []


class BufferedConsumer:
    """A client holding `held` records; records the timeouts it was asked to wait."""

    def __init__(self, held: int) -> None:
        self.held = [FakeMessage(i) for i in range(held)]
        self.waits: list[float] = []

    def poll(self, timeout: float) -> FakeMessage | None:
        self.waits.append(timeout)
        return self.held.pop(0) if self.held else None

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        self.waits.append(timeout)
        taken, self.held = self.held[:num_messages], self.held[num_messages:]
        return taken


def test_a_batch_gathers_briefly_after_its_first_record_without_waiting_for_it_to_fill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    task = waiting_task(monkeypatch, FakeConsumer(), FlakyWriter(outages=0))
    size = task.connector.batch_size
    few = BufferedConsumer(held=3)
    assert [m.offset() for m in task._next_batch(cast(Any, few))] == [0, 1, 2]
    # The first record is waited for, then the batch gathers for a short linger only.
    assert few.waits == [service.POLL_SECONDS, service.BATCH_LINGER_SECONDS]
    assert service.BATCH_LINGER_SECONDS < service.POLL_SECONDS
    backlog = BufferedConsumer(held=size + 5)
    assert len(task._next_batch(cast(Any, backlog))) == size
    idle = BufferedConsumer(held=0)
    assert task._next_batch(cast(Any, idle)) == []
    assert idle.waits == [service.POLL_SECONDS]
