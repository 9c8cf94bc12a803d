"""Messages and changelog writes per order through the saga, and a profile of the worker.

    .venv/bin/python -m benchmarks.saga_messages [--orders 300] [--profile DIR]

Starts a stack (`momentum up --detach`, one worker) in a temporary state
directory, sends a warm-up batch of orders the way `benchmarks.saga_throughput`
does, counts every record on every topic, sends `--orders` more single-line
orders, counts again, and prints the records each order added per topic:
commands, events, public topics and the tables' changelogs. With `--profile
DIR`, the worker runs under `py-spy record` while the measured orders go
through, and its flame graph (SVG) and collapsed stacks (`.txt`) go to DIR.
The stack is stopped afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from benchmarks.saga_throughput import saturate, seed_catalog
from benchmarks.stack import open_stack


def count_records(bootstrap: str, quiet_seconds: float = 3.0) -> Counter[str]:
    """Records on every topic, read from the start until none came for `quiet_seconds`."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-count-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    try:
        topics = consumer.list_topics(timeout=10).topics
        consumer.assign(
            [
                TopicPartition(name, p, 0)
                for name, meta in topics.items()
                if not name.startswith("bench-")
                for p in meta.partitions
            ]
        )
        counts: Counter[str] = Counter()
        last = time.monotonic()
        while time.monotonic() - last < quiet_seconds:
            for message in consumer.consume(5000, 0.5):
                topic = message.topic()
                if message.error() is None and topic is not None:
                    counts[topic] += 1
                    last = time.monotonic()
        return counts
    finally:
        consumer.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--warm-up", type=int, default=50)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    stack = open_stack(None)
    try:
        bootstrap = stack.endpoints["kafka_bootstrap_servers"]
        # Eight skus, so reservations spread over the sku partitions.
        catalog = seed_catalog(stack, 8, args.warm_up + args.orders, "MSG")
        saturate(stack, catalog, args.warm_up, lines=1)
        before = count_records(bootstrap)

        record = None
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            worker = stack.worker_pids()["worker-1"]
            spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            record = subprocess.Popen(
                [spy, "record", "--pid", str(worker), "--rate", "100", "--nonblocking"]
                + ["--format", "raw", "--output", str(args.profile / "worker.txt")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # py-spy attaches
        rate = saturate(stack, catalog, args.orders, lines=1).orders_per_second
        if record is not None:
            record.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            record.wait(60)
        after = count_records(bootstrap)

        n = args.orders
        print(f"saga: {n} single-line orders to CONFIRMED at {rate:.1f} orders/s")
        print(f"records per order, by topic (after {args.warm_up} warm-up orders):")
        added = {t: after[t] - before[t] for t in after if after[t] != before[t]}
        changelog = sum(v for t, v in added.items() if t.endswith("-changelog"))
        for topic, count in sorted(added.items(), key=lambda kv: -kv[1]):
            print(f"  {count / n:6.2f}  {topic}")
        print(f"  {sum(added.values()) / n:6.2f}  all topics")
        print(f"  {changelog / n:6.2f}  of which changelog writes")
        if args.profile:
            print(f"worker profile: {args.profile / 'worker.txt'}")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
