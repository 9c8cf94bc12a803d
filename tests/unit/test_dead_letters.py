"""handle_event: a failing handler is retried, then dead-lettered; a rule's refusal at once."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from core import observe
from core.dead_letters import HEADER_ERROR
from core.errors import RuleError
from core.topics import ORDER_COMMANDS, TopicSpec
from streams import dead_letters


class FakeChannel:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, **message: Any) -> None:
        self.sent.append(message)


class PlainCodec:
    def decode(self, data: bytes) -> dict[str, Any]:
        return {"raw": data}


@pytest.fixture
def dlq(monkeypatch: pytest.MonkeyPatch) -> FakeChannel:
    channel = FakeChannel()
    monkeypatch.setattr(dead_letters, "value_codec", lambda spec: PlainCodec())
    monkeypatch.setattr(dead_letters, "dead_letter_channel", lambda spec: channel)
    monkeypatch.setattr(dead_letters, "RETRY_BACKOFF_SECONDS", 0)
    return channel


def event(spec: TopicSpec = ORDER_COMMANDS, headers: Any = None) -> Any:
    message = SimpleNamespace(
        topic=spec.name, partition=1, offset=42, key=b"o-1", value=b"v", headers=headers or []
    )
    return cast(Any, SimpleNamespace(message=message))


def error_header(sent: dict[str, Any]) -> bytes:
    return dict(sent["headers"])[HEADER_ERROR]


def handler_failing(times: int, error: Exception) -> tuple[list[str], dead_letters.Handler]:
    calls: list[str] = []

    async def handler(key: str, value: Any) -> None:
        calls.append(key)
        if len(calls) <= times:
            raise error

    return calls, handler


async def test_a_handler_that_fails_once_is_tried_again(dlq: FakeChannel) -> None:
    calls, handler = handler_failing(1, ConnectionError("broker away"))
    await dead_letters.handle_event(event(), handler)
    assert calls == ["o-1", "o-1"]
    assert dlq.sent == []


async def test_a_handler_that_keeps_failing_is_dead_lettered_after_three_tries(
    dlq: FakeChannel,
) -> None:
    calls, handler = handler_failing(5, ConnectionError("broker away"))
    await dead_letters.handle_event(event(), handler)
    assert len(calls) == dead_letters.HANDLER_ATTEMPTS == 3
    [letter] = dlq.sent
    assert (letter["key"], letter["value"]) == (b"o-1", b"v")
    assert error_header(letter) == b"handler-error"


async def test_a_rule_error_is_dead_lettered_without_a_retry(dlq: FakeChannel) -> None:
    calls, handler = handler_failing(5, RuleError("no lines"))
    await dead_letters.handle_event(event(), handler)
    assert len(calls) == 1
    [letter] = dlq.sent
    assert error_header(letter) == b"rule-error"


async def test_a_dead_letter_keeps_the_correlation_id_of_its_message(dlq: FakeChannel) -> None:
    calls, handler = handler_failing(5, RuleError("no lines"))
    # Faust hands headers over as a mapping; the letter adds its own after the dlq.* ones.
    headers = {"correlation.id": b"c-123", "unrelated": b"x"}
    await dead_letters.handle_event(event(headers=headers), handler)
    [letter] = dlq.sent
    sent = dict(letter["headers"])
    assert sent["correlation.id"] == b"c-123"
    assert "unrelated" not in sent
    assert error_header(letter) == b"rule-error"


async def test_the_handler_sees_the_ids_of_its_message(
    dlq: FakeChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[observe.Ids] = []

    async def handler(key: str, value: Any) -> None:
        seen.append(observe.current())

    class OrderCodec:
        def decode(self, data: bytes) -> dict[str, Any]:
            return {"order_id": "o-1", "command_id": "cmd-1"}

    monkeypatch.setattr(dead_letters, "value_codec", lambda spec: OrderCodec())
    await dead_letters.handle_event(event(headers=[("correlation.id", b"c-9")]), handler, "orders")
    assert seen == [observe.Ids("c-9", "o-1", "cmd-1")]
