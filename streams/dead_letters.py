"""Decode, handle, and dead-letter what cannot be handled; the agent keeps going.

Every consumed message goes through `handle_event`: bytes that do not decode,
a rule that refuses the message, or a handler that still fails after bounded
retries send the original bytes to `<topic>.dlq` with headers saying why and
where they came from (core.dead_letters). `momentum dlq replay` sends them back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from core import observe, tracing
from core.dead_letters import dead_letter_headers
from core.errors import RuleError
from core.retrying import linear_backoff, retry_async
from core.topics import BY_NAME, TopicSpec, key_codec, value_codec
from schemas.codec import DecodeError
from streams import metrics
from streams.channels import dead_letter_channel

log = logging.getLogger(__name__)

# A failing handler is tried 3 times, 0.2 s then 0.4 s apart, then dead-lettered.
HANDLER_ATTEMPTS = 3
RETRY_BACKOFF_SECONDS = 0.2

Handler = Callable[[str, Any], Awaitable[None]]


async def dead_letter(event: faust.EventT[bytes], spec: TopicSpec, error: str, detail: str) -> None:
    message = event.message
    log.warning(
        "dead letter from %s[%s]@%s: %s: %s",
        message.topic,
        message.partition,
        message.offset,
        error,
        detail,
    )
    headers = dead_letter_headers(error, detail, message.topic, message.partition, message.offset)
    # The letter keeps the message's correlation id: replayed, it still follows its request.
    headers += observe.kept_headers(message.headers)
    await dead_letter_channel(spec).send(key=message.key, value=message.value, headers=headers)
    metrics.DEAD_LETTERS.labels(topic=spec.name, error=error).inc()


def decode_key(spec: TopicSpec, raw: bytes | None) -> str:
    if raw is None:
        return ""
    if spec.public:
        return str(key_codec(spec).decode(raw))
    return raw.decode("utf-8")


async def handle_event(event: faust.EventT[bytes], handler: Handler, agent: str = "") -> None:
    message = event.message
    if not tracing.ENABLED:
        await _handle_event(event, handler, agent)
        return
    # One span per agent step, a child of the span that sent the message.
    attributes = {
        "messaging.system": "kafka",
        "messaging.destination.name": message.topic,
        "messaging.kafka.destination.partition": message.partition,
        "messaging.kafka.message.offset": message.offset,
    }
    carrier = observe.trace_carrier(message.headers)
    with tracing.consuming(f"{agent or 'agent'} {message.topic}", carrier, attributes) as span:
        await _handle_event(event, handler, agent)
        ids = observe.current()
        if ids.order_id:
            span.set_attribute("momentum.order_id", ids.order_id)
        if ids.correlation_id:
            span.set_attribute("momentum.correlation_id", ids.correlation_id)


async def _handle_event(event: faust.EventT[bytes], handler: Handler, agent: str) -> None:
    message = event.message
    spec = BY_NAME[message.topic]
    began = time.perf_counter()
    correlation_id = observe.header(message.headers, observe.CORRELATION_HEADER)
    observe.bind(observe.Ids(correlation_id))
    try:
        value = value_codec(spec).decode(message.value)
        key = decode_key(spec, message.key)
    except DecodeError as exc:
        await dead_letter(event, spec, exc.reason.value, exc.detail)
        return
    except UnicodeDecodeError as exc:
        await dead_letter(event, spec, "bad-key", str(exc))
        return
    if isinstance(value, dict):  # its ids, for every log line written while handling it
        observe.bind(observe.Ids(correlation_id, value.get("order_id"), value.get("command_id")))
    try:
        # Handlers are idempotent, so a retry after a partial failure is safe; a rule's
        # refusal would only be refused again.
        await retry_async(
            lambda: handler(key, value),
            retry_on=lambda exc: not isinstance(exc, RuleError),
            attempts=HANDLER_ATTEMPTS,
            wait=linear_backoff(RETRY_BACKOFF_SECONDS),
        )
    except RuleError as exc:
        await dead_letter(event, spec, "rule-error", str(exc))
    except Exception as exc:
        log.exception("giving up on %s@%s", message.topic, message.offset)
        await dead_letter(event, spec, "handler-error", f"{type(exc).__name__}: {exc}")
    else:
        meters = metrics.agent_metrics(agent)
        meters.processed(spec.name).inc()
        meters.seconds.observe(time.perf_counter() - began)
