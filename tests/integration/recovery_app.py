"""A one-table Faust app for test_table_recovery: the project's tuned app, nothing else.

Configured by the environment the test gives its worker process.
"""

from __future__ import annotations

import os
from pathlib import Path

from faust.web import Request, Response, View

from core.tuning import ConsumerTuning, tuned_app

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
)
table = app.Table("t", default=None, key_type=str, value_type=int, partitions=1)


@app.page("/value/{key}/")
async def value(web: View, request: Request, key: str) -> Response:
    recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
    return web.json({"recovered": recovered, "value": table.get(key)})
