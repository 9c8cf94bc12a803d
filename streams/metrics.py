"""The worker's Prometheus metrics, served at /metrics/ by streams.web.

Each worker process has a registry of its own holding only these counters (not
prometheus_client's default registry with its process and platform collectors).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

REGISTRY = CollectorRegistry()
# The Prometheus text format that `render` writes.
CONTENT_TYPE = CONTENT_TYPE_LATEST

PROCESSED = Counter(
    "momentum_processed",
    "Messages an agent handled, per input topic.",
    ["topic"],
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


def render() -> bytes:
    """Every metric of this process, in the Prometheus text format."""
    return generate_latest(REGISTRY)
