"""Faults the suite causes on the running stack, each a context manager or a thread.

- `WorkerKiller`: SIGKILL a worker every few seconds (the launcher restarts it,
  its partitions move to the other worker and back).
- `Duplicator`: every command on the agents' input topics is delivered twice,
  byte for byte (same command id), as at-least-once redelivery does.
- `inject_malformed`: bad magic byte, unknown schema id, truncated Avro, and
  valid Avro that breaks a rule, each with the dead-letter reason it must get.
- `provider_outage`: the card provider answers 503 to everything for a while.
- `postgres_outage`: Postgres frozen (SIGSTOP) for several seconds, then stopped
  for real (the launcher restarts it) while the sink writes.
- `flood`: far more requests than the gateway serves, from one client and many.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from core.end_offsets import end_offsets
from core.topics import CART_COMMANDS, COMMAND_TOPICS, ORDER_COMMANDS, value_codec
from schemas import envelopes
from schemas import messages as avro_messages
from schemas.registry import SchemaRegistryClient
from schemas.serdes import Serdes
from tests.integration.conftest import Stack, auth, wait_for

COPY_HEADER = "chaos.copy"


# -- workers ---------------------------------------------------------------------------------


class WorkerKiller(threading.Thread):
    """SIGKILLs `name` every `interval` seconds, `times` times, without waiting for recovery."""

    def __init__(self, stack: Stack, name: str, times: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.stack, self.name, self.times, self.interval = stack, name, times, interval
        self.kills = 0

    def run(self) -> None:
        for _ in range(self.times):
            time.sleep(self.interval)
            pid = self.stack.process(self.name)["pid"]
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                self.kills += 1

    def wait_recovered(self, timeout: float = 180.0) -> None:
        self.join()
        wait_for(lambda: self.stack.process(self.name)["state"] == "running", timeout=timeout)


# -- redelivery ------------------------------------------------------------------------------


class Duplicator(threading.Thread):
    """Re-sends every record that appears on the agents' input topics once more."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.bootstrap = stack.bootstrap
        self.copies = 0
        self._halt = threading.Event()
        self._started = threading.Event()

    def __enter__(self) -> Duplicator:
        self.start()
        assert self._started.wait(30), "duplicator did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        self.join(30)

    def run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"chaos-duplicator-{uuid.uuid4()}",
                "enable.auto.commit": False,
            }
        )
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})
        try:
            names = [t.name for t in COMMAND_TOPICS]
            metadata = consumer.list_topics(timeout=10).topics
            consumer.assign(
                [
                    TopicPartition(name, p, -1)  # OFFSET_END: only what arrives from now on
                    for name in names
                    for p in metadata[name].partitions
                ]
            )
            self._started.set()
            while not self._halt.is_set():
                for message in consumer.consume(num_messages=500, timeout=0.2):
                    if message.error() is not None:
                        continue
                    if any(k == COPY_HEADER for k, _ in message.headers() or []):
                        continue
                    producer.produce(
                        message.topic(),
                        partition=message.partition(),  # the copy goes where its original went
                        key=message.key(),
                        value=message.value(),
                        headers=[*(message.headers() or []), (COPY_HEADER, b"1")],
                    )
                    self.copies += 1
                producer.poll(0)
            # Copies of the last records still reach their topics.
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                for message in consumer.consume(num_messages=500, timeout=0.2):
                    if message.error() is None and not any(
                        k == COPY_HEADER for k, _ in message.headers() or []
                    ):
                        producer.produce(
                            message.topic(),
                            partition=message.partition(),
                            key=message.key(),
                            value=message.value(),
                            headers=[*(message.headers() or []), (COPY_HEADER, b"1")],
                        )
                        self.copies += 1
            assert producer.flush(30) == 0
        finally:
            consumer.close()


# -- malformed messages ----------------------------------------------------------------------


@dataclass(frozen=True)
class Malformed:
    topic: str
    key: bytes
    value: bytes
    reason: str  # the dead-letter reason it must carry (header dlq.error)


def malformed_messages(stack: Stack, count: int) -> list[Malformed]:
    """`count` bad messages, cycling through the four kinds a worker must survive."""
    serdes = Serdes(SchemaRegistryClient(stack.registry_url))
    order_codec = value_codec(ORDER_COMMANDS, serdes)
    cart_codec = value_codec(CART_COMMANDS, serdes)
    messages = []
    for n in range(count):
        key = f"chaos-bad-{uuid.uuid4().hex[:12]}".encode()
        kind = n % 4
        if kind == 0:
            messages.append(Malformed(ORDER_COMMANDS.name, key, b"{not avro}", "bad-magic-byte"))
        elif kind == 1:
            value = b"\x00" + struct.pack(">I", 987_654) + b"\x02\x04"
            messages.append(Malformed(CART_COMMANDS.name, key, value, "unknown-schema-id"))
        elif kind == 2:
            whole = order_codec.encode(
                envelopes.order_command(key.decode(), avro_messages.expire_order())
            )
            messages.append(Malformed(ORDER_COMMANDS.name, key, whole[:7], "malformed-avro"))
        else:
            # Valid Avro, but the cart it names is not the cart its key routes it to.
            value = cart_codec.encode(
                envelopes.cart_command(
                    f"elsewhere-{uuid.uuid4().hex[:8]}",
                    "chaos-customer-0",
                    avro_messages.set_cart_line(sku="chaos-sku", quantity=1),
                )
            )
            messages.append(Malformed(CART_COMMANDS.name, key, value, "rule-error"))
    return messages


