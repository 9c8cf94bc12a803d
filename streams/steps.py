"""The steps every agent takes, written once: consume, check the key, send, then store.

An agent is `consume(stream, apply_x)`; `apply_x(key, message)` checks that the
message arrived under its own key (`check_key`), looks up the state, calls the
flow's rule, and ends with `send_then_store`: the effects the rule asked for are
sent, and only then is the state that records them stored. A worker killed in
between leaves the old state and an uncommitted message, which is handled again
and asks for the same effects (see streams.orders.agents).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol

import faust

from core.errors import RuleError
from streams.dead_letters import handle_event
from streams.metrics import agent_of


class Store(Protocol):
    """What `send_then_store` writes to: a Faust table (or a fake of one in tests)."""

    def __setitem__(self, key: Any, value: Any) -> None: ...


async def consume(
    stream: faust.StreamT[bytes],
    handler: Callable[..., Awaitable[None]],
    *,
    per_event: Callable[[faust.EventT[bytes]], dict[str, Any]] | None = None,
) -> None:
    """Hand every event of `stream` to `handler` through `handle_event` (decode, retry,
    dead-letter). `per_event` adds keyword arguments taken from the event itself, such as
    where it was read."""
    agent = agent_of(handler)
    async for event in stream.events():
        bound = handler if per_event is None else partial(handler, **per_event(event))
        await handle_event(event, bound, agent)


def check_key(key: str, expected: str, what: str) -> None:
    """Refuse a message whose Kafka key is not the id it is about: it sits on the wrong
    partition, so the state it would change lives elsewhere."""
    if key != expected:
        raise RuleError(f"{what} {expected!r} arrived under key {key!r}")


async def send_then_store(sends: Awaitable[object], table: Store, key: Any, value: Any) -> None:
    """Send a message's effects, then store the state that records them; never the reverse."""
    await sends
    table[key] = value


def overdue(deadlines: Any, now_ms: int) -> list[str]:
    """The keys of a deadlines table (key bytes -> epoch ms) whose deadline has come."""
    return [
        key.decode() if isinstance(key, bytes) else str(key)
        for key, deadline in list(deadlines.items())
        if deadline <= now_ms
    ]
