"""What every process says about the work it does: log lines and the ids that tie them.

A request gets a correlation id at the gateway (the caller's `X-Correlation-ID`
or a new one); it travels in the `correlation.id` Kafka header of every command
and event sent on its behalf, so one order's log lines in every process share
it. Whoever handles a message makes its ids current (`bind`) for the rest of
that handling; `outgoing_headers` and the JSON log lines read them from there.

Logs are one line per event: text for people (the default), or JSON with
`MOMENTUM_LOG_FORMAT=json` (the embedded stack's log files are JSON).
"""

from __future__ import annotations

import json
import logging
import logging.config
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple

from core import tracing
from core.settings import get_settings

CORRELATION_HEADER = "correlation.id"
HTTP_CORRELATION_HEADER = "X-Correlation-ID"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Headers of a consumed message that its dead letter keeps (a replay sends the id again).
PROPAGATED_HEADERS = (CORRELATION_HEADER, *tracing.HEADERS)


class Ids(NamedTuple):
    """The ids of the work in hand; what log lines and outgoing messages carry."""

    correlation_id: str | None = None
    order_id: str | None = None
    command_id: str | None = None


NO_IDS = Ids()
_current: ContextVar[Ids] = ContextVar("momentum_ids", default=NO_IDS)


def current() -> Ids:
    return _current.get()


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def bind(ids: Ids) -> None:
    """Make `ids` current for the rest of this task (an agent's next event rebinds)."""
    _current.set(ids)


@contextmanager
def bound(ids: Ids) -> Iterator[None]:
    """`ids` current inside the block only (a timer's one send, a request)."""
    token = _current.set(ids)
    try:
        yield
    finally:
        _current.reset(token)


# Kafka headers as clients give them: pairs (aiokafka, confluent-kafka) or a mapping (Faust).
Headers = Iterable[tuple[str, bytes | None]] | Mapping[str, bytes] | None


def _pairs(headers: Headers) -> Iterable[tuple[str, bytes | None]]:
    if headers is None:
        return ()
    return headers.items() if isinstance(headers, Mapping) else headers


def header(headers: Headers, name: str) -> str | None:
    """The value of `name` among Kafka headers, decoded; None when absent."""
    for key, value in _pairs(headers):
        if key == name and value is not None:
            return value.decode("utf-8", "replace")
    return None


def outgoing_headers() -> list[tuple[str, bytes]] | None:
    """The headers a message sent now carries: the current correlation id, and the trace
    context when tracing is on; None when there is nothing to carry."""
    cid = _current.get().correlation_id
    headers = [(CORRELATION_HEADER, cid.encode())] if cid else []
    if tracing.ENABLED:
        headers += tracing.inject()
    return headers or None


def kept_headers(headers: Headers) -> list[tuple[str, bytes]]:
    """The propagated headers among a consumed message's (a dead letter keeps them)."""
    return [(k, v) for k, v in _pairs(headers) if k in PROPAGATED_HEADERS and v is not None]


def trace_carrier(headers: Headers) -> dict[str, str]:
    """The trace context among Kafka headers, as OpenTelemetry's propagators read it."""
    return {
        k: v.decode("latin-1") for k, v in _pairs(headers) if k in tracing.HEADERS and v is not None
    }


# -- log lines -------------------------------------------------------------------------------

# Attributes every LogRecord has; anything else was given with `extra=` and is written out
# (but for uvicorn's `color_message`, the same message with terminal colours).
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "color_message"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the current ids, extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ids = _current.get()
        for field, value in zip(Ids._fields, ids, strict=True):
            if value is not None:
                line[field] = value
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def log_format() -> str:
    """`json` or `text` (the default): MOMENTUM_LOG_FORMAT, through the settings."""
    return get_settings().log_format


def logging_config(level: str | int = "INFO", fmt: str | None = None) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the root logger and uvicorn's, on stderr."""
    fmt = fmt or log_format()
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if fmt == "json" else {"format": TEXT_FORMAT}
    )
    level = logging.getLevelName(level) if isinstance(level, int) else level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"momentum": formatter},
        "handlers": {
            "momentum": {
                "class": "logging.StreamHandler",
                "formatter": "momentum",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["momentum"]},
        # uvicorn's loggers write through the root handler (uvicorn.run(log_config=None)
        # leaves them alone; `--log-config` with this file resets them).
        "loggers": {
            **{
                name: {"handlers": [], "propagate": True}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
            },
            # httpx logs every request at INFO: a line per worker read or provider call.
            "httpx": {"level": "WARNING"},
        },
    }


def configure_logging(level: str | int = "INFO", fmt: str | None = None) -> None:
    """The process's log lines, in MOMENTUM_LOG_FORMAT (or `fmt`), on stderr."""
    logging.config.dictConfig(logging_config(level, fmt))


def faust_logging_config() -> dict[str, Any] | None:
    """What the Faust worker merges into its logging set-up: None keeps Faust's text
    lines; with json, its handler writes our JSON lines to stdout instead."""
    if log_format() != "json":
        return None
    return {
        "merge": True,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
    }
