"""The sink's own timings, kept where the tasks record them; /metrics serves them
(sinks.api) next to the figures read from the tasks' stats at each scrape."""

from __future__ import annotations

from prometheus_client import Histogram

# A batch is written in milliseconds; an outage of Postgres is waited out inside it.
BATCH_SECONDS = Histogram(
    "momentum_sink_batch_seconds",
    "Time from a batch's poll to its commit (decode, write, dead letters), per connector.",
    ["connector"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=None,  # registered in the sink app's own registry (sinks.api)
)
