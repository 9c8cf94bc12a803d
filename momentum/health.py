"""What `momentum status` reads from the running stack besides its processes.

Consumer lag per group and dead-letter counts come straight from Kafka (end
offsets as core.end_offsets reads them, so Tansu's short ListOffsets answer is
corrected); orders by status from the Postgres read model. Each reader returns
None, not an exception, when its part does not answer: status must still show
the rest.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from core.end_offsets import end_offsets
from momentum.dlq import CONNECT_DLQ_SUFFIX

DLQ_SUFFIXES = (".dlq", CONNECT_DLQ_SUFFIX)
KAFKA_TIMEOUT_SECONDS = 5.0
# Short-lived groups of tools (kaskade's consumer view, end-offset probes) are not
# the pipeline's; their lag would only confuse.
TOOL_GROUP_PREFIXES = ("kaskade-", "momentum-end-offsets")


def lag_by_group(bootstrap: str, from_fetch: bool) -> dict[str, dict[str, Any]] | None:
    """{group: {"members": n, "lag": {topic: records behind}}} for every consumer group."""
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        listed = admin.list_consumer_groups(request_timeout=KAFKA_TIMEOUT_SECONDS).result()
        groups = sorted(
            g.group_id for g in listed.valid if not g.group_id.startswith(TOOL_GROUP_PREFIXES)
        )
        if not groups:
            return {}
        described = admin.describe_consumer_groups(groups, request_timeout=KAFKA_TIMEOUT_SECONDS)
        members = {g: len(f.result().members) for g, f in described.items()}
        committed: dict[str, dict[tuple[str, int], int]] = {}
        for group in groups:
            request = [ConsumerGroupTopicPartitions(group)]
            [future] = admin.list_consumer_group_offsets(request).values()
            committed[group] = {
                (tp.topic, tp.partition): tp.offset
                for tp in future.result().topic_partitions
                if tp.offset >= 0
            }
        partitions = {tp for offsets in committed.values() for tp in offsets}
        ends = end_offsets({"bootstrap.servers": bootstrap}, partitions, from_fetch=from_fetch)
    except (KafkaException, RuntimeError):
        return None
    result: dict[str, dict[str, Any]] = {}
    for group in groups:
        lag: dict[str, int] = defaultdict(int)
        for (topic, partition), offset in committed[group].items():
            lag[topic] += max(0, ends.get((topic, partition), offset) - offset)
        result[group] = {"members": members.get(group, 0), "lag": dict(sorted(lag.items()))}
    return result


def dead_letter_counts(bootstrap: str, from_fetch: bool) -> dict[str, int] | None:
    """Records ever written to each dead-letter topic (its partitions' end offsets)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        topics = admin.list_topics(timeout=KAFKA_TIMEOUT_SECONDS).topics
        partitions = [
            (name, p)
            for name, meta in topics.items()
            if name.endswith(DLQ_SUFFIXES)
            for p in meta.partitions
        ]
        ends = end_offsets({"bootstrap.servers": bootstrap}, partitions, from_fetch=from_fetch)
    except (KafkaException, RuntimeError):
        return None
    counts: dict[str, int] = defaultdict(int)
    for (topic, _), end in ends.items():
        counts[topic] += end
    return dict(sorted(counts.items()))


def orders_by_status(database_url: str) -> dict[str, int] | None:
    """Orders in the read model per status (the sink writes the `orders` table)."""
    import psycopg

    try:
        with psycopg.connect(database_url, connect_timeout=3) as conn:
            rows = conn.execute(
                "select status, count(*) from orders group by status order by status"
            ).fetchall()
    except psycopg.Error:
        return None
    return {str(status): int(count) for status, count in rows}


def workers_in_group(worker_url: str) -> list[str] | None:
    """Every worker in the Faust group, by web URL, as a worker's table router knows them.

    Faust's `/router/` page maps each member's advertised web URL to its partitions;
    unlike the broker's group description (empty on Tansu) it names every worker,
    including one started by hand.
    """
    import httpx

    try:
        response = httpx.get(f"{worker_url.rstrip('/')}/router/", timeout=3.0)
        return sorted(response.json()) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def outside_workers(in_group: list[str] | None, supervised_urls: set[str]) -> list[str] | None:
    """Workers in the group that the launcher did not start (joined with `momentum env`)."""
    if in_group is None:
        return None
    return [url for url in in_group if url.rstrip("/") not in supervised_urls]
