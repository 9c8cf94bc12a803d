"""`momentum dlq`: list dead letters and replay them to the topic they came from.

momentum dlq list [TOPIC] [--json]      every letter in <topic>.dlq and the sink's
                                        <topic>.connect-dlq (all topics by default)
momentum dlq replay TOPIC [--limit N]   send TOPIC's dead letters back to TOPIC

Both find Kafka as `momentum status` finds the stack: the one running from
--state-dir, $MOMENTUM_STATE_DIR or .momentum; with none running there,
$KAFKA_BOOTSTRAP_SERVERS (a production deployment).

Dead letters keep the original key and value bytes and say why and where from
in their headers: the workers' (see `core.dead_letters`), or Kafka Connect's
`__connect.errors.*` for the sink's letters. Listing reads from the start
with assigned partitions (no group join, nothing committed). Replaying resumes
where the last replay of that topic stopped: its position is committed in the
group `momentum-dlq-replay-<topic>`, after the re-sent letters are flushed, so
a second replay sends only letters that arrived since (a crash between flush
and commit re-sends the last batch: at least once, which the flows absorb).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from core.dead_letters import (
    HEADER_DETAIL,
    HEADER_ERROR,
    HEADER_FAILED_AT,
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_TOPIC,
)
from core.observe import CORRELATION_HEADER

# Kafka Connect's dead-letter context headers (errors.deadletterqueue.context.headers.enable),
# which the embedded sink (sinks.service) writes too.
CONNECT_TOPIC = "__connect.errors.topic"
CONNECT_PARTITION = "__connect.errors.partition"
CONNECT_OFFSET = "__connect.errors.offset"
CONNECT_EXCEPTION_CLASS = "__connect.errors.exception.class.name"
CONNECT_EXCEPTION_MESSAGE = "__connect.errors.exception.message"
CONNECT_STAGE = "__connect.errors.stage"
CONNECT_DLQ_SUFFIX = ".connect-dlq"

HEADER_REPLAYED_FROM = "dlq.replayed-from"
LIST_GROUP = "momentum-dlq-list"  # librdkafka needs a group.id even when nothing joins it
REPLAY_GROUP_PREFIX = "momentum-dlq-replay-"
REPLAY_BATCH = 500
# How long to wait for the next message before deciding a partition has no more.
POLL_TIMEOUT_SECONDS = 1.0
# Give up when no partition yields anything this long before its end.
IDLE_TIMEOUT_SECONDS = 15.0
OFFSET_BEGINNING = -2  # confluent_kafka.OFFSET_BEGINNING
KAFKA_TIMEOUT_SECONDS = 10.0

Headers = list[tuple[str, bytes | None]] | None


class ReplayError(RuntimeError):
    """Dead letters could not be read or sent back; the message says why."""


# -- pure helpers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    dlq_topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    error: str
    detail: str
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    failed_at: datetime | None
    # The request the letter's message was sent for (core.observe); a replay keeps it.
    correlation_id: str | None = None

    @property
    def value_size(self) -> int:
        return len(self.value or b"")

    @property
    def position(self) -> str:
        """Where this letter is, as the replayed copy's header names it."""
        return f"{self.dlq_topic}@{self.offset}"


def parse_headers(headers: Headers) -> dict[str, str]:
    """Kafka headers as text; the last value of a repeated name wins."""
    parsed: dict[str, str] = {}
    for name, raw in headers or []:
        parsed[name] = "" if raw is None else raw.decode("utf-8", "replace")
    return parsed


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def dead_letter_from(
    dlq_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
) -> DeadLetter:
    """A dead letter from a consumed message; headers it lacks are left empty.

    The workers' `dlq.*` headers, or Kafka Connect's (the sink's letters), which
    say the stage and exception instead and carry no failure time.
    """
    fields = parse_headers(headers)
    failed_at_ms = _int_or_none(fields.get(HEADER_FAILED_AT))
    if HEADER_ERROR not in fields and CONNECT_EXCEPTION_CLASS in fields:
        stage = fields.get(CONNECT_STAGE)
        error = fields[CONNECT_EXCEPTION_CLASS] + (f" in {stage}" if stage else "")
        detail = fields.get(CONNECT_EXCEPTION_MESSAGE, "")
        source = (CONNECT_TOPIC, CONNECT_PARTITION, CONNECT_OFFSET)
    else:
        error, detail = fields.get(HEADER_ERROR, ""), fields.get(HEADER_DETAIL, "")
        source = (HEADER_TOPIC, HEADER_PARTITION, HEADER_OFFSET)
    return DeadLetter(
        dlq_topic=dlq_topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        error=error,
        detail=detail,
        source_topic=fields.get(source[0]) or None,
        source_partition=_int_or_none(fields.get(source[1])),
        source_offset=_int_or_none(fields.get(source[2])),
        failed_at=None
        if failed_at_ms is None
        else datetime.fromtimestamp(failed_at_ms / 1000, tz=UTC),
        correlation_id=fields.get(CORRELATION_HEADER) or None,
    )


