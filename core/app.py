"""The Faust app, built from the settings: what tables and flows register with.

Importing this module builds the app and nothing else: no agent, table, timer
or web view. The flows register theirs when they are imported, and the worker's
entry point (`faust -A streams.app worker`) imports every flow (streams.flows).
The gateway, the sink and the CLI never import this module.
"""

from __future__ import annotations

from core.kafka_clients import faust_credentials
from core.membership import member_file
from core.observe import faust_logging_config
from core.settings import get_settings
from core.tuning import ConsumerTuning, tuned_app

settings = get_settings()

app = tuned_app(
    ConsumerTuning(
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        end_offsets_from_fetch=settings.end_offsets_from_fetch,
        member_file=member_file(settings.data_dir),
    ),
    settings.app_id,
    broker=[f"kafka://{server}" for server in settings.bootstrap_list],
    # SASL and/or TLS from the settings (None on the embedded broker).
    broker_credentials=faust_credentials(settings),
    store=settings.store,
    datadir=str(settings.data_dir),
    topic_partitions=settings.topic_partitions,
    topic_replication_factor=settings.topic_replication_factor,
    processing_guarantee=settings.processing_guarantee,
    broker_session_timeout=settings.broker_session_timeout,
    broker_heartbeat_interval=settings.broker_heartbeat_interval,
    broker_rebalance_timeout=settings.broker_rebalance_timeout,
    producer_acks=-1,
    # No linger: every ready batch leaves in the next request, in the order sends
    # were appended. The agents' "effects before state" rests on it (streams.orders.agents).
    producer_linger=0.0,
    consumer_auto_offset_reset="earliest",
    table_standby_replicas=0,
    web_enabled=True,
    # The flows are imported by streams.app from one list (streams.flows), not
    # discovered. `origin` only lets the `faust` CLI shorten names (`faust send @agent`).
    origin="streams",
    # With MOMENTUM_LOG_FORMAT=json the worker's lines are JSON (core.observe).
    logging_config=faust_logging_config(),
)
