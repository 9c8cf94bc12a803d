"""The embedded stand-in for Kafka Connect's JDBC sink: one consumer thread per connector.

Each connector's task loops: consume a batch (up to `batch.size` records or
half a second), decode keys and values with writer schemas from the registry,
write the batch to Postgres in one transaction, send what could not be decoded
or written to the connector's dead-letter topic, and only then commit the
Kafka offsets. A crash anywhere before the commit repeats the batch, which the
idempotent upsert absorbs.

When Postgres (or the registry) cannot be reached, the task keeps its batch,
pauses its partitions (polling on, so it stays in the group), retries with
capped exponential backoff, and commits nothing until the batch is written.
A rebalance while it waits abandons the batch: the partitions restart from the
committed offsets, wherever they are assigned.

Differences from Kafka Connect, by design: one task per connector whatever
`tasks.max` says; connection errors are retried forever (Connect gives up after
`max.retries` and then dead-letters the batch); a tombstone on a connector
with `delete.enabled=false` is dead-lettered (Connect fails the task).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from core.end_offsets import known_watermarks
from core.retrying import exponential_backoff, retry
from schemas.codec import DecodeError
from schemas.errors import RegistryUnavailable
from sinks.batch import DeadLetter, SinkRecord, Source, next_offsets
from sinks.config import ConnectorConfig
from sinks.ddl import SchemaError, TableShape, key_column, table_shape
from sinks.decode import WriterSchemas, decode
from sinks.metrics import BATCH_SECONDS
from sinks.writer import DatabaseUnavailable, PostgresWriter, WriteMethod, WriteResult

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
# After a batch's first record: a few transactions a second at most, each well behind 1 s.
BATCH_LINGER_SECONDS = 0.2
SINK_FETCH_WAIT_MS = 200
# Asking the broker for every partition's ends is not free: every 2 s, the five
# connectors took 7% of a core from Tansu. Operators read lag on a scrape interval.
LAG_REFRESH_SECONDS = 10.0
IDLE_PING_SECONDS = 5.0
# Between attempts at a batch (or at its dead letters): 0.2, 0.4, 0.8, ... 5 s.
BACKOFF = exponential_backoff(first=0.2, cap=5.0)

# Kafka Connect's dead-letter context headers (errors.deadletterqueue.context.headers.enable).
H_TOPIC = "__connect.errors.topic"
H_PARTITION = "__connect.errors.partition"
H_OFFSET = "__connect.errors.offset"
H_CONNECTOR = "__connect.errors.connector.name"
H_TASK = "__connect.errors.task.id"
H_STAGE = "__connect.errors.stage"
H_CLASS = "__connect.errors.class.name"
H_EXC_CLASS = "__connect.errors.exception.class.name"
H_EXC_MESSAGE = "__connect.errors.exception.message"

DeliveryReport = Callable[[KafkaError | None, Message], None]

STAGE_CLASSES = {
    "KEY_CONVERTER": "io.confluent.connect.avro.AvroConverter",
    "VALUE_CONVERTER": "io.confluent.connect.avro.AvroConverter",
    "TASK_PUT": "io.confluent.connect.jdbc.sink.JdbcSinkTask",
}


def source_of(message: Message) -> Source:
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    # Consumed records without an error always carry their coordinates.
    assert topic is not None and partition is not None and offset is not None
    key, value = message.key(), message.value()
    return Source(topic, partition, offset, key, value)


def dead_letter_headers(letter: DeadLetter, connector: str) -> list[tuple[str, str | bytes | None]]:
    """Connect writes every context header as a UTF-8 string."""
    s = letter.source
    values = {
        H_TOPIC: s.topic,
        H_PARTITION: str(s.partition),
        H_OFFSET: str(s.offset),
        H_CONNECTOR: connector,
        H_TASK: "0",
        H_STAGE: letter.stage,
        H_CLASS: STAGE_CLASSES.get(letter.stage, ""),
        H_EXC_CLASS: letter.error,
        H_EXC_MESSAGE: letter.message[:4000],
    }
    return [(k, v.encode("utf-8", "replace")) for k, v in values.items()]


def consumer_config(
    bootstrap: str, connector: ConnectorConfig, security: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    config: dict[str, Any] = {
        # SASL/TLS properties (core.kafka_clients.librdkafka_config), then our own.
        **(security or {}),
        "bootstrap.servers": bootstrap,
        "group.id": connector.group_id,
        "client.id": f"{connector.group_id}-0",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        # Short group timeouts, as the workers': with these a join on Tansu takes about
        # 5 s, where the defaults can take 30 s.
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
        # Tansu holds a fetch for its whole wait (core/tuning.py): librdkafka's 500 ms was
        # the floor of the read model's lag. Every fetch held costs the broker too: five
        # connectors at the workers' 50 ms took 15% of a core from an idle Tansu.
        "fetch.wait.max.ms": SINK_FETCH_WAIT_MS,
    }
    # consumer.override.* in the connector config wins, as on Connect.
    config.update(connector.consumer_overrides)
    return config


@dataclass
class TaskStats:
    """What /status and /metrics report for one connector; written by its thread only."""

    state: str = "starting"
    subscribed: bool = False
    db_reached: bool = False
    db_available: bool = False
    assigned: list[str] = field(default_factory=list)
    lag: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    retries: int = 0
    last_error: str | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "subscribed": self.subscribed,
            "db_available": self.db_available,
            "assigned": list(self.assigned),
            "lag": dict(self.lag),
            "written": dict(self.written),
            "dead_letters": dict(self.dead_letters),
            "batches": self.batches,
            "retries": self.retries,
            "last_error": self.last_error,
        }


class BatchAbandoned(Exception):
    """The sink is stopping, or the partitions were taken away, before the batch was written."""


class DeadLettersRefused(Exception):
    """The broker refused some dead letters; they are sent again."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} dead letters refused")