def display_key(key: bytes | None) -> str:
    """Text keys as they are; anything else (public topics' Avro keys) as hex."""
    if key is None:
        return "-"
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return key.hex()
    return text if text.isprintable() else key.hex()


def letter_json(letter: DeadLetter) -> dict[str, Any]:
    body = asdict(letter)
    del body["key"], body["value"]
    body["key"] = display_key(letter.key)
    body["value_size"] = letter.value_size
    body["failed_at"] = letter.failed_at.isoformat() if letter.failed_at else None
    return body


def format_letter(letter: DeadLetter) -> str:
    source = (
        f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
        if letter.source_topic
        else "unknown source"
    )
    failed = letter.failed_at.isoformat(timespec="seconds") if letter.failed_at else "-"
    return (
        f"{letter.position} {letter.error or '-'} from {source} at {failed} "
        f"key={display_key(letter.key)} value={letter.value_size}B: {letter.detail}"
    )


def replay_target(letter: DeadLetter, default: str) -> str:
    """The topic to send a letter back to: the one its header names, else `default`."""
    return letter.source_topic or default


def replay_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    headers = [(HEADER_REPLAYED_FROM, letter.position.encode())]
    if letter.correlation_id:
        headers.append((CORRELATION_HEADER, letter.correlation_id.encode()))
    return headers


def start_offset(committed: int) -> int:
    """Where reading a partition starts: the committed position, else the log start.

    A negative `committed` is librdkafka's "nothing committed". A position older than
    the log start (retention deleted letters) is reset to it by auto.offset.reset.
    """
    return committed if committed >= 0 else OFFSET_BEGINNING


# -- Kafka ---------------------------------------------------------------------------------


class ConsumerLike(Protocol):
    """The parts of confluent_kafka.Consumer used here (unit tests pass a fake)."""

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...
    def committed(self, partitions: list[Any], timeout: float | None = None) -> list[Any]: ...
    def assign(self, partitions: list[Any]) -> None: ...
    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]: ...
    def commit(self, *, offsets: list[Any], asynchronous: bool = True) -> Any: ...
    def close(self) -> None: ...


def find_kafka(state_dir: Path, explicit: bool) -> str:
    """Kafka's bootstrap servers: the running stack's, found as `momentum status` finds it.

    With no stack running from `state_dir`, $KAFKA_BOOTSTRAP_SERVERS (production),
    unless the state directory was named on the command line.
    """
    from momentum.supervisor import launcher_alive, live_parts, read_stack

    stack = read_stack(state_dir)
    if stack and (launcher_alive(stack) or live_parts(stack)):
        bootstrap = stack.get("endpoints", {}).get("kafka_bootstrap_servers")
        if bootstrap:
            return str(bootstrap)
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured and not explicit:
        return configured
    raise ReplayError(
        f"no Momentum stack is running from {state_dir}"
        + ("" if explicit else " and KAFKA_BOOTSTRAP_SERVERS is not set")
        + "; start one with `momentum up`, or name its --state-dir"
        + ("" if explicit else ", or set KAFKA_BOOTSTRAP_SERVERS to your Kafka")
    )


def make_consumer(bootstrap: str, group_id: str) -> Any:
    from confluent_kafka import Consumer

    return Consumer(
        {
            **kafka_security(),
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            # The end of each partition is where listing and replaying stop.
            "enable.partition.eof": True,
            # Dead-letter topics are mostly empty: learn that quickly.
            "fetch.wait.max.ms": 100,
        }
    )


def make_producer(bootstrap: str) -> Any:
    from confluent_kafka import Producer

    # Faust (aiokafka) and the Java clients place a key with murmur2; librdkafka's
    # default (consistent_random) would replay a letter onto another partition than
    # its key's, splitting that key's state between two partitions.
    return Producer(
        {
            **kafka_security(),
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "partitioner": "murmur2_random",
        }
    )


def kafka_security() -> dict[str, Any]:
    """SASL/TLS properties from the settings (PLAINTEXT for the embedded stack)."""
    from core.kafka_clients import librdkafka_config
    from core.settings import get_settings

    return librdkafka_config(get_settings())


