"""The Faust application: `faust -A streams.app worker -l info`.

Settings come from the environment (streams.settings); agents, tables and web
views are found by autodiscovery in the flow packages.
"""

from __future__ import annotations

import logging

from streams.settings import get_settings
from streams.tuning import ConsumerTuning, tuned_app

settings = get_settings()

app = tuned_app(
    ConsumerTuning(
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        end_offsets_from_fetch=settings.end_offsets_from_fetch,
    ),
    settings.app_id,
    broker=[f"kafka://{server}" for server in settings.bootstrap_list],
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
    autodiscover=[
        "streams.inventory",
        "streams.orders",
        "streams.payments",
        "streams.carts",
        "streams.notifications",
        "streams.analytics",
        "streams.rejections",
        "streams.web",
    ],
    origin="streams",
)


# httpx logs every request at INFO: one line per provider call is noise on the hot path.
logging.getLogger("httpx").setLevel(logging.WARNING)


def main() -> None:
    app.main()


if __name__ == "__main__":
    main()
