"""Dead-letter CLI helpers: headers, formatting, replay positions, and the read loop."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError

from core.dead_letters import (
    HEADER_FAILED_AT,
    HEADER_OFFSET,
    HEADER_TOPIC,
    dead_letter_headers,
)
from core.topics import ALL_TOPICS
from momentum import dlq

FAILED_AT = datetime(2026, 11, 2, 12, 0, 1, 500000, tzinfo=UTC)
FAILED_AT_MS = str(int(FAILED_AT.timestamp() * 1000)).encode()


def headers() -> list[tuple[str, bytes | None]]:
    """What streams.dead_letters writes, with a fixed failure time."""
    written: list[tuple[str, bytes | None]] = list(
        dead_letter_headers("rule-error", "cart c1 is empty", "cart-commands", 3, 41)
    )
    return [(name, FAILED_AT_MS if name == HEADER_FAILED_AT else value) for name, value in written]


def letter(**overrides: Any) -> dlq.DeadLetter:
    values: dict[str, Any] = {
        "dlq_topic": "cart-commands.dlq",
        "partition": 0,
        "offset": 7,
        "key": b"c1",
        "value": b"\x00\x00\x00\x00\x01abc",
        "headers": headers(),
    }
    values.update(overrides)
    return dlq.dead_letter_from(**values)


def test_dead_letter_is_read_from_the_headers_the_workers_write() -> None:
    assert letter() == dlq.DeadLetter(
        dlq_topic="cart-commands.dlq",
        partition=0,
        offset=7,
        key=b"c1",
        value=b"\x00\x00\x00\x00\x01abc",
        error="rule-error",
        detail="cart c1 is empty",
        source_topic="cart-commands",
        source_partition=3,
        source_offset=41,
        failed_at=FAILED_AT,
    )


def test_missing_or_garbled_headers_leave_fields_empty() -> None:
    bare = letter(headers=[(HEADER_OFFSET, b"not-a-number"), ("other", None)])
    assert (bare.error, bare.detail, bare.source_topic) == ("", "", None)
    assert (bare.source_partition, bare.source_offset, bare.failed_at) == (None, None, None)
    assert letter(headers=None).source_topic is None


def test_parse_headers_decodes_and_keeps_the_last_repeat() -> None:
    parsed = dlq.parse_headers([("a", b"1"), ("b", None), ("a", b"2"), ("c", b"\xff")])
    assert parsed == {"a": "2", "b": "", "c": "\ufffd"}


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        (b"c1", "c1"),
        (None, "-"),
        # Public topics' keys are Avro in the wire format: not text, shown as hex.
        (b"\x00\x00\x00\x00\x02\x04o1", "0000000002046f31"),
        (b"\xff\xfe", "fffe"),
    ],
)
def test_display_key(key: bytes | None, shown: str) -> None:
    assert dlq.display_key(key) == shown


def test_format_letter_is_one_line_with_everything_an_operator_needs() -> None:
    line = dlq.format_letter(letter())
    assert line == (
        "cart-commands.dlq@7 rule-error from cart-commands[3]@41 at 2026-11-02T12:00:01+00:00 "
        "key=c1 value=8B: cart c1 is empty"
    )
    assert "\n" not in dlq.format_letter(letter(headers=None))


def test_letter_json_has_no_raw_bytes() -> None:
    body = dlq.letter_json(letter())
    assert json.loads(json.dumps(body)) == {
        "dlq_topic": "cart-commands.dlq",
        "partition": 0,
        "offset": 7,
        "key": "c1",
        "value_size": 8,
        "error": "rule-error",
        "detail": "cart c1 is empty",
        "source_topic": "cart-commands",
        "source_partition": 3,
        "source_offset": 41,
        "failed_at": "2026-11-02T12:00:01.500000+00:00",
        "correlation_id": None,
    }


def test_replay_goes_to_the_header_topic_and_says_where_from() -> None:
    assert dlq.replay_target(letter(), "order-commands") == "cart-commands"
    assert dlq.replay_target(letter(headers=None), "order-commands") == "order-commands"
    assert dlq.replay_headers(letter()) == [("dlq.replayed-from", b"cart-commands.dlq@7")]


def test_a_replayed_letter_keeps_the_correlation_id_of_its_request() -> None:
    kept = letter(headers=[*headers(), ("correlation.id", b"c-42")])
    assert kept.correlation_id == "c-42"
    assert dlq.replay_headers(kept) == [
        ("dlq.replayed-from", b"cart-commands.dlq@7"),
        ("correlation.id", b"c-42"),
    ]


@pytest.mark.parametrize(("committed", "start"), [(-1001, -2), (0, 0), (12, 12)])
def test_start_offset_is_the_committed_position_else_the_beginning(
    committed: int, start: int
) -> None:
    assert dlq.start_offset(committed) == start


def test_dlq_topics_every_registry_topic_or_the_one_named() -> None:
    assert dlq.dlq_topics(None) == [f"{spec.name}.dlq" for spec in ALL_TOPICS]
    assert dlq.dlq_topics("order-commands") == ["order-commands.dlq"]
    assert dlq.dlq_topics("order-commands.dlq") == ["order-commands.dlq"]
    with pytest.raises(ValueError, match="unknown topic"):
        dlq.dlq_topics("nope")


def test_cli_registers_list_and_replay() -> None:
    parser = argparse.ArgumentParser(prog="momentum")
    dlq.add_dlq_commands(parser.add_subparsers(dest="command", required=True))
    listing = parser.parse_args(["dlq", "list", "--json"])
    assert (listing.func, listing.topic, listing.json) == (dlq.cmd_list, None, True)
    replay = parser.parse_args(["dlq", "replay", "order-commands", "--limit", "5"])
    assert (replay.func, replay.topic, replay.limit) == (dlq.cmd_replay, "order-commands", 5)
    for bad in (["dlq"], ["dlq", "replay"], ["dlq", "replay", "t", "--limit", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


# The read loop, against a fake consumer.

EOF = KafkaError(KafkaError._PARTITION_EOF)
DLQ = "order-commands.dlq"


@dataclass
class FakeMessage:
    p: int
    o: int
    err: KafkaError | None = None
    t: str = DLQ

    def error(self) -> KafkaError | None:
        return self.err

    def topic(self) -> str:
        return self.t

    def partition(self) -> int:
        return self.p

    def offset(self) -> int:
        return self.o

    def key(self) -> bytes:
        return f"k{self.o}".encode()

    def value(self) -> bytes:
        return b"v"

    def headers(self) -> list[tuple[str, bytes]]:
        return [(HEADER_TOPIC, b"order-commands")]


def eof(partition: int, topic: str = DLQ) -> FakeMessage:
    return FakeMessage(partition, -1, EOF, topic)


class FakeConsumer:
    """`DLQ` has partitions 0 and 1; `batches` is what consume() returns, in turn."""

    def __init__(self, *batches: list[FakeMessage]) -> None:
        self.assigned: list[tuple[str, int, int]] = []
        self.batches = list(batches)

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        partitions = {0: object(), 1: object()}
        return SimpleNamespace(topics={DLQ: SimpleNamespace(error=None, partitions=partitions)})

    def assign(self, partitions: list[Any]) -> None:
        self.assigned = [(tp.topic, tp.partition, tp.offset) for tp in partitions]

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[FakeMessage]:
        if not self.batches:
            raise AssertionError("read on after every partition reached its end")
        return self.batches.pop(0)


def offsets(letters: Any) -> list[tuple[int, int]]:
    return [(x.partition, x.offset) for x in letters]


def test_read_letters_reads_every_partition_until_its_end() -> None:
    consumer = FakeConsumer(
        [FakeMessage(0, 2), eof(1), FakeMessage(0, 3)],
        [],  # nothing this time: keep waiting
        [FakeMessage(0, 4), eof(0)],
    )
    letters = list(dlq.read_letters(consumer, [DLQ, "unknown.dlq"]))  # type: ignore[arg-type]
    assert consumer.assigned == [(DLQ, 0, -2), (DLQ, 1, -2)]
    assert offsets(letters) == [(0, 2), (0, 3), (0, 4)]
    assert {x.source_topic for x in letters} == {"order-commands"}
    assert consumer.batches == []


def test_read_letters_resumes_from_committed_positions() -> None:
    consumer = FakeConsumer([FakeMessage(0, 4), eof(0), FakeMessage(1, 9), eof(1)])

    def committed(partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        assert partitions == [(DLQ, 0), (DLQ, 1)]
        return {(DLQ, 0): 4, (DLQ, 1): -1001}

    letters = list(dlq.read_letters(consumer, [DLQ], committed))  # type: ignore[arg-type]
    assert consumer.assigned == [(DLQ, 0, 4), (DLQ, 1, -2)]
    assert offsets(letters) == [(0, 4), (1, 9)]


def test_read_letters_stops_on_a_broker_error() -> None:
    broken = FakeMessage(0, -1, KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
    consumer = FakeConsumer([broken])
    with pytest.raises(dlq.ReplayError):
        list(dlq.read_letters(consumer, [DLQ]))  # type: ignore[arg-type]


def test_read_letters_gives_up_when_nothing_arrives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dlq, "IDLE_TIMEOUT_SECONDS", -1.0)
    consumer = FakeConsumer([], [])
    with pytest.raises(dlq.ReplayError, match="did not reach the end"):
        list(dlq.read_letters(consumer, [DLQ]))  # type: ignore[arg-type]


# -- the sink's dead letters and finding the stack ---------------------------------------------


def test_list_reads_the_sinks_connect_dlq_topics_too() -> None:
    from sinks.config import load_connectors

    connectors = load_connectors()
    every = dlq.listed_topics(None, connectors, broker_topics=["extra.connect-dlq", "orders"])
    assert every[: len(ALL_TOPICS)] == dlq.dlq_topics(None)
    sink_letters = {c.dlq_topic for c in connectors if c.dlq_topic}
    assert sink_letters and set(every[len(ALL_TOPICS) :]) == sink_letters | {"extra.connect-dlq"}
    # A source topic names both of its dead-letter topics; a dead-letter topic, itself.
    assert dlq.listed_topics("orders", connectors, []) == ["orders.dlq", "orders.connect-dlq"]
    assert dlq.listed_topics("orders.dlq", connectors, []) == ["orders.dlq"]
    assert dlq.listed_topics("orders.connect-dlq", connectors, []) == ["orders.connect-dlq"]
    # The production image has no connectors/ directory: the broker's topics tell.
    assert dlq.listed_topics("orders", [], ["orders.connect-dlq", "payments.connect-dlq"]) == [
        "orders.dlq",
        "orders.connect-dlq",
    ]
    assert dlq.listed_topics("order-commands", connectors, []) == ["order-commands.dlq"]


def test_replay_refuses_the_sinks_dead_letters() -> None:
    with pytest.raises(ValueError, match="sink's dead letters"):
        dlq.dlq_topics("orders.connect-dlq")


def test_connect_letters_are_read_from_connects_headers() -> None:
    from sinks.batch import DeadLetter as SinkLetter
    from sinks.batch import Source
    from sinks.service import dead_letter_headers as connect_headers

    written = SinkLetter(
        Source("orders", 2, 17, b"k", b"v"), "KEY_CONVERTER", "DataException", "bad magic byte"
    )
    headers: list[tuple[str, bytes | None]] = [
        (name, value if isinstance(value, bytes) or value is None else value.encode())
        for name, value in connect_headers(written, "momentum-orders-sink")
    ]
    read = dlq.dead_letter_from("orders.connect-dlq", 0, 3, b"k", b"v", headers)
    assert (read.error, read.detail) == ("DataException in KEY_CONVERTER", "bad magic byte")
    assert (read.source_topic, read.source_partition, read.source_offset) == ("orders", 2, 17)
    assert read.failed_at is None
    assert "orders[2]@17" in dlq.format_letter(read)


def running_stack(state_dir: Any, bootstrap: str) -> None:
    """A stack.json whose launcher is this process (so it counts as running)."""
    import os

    import psutil

    me = psutil.Process(os.getpid())
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "stack.json").write_text(
        json.dumps(
            {
                "pid": me.pid,
                "create_time": me.create_time(),
                "endpoints": {"kafka_bootstrap_servers": bootstrap},
                "processes": [],
            }
        )
    )


def test_kafka_is_found_as_status_finds_the_stack(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    with pytest.raises(dlq.ReplayError, match="no Momentum stack is running"):
        dlq.find_kafka(tmp_path, explicit=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:19092")
    assert dlq.find_kafka(tmp_path, explicit=False) == "kafka:19092"  # production
    with pytest.raises(dlq.ReplayError, match="name its --state-dir"):
        dlq.find_kafka(tmp_path, explicit=True)  # named a directory: that stack or nothing
    running_stack(tmp_path, "127.0.0.1:45678")
    assert dlq.find_kafka(tmp_path, explicit=True) == "127.0.0.1:45678"
    assert dlq.find_kafka(tmp_path, explicit=False) == "127.0.0.1:45678"


def test_cli_uses_momentum_state_dir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    running_stack(tmp_path / "elsewhere", "127.0.0.1:45679")
    monkeypatch.setenv("MOMENTUM_STATE_DIR", str(tmp_path / "elsewhere"))
    parser = argparse.ArgumentParser(prog="momentum")
    dlq.add_dlq_commands(parser.add_subparsers(dest="command", required=True))
    for argv in (["dlq", "list"], ["dlq", "replay", "order-commands"]):
        assert dlq.kafka_of(parser.parse_args(argv)) == "127.0.0.1:45679"
    args = parser.parse_args(["dlq", "list", "--state-dir", str(tmp_path / "nothing")])
    with pytest.raises(dlq.ReplayError):
        dlq.kafka_of(args)
