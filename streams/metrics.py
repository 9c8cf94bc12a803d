"""The worker's Prometheus metrics, served at /metrics/ by streams.web.

Each worker process has a registry of its own holding only these metrics (not
prometheus_client's default registry with its process and platform collectors).
Counters are incremented where the work happens; consumer lag and table sizes
are read from the worker at each scrape (`WorkerState`), never on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry()
# The Prometheus text format that `render` writes.
CONTENT_TYPE = CONTENT_TYPE_LATEST

# An agent step takes 0.1-10 ms; a payment call up to seconds (retries, a slow provider).
STEP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

PROCESSED = Counter(
    "momentum_processed",
    "Messages an agent handled, per agent and input topic.",
    ["agent", "topic"],
    registry=REGISTRY,
)
PROCESSING_SECONDS = Histogram(
    "momentum_processing_seconds",
    "Time an agent spent on one message (decode, rule, state, sends), per agent.",
    ["agent"],
    buckets=STEP_BUCKETS,
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "momentum_dead_letters",
    "Messages sent to <topic>.dlq, per input topic and error.",
    ["topic", "error"],
    registry=REGISTRY,
)
SENT = Counter(
    "momentum_sent",
    "Messages the agents sent or published, per topic.",
    ["topic"],
    registry=REGISTRY,
)
ORDERS_SETTLED = Counter(
    "momentum_orders_settled",
    "Orders that reached a final state, per status and reason.",
    ["status", "reason"],
    registry=REGISTRY,
)
RESERVATIONS = Counter(
    "momentum_reservations",
    "Stock reservations decided, per outcome (granted, rejected) and reason.",
    ["outcome", "reason"],
    registry=REGISTRY,
)
PAYMENT_CALLS = Counter(
    "momentum_payment_calls",
    "Calls to the card provider, per operation and outcome.",
    ["operation", "outcome"],
    registry=REGISTRY,
)
PAYMENT_CALL_SECONDS = Histogram(
    "momentum_payment_call_seconds",
    "Time a call to the card provider took, retries included, per operation.",
    ["operation"],
    buckets=CALL_BUCKETS,
    registry=REGISTRY,
)
ANALYTICS_LATE = Counter(
    "momentum_analytics_late",
    "Settlements too late for their window, not counted, per topic.",
    ["topic"],
    registry=REGISTRY,
)
ANALYTICS_DUPLICATES = Counter(
    "momentum_analytics_duplicates",
    "Settlements counted already (redelivered), per topic.",
    ["topic"],
    registry=REGISTRY,
)

# (topic, partition, records behind) for every partition the worker consumes.
LagReader = Callable[[], Iterable[tuple[str, int, int]]]
# (table, local rows) for every table of the worker.
SizeReader = Callable[[], Iterable[tuple[str, int]]]


class WorkerState(Collector):
    """Consumer lag per partition and table sizes, read from the worker at each scrape."""

    def __init__(self, lag: LagReader, sizes: SizeReader) -> None:
        self._lag = lag
        self._sizes = sizes

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "momentum_consumer_lag_records",
            "Records between the worker's position and the partition's high watermark.",
            labels=["topic", "partition"],
        )
        for topic, partition, behind in self._lag():
            lag.add_metric([topic, str(partition)], behind)
        yield lag
        sizes = GaugeMetricFamily(
            "momentum_table_rows",
            "Rows in the worker's local table partitions, per table.",
            labels=["table"],
        )
        for table, rows in self._sizes():
            sizes.add_metric([table], rows)
        yield sizes


def register_worker_state(lag: LagReader, sizes: SizeReader) -> None:
    """Read lag and table sizes from these at every scrape (once per process)."""
    REGISTRY.register(WorkerState(lag, sizes))


# `labels(...)` costs microseconds per call (a lock, a dict keyed by the label tuple);
# the hot path binds each child once and keeps it.


@dataclass
class AgentMetrics:
    """One agent's children of the per-message metrics, bound once."""

    agent: str
    seconds: Any = None
    _processed: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.seconds = PROCESSING_SECONDS.labels(agent=self.agent)

    def processed(self, topic: str) -> Any:
        child = self._processed.get(topic)
        if child is None:
            child = self._processed[topic] = PROCESSED.labels(agent=self.agent, topic=topic)
        return child


@cache
def agent_metrics(agent: str) -> AgentMetrics:
    return AgentMetrics(agent)


@cache
def sent(topic: str) -> Any:
    """The `momentum_sent` child of `topic`."""
    return SENT.labels(topic=topic)


def agent_of(handler: Any) -> str:
    """The agent label of a handler: its flow's name (`streams.orders.agents` -> orders)."""
    func = getattr(handler, "func", handler)  # functools.partial
    parts = getattr(func, "__module__", "").split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "streams" else parts[-1]


def render() -> bytes:
    """Every metric of this process, in the Prometheus text format."""
    return generate_latest(REGISTRY)
