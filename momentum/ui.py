"""`momentum ui`: kaskade, a terminal UI for Kafka, pointed at the running stack.

kaskade runs from its own virtual environment (`.venv-ui`, made by `make
install`): it pins authlib<1.9 and pulls confluent-kafka's avro, json and
protobuf extras, which the project's own environment does not share. This
module only builds its command line and hands the terminal over to it.

How a topic's bytes are decoded follows core.topics: public topics carry Avro
keys and values through the registry; internal topics carry UTF-8 keys and
Avro values; a dead-letter topic holds its source topic's bytes unchanged
(kaskade shows the headers that say why with every record).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from core.topics import BY_NAME, DLQ_SUFFIX
from momentum.dlq import CONNECT_DLQ_SUFFIX

KASKADE_ENV = "MOMENTUM_KASKADE"
UI_VENV = ".venv-ui"


class UiError(RuntimeError):
    """kaskade cannot be started; the message says what to do."""


def source_topic(topic: str) -> str:
    """The topic whose bytes `topic` holds: itself, or the source of a dead-letter topic."""
    for suffix in (CONNECT_DLQ_SUFFIX, DLQ_SUFFIX):
        if topic.endswith(suffix):
            return topic.removesuffix(suffix)
    return topic


def deserializers(topic: str) -> tuple[str, str]:
    """kaskade's key and value deserializers for one of Momentum's topics."""
    spec = BY_NAME.get(source_topic(topic))
    if spec is None:
        known = ", ".join(sorted(BY_NAME))
        raise UiError(f"unknown topic {topic!r}; Momentum's topics are: {known}")
    return ("registry" if spec.public else "string", "registry")


def kaskade_args(
    bootstrap: str, registry_url: str, topic: str | None, partition: str | None = None
) -> list[str]:
    """kaskade's arguments: the admin view, or the consumer view of `topic`: every
    partition from the start, or one `partition` ("P" or "P:OFFSET") only."""
    if topic is None:
        return ["admin", "-b", bootstrap]
    key, value = deserializers(topic)
    start = ["--partition", partition] if partition else ["--earliest"]
    return [
        "consumer",
        "-b",
        bootstrap,
        "-t",
        topic,
        *start,
        "-k",
        key,
        "-v",
        value,
        "--registry",
        f"url={registry_url}",
        # A record that does not decode (a poison message in a dead-letter topic)
        # is shown as hex rather than hiding the rest.
        "--fallback",
        "encoding=hex",
    ]


def find_kaskade() -> str:
    """$MOMENTUM_KASKADE, else `.venv-ui/bin/kaskade` beside this venv, else `kaskade` on PATH."""
    configured = os.environ.get(KASKADE_ENV)
    if configured:
        return configured
    beside = Path(sys.prefix).parent / UI_VENV / "bin" / "kaskade"
    if beside.exists():
        return str(beside)
    on_path = shutil.which("kaskade")
    if on_path:
        return on_path
    raise UiError(
        f"kaskade is not installed: run `make install` (it makes {UI_VENV}), "
        f"or set {KASKADE_ENV} to a kaskade executable"
    )


def open_ui(
    bootstrap: str, registry_url: str, topic: str | None, partition: str | None = None
) -> None:
    """Replace this process with kaskade: it owns the terminal until the user quits."""
    args = kaskade_args(bootstrap, registry_url, topic, partition)
    program = find_kaskade()
    os.execv(program, [program, *args])
