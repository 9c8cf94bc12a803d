"""The worker's /metrics/ page: the agents' counters in the Prometheus text format."""

from __future__ import annotations

from typing import Any

from aiohttp.web import Response
from prometheus_client.parser import text_string_to_metric_families

from streams import metrics, web


class AiohttpView:
    """Builds responses the way Faust's aiohttp driver does (`Web.bytes`)."""

    def bytes(self, value: bytes, **options: Any) -> Response:
        return Response(body=value, **options)


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


async def test_the_page_counts_under_the_names_and_labels_it_always_had() -> None:
    metrics.PROCESSED.labels(topic="metrics-test").inc()
    metrics.SENT.labels(topic="metrics-test").inc(2)
    metrics.DEAD_LETTERS.labels(topic="metrics-test", error="bad-magic-byte").inc()
    response = await web.metrics_page.get(AiohttpView(), None)
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert isinstance(response.body, bytes)
    text = response.body.decode()
    assert sample(text, "momentum_processed_total", topic="metrics-test") == 1
    assert sample(text, "momentum_sent_total", topic="metrics-test") == 2
    labels = {"topic": "metrics-test", "error": "bad-magic-byte"}
    assert sample(text, "momentum_dead_letters_total", **labels) == 1