class ConnectorTask(threading.Thread):
    def __init__(
        self,
        connector: ConnectorConfig,
        bootstrap: str,
        database_url: str,
        schemas: WriterSchemas,
        producer: Producer,
        stopping: threading.Event,
        method: WriteMethod = WriteMethod.COPY,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name=f"sink-{connector.name}", daemon=True)
        self.connector = connector
        self.bootstrap = bootstrap
        self.security = dict(security or {})
        self.schemas = schemas
        self.producer = producer
        self.stopping = stopping
        self.stats = TaskStats(
            written={t: 0 for t in connector.topics},
            dead_letters={t: 0 for t in connector.topics},
            lag={t: 0 for t in connector.topics},
        )
        self.writer = PostgresWriter(
            database_url,
            pk_field=connector.pk_field,
            auto_create=connector.auto_create,
            auto_evolve=connector.auto_evolve,
            method=method,
            application_name=f"momentum-sink-{connector.name}"[:63],
        )
        self._consumer: Consumer | None = None
        self._generation = 0  # bumped on every revoke: a held batch is then stale
        self._paused = False
        self._last_db_contact = 0.0
        self._last_lag_refresh = 0.0
        self._shapes: dict[tuple[str, int, int], TableShape] = {}

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> None:
        try:
            consumer = Consumer(consumer_config(self.bootstrap, self.connector, self.security))
        except KafkaException as exc:  # e.g. a consumer.override.* librdkafka does not know
            log.error("%s: cannot create the consumer: %s", self.connector.name, exc)
            self.stats.state = "failed"
            self.stats.last_error = str(exc)
            return
        self._consumer = consumer
        try:
            consumer.subscribe(
                list(self.connector.topics),
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
            self.stats.subscribed = True
            self.stats.state = "running"
            while not self.stopping.is_set():
                self._housekeeping()
                batch = [m for m in self._next_batch(consumer) if self._usable(m)]
                if batch:
                    try:
                        self._handle(batch)
                    except BatchAbandoned as exc:
                        log.info("%s: batch abandoned (%s)", self.connector.name, exc)
                        if not self.stopping.is_set():
                            self._rewind()
        except Exception as exc:  # a bug or a fatal client error: report it, do not spin
            log.exception("%s: task failed", self.connector.name)
            self.stats.state = "failed"
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
        finally:
            if self.stats.state != "failed":
                self.stats.state = "stopped"
            # No commit here: only written batches are ever committed.
            consumer.close()
            self.writer.close()

    def _next_batch(self, consumer: Consumer) -> list[Message]:
        """Up to batch.size records: waits up to POLL_SECONDS for the first, then gathers
        for BATCH_LINGER_SECONDS. `consume(batch.size, POLL_SECONDS)` waited out its whole
        timeout for every batch not full, the read model's lag; taking only what the
        client held wrote a transaction per fetch, which cost the saga CPU (README,
        Performance, step 4)."""
        first = consumer.poll(POLL_SECONDS)
        if first is None:
            return []
        more = self.connector.batch_size - 1
        return [first, *consumer.consume(more, BATCH_LINGER_SECONDS)] if more else [first]

    def _usable(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.code() != KafkaError._PARTITION_EOF:
            log.warning("%s: consumer error: %s", self.connector.name, error)
        return False

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer.assign(partitions)
        if self._paused:
            # Still waiting on the database: new partitions wait too.
            consumer.pause(partitions)
        self.stats.assigned = sorted(f"{p.topic}[{p.partition}]" for p in partitions)
        log.info("%s: assigned %s", self.connector.name, self.stats.assigned)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._generation += 1
        self.stats.assigned = []

    # -- one batch --------------------------------------------------------------------
    def _handle(self, messages: Sequence[Message]) -> None:
        began = time.perf_counter()
        generation = self._generation
        sources = [source_of(m) for m in messages]

        def write() -> tuple[list[DeadLetter], WriteResult]:
            if self.stopping.is_set():
                raise BatchAbandoned("stopping")
            if generation != self._generation:
                raise BatchAbandoned("partitions were revoked")
            records, dead = self._decode_all(sources)
            return dead, self.writer.write(records) if records else WriteResult()

        # Tried until it is written: an outage of Postgres or the registry is waited
        # out with the partitions paused, and nothing is committed meanwhile.
        dead, result = retry(
            write,
            retry_on=(DatabaseUnavailable, RegistryUnavailable),
            wait=BACKOFF,
            on_retry=self._wait_for_dependency,
            sleep=self._poll_paused,
        )
        self._mark_db(True)
        dead += [
            DeadLetter(f.record.source, "TASK_PUT", f.error, f.message) for f in result.failures
        ]
        self._send_dead_letters(dead)
        self._resume()
        self._commit(sources)
        failed = {id(d.source) for d in dead}
        for s in sources:
            if id(s) not in failed:
                self.stats.written[s.topic] = self.stats.written.get(s.topic, 0) + 1
        self.stats.batches += 1
        BATCH_SECONDS.labels(self.connector.name).observe(time.perf_counter() - began)

    def _wait_for_dependency(self, exc: BaseException, delay: float) -> None:
        """Report the wait and pause the partitions; `_poll_paused` then waits."""
        if isinstance(exc, DatabaseUnavailable):
            self._mark_db(False)
        self.stats.retries += 1
        self.stats.last_error = str(exc)
        self.stats.state = "waiting"
        log.warning("%s: %s; retrying in %.1fs", self.connector.name, exc, delay)
        consumer = self._consumer
        assert consumer is not None
        if not self._paused:
            consumer.pause(consumer.assignment())
            self._paused = True

    def _poll_paused(self, delay: float) -> None:
        """Wait `delay` seconds polling: that keeps the group membership and serves rebalances."""
        consumer = self._consumer
        assert consumer is not None
        deadline = time.monotonic() + delay
        while not self.stopping.is_set() and time.monotonic() < deadline:
            stray = consumer.consume(1, min(0.2, max(deadline - time.monotonic(), 0.0)))
            if any(m.error() is None for m in stray):
                # Only a rebalance can hand us records now; the held batch is stale then.
                self._generation += 1
            self._refresh_lag()

    def _rewind(self) -> None:
        """Back to the committed offsets: the abandoned batch (and any stray) is read again."""
        consumer = self._consumer
        assert consumer is not None
        self._resume()
        assignment = consumer.assignment()
        if not assignment:
            return
        try:
            committed = consumer.committed(assignment, timeout=10)
        except KafkaException as exc:
            log.warning("%s: cannot read committed offsets to rewind: %s", self.connector.name, exc)
            return
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            try:
                consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            except KafkaException as exc:
                # Not fetching yet: it will start from the committed offset anyway.
                log.debug("%s: seek %s skipped: %s", self.connector.name, tp, exc)

    def _resume(self) -> None:
        if self._paused and self._consumer is not None:
            self._consumer.resume(self._consumer.assignment())
            self._paused = False
        self.stats.state = "running"

    def _decode_all(self, sources: Sequence[Source]) -> tuple[list[SinkRecord], list[DeadLetter]]:
        records: list[SinkRecord] = []
        dead: list[DeadLetter] = []
        c = self.connector
        for s in sources:
            if s.key is None:
                message = "a record without a key cannot be upserted with pk.mode=record_key"
                dead.append(DeadLetter(s, "KEY_CONVERTER", "MissingKey", message))
                continue
            stage = "KEY_CONVERTER"
            try:
                key_writer, key = decode(s.key, self.schemas)
                stage = "VALUE_CONVERTER"
                table = c.table_for(s.topic)
                if s.value is None:
                    if not c.delete_enabled:
                        raise SchemaError(
                            f"a tombstone, but connector {c.name} has delete.enabled=false"
                        )
                    key_column(key_writer.schema, c.pk_field)  # a tombstone needs a usable key
                    records.append(SinkRecord(s, table, key, None, None))
                    continue
                value_writer, value = decode(s.value, self.schemas)
                stage = "TASK_PUT"
                shape = self._shape(
                    table,
                    key_writer.schema_id,
                    key_writer.schema,
                    value_writer.schema_id,
                    value_writer.schema,
                )
                records.append(SinkRecord(s, table, key, value, shape))
            except (DecodeError, SchemaError) as exc:
                dead.append(DeadLetter(s, stage, _qualified(exc), str(exc)))
        return records, dead

    def _shape(
        self, table: str, key_id: int, key_schema: Any, value_id: int, value_schema: Any
    ) -> TableShape:
        ident = (table, key_id, value_id)
        shape = self._shapes.get(ident)
        if shape is None:
            shape = table_shape(table, key_schema, value_schema, self.connector.pk_field)
            self._shapes[ident] = shape
        return shape

    # -- side effects -----------------------------------------------------------------
    def _send_dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        if not dead:
            return
        c = self.connector
        for letter in dead:
            s = letter.source
            log.warning(
                "%s: dead letter %s[%d]@%d at %s: %s: %s",
                c.name,
                s.topic,
                s.partition,
                s.offset,
                letter.stage,
                letter.error,
                letter.message,
            )
            self.stats.dead_letters[s.topic] = self.stats.dead_letters.get(s.topic, 0) + 1
        if not c.errors_tolerate_all:
            # Connect stops the task; the batch stays uncommitted for after the fix.
            raise RuntimeError(f"{c.name}: a record failed and errors.tolerance=none")
        if c.dlq_topic is None:
            return  # tolerated and logged, as Connect does without a DLQ topic
        self._produce_all(dead)

    def _produce_all(self, dead: Sequence[DeadLetter]) -> None:
        """Deliver every dead letter before the offsets move on; resend what the broker refused."""
        pending = list(dead)

        def send_pending() -> None:
            nonlocal pending
            pending = self._produce(pending)
            if pending:
                raise DeadLettersRefused(len(pending))

        def report(exc: BaseException, _delay: float) -> None:
            log.warning("%s: %s; resending", self.connector.name, exc)

        retry(send_pending, retry_on=DeadLettersRefused, wait=BACKOFF, on_retry=report)

    def _produce(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        """Send the letters to the dead-letter topic; those the broker refused."""
        topic = self.connector.dlq_topic
        assert topic is not None
        refused: list[DeadLetter] = []

        def reporter(letter: DeadLetter) -> DeliveryReport:
            def report(err: KafkaError | None, _msg: Message) -> None:
                if err is not None:
                    refused.append(letter)

            return report

        for letter in letters:
            headers = (
                dead_letter_headers(letter, self.connector.name)
                if self.connector.dlq_context_headers
                else None
            )
            self.producer.produce(
                topic,
                key=letter.source.key,
                value=letter.source.value,
                headers=headers,
                on_delivery=reporter(letter),
            )
        # Every message ends in a delivery report, success or failure (message.timeout.ms).
        while self.producer.flush(1.0) > 0:
            if self.stopping.is_set():
                raise BatchAbandoned("stopping while dead letters were in flight")
        return refused

    def _commit(self, sources: Sequence[Source]) -> None:
        assert self._consumer is not None
        offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets(sources).items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # The group moved on (rebalance): the batch will be delivered and upserted again.
            log.warning(
                "%s: offset commit failed (%s); the batch may repeat", self.connector.name, exc
            )

    # -- status -----------------------------------------------------------------------
    def _mark_db(self, ok: bool) -> None:
        self.stats.db_available = ok
        if ok:
            self.stats.db_reached = True
            self._last_db_contact = time.monotonic()

    def _housekeeping(self) -> None:
        self._refresh_lag()
        if time.monotonic() - self._last_db_contact >= IDLE_PING_SECONDS:
            try:
                self.writer.ping()
                self._mark_db(True)
            except DatabaseUnavailable as exc:
                self._mark_db(False)
                self.stats.last_error = str(exc)
                self._last_db_contact = time.monotonic()  # ping again later, not every poll

    def _refresh_lag(self) -> None:
        now = time.monotonic()
        if now - self._last_lag_refresh < LAG_REFRESH_SECONDS or self._consumer is None:
            return
        self._last_lag_refresh = now
        try:
            self.stats.lag = topic_lag(self._consumer, self.connector.topics)
        except KafkaException as exc:
            log.debug("%s: lag not refreshed: %s", self.connector.name, exc)


def topic_lag(consumer: Consumer, topics: Sequence[str]) -> dict[str, int]:
    """Records behind per topic: the partitions' ends minus the group's committed offsets.

    Tansu answers ListOffsets(latest) with the last batch's base offset + 1, which
    undercounts; the ends come from `known_watermarks`, which also takes the high
    watermark of this consumer's fetch responses (see core.end_offsets).
    """
    metadata = consumer.list_topics(timeout=5)
    partitions = [
        TopicPartition(t, p)
        for t in topics
        if t in metadata.topics
        for p in metadata.topics[t].partitions
    ]
    lag = {t: 0 for t in topics}
    for tp in consumer.committed(partitions, timeout=5):
        low, high = known_watermarks(consumer, tp.topic, tp.partition, timeout=2)
        done = tp.offset if tp.offset >= 0 else low
        lag[tp.topic] += max(high - done, 0)
    return lag


def _qualified(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def ensure_dead_letter_topics(
    bootstrap: str,
    connectors: Sequence[ConnectorConfig],
    security: Mapping[str, Any] | None = None,
) -> None:
    """Connect creates a missing dead-letter topic with one partition; so do we."""
    wanted = {
        c.dlq_topic: int(c.raw.get("errors.deadletterqueue.topic.replication.factor", "3"))
        for c in connectors
        if c.dlq_topic
    }
    if not wanted:
        return
    admin = AdminClient({**(security or {}), "bootstrap.servers": bootstrap})
    new = [NewTopic(name, 1, rf) for name, rf in wanted.items()]
    for name, future in admin.create_topics(new, request_timeout=15).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            log.debug("dead-letter topic %s exists", name)


class SinkService:
    """All connector tasks, their shared producer and registry cache, and their figures."""

    def __init__(
        self,
        connectors: Sequence[ConnectorConfig],
        bootstrap: str,
        database_url: str,
        lookup: Callable[[int], Any | None],
        method: WriteMethod = WriteMethod.COPY,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.connectors = list(connectors)
        self.bootstrap = bootstrap
        self.security = dict(security or {})
        self.stopping = threading.Event()
        self.producer = Producer(
            {
                **self.security,
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 30000,
                "client.id": "momentum-sink-dlq",
            }
        )
        schemas = WriterSchemas(lookup)
        self.tasks = [
            ConnectorTask(
                c,
                bootstrap,
                database_url,
                schemas,
                self.producer,
                self.stopping,
                method,
                self.security,
            )
            for c in self.connectors
        ]

    def start(self) -> None:
        ensure_dead_letter_topics(self.bootstrap, self.connectors, self.security)
        for task in self.tasks:
            task.start()

    def stop(self, timeout: float = 15.0) -> None:
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for task in self.tasks:
            task.join(max(deadline - time.monotonic(), 0.1))
        self.producer.flush(5)

    def healthy(self) -> bool:
        stats = [t.stats for t in self.tasks]
        return all(s.subscribed and s.state != "failed" for s in stats) and all(
            s.db_reached for s in stats
        )

    def status(self) -> dict[str, Any]:
        connectors: dict[str, Any] = {}
        lag: dict[str, int] = {}
        written: dict[str, int] = {}
        dead: dict[str, int] = {}
        for task in self.tasks:
            snap = task.stats.snapshot()
            c = task.connector
            connectors[c.name] = {
                **snap,
                "topics": list(c.topics),
                "tables": sorted({c.table_for(t) for t in c.topics}),
                "dead_letter_topic": c.dlq_topic,
            }
            for source, into in (
                (snap["lag"], lag),
                (snap["written"], written),
                (snap["dead_letters"], dead),
            ):
                for topic, n in source.items():
                    into[topic] = into.get(topic, 0) + n
        return {
            "connectors": connectors,
            "lag": lag,
            "written": written,
            "dead_letters": dead,
            "db_available": all(t.stats.db_available for t in self.tasks),
        }