def partitions_of(consumer: ConsumerLike, topics: list[str]) -> list[tuple[str, int]]:
    """(topic, partition) for each topic the broker knows; unknown topics have none."""
    metadata = consumer.list_topics(timeout=KAFKA_TIMEOUT_SECONDS)
    found = []
    for topic in topics:
        meta = metadata.topics.get(topic)
        if meta is not None and meta.error is None:
            found += [(topic, p) for p in sorted(meta.partitions)]
    return found


def read_letters(
    consumer: ConsumerLike,
    topics: list[str],
    committed: Callable[[list[tuple[str, int]]], dict[tuple[str, int], int]] | None = None,
) -> Iterator[DeadLetter]:
    """Every letter of the dead-letter `topics` from where reading starts to each end.

    Starts at the log start, or at the positions `committed` returns. The end is
    librdkafka's partition-EOF event, not the high watermark: Tansu reports the
    last batch's base offset + 1 as the high watermark, which is short of the end
    when that batch holds several records. All topics are read at once, because
    even an empty partition takes a fetch round or two to say it is at its end.
    """
    from confluent_kafka import KafkaError, TopicPartition

    partitions = partitions_of(consumer, topics)
    if not partitions:
        return
    positions = committed(partitions) if committed else {}
    consumer.assign(
        [TopicPartition(t, p, start_offset(positions.get((t, p), -1))) for t, p in partitions]
    )
    reading = set(partitions)
    idle_until = time.monotonic() + IDLE_TIMEOUT_SECONDS
    while reading:
        messages = consumer.consume(num_messages=REPLAY_BATCH, timeout=POLL_TIMEOUT_SECONDS)
        if messages:
            idle_until = time.monotonic() + IDLE_TIMEOUT_SECONDS
        elif time.monotonic() > idle_until:
            raise ReplayError(
                f"did not reach the end of {sorted(reading)} in {IDLE_TIMEOUT_SECONDS:.0f}s"
            )
        for message in messages:
            error = message.error()
            if error is None:
                yield dead_letter_from(
                    message.topic(),
                    message.partition(),
                    message.offset(),
                    message.key(),
                    message.value(),
                    message.headers(),
                )
            elif error.code() == KafkaError._PARTITION_EOF:
                reading.discard((message.topic(), message.partition()))
            else:
                raise ReplayError(f"{message.topic()}: {error.str()}")


def dlq_topics(topic: str | None) -> list[str]:
    """`<topic>.dlq` for every registry topic, or for the one named (source or dlq name)."""
    from core.topics import ALL_TOPICS, BY_NAME, DLQ_SUFFIX

    if topic is None:
        return [spec.dlq for spec in ALL_TOPICS]
    if topic.endswith(CONNECT_DLQ_SUFFIX):
        raise ValueError(
            f"{topic} holds the sink's dead letters: `momentum dlq list` shows them; "
            "replay sends the workers' letters back only"
        )
    name = topic.removesuffix(DLQ_SUFFIX)
    if name not in BY_NAME:
        raise ValueError(f"unknown topic {topic!r}; known: {', '.join(sorted(BY_NAME))}")
    return [BY_NAME[name].dlq]


def connect_dlq_topics(
    source: str | None, connectors: Iterable[Any], broker_topics: Iterable[str]
) -> list[str]:
    """The sink's dead-letter topics (errors.deadletterqueue.topic.name), for `source` or all.

    Named by the connector configs, and also any `*.connect-dlq` the broker has:
    the production image does not ship `connectors/`, Connect has them.
    """
    found = {
        c.dlq_topic for c in connectors if c.dlq_topic and (source is None or source in c.topics)
    }
    found |= {
        name
        for name in broker_topics
        if name.endswith(CONNECT_DLQ_SUFFIX)
        and (source is None or name == source + CONNECT_DLQ_SUFFIX)
    }
    return sorted(found)


def listed_topics(
    topic: str | None, connectors: Iterable[Any], broker_topics: Iterable[str]
) -> list[str]:
    """What `dlq list` reads: the workers' `.dlq` topics and the sink's `.connect-dlq` ones.

    A source topic names both of its kinds; a dead-letter topic's own name, just it.
    """
    from core.topics import DLQ_SUFFIX

    if topic is not None and topic.endswith(CONNECT_DLQ_SUFFIX):
        return [topic]
    if topic is not None and topic.endswith(DLQ_SUFFIX):
        return dlq_topics(topic)
    return dlq_topics(topic) + connect_dlq_topics(topic, connectors, broker_topics)


