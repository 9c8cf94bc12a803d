"""`python -m sinks --host 127.0.0.1 --port P`: run the embedded JDBC sink for `connectors/*.json`.

Kafka, the schema registry and Postgres come from the environment
(`KAFKA_BOOTSTRAP_SERVERS`, `SCHEMA_REGISTRY_URL`, `DATABASE_URL`) through
`core.settings`; the connectors' `connection.*` settings are for Kafka
Connect on the production stack and are ignored here.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

import uvicorn

from core.kafka_clients import librdkafka_config, registry_auth
from core.observe import configure_logging
from core.settings import get_settings
from schemas.registry import SchemaRegistryClient
from sinks.api import create_app
from sinks.config import CONNECTORS_DIR, ConfigError, load_connectors
from sinks.service import SinkService
from sinks.writer import WriteMethod


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sinks", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8083)
    parser.add_argument(
        "--connectors",
        type=Path,
        default=CONNECTORS_DIR,
        help="directory of Kafka Connect JDBC sink configs (*.json)",
    )
    parser.add_argument(
        "--write-method", choices=[m.value for m in WriteMethod], default=WriteMethod.COPY.value
    )
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    try:
        connectors = load_connectors(args.connectors)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not connectors:
        print(f"error: no connector configs in {args.connectors}", file=sys.stderr)
        return 2
    settings = get_settings()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per schema fetch is noise
    registry = SchemaRegistryClient(settings.schema_registry_url, auth=registry_auth(settings))
    service = SinkService(
        connectors,
        bootstrap=settings.kafka_bootstrap_servers,
        database_url=settings.database_url,
        lookup=registry.schema_by_id,
        method=WriteMethod(args.write_method),
        security=librdkafka_config(settings),
    )
    # uvicorn turns SIGTERM/SIGINT into a graceful shutdown, which stops the tasks, and then
    # re-raises the signal to the handler it found: ours makes that a clean exit (status 0).
    signal.signal(signal.SIGTERM, exit_cleanly)
    uvicorn.run(
        create_app(service),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        log_config=None,  # uvicorn's lines go through ours (core.observe)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
