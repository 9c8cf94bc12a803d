"""A live revenue view of Momentum's `sales-per-minute` topic, as an analyst would read it.

Needs only `confluent-kafka[avro]` and the addresses of Kafka and the schema
registry: keys and values are Confluent Avro, decoded with the writer's schema
fetched from the registry. Each record is the latest figure of one sku in one
minute (the topic is compacted, keyed by window id `<sku>@<minute start, UTC>`),
so the view keeps the newest record per window id and prints, per minute, the
revenue and the best-selling skus as updates arrive.

    python examples/analytics_consumer.py --from-beginning
    python examples/analytics_consumer.py --from-beginning --stop-at-end --sku-prefix tee-

A bounded run (--max-seconds, --max-messages or --stop-at-end) ends with a
summary that scripts can parse:

    WINDOWS <number of sku-minute windows seen>
    TOTAL_UNITS <units>
    TOTAL_REVENUE <currency> <amount>      (one line per currency)
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import uuid
import warnings
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

with warnings.catch_warnings():
    # The registry client imports authlib, which switches its own deprecation warnings
    # on as it loads and then warns that its httpx module is deprecated (authlib 1.9).
    # This consumer uses no OAuth: silence that one warning, after authlib's switch.
    import authlib.deprecate  # noqa: F401

    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer

TOPIC = "sales-per-minute"
CENT = Decimal("0.01")
# Redraw at most this often while a backlog is being read.
REDRAW_SECONDS = 1.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        help="Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)",
    )
    parser.add_argument(
        "--schema-registry-url",
        default=os.environ.get("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081"),
        help="schema registry URL (env SCHEMA_REGISTRY_URL)",
    )
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument(
        "--group-id",
        default=f"analytics-consumer-{uuid.uuid4().hex[:8]}",
        help="consumer group (default: a new one per run)",
    )
    parser.add_argument(
        "--from-beginning",
        action="store_true",
        help="read every partition from its first record, whatever the group committed",
    )
    parser.add_argument("--sku-prefix", default="", help="only skus starting with this")
    parser.add_argument("--top", type=int, default=3, help="skus to show per minute")
    parser.add_argument("--max-seconds", type=float, help="stop after this many seconds")
    parser.add_argument("--max-messages", type=int, help="stop after this many records")
    parser.add_argument(
        "--stop-at-end",
        action="store_true",
        help="stop once every assigned partition has been read to its end",
    )
    return parser.parse_args(argv)


class RevenueView:
    """The newest figure per window id, summed up per minute and overall."""

    def __init__(self, sku_prefix: str = "", top: int = 3) -> None:
        self.sku_prefix = sku_prefix
        self.top = top
        self.windows: dict[str, dict[str, Any]] = {}
        self.dirty: set[datetime] = set()

    def apply(self, window_id: str, record: dict[str, Any] | None) -> None:
        if record is None:  # a tombstone: the window is gone
            old = self.windows.pop(window_id, None)
            if old is not None:
                self.dirty.add(old["window_start"])
            return
        if not record["sku"].startswith(self.sku_prefix):
            return
        self.windows[window_id] = record
        self.dirty.add(record["window_start"])

    def minute_line(self, start: datetime) -> str:
        in_minute = [w for w in self.windows.values() if w["window_start"] == start]
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        for w in in_minute:
            revenue[w["currency"]] += w["revenue"]
        units = sum(w["units"] for w in in_minute)
        top = sorted(in_minute, key=lambda w: (-w["revenue"], w["sku"]))[: self.top]
        totals = ", ".join(f"{c} {money(a)}" for c, a in sorted(revenue.items())) or "-"
        best = ", ".join(f"{w['sku']} {w['currency']} {money(w['revenue'])}" for w in top)
        return f"{start:%Y-%m-%d %H:%M} UTC  revenue {totals}  units {units}  top: {best or '-'}"

    def redraw(self) -> None:
        for start in sorted(self.dirty):
            print(self.minute_line(start), flush=True)
        self.dirty.clear()

    def summary(self) -> list[str]:
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        for w in self.windows.values():
            revenue[w["currency"]] += w["revenue"]
        lines = [
            f"WINDOWS {len(self.windows)}",
            f"TOTAL_UNITS {sum(w['units'] for w in self.windows.values())}",
        ]
        lines += [f"TOTAL_REVENUE {c} {money(a)}" for c, a in sorted(revenue.items())]
        return lines


def money(amount: Decimal) -> str:
    return str(amount.quantize(CENT))


def run(args: argparse.Namespace) -> int:
    registry = SchemaRegistryClient({"url": args.schema_registry_url})
    # No reader schema: records come back as written, decimals as Decimal and
    # timestamp-millis as aware datetimes.
    key_deserializer = AvroDeserializer(registry)
    value_deserializer = AvroDeserializer(registry)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap_servers,
            "group.id": args.group_id,
            "auto.offset.reset": "earliest" if args.from_beginning else "latest",
            "enable.partition.eof": args.stop_at_end,
        }
    )
    view = RevenueView(args.sku_prefix, args.top)
    assigned: set[int] = set()
    at_end: set[int] = set()

    def on_assign(c: Consumer, partitions: list[TopicPartition]) -> None:
        if args.from_beginning:
            for p in partitions:
                p.offset = OFFSET_BEGINNING
        assigned.update(p.partition for p in partitions)
        c.assign(partitions)

    def on_revoke(c: Consumer, partitions: list[TopicPartition]) -> None:
        assigned.difference_update(p.partition for p in partitions)

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    started = time.monotonic()
    last_draw = started
    seen = 0
    bounded = args.max_seconds is not None or args.max_messages is not None or args.stop_at_end
    try:
        while not stopping:
            if args.max_seconds is not None and time.monotonic() - started >= args.max_seconds:
                break
            if args.max_messages is not None and seen >= args.max_messages:
                break
            message = consumer.poll(0.5)
            if message is None:
                view.redraw()  # caught up: show what changed
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition() or 0)
                    if assigned and assigned <= at_end:
                        break
                else:
                    print(f"kafka: {error}", file=sys.stderr)
                continue
            at_end.discard(message.partition() or 0)
            seen += 1
            handle(message, args.topic, key_deserializer, value_deserializer, view)
            if time.monotonic() - last_draw >= REDRAW_SECONDS:
                view.redraw()
                last_draw = time.monotonic()
    finally:
        consumer.close()
    view.redraw()
    if bounded or stopping:
        for line in view.summary():
            print(line, flush=True)
    return 0


def handle(
    message: Message,
    topic: str,
    keys: AvroDeserializer,
    values: AvroDeserializer,
    view: RevenueView,
) -> None:
    try:
        window_id = keys(message.key(), SerializationContext(topic, MessageField.KEY))
        record = (
            None
            if message.value() is None
            else values(message.value(), SerializationContext(topic, MessageField.VALUE))
        )
    except SerializationError as exc:
        # Not Confluent Avro: skip it rather than stop the view.
        print(f"skipping {topic}[{message.partition()}]@{message.offset()}: {exc}", file=sys.stderr)
        return
    view.apply(str(window_id), cast(dict[str, Any] | None, record))


def main() -> None:
    sys.exit(run(parse_args()))


if __name__ == "__main__":
    main()
