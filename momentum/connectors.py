"""`momentum connectors render`: the connector configs with this environment's settings.

connectors/*.json are the sink mapping (one source of truth) written for the
compose stack. Where they point and how many replicas their dead-letter topics
get belong to the deployment, so they come from the one settings object here:
the JDBC URL from DATABASE_URL, the registry from SCHEMA_REGISTRY_URL, and the
dead-letter replication factor from MOMENTUM_TOPIC_REPLICATION_FACTOR. The
database credentials stay `${env:...}` references that Kafka Connect resolves,
so no password is ever written into Kafka's config topic.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.settings import Settings, get_settings
from sinks.config import CONNECTORS_DIR

REGISTRY_KEYS = ("key.converter.schema.registry.url", "value.converter.schema.registry.url")
DLQ_REPLICATION = "errors.deadletterqueue.topic.replication.factor"


def jdbc_url(database_url: str) -> str:
    """postgresql://user:pw@host:port/db -> jdbc:postgresql://host:port/db (no credentials)."""
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise ValueError(f"DATABASE_URL is not a postgresql:// URL with a host: {database_url!r}")
    port = f":{parts.port}" if parts.port else ""
    return f"jdbc:postgresql://{parts.hostname}{port}{parts.path}"


def render_connector(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    rendered = copy.deepcopy(document)
    config = rendered["config"]
    config["connection.url"] = jdbc_url(settings.database_url)
    for key in REGISTRY_KEYS:
        if key in config:
            config[key] = settings.schema_registry_url
    if "errors.deadletterqueue.topic.name" in config:
        config[DLQ_REPLICATION] = str(settings.topic_replication_factor)
    return rendered


def cmd_render(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        for path in sorted(Path(args.connectors).glob("*.json")):
            rendered = render_connector(json.loads(path.read_text()), settings)
            text = json.dumps(rendered, indent=2) + "\n"
            if args.out:
                out = Path(args.out)
                out.mkdir(parents=True, exist_ok=True)
                (out / path.name).write_text(text)
                print(f"wrote {out / path.name}")
            else:
                sys.stdout.write(text)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def add_connector_commands(subparsers: Any) -> None:
    connectors = subparsers.add_parser("connectors", help="Kafka Connect sink configs")
    commands = connectors.add_subparsers(dest="connectors_command", required=True)
    render = commands.add_parser(
        "render", help="connectors/*.json with DATABASE_URL, the registry and replication"
    )
    render.add_argument("--connectors", default=str(CONNECTORS_DIR), help="source directory")
    render.add_argument("--out", help="write one file per connector here (default: stdout)")
    render.set_defaults(func=cmd_render)
