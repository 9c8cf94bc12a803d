"""A Faust app whose producer keeps the at-least-once promise, and whose consumer
is adjusted to the broker it runs against.

- Complete flush (always). Before it commits source offsets Faust flushes its
  producer, so that every table write (a changelog record, queued in Faust's
  producer buffer) is out before the message that caused it counts as done. But
  the buffer's flush gives up after 0.1 s without a record leaving, with records
  still queued; on a busy worker the commit then goes ahead, and a worker killed
  right after has its state updates lost while their messages are never read
  again. Here the flush returns only once every queued record has been handed
  to the Kafka client, whose own flush then waits for the broker's answers.

- Reseeking recovery (always): after a rebalance no input record reaches the
  streams until the input partitions are sought to their commits and the
  stream queues cleared (core.recovery).

- Leaving for a killed process (when `member_file` is set): the worker records
  its group member id at every assignment and, starting again, first sends the
  LeaveGroup its previous process never sent, so its join is not held until
  that process's session times out (core.membership).

Two more consumer adjustments, each off unless its setting asks for it:

- Fetch wait. Faust creates its aiokafka consumer with `fetch_max_wait_ms=1500`
  and no way to change it. Kafka answers a fetch as soon as data arrives, so the
  wait costs nothing there; Tansu (the embedded broker) holds the fetch for the
  whole wait, which made every saga hop ~0.5 s and one order 1-3 s. The embedded
  launcher sets `MOMENTUM_FETCH_MAX_WAIT_MS` low.
- End offsets. Faust takes its changelog highwaters from ListOffsets, which Tansu
  answers short of the log end (see core.end_offsets). A worker whose local
  RocksDB state holds the last batch's records then refuses to start
  (ConsistencyError: persisted offset higher than the highwater), and a recovering
  worker may end recovery before the last batch's tail. With
  `MOMENTUM_END_OFFSETS_FROM_FETCH` (set by the embedded launcher) the highwaters
  are corrected by a fetch's high watermark, for every table's changelog.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import faust
from aiokafka.errors import KafkaError
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.transport.producer import ProducerBuffer
from faust.types import TP

from core import end_offsets, membership
from core.kafka_clients import faust_credentials
from core.recovery import FetchTrackingConsumer, ReseekingTableManager
from core.settings import Settings


@dataclass(frozen=True)
class ConsumerTuning:
    # How long a fetch may wait for data (ms); None keeps Faust's 1500.
    fetch_max_wait_ms: int | None = None
    # Correct ListOffsets end offsets with a fetch's high watermark.
    end_offsets_from_fetch: bool = False
    # Where the worker records its group member id (core.membership); None: nowhere.
    member_file: Path | None = None


class TunedConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, adjusted by the `tuning` of its subclass."""

    tuning: ClassVar[ConsumerTuning] = ConsumerTuning()

    async def on_start(self) -> None:
        if self.tuning.member_file is not None:
            previous = membership.recorded_member(self.tuning.member_file)
            if previous is not None:
                await self._leave_for_previous_process(previous)
        await super().on_start()

    async def _leave_for_previous_process(self, member_id: str) -> None:
        timeout = min(self.app.conf.broker_request_timeout, membership.LEAVE_TIMEOUT_SECONDS)
        try:
            async with asyncio.timeout(timeout):
                await membership.leave_group(
                    self.app.conf.id, member_id, **self._client_config("leave")
                )
        except (KafkaError, OSError, TimeoutError) as exc:
            # Only how soon the worker joins depends on it.
            self.log.warning("No LeaveGroup for the previous process's member: %r", exc)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        if self.tuning.member_file is not None:
            coordinator = self._ensure_consumer()._coordinator
            membership.record_member(self.tuning.member_file, coordinator.member_id)
        await super().on_partitions_assigned(assigned, generation_id)

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        if self.tuning.fetch_max_wait_ms is not None:
            # Read by aiokafka when the consumer starts its fetcher.
            consumer._fetch_max_wait_ms = self.tuning.fetch_max_wait_ms
        return consumer

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        listed = await super()._highwaters(partitions)
        # In a transaction Faust reads last stable offsets from fetches already.
        if not self.tuning.end_offsets_from_fetch or self.consumer.in_transaction:
            return listed
        timeout = min(self.app.conf.broker_request_timeout, end_offsets.DEFAULT_TIMEOUT_SECONDS)
        try:
            async with asyncio.timeout(timeout):
                return await end_offsets.aiokafka_end_offsets(
                    listed, **self._client_config("end-offsets")
                )
        except TimeoutError:
            # Failing recovery is visible; recovering to a short highwater loses state silently.
            raise end_offsets.EndOffsetsUnavailable(
                f"no fetch response in {timeout:.0f}s for the ends of {sorted(listed)}"
            ) from None

    def _client_config(self, purpose: str) -> dict[str, Any]:
        """Connection settings of the worker's own consumer, for a client on the side."""
        conf = self.app.conf
        transport = cast(aiokafka_driver.Transport, self.transport)
        return {
            "bootstrap_servers": aiokafka_driver.server_list(transport.url, transport.default_port),
            "client_id": f"{conf.broker_client_id}-{purpose}",
            "request_timeout_ms": int(conf.broker_request_timeout * 1000.0),
            **aiokafka_driver.credentials_to_aiokafka_auth(
                conf.broker_credentials, conf.ssl_context
            ),
        }