def list_dead_letters(
    bootstrap: str, topic: str | None, as_json: bool, out: Callable[[str], None]
) -> int:
    from sinks.config import load_connectors

    consumer = make_consumer(bootstrap, LIST_GROUP)
    count = 0
    try:
        broker_topics = consumer.list_topics(timeout=KAFKA_TIMEOUT_SECONDS).topics
        topics = listed_topics(topic, load_connectors(), broker_topics)
        for letter in read_letters(consumer, topics):
            out(json.dumps(letter_json(letter)) if as_json else format_letter(letter))
            count += 1
    finally:
        consumer.close()
    if not as_json:
        out(f"{count} dead letter{'s' if count != 1 else ''}")
    return count


def replay_dead_letters(
    bootstrap: str,
    topic: str,
    limit: int | None,
    out: Callable[[str], None],
    progress: Callable[[int], None] = lambda _sent: None,
) -> int:
    """Send `topic`'s dead letters back, at most `limit`; returns how many were sent."""
    from confluent_kafka import TopicPartition

    [dlq_topic] = dlq_topics(topic)
    source = dlq_topic.removesuffix(".dlq")
    consumer = make_consumer(bootstrap, REPLAY_GROUP_PREFIX + source)
    producer = make_producer(bootstrap)
    failures: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    def committed(partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        asked = [TopicPartition(t, p) for t, p in partitions]
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in consumer.committed(asked, timeout=KAFKA_TIMEOUT_SECONDS)
        }

    pending: dict[int, int] = {}  # partition -> next offset to commit once flushed
    sent = 0

    def flush_and_commit() -> None:
        if not pending:
            return
        left = producer.flush(KAFKA_TIMEOUT_SECONDS)
        if left or failures:
            reason = failures[0] if failures else f"{left} not delivered in time"
            raise ReplayError(f"replay to {source} failed ({reason}); position not moved")
        offsets = [TopicPartition(dlq_topic, p, offset) for p, offset in pending.items()]
        consumer.commit(offsets=offsets, asynchronous=False)
        pending.clear()

    try:
        for letter in read_letters(consumer, [dlq_topic], committed):
            if limit is not None and sent >= limit:
                break
            producer.produce(
                replay_target(letter, source),
                key=letter.key,
                value=letter.value,
                headers=replay_headers(letter),
                on_delivery=delivered,
            )
            producer.poll(0)
            pending[letter.partition] = letter.offset + 1
            sent += 1
            progress(sent)
            if sent % REPLAY_BATCH == 0:
                flush_and_commit()
        flush_and_commit()
    finally:
        consumer.close()
    out(f"replayed {sent} dead letter{'s' if sent != 1 else ''} from {dlq_topic} to {source}")
    return sent


# -- CLI -----------------------------------------------------------------------------------


def kafka_of(args: argparse.Namespace) -> str:
    from momentum.cli import state_dir_of

    return find_kafka(state_dir_of(args), explicit=bool(args.state_dir))


def cmd_list(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    try:
        list_dead_letters(kafka_of(args), args.topic, args.json, print)
    except (ValueError, KafkaException, ReplayError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    try:
        from momentum.progress import working

        with working(f"replaying dead letters of {args.topic}") as update:
            replay_dead_letters(
                kafka_of(args),
                args.topic,
                args.limit,
                print,
                progress=lambda sent: update(f"replaying {args.topic}: {sent} sent"),
            )
    except (ValueError, KafkaException, ReplayError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def add_dlq_commands(subparsers: Any) -> None:
    """Register `dlq list` and `dlq replay` on the `momentum` parser's subparsers."""
    dlq = subparsers.add_parser("dlq", help="list and replay dead letters")
    commands = dlq.add_subparsers(dest="dlq_command", required=True)

    listing = commands.add_parser("list", help="print dead letters (all topics by default)")
    listing.add_argument("topic", nargs="?", help="source topic, e.g. order-commands")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument("--state-dir", help="default $MOMENTUM_STATE_DIR or .momentum")
    listing.set_defaults(func=cmd_list)

    replay = commands.add_parser("replay", help="send a topic's dead letters back to it")
    replay.add_argument("topic", help="source topic, e.g. order-commands")
    replay.add_argument("--limit", type=positive_int, help="replay at most N letters")
    replay.add_argument("--state-dir", help="default $MOMENTUM_STATE_DIR or .momentum")
    replay.set_defaults(func=cmd_replay)
