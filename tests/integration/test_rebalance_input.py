"""No input record is skipped when a worker's partitions are rebalanced under load.

A worker relays numbered records from a 4-partition topic (tests.integration.recovery_app)
while a second worker of the same group joins and leaves again and again, each time
moving partitions between them, and the seeks to committed offsets answer late (as on
a loaded machine). Every record must come out of the relay, and the group's committed
offsets must reach the input's ends.

The loss this guards against: when a rebalance ends, the worker sought its input
partitions to their committed offsets with the flow running. Records fetched from the
old position before the seek were still being handed to the streams after it, which
moved Faust's read offset past the commit; the records from the commit, fetched again,
were then dropped as already read, and their offsets never acknowledged (the chaos
suite saw an order never processed and commits stuck). Before core.recovery stopped the
flow for the seek, this test failed 3 runs of 3 (commits stuck).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from core.end_offsets import end_offsets
from tests.integration.test_table_recovery import start_worker
from tests.private_broker import private_broker

pytestmark = pytest.mark.integration

INPUT_PARTITIONS = 4
RECORDS_PER_SECOND = 250
PRODUCE_SECONDS = 30
REBALANCES = 3


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with private_broker() as bootstrap:
        yield bootstrap


def produce_numbers(bootstrap: str, topic: str, count: int, stop: threading.Event) -> int:
    """Records 0..count-1, keyed by their number, at a steady rate; returns how many went."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    started = time.monotonic()
    sent = 0
    while sent < count and not stop.is_set():
        due = started + sent / RECORDS_PER_SECOND
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        producer.produce(topic, key=str(sent).encode(), value=str(sent).encode())
        producer.poll(0)
        sent += 1
    assert producer.flush(30) == 0
    return sent


def relayed_numbers(bootstrap: str, topic: str, expected: int, timeout: float) -> set[int]:
    """The numbers on the relay's output, read until all `expected` are there or `timeout`."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex[:6]}",
         "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    )  # fmt: skip
    seen: set[int] = set()
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + timeout
        while len(seen) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                seen.add(int(message.value()))
    finally:
        consumer.close()
    return seen


def committed_behind(bootstrap: str, group: str, topic: str) -> list[tuple[int, int, int]]:
    """(partition, committed, end) of each input partition not committed to its end."""
    partitions = [(topic, p) for p in range(INPUT_PARTITIONS)]
    ends = end_offsets({"bootstrap.servers": bootstrap}, partitions, from_fetch=True)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        committed = consumer.committed([TopicPartition(t, p) for t, p in partitions], timeout=10)
    finally:
        consumer.close()
    return [
        (tp.partition, tp.offset, ends[(topic, tp.partition)])
        for tp in committed
        if tp.offset < ends[(topic, tp.partition)]
    ]


def workdir(tmp_path: Path, name: str) -> Path:
    (tmp_path / name).mkdir()
    return tmp_path / name


def test_no_input_record_is_skipped_while_partitions_move(
    broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workers' seeks to committed offsets answer late, as on a loaded machine.
    monkeypatch.setenv("RECOVERY_APP_SEEK_DELAY", "0.5")
    app_id = f"rebalance-{uuid.uuid4().hex[:8]}"
    source, relayed = f"{app_id}-in", f"{app_id}-out"
    admin = AdminClient({"bootstrap.servers": broker})
    for topic, partitions in ((source, INPUT_PARTITIONS), (relayed, 1)):
        admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=15)

    steady = start_worker(broker, app_id, workdir(tmp_path, "steady"), from_fetch=True)
    joiners = []
    stop = threading.Event()
    try:
        steady.recovered_value()  # up and assigned
        count = RECORDS_PER_SECOND * PRODUCE_SECONDS
        result: list[int] = []
        producing = threading.Thread(
            target=lambda: result.append(produce_numbers(broker, source, count, stop))
        )
        producing.start()
        for round in range(REBALANCES):
            # A worker joins (partitions move to it) and leaves (they come back).
            time.sleep(2)
            joiner = start_worker(
                broker, app_id, workdir(tmp_path, f"joiner-{round}"), from_fetch=True
            )
            joiners.append(joiner)
            joiner.recovered_value()
            time.sleep(2)
            joiner.stop()
        producing.join(PRODUCE_SECONDS * 3)
        assert result, "the producer did not finish"
        sent = result[0]
        seen = relayed_numbers(broker, relayed, sent, timeout=90)
        missing = sorted(set(range(sent)) - seen)
        assert not missing, f"{len(missing)} of {sent} records never relayed: {missing[:20]}"
        deadline = time.monotonic() + 60
        while (behind := committed_behind(broker, app_id, source)) and time.monotonic() < deadline:
            time.sleep(1)
        assert not behind, (
            f"commits stuck below the input's ends (partition, committed, end): {behind}"
        )
        assert steady.process.poll() is None, steady.log.read_text(errors="replace")[-3000:]
    finally:
        stop.set()
        for worker in (steady, *joiners):
            worker.stop()
