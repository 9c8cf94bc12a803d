"""A one-table Faust app for test_table_recovery and a relay for test_rebalance_input:
the project's tuned app, nothing else.

Configured by the environment the test gives its worker process.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import faust
from faust.web import Request, Response, View

from core.tuning import ConsumerTuning, tuned_app

if seek_delay := float(os.environ.get("RECOVERY_APP_SEEK_DELAY") or 0):
    # Fault injection: the group coordinator answers the seek to committed offsets late,
    # as on a loaded machine (the chaos suite's CI runs).
    seek_to_committed = faust.transport.consumer.Consumer.perform_seek

    async def slow_seek_to_committed(self: faust.transport.consumer.Consumer) -> None:
        await asyncio.sleep(seek_delay)
        await seek_to_committed(self)

    faust.transport.consumer.Consumer.perform_seek = slow_seek_to_committed  # type: ignore[method-assign]

app = tuned_app(
    ConsumerTuning(
        end_offsets_from_fetch=os.environ["RECOVERY_APP_FROM_FETCH"] == "true",
        member_file=Path(os.environ["RECOVERY_APP_MEMBER_FILE"])
        if os.environ.get("RECOVERY_APP_MEMBER_FILE")
        else None,
    ),
    os.environ["RECOVERY_APP_ID"],
    broker=f"kafka://{os.environ['RECOVERY_APP_BOOTSTRAP']}",
    store="memory://",
    datadir=os.environ["RECOVERY_APP_DATA_DIR"],
    topic_partitions=1,
    broker_session_timeout=10,
    broker_heartbeat_interval=1,
    broker_rebalance_timeout=10,
    consumer_auto_offset_reset="earliest",  # as the project's workers
    # A short stream buffer: with a backlog the fetcher waits on the stream mid-batch.
    stream_buffer_maxsize=64,
)
table = app.Table("t", default=None, key_type=str, value_type=int, partitions=1)


@app.page("/value/{key}/")
async def value(web: View, request: Request, key: str) -> Response:
    recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
    return web.json({"recovered": recovered, "value": table.get(key)})


# The relay: every record of `<id>-in` sent on to `<id>-out`, slower than the test
# produces them (as the saga under load), so a backlog builds and the worker is
# mid-batch when a rebalance comes.
relay_input = app.topic(
    f"{app.conf.id}-in", key_type=bytes, value_type=bytes, key_serializer="raw",
    value_serializer="raw",
)  # fmt: skip
relay_output = app.topic(
    f"{app.conf.id}-out", key_type=bytes, value_type=bytes, key_serializer="raw",
    value_serializer="raw",
)  # fmt: skip


@app.agent(relay_input)
async def relay(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        await relay_output.send(key=event.key, value=event.value)
        await asyncio.sleep(0.005)
