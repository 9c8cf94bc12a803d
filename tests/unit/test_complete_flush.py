"""Faust's producer flush before an offset commit waits for every queued table write.

Faust queues changelog records (table writes) in its producer buffer and flushes
the producer before committing source offsets. The stock buffer's flush gives up
after 0.1 s without a record leaving; the commit then goes ahead with writes
still queued, and a worker killed at that moment loses them for good.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.producer import ProducerBuffer

from core.tuning import CompleteFlushBuffer, CompleteFlushProducer, ConsumerTuning, tuned_app

# Longer than the stock flush's 0.1 s patience.
SLOW_SEND_SECONDS = 0.3


class SlowChannel:
    """Hands records on to the Kafka client slowly, like a busy worker's event loop."""

    def __init__(self, expected: int) -> None:
        self.sent: list[int] = []
        self.expected = expected
        self.all_sent = asyncio.Event()

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(SLOW_SEND_SECONDS)
        self.sent.append(fut.number)
        if len(self.sent) == self.expected:
            self.all_sent.set()


async def flush_three(buffer: ProducerBuffer) -> tuple[list[int], int]:
    """What was sent on and what was left queued when `flush` returned."""
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    channel = SlowChannel(expected=3)
    await buffer.start()
    try:
        for number in range(3):
            buffer.put(SimpleNamespace(number=number, message=SimpleNamespace(channel=channel)))  # type: ignore[arg-type]
        await buffer.flush()
        at_flush = list(channel.sent), buffer.size
        # Let the rest go out, so the buffer stops cleanly.
        await asyncio.wait_for(channel.all_sent.wait(), timeout=5)
        return at_flush
    finally:
        await buffer.stop()


async def test_the_stock_flush_returns_with_records_still_queued() -> None:
    sent, left = await flush_three(ProducerBuffer())
    assert len(sent) < 3 and left > 0


async def test_the_complete_flush_returns_once_every_record_is_sent_on() -> None:
    sent, left = await flush_three(CompleteFlushBuffer())
    assert (sent, left) == ([0, 1, 2], 0)


@pytest.mark.parametrize("tuning", [ConsumerTuning(), ConsumerTuning(fetch_max_wait_ms=50)])
def test_every_app_gets_the_complete_flush(tuning: ConsumerTuning) -> None:
    app = tuned_app(tuning, "complete-flush", store="memory://")
    assert app.transport.Producer is CompleteFlushProducer
    assert isinstance(app.producer.buffer, CompleteFlushBuffer)


async def test_a_flush_waits_for_the_records_queued_before_it_only() -> None:
    buffer = CompleteFlushBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    channel = SlowChannel(expected=4)
    await buffer.start()
    try:
        for number in range(2):
            buffer.put(SimpleNamespace(number=number, message=SimpleNamespace(channel=channel)))  # type: ignore[arg-type]
        flush = asyncio.create_task(buffer.flush())
        await asyncio.sleep(0)
        for number in range(2, 4):  # queued while the flush waits: the next commit's
            buffer.put(SimpleNamespace(number=number, message=SimpleNamespace(channel=channel)))  # type: ignore[arg-type]
        await flush
        assert channel.sent[:2] == [0, 1] and len(channel.sent) < 4
        await asyncio.wait_for(channel.all_sent.wait(), timeout=5)
    finally:
        await buffer.stop()
