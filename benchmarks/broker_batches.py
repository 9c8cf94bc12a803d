"""What one record costs the embedded broker as a partition fills with batches.

    .venv/bin/python -m benchmarks.broker_batches [--held 0 2500 5000 10000 20000]

Tansu's memory storage keeps each produced batch as an object and answers every
fetch that finds data by listing all the batch objects of the partition
(`tansu-storage/src/dynostore.rs`, `fetch`: `object_store.list(partition prefix)`),
so a fetch costs more the more batches the partition holds; it has no retention
and no DeleteRecords (`todo!()`), so a partition only grows. The workers produce
with linger 0, about one batch per record. For each size this fills one partition
with that many one-record batches, then times 200 records one at a time, each
produced and consumed from the tail (fetch wait 50 ms, as the workers'), and
prints the broker's CPU per record and the median round trip.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from benchmarks.broker import private_broker

TOPIC = "aging"
ROUNDS = 200


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fill(producer: Producer, batches: int) -> None:
    for i in range(batches):
        producer.produce(TOPIC, b"x" * 120, partition=0)
        if i % 1000 == 999:
            producer.flush(30)
    producer.flush(30)


def one_record_at_a_time(bootstrap: str, producer: Producer, broker: int) -> tuple[float, float]:
    """Broker CPU seconds per record and the median round trip, over ROUNDS records."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "aging", "fetch.wait.max.ms": 50}
    )
    # One record per batch, so ListOffsets' answer (last batch's base + 1) is the end.
    _, end = consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10, cached=False)
    consumer.assign([TopicPartition(TOPIC, 0, end)])
    consumer.poll(1.0)  # the first fetch is under way
    trips = []
    cpu_before = cpu_seconds(broker)
    for _ in range(ROUNDS):
        began = time.perf_counter()
        producer.produce(TOPIC, b"x" * 120, partition=0)
        producer.flush(10)
        while (message := consumer.poll(10)) is None or message.error():
            pass
        trips.append(time.perf_counter() - began)
    cpu = (cpu_seconds(broker) - cpu_before) / ROUNDS
    consumer.close()
    return cpu, statistics.median(trips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--held", type=int, nargs="+", default=[0, 2500, 5000, 10000, 20000])
    args = parser.parse_args()
    with private_broker() as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(15)
        # linger 0 and one record per batch: the workers' producers, one batch a send.
        producer = Producer(
            {"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "batch.num.messages": 1}
        )
        held = 0
        print(f"{'batches held':>12}  {'broker CPU per record':>21}  {'round trip':>10}")
        for target in sorted(args.held):
            fill(producer, max(0, target - held))
            held = max(held, target)
            cpu, trip = one_record_at_a_time(broker.bootstrap, producer, broker.pid)
            print(f"{held:>12,}  {cpu * 1e6:>18,.0f} us  {trip * 1000:>7.1f} ms", flush=True)
            held += ROUNDS


if __name__ == "__main__":
    main()
