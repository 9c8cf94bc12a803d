"""Faust's table recovery, ending with the input partitions sought while no record flows.

When a worker gets partitions it recovers their tables, then seeks its input
(source) partitions to their committed offsets and resumes flow control, which
clears every stream queue. Faust resumes fetching the input partitions before
that seek. Records fetched from the old position in between (ahead of the
commit: what was fetched before the rebalance and dropped with the queues) were
then still being handed to the streams after the seek: their offsets moved
Faust's read offset past the committed one, so the records from the commit,
fetched again, were dropped as already read and never acknowledged (the
group's commits stuck below the ends), or the skipped offsets were taken for a
gap and acknowledged (records never processed: an order accepted and never
placed). Seen in the chaos suite on a loaded machine, where the seek answers
late; `tests/integration/test_rebalance_input.py` delays the seek to show it.

Here the flow is stopped before the seek, as during the rebalance itself: the
fetcher drops the rest of the batch it holds, and the Kafka client hands over
no record until the flow resumes, after the seek and the clear, so the first
record handed over from each partition is the one at its committed offset. A
fetch already asked of the Kafka client when the flow stops may still return
records (which the fetcher drops); the seek waits for it, or the client's
position would move past records nobody processed. Partitions with no commit
yet are sought to their start explicitly: the seek to committed offsets leaves
them alone, and aiokafka then found their start only once its lazy lookup of
committed offsets answered, which after a restart sometimes never came.

And the question Faust asks after every changelog record it restores, whether
any active changelog partition is still behind, is answered without building a
Counter of every partition's remaining records (about 50 partitions here): that
was 12% of the restoring worker's main thread, which is what limits a restore
(the records are fetched well ahead of it). 12.4 -> 10.0 s to restore 90,000
changelog records.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from aiokafka import TopicPartition
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport.consumer import ThreadDelegateConsumer
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP


class ReseekingRecovery(Recovery):
    # The active changelog partition last found behind: most likely still behind.
    _behind: TP | None = None

    def need_recovery(self) -> bool:
        # Faust's answer (any active partition with highwater - offset > 0), stopping at
        # the first partition behind instead of counting what remains in every one.
        highwaters = self.active_highwaters
        offsets = self.active_offsets  # a Counter: 0 for a partition not read yet
        last = self._behind
        if last is not None and _behind(highwaters.get(last), offsets[last]):
            return True
        for tp, highwater in highwaters.items():
            if _behind(highwater, offsets[tp]):
                self._behind = tp
                return True
        return False

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        # Faust's on_recovery_completed with the order of the last steps changed.
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        await asyncio.gather(
            *(
                table.on_recovery_completed(
                    self.actives_for_table[table], self.standbys_for_table[table]
                )
                for table in self.tables.values()
            )
        )
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        await self._seek_then_resume_sources()
        self.tables.on_actives_ready()
        if not self.app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _resume_streams(self, generation_id: int = 0) -> None:
        # Faust's _resume_streams (a rebalance with nothing to recover), same change.
        await self.app.on_rebalance_complete.send()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        await self._seek_then_resume_sources()
        self.tables.on_actives_ready()
        self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _seek_then_resume_sources(self) -> None:
        consumer = self.app.consumer
        assignment = consumer.assignment()
        sources = {tp for tp in assignment if not self._is_changelog_tp(tp)}
        consumer.resume_partitions(sources)
        if assignment:
            # No record is handed to the streams until the seek is done: the fetcher
            # drops the rest of the batch it holds and waits for the flow to resume.
            consumer.stop_flow()
            # A fetch already asked of the Kafka client may still return records
            # (dropped: the flow is stopped); the seek must come after it.
            timeout = self.app.conf.broker_request_timeout
            await self._wait(
                cast(FetchTrackingConsumer, consumer).no_fetch_in_flight(), timeout=timeout
            )
            self.log.info("Seek stream partitions to committed offsets.")
            await self._seek_sources(sources)
        self.completed.set()
        self.app.flow_control.resume()  # clears the stream queues
        consumer.resume_flow()
        await self.app._fetcher.maybe_start()  # type: ignore[attr-defined]

    async def _seek_sources(self, sources: set[TP]) -> None:
        """Each input partition to its committed offset, or its start when it has none."""
        timeout = self.app.conf.broker_request_timeout
        await self._wait(self.app.consumer.perform_seek(), timeout=timeout)
        await self._wait(self._seek_uncommitted(sources), timeout=timeout)

    async def _seek_uncommitted(self, sources: set[TP]) -> None:
        """Input partitions with no committed offset, sought to their start now."""
        consumer = cast(ThreadDelegateConsumer, self.app.consumer)
        uncommitted = [tp for tp in sources if consumer._read_offset.get(tp) is None]
        # Momentum reads every input from its start; another policy keeps Faust's behaviour.
        if uncommitted and self.app.conf.consumer_auto_offset_reset == "earliest":
            self.log.info("Seek input partitions with no commit to their start: %s", uncommitted)
            await consumer._thread.seek_to_beginning(
                *(TopicPartition(tp.topic, tp.partition) for tp in uncommitted)
            )


def _behind(highwater: int | None, offset: int | None) -> bool:
    return highwater is not None and offset is not None and highwater > offset


class FetchTrackingConsumer(aiokafka_driver.Consumer):
    """Faust's consumer, telling when its fetcher's fetch (one at a time) has returned."""

    _idle: asyncio.Event | None = None

    def _idle_event(self) -> asyncio.Event:
        if self._idle is None:
            self._idle = asyncio.Event()
            self._idle.set()
        return self._idle

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:  # noqa: ASYNC109 (Faust's signature)
        idle = self._idle_event()
        idle.clear()
        try:
            return await super()._getmany(active_partitions, timeout)
        finally:
            idle.set()

    async def no_fetch_in_flight(self) -> None:
        await self._idle_event().wait()


class ReseekingTableManager(TableManager):
    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = ReseekingRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