class CompleteFlushBuffer(ProducerBuffer):
    """Faust's producer buffer, whose `flush` returns once every record queued before it
    is sent on: handed to the Kafka client (which batches it), whose own flush the
    producer then waits for. Records queued while it waits are the next commit's.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.queued = 0  # records ever queued
        self.sent_on = 0  # records ever handed to the Kafka client

    def put(self, fut: Any) -> None:
        super().put(fut)
        self.queued += 1

    async def _send_pending(self, fut: Any) -> None:
        try:
            await super()._send_pending(fut)
        finally:
            self.sent_on += 1

    async def flush(self) -> None:
        app = cast(faust.App, self.app)
        if app.conf.producer_threaded:  # not used by Momentum: Faust's own flush
            await super().flush()
            return
        target = self.queued
        while self.sent_on < target:
            # Records left and nothing to send them: say so rather than wait forever.
            if self.state != "running":
                raise RuntimeError("Cannot flush: producer buffer not running")
            self.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self.message_sent.wait()


class CompleteFlushProducer(aiokafka_driver.Producer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Replaces the stock buffer before the producer starts it (on_start).
        buffer = CompleteFlushBuffer(loop=self.loop, beacon=self.beacon)
        buffer.app = self.app
        self.buffer = buffer


def worker_app(
    settings: Settings, app_id: str, *, member_file: Path | None = None, **kwargs: Any
) -> faust.App:
    """A worker's Faust app on the settings' broker: its credentials, partitions, group
    timeouts and consumer tuning, and the producer the agents' promises rest on. `kwargs`
    add the rest (store, data directory, web server, ...)."""
    return tuned_app(
        ConsumerTuning(
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            end_offsets_from_fetch=settings.end_offsets_from_fetch,
            member_file=member_file,
        ),
        app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_list],
        # SASL and/or TLS from the settings (None on the embedded broker).
        broker_credentials=faust_credentials(settings),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        broker_rebalance_timeout=settings.broker_rebalance_timeout,
        producer_acks=-1,
        # No linger: every ready batch leaves in the next request, in the order sends
        # were appended. The agents' "effects before state" rests on it (streams.orders.agents).
        producer_linger=0.0,
        consumer_auto_offset_reset="earliest",
        **kwargs,
    )


def tuned_app(tuning: ConsumerTuning, *args: Any, **kwargs: Any) -> faust.App:
    """A `faust.App(*args, **kwargs)` with the complete flush, its consumer following `tuning`."""

    class ConsumerThread(TunedConsumerThread):
        pass

    ConsumerThread.tuning = tuning

    class Consumer(FetchTrackingConsumer):
        def _new_consumer_thread(self) -> ConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    kwargs.setdefault("TableManager", ReseekingTableManager)

    class App(faust.App):
        def _new_transport(self) -> Any:
            transport = super()._new_transport()
            transport.Producer = CompleteFlushProducer  # type: ignore[misc]
            transport.Consumer = Consumer  # type: ignore[misc]
            return transport

    return App(*args, **kwargs)
