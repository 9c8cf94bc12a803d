"""The gateway's own metrics, next to the request metrics of core.http_observe.

One set per app (`create_app`), in the app's registry, so tests can build many apps.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass(frozen=True)
class GatewayMetrics:
    registry: CollectorRegistry
    commands: Counter
    refused: Counter


def gateway_metrics() -> GatewayMetrics:
    registry = CollectorRegistry()
    return GatewayMetrics(
        registry,
        commands=Counter(
            "momentum_gateway_commands",
            "Commands the gateway sent to Kafka, per topic.",
            ["topic"],
            registry=registry,
        ),
        refused=Counter(
            "momentum_gateway_refused",
            "Requests refused before the app: rate_limited (429) or overloaded (503).",
            ["reason"],
            registry=registry,
        ),
    )
