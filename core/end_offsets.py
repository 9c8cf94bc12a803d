"""Where a partition ends, on brokers whose ListOffsets answer falls short of it.

Tansu (the embedded broker) answers ListOffsets(latest) with the base offset of
the partition's last record batch + 1, not the log end offset: after batches of
5, 1 and 3 records it says 7 where the log ends at 9. The high watermark in a
fetch response is right. So the true end of a partition is the larger of the
two, and a fetch from the last batch's base (the listed end - 1, always a valid
offset when the listed end is above 0) is enough to learn the high watermark.

Everything in Momentum that needs end offsets takes them from here:
- `aiokafka_end_offsets`: Faust's changelog highwaters (core.tuning), which
  decide when a table has recovered and whether its local state is ahead of
  its changelog (Faust's ConsistencyError);
- `end_offsets`: the registry stand-in reading `_schemas` to its end, and any
  other reader that must see every record (tests included);
- `known_watermarks`: lag of a consumer that is already fetching (the sink).

Against Apache Kafka the correction changes nothing (its fetch high watermark
equals the ListOffsets end), and it costs a connection and a fetch, so the
callers that probe do so only when the `MOMENTUM_END_OFFSETS_FROM_FETCH`
setting asks for it; the embedded launcher sets it.

This module imports nothing from the project.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

# Long enough for a busy two-core machine, short enough that a broker that never
# answers shows up as an error rather than as a worker stuck in recovery.
DEFAULT_TIMEOUT_SECONDS = 30.0
# Data is known to be there, so the broker should answer at once; a short wait
# keeps a broker that holds fetches for the whole wait (Tansu does) quick.
PROBE_FETCH_WAIT_MS = 50
# librdkafka wants a group id even for assign(); the probe never joins or commits.
PROBE_GROUP = "momentum-end-offsets"


class EndOffsetsUnavailable(RuntimeError):
    """No fetch response came for some partitions in time; the message names them."""


def probe_positions(listed: Mapping[K, int]) -> dict[K, int]:
    """Where to fetch from to learn each partition's high watermark: its last batch's base.

    An empty partition (listed end 0 or unknown) needs no probe: nothing can lie past it.
    """
    return {tp: end - 1 for tp, end in listed.items() if end is not None and end > 0}


def corrected(listed: Mapping[K, int], fetched: Mapping[K, int | None]) -> dict[K, int]:
    """Each partition's end: the larger of the ListOffsets end and a fetch high watermark."""
    ends = dict(listed)
    for tp, high in fetched.items():
        if high is not None and high > ends.get(tp, -1):
            ends[tp] = high
    return ends


def _log_corrections(listed: Mapping[K, int], ends: Mapping[K, int]) -> None:
    short = {tp: (listed[tp], ends[tp]) for tp in listed if ends[tp] != listed[tp]}
    if short:
        # Worth seeing in a worker's log next to Faust's highwater table.
        log.info("end offsets corrected by a fetch (ListOffsets, true end): %s", short)


# -- aiokafka (Faust) ---------------------------------------------------------------------------


async def aiokafka_end_offsets(listed: Mapping[K, int], **consumer_config: Any) -> dict[K, int]:
    """Correct ListOffsets ends (`listed`, as `AIOKafkaConsumer.end_offsets` returns them).

    Keys are `(topic, partition)` named tuples (aiokafka's TopicPartition or Faust's
    TP); the answer has the same keys. `consumer_config` is given to a short-lived
    `AIOKafkaConsumer` with no group (bootstrap_servers, security settings...), which
    is assigned the partitions, seeks each to its last batch's base and fetches once.
    It waits for every fetch response: bound it with `asyncio.timeout`.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    positions = probe_positions(listed)
    if not positions:
        return dict(listed)
    by_tp = {TopicPartition(tp[0], tp[1]): tp for tp in positions}  # type: ignore[index]
    consumer = AIOKafkaConsumer(
        **{
            "fetch_max_wait_ms": PROBE_FETCH_WAIT_MS,
            **consumer_config,
            "group_id": None,
            "enable_auto_commit": False,
            # An offset gone by retention: fetching from the end still yields the watermark.
            "auto_offset_reset": "latest",
            "isolation_level": "read_uncommitted",
        }
    )
    await consumer.start()
    try:
        consumer.assign(list(by_tp))
        for tp, key in by_tp.items():
            consumer.seek(tp, positions[key])
        while pending := [tp for tp in by_tp if consumer.highwater(tp) is None]:
            # The records are not wanted: the fetch response's high watermark is.
            await consumer.getmany(*pending, timeout_ms=500)
        fetched = {key: consumer.highwater(tp) for tp, key in by_tp.items()}
    finally:
        await consumer.stop()
    ends = corrected(listed, fetched)
    _log_corrections(listed, ends)
    return ends


# -- confluent-kafka --------------------------------------------------------------------------


def end_offsets(
    config: Mapping[str, Any],
    partitions: Iterable[tuple[str, int]],
    *,
    from_fetch: bool,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> dict[tuple[str, int], int]:
    """The end offset of each `(topic, partition)`, read with a short-lived Consumer.

    `config` holds at least `bootstrap.servers`. Without `from_fetch` this is the
    broker's ListOffsets answer (`get_watermark_offsets`); with it, corrected by the
    high watermark of a fetch from each partition's last batch.
    """
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    wanted = list(partitions)
    consumer = Consumer(
        {
            "fetch.wait.max.ms": PROBE_FETCH_WAIT_MS,
            **config,
            "group.id": PROBE_GROUP,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "latest",
            "isolation.level": "read_uncommitted",
        }
    )
    try:
        listed = {
            (t, p): int(consumer.get_watermark_offsets(TopicPartition(t, p), timeout=timeout)[1])
            for t, p in wanted
        }
        positions = probe_positions(listed)
        if not from_fetch or not positions:
            return listed
        consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in positions.items()])
        pending = set(positions)
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise EndOffsetsUnavailable(
                    f"no fetch response in {timeout:.0f}s for {sorted(pending)}"
                )
            for message in consumer.consume(num_messages=100, timeout=min(left, 0.5)):
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    if error.fatal():
                        raise KafkaException(error)
                    continue  # transient (a reconnect): librdkafka retries the fetch
                # A record or the end of the partition: a fetch response has come.
                pending.discard((message.topic(), message.partition()))
        fetched = {
            (t, p): int(consumer.get_watermark_offsets(TopicPartition(t, p), cached=True)[1])
            for t, p in positions
        }
    finally:
        consumer.close()
    ends = corrected(listed, fetched)
    _log_corrections(listed, ends)
    return ends


def known_watermarks(
    consumer: Any, topic: str, partition: int, timeout: float = 2.0
) -> tuple[int, int]:
    """A partition's (low, end) offsets as a confluent-kafka Consumer that fetches it knows them.

    The end is the larger of the broker's ListOffsets answer and the high watermark
    of the consumer's last fetch response (librdkafka's cached watermark; none before
    its first fetch). No extra fetch: for the lag of a consumer that reads the partition.
    """
    from confluent_kafka import KafkaException, TopicPartition

    tp = TopicPartition(topic, partition)
    low, listed = consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
    try:
        _, fetched = consumer.get_watermark_offsets(tp, cached=True)
    except KafkaException:
        fetched = None
    key = (topic, partition)
    return int(low), corrected({key: int(listed)}, {key: fetched})[key]