def inject_malformed(stack: Stack, messages: list[Malformed], over_seconds: float) -> None:
    """Produce the bad messages spread over `over_seconds`, between the real load."""
    # murmur2, as Faust places keys (librdkafka's default partitioner differs).
    producer = Producer({"bootstrap.servers": stack.bootstrap, "partitioner": "murmur2_random"})
    pause = over_seconds / max(len(messages), 1)
    for message in messages:
        producer.produce(message.topic, key=message.key, value=message.value)
        producer.poll(0)
        time.sleep(pause)
    assert producer.flush(30) == 0


# -- the card provider and Postgres ------------------------------------------------------------


@contextlib.contextmanager
def provider_outage(stack: Stack) -> Iterator[None]:
    with httpx.Client(base_url=stack.provider_url, timeout=10) as provider:
        provider.post("/v1/faults", json={"unavailable": True}).raise_for_status()
        try:
            yield
        finally:
            provider.post("/v1/faults", json={"unavailable": False}).raise_for_status()


def postgres_outage(stack: Stack, frozen_seconds: float) -> None:
    """Freeze Postgres (every backend too), then stop it for real; wait until it is back."""
    pid = stack.process("postgres")["pid"]
    # The launcher starts each part in its own session: the group is Postgres and its backends.
    os.killpg(pid, signal.SIGSTOP)
    try:
        time.sleep(frozen_seconds)
    finally:
        os.killpg(pid, signal.SIGCONT)
    time.sleep(1)
    os.kill(pid, signal.SIGINT)  # fast shutdown; the launcher starts it again
    wait_for(
        lambda: (p := stack.process("postgres"))["pid"] != pid and p["state"] == "running",
        timeout=60,
    )


# -- the gateway under a flood -----------------------------------------------------------------


@dataclass
class FloodResult:
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    accepted: list[tuple[str, str, tuple[tuple[str, int], ...]]] = field(default_factory=list)
    slowest: float = 0.0


def flood(
    stack: Stack, sku: str, *, requests: int, concurrency: int, customers: int
) -> FloodResult:
    """`requests` order placements from `customers` clients, `concurrency` at a time.

    Nothing is retried: the point is what the gateway answers when asked too much.
    Accepted orders are real and returned, so the checker can account for them.
    """
    result = FloodResult()
    lock = threading.Lock()
    local = threading.local()

    def one(n: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=stack.gateway_url, timeout=20.0)
        customer = f"chaos-flood-{n % customers}"
        key = f"flood-{uuid.uuid4().hex}"
        lines = ((sku, 1),)
        started = time.monotonic()
        try:
            r = client.post(
                "/v1/orders",
                json={
                    "items": [{"sku": sku, "quantity": 1}],
                    "payment": {"method": "card", "token": "tok_ok"},
                },
                headers={**auth(customer, "customer"), "Idempotency-Key": key},
            )
        except httpx.HTTPError as exc:
            with lock:
                result.errors[type(exc).__name__] += 1
            return
        took = time.monotonic() - started
        with lock:
            result.statuses[r.status_code] += 1
            result.slowest = max(result.slowest, took)
            if r.status_code == 202:
                result.accepted.append((customer, str(r.json()["order_id"]), lines))
            elif r.status_code in (429, 503):
                assert r.headers.get("Retry-After"), (r.status_code, r.headers)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(requests)))
    return result


def read_to_end(bootstrap: str, topic: str) -> Iterator[tuple[bytes | None, bytes | None, dict]]:
    """Every record of `topic`, to each partition's end (partition-EOF, right on Tansu)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chaos-reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        reading = set(partitions)
        idle_until = time.monotonic() + 30
        while reading:
            messages = consumer.consume(num_messages=1000, timeout=1.0)
            if messages:
                idle_until = time.monotonic() + 30
            assert time.monotonic() < idle_until, f"{topic}: no end reached on {reading}"
            for message in messages:
                error = message.error()
                if error is None:
                    headers = {k: (v or b"").decode() for k, v in message.headers() or []}
                    yield message.key(), message.value(), headers
                elif error.code() == KafkaError._PARTITION_EOF:
                    reading.discard(message.partition())
                else:
                    raise AssertionError(f"{topic}: {error.str()}")
    finally:
        consumer.close()


_last_ends: dict[tuple[str, int], int] = {}


def quiescent(bootstrap: str, group: str = "momentum") -> bool:
    """True when the app's group has committed every topic to its end, and the ends stand still."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        topics = consumer.list_topics(timeout=10).topics
        partitions = [TopicPartition(t, p) for t, meta in topics.items() for p in meta.partitions]
        committed = consumer.committed(partitions, timeout=10)
    finally:
        consumer.close()
    ends = end_offsets(
        {"bootstrap.servers": bootstrap},
        [(t, p) for t, meta in topics.items() for p in meta.partitions],
        from_fetch=True,
    )
    behind = [tp for tp in committed if 0 <= tp.offset < ends[(tp.topic, tp.partition)]]
    still = ends == _last_ends
    _last_ends.clear()
    _last_ends.update(ends)
    return still and not behind
