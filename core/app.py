"""The Faust app, built from the settings: what tables and flows register with.

Importing this module builds the app and nothing else: no agent, table, timer
or web view. The flows register theirs when they are imported, and the worker's
entry point (`faust -A streams.app worker`) imports every flow (streams.flows).
The gateway, the sink and the CLI never import this module.
"""

from __future__ import annotations

from core.membership import member_file
from core.observe import faust_logging_config
from core.settings import get_settings
from core.tuning import worker_app

settings = get_settings()

app = worker_app(
    settings,
    settings.app_id,
    member_file=member_file(settings.data_dir),
    store=settings.store,
    datadir=str(settings.data_dir),
    processing_guarantee=settings.processing_guarantee,
    table_standby_replicas=0,
    web_enabled=True,
    # The flows are imported by streams.app from one list (streams.flows), not
    # discovered. `origin` only lets the `faust` CLI shorten names (`faust send @agent`).
    origin="streams",
    # With MOMENTUM_LOG_FORMAT=json the worker's lines are JSON (core.observe).
    logging_config=faust_logging_config(),
)
