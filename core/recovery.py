"""Faust's table recovery, ending with the source partitions resumed last.

When a worker gets partitions it recovers their tables, then seeks its input
(source) partitions to their committed offsets and resumes flow. Stock Faust
resumes fetching the source partitions first, then seeks, then resumes flow
control, which clears every stream queue. Messages fetched in that window were
in a queue when it was cleared, while the fetch loop had already moved its read
offset past them, so their refetch was skipped as seen: they were never
processed, and the next commit, of later offsets, counted them done. Seen as an
order placed while its worker restarted that was never processed (a 202, then 404
for good), once in about 16 runs of `tests/integration/test_ingress.py`; the
input partition's committed offset was past the PlaceOrder, and nothing of it was
in any topic or table.

Here the seek and the queue clear come first, while the source partitions are
still paused, and the source partitions are resumed last, so every message
fetched after a rebalance is fetched from the committed offset into empty queues.
"""

from __future__ import annotations

import asyncio
from typing import cast

from aiokafka import TopicPartition
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport.consumer import ThreadDelegateConsumer
from faust.types import TP


class SeekFirstRecovery(Recovery):
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
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            timeout = self.app.conf.broker_request_timeout
            await self._wait(consumer.perform_seek(), timeout=timeout)
            await self._wait(self._seek_uncommitted(sources), timeout=timeout)
        self.completed.set()
        # Clears the stream queues: nothing from the source partitions is in them yet.
        self.app.flow_control.resume()
        consumer.resume_flow()
        consumer.resume_partitions(sources)
        await self.app._fetcher.maybe_start()  # type: ignore[attr-defined]

    async def _seek_uncommitted(self, sources: set[TP]) -> None:
        """Input partitions with no committed offset, sought to their start now.

        The seek to committed offsets leaves them alone, and aiokafka then finds their
        start only once its coordinator's lazy refresh of committed offsets answers,
        which after a restart sometimes never came: the worker was ready and never
        fetched them, and what was sent to them waited for good.
        """
        consumer = cast(ThreadDelegateConsumer, self.app.consumer)
        uncommitted = [tp for tp in sources if consumer._read_offset.get(tp) is None]
        # Momentum reads every input from its start; another policy keeps Faust's behaviour.
        if uncommitted and self.app.conf.consumer_auto_offset_reset == "earliest":
            self.log.info("Seek input partitions with no commit to their start: %s", uncommitted)
            await consumer._thread.seek_to_beginning(
                *(TopicPartition(tp.topic, tp.partition) for tp in uncommitted)
            )


class SeekFirstTableManager(TableManager):
    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
