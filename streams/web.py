"""The worker's own web pages, of no single flow: readiness and metrics.

Each flow serves its table views from its own `views.py`; `found` is the answer
they all give. Table routing sends a request for a key to the worker that holds
the key's partition, so the gateway may ask any worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from faust.exceptions import ConsumerNotStarted
from faust.web import Request, Response, View

from core.app import app
from core.topics import BY_NAME
from streams import metrics

NOT_FOUND = 404


async def _ready(web: View, request: Request) -> Response:
    recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
    assigned = bool(app.consumer.assignment()) if app.consumer else False
    status = "ready" if recovered and not app.rebalancing and assigned else "starting"
    body = {"status": status, "recovered": recovered, "rebalancing": app.rebalancing}
    return web.json(body, status=200 if status == "ready" else 503)


async def _metrics_page(web: View, request: Request) -> Response:
    # As a header: aiohttp refuses a content_type argument that names a charset.
    return web.bytes(metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE})


def consumer_lag() -> Iterator[tuple[str, int, int]]:
    """Records behind per assigned partition of the pipeline's topics (changelogs left
    out): the fetch's high watermark (right on Tansu too, unlike ListOffsets) minus the
    next offset to read."""
    consumer = app.consumer
    try:
        assigned = consumer.assignment()
    except ConsumerNotStarted:  # starting: no partition is read yet
        return
    # Faust keeps what it read last per partition, and what it committed; no public API.
    read = getattr(consumer, "_read_offset", {})
    committed = getattr(consumer, "_committed_offset", {})
    for tp in assigned:
        if tp.topic not in BY_NAME:
            continue
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        last = read.get(tp)
        position = last + 1 if last is not None else committed.get(tp) or 0
        yield tp.topic, tp.partition, max(0, highwater - position)


def table_rows() -> Iterator[tuple[str, int]]:
    """Rows of each table in this worker's active partitions (RocksDB counts its keys:
    read at a scrape, never on the hot path)."""
    for name, table in app.tables.items():
        yield name, len(table)


metrics.register_worker_state(consumer_lag, table_rows)


# Both spellings answer: Faust's own pages end in a slash, Prometheus and people often don't.
ready = app.page("/ready/", name="ready")(_ready)
app.page("/ready", name="ready_without_slash")(_ready)
metrics_page = app.page("/metrics/", name="metrics_page")(_metrics_page)
app.page("/metrics", name="metrics_page_without_slash")(_metrics_page)


def found(web: View, view: dict[str, Any] | None, what: str) -> Response:
    """The view as JSON, or 404 naming what was not found."""
    if view is None:
        return web.json({"error": f"{what} not found"}, status=NOT_FOUND)
    return web.json(view)
