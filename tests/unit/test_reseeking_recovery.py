"""After a rebalance no input record reaches the streams until the inputs are sought.

Stock Faust resumes the input (source) partitions, then seeks them to their
commits with the flow running, then resumes flow control, which clears the
stream queues: records fetched from the old position before the seek were still
handed to the streams after it and moved Faust's read offset past the commit
(core.recovery). Here the flow is stopped for the seek and resumed after the
clear. Input partitions with no commit yet are sought to their start
explicitly: left to aiokafka's lazy lookup of committed offsets, they were
sometimes never fetched after a restart. These tests record the order of the
steps on a real Faust app whose consumer and fetcher are stand-ins.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, cast

from aiokafka import TopicPartition
from faust.tables.recovery import Recovery
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from core.recovery import FetchTrackingConsumer, ReseekingRecovery
from core.tuning import ConsumerTuning, tuned_app

SOURCE = TP("order-commands", 0)
UNCOMMITTED = TP("order-events", 1)


class RecordingThread:
    def __init__(self, steps: list[str]) -> None:
        self.steps = steps

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        # aiokafka's own check: Faust's TP tuples are refused.
        assert all(isinstance(tp, TopicPartition) for tp in tps), tps
        self.steps.append(f"seek to start {sorted(tp.topic for tp in tps)}")


class RecordingConsumer:
    """The input partition SOURCE has a committed offset, UNCOMMITTED none."""

    def __init__(self, steps: list[str], changelog: TP) -> None:
        self.steps = steps
        self.changelog = changelog
        self._thread = RecordingThread(steps)
        self._read_offset: dict[TP, int | None] = {}

    def assignment(self) -> set[TP]:
        return {SOURCE, UNCOMMITTED, self.changelog}

    async def perform_seek(self) -> None:
        await asyncio.sleep(0)
        self._read_offset.update({SOURCE: 7, UNCOMMITTED: None})
        self.steps.append("seek")

    def stop_flow(self) -> None:
        self.steps.append("stop flow")

    async def no_fetch_in_flight(self) -> None:
        await asyncio.sleep(0)
        self.steps.append("fetch in flight returned")

    def resume_flow(self) -> None:
        self.steps.append("resume flow")

    def resume_partitions(self, tps: set[TP]) -> None:
        self.steps.append(f"resume {sorted(tp.topic for tp in tps)}")


class RecordingFetcher:
    def __init__(self, steps: list[str]) -> None:
        self.steps = steps

    async def maybe_start(self) -> None:
        self.steps.append("fetch")


async def steps_of(recovery_class: type[Recovery]) -> list[str]:
    app = tuned_app(ConsumerTuning(), "seek-first", store="memory://")
    table = app.Table("orders-test", default=int)
    steps: list[str] = []
    changelog = TP(table.changelog_topic.get_topic_name(), 0)
    app.consumer = RecordingConsumer(steps, changelog)  # type: ignore[assignment]
    app.__dict__["_fetcher"] = RecordingFetcher(steps)
    app.flow_control.resume = lambda: steps.append("clear queues")  # type: ignore[method-assign]
    recovery = recovery_class(app, app.tables)
    await recovery._resume_streams(generation_id=app.consumer_generation_id)
    return steps


async def test_no_record_flows_between_the_seek_and_the_clear() -> None:
    assert await steps_of(ReseekingRecovery) == [
        "resume ['order-commands', 'order-events']",
        "stop flow",
        "fetch in flight returned",
        "seek",
        "seek to start ['order-events']",
        "clear queues",
        "resume flow",
        "fetch",
    ]


async def test_stock_faust_seeks_with_the_flow_running() -> None:
    steps = await steps_of(Recovery)
    assert "stop flow" not in steps and "fetch in flight returned" not in steps
    assert steps.count("seek") == 1 and steps.index("seek") < steps.index("clear queues")
    assert not any(step.startswith("seek to start") for step in steps)


def test_every_app_recovers_seek_first() -> None:
    for tuning in (ConsumerTuning(), ConsumerTuning(fetch_max_wait_ms=50)):
        app = tuned_app(tuning, "seek-first-app", store="memory://")
        assert isinstance(app.tables.recovery, ReseekingRecovery)
        assert isinstance(app.consumer, FetchTrackingConsumer)


class Positions:
    """Just what `need_recovery` reads: the active changelog highwaters and offsets."""

    def __init__(self, highwaters: dict[TP, int | None], offsets: dict[TP, int | None]) -> None:
        self.active_highwaters = highwaters
        self.active_offsets = Counter(offsets)
        self._behind: TP | None = None

    def active_remaining(self) -> Counter[TP]:  # what Faust's answer asks for
        return Recovery.active_remaining(cast(Any, self))

    def fausts_answer(self) -> bool:
        return Recovery.need_recovery(cast(Any, self))

    def our_answer(self) -> bool:
        return ReseekingRecovery.need_recovery(cast(Any, self))


positions = st.integers(min_value=-1, max_value=5) | st.none()


@given(
    st.dictionaries(st.integers(0, 8), st.tuples(positions, positions), max_size=9),
    st.lists(st.integers(0, 8), max_size=6),
)
def test_the_quick_need_recovery_answers_as_fausts_as_the_offsets_move(
    start: dict[int, tuple[int | None, int | None]], moves: list[int]
) -> None:
    tps = {n: TP("momentum-orders-changelog", n) for n in start}
    state = Positions(
        {tps[n]: hw for n, (hw, _) in start.items()},
        {tps[n]: off for n, (_, off) in start.items() if off is not None},
    )
    assert state.our_answer() == state.fausts_answer()
    # Restoring moves offsets on; the partition remembered as behind may catch up.
    for n in moves:
        if n in tps and state.active_offsets[tps[n]] is not None:
            state.active_offsets[tps[n]] += 1
        assert state.our_answer() == state.fausts_answer()


class HeldFetch:
    """A consumer thread whose fetch returns when the test lets it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def getmany(self, *args: Any) -> dict[TP, list[Any]]:
        await self.release.wait()
        return {}


async def test_the_seek_waits_for_the_fetch_in_flight_to_return() -> None:
    consumer = object.__new__(FetchTrackingConsumer)
    thread = HeldFetch()
    consumer._thread = thread  # type: ignore[assignment]
    await consumer.no_fetch_in_flight()  # nothing in flight: at once
    fetch = asyncio.create_task(consumer._getmany(None, 1.0))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(consumer.no_fetch_in_flight())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    thread.release.set()
    await asyncio.wait_for(waiting, 1)
    assert fetch.done() and fetch.result() == {}
