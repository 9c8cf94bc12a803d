"""A Faust app whose consumers can wait less for data than Faust's fixed 1.5 s.

Faust creates its aiokafka consumer with `fetch_max_wait_ms=1500` and no way to
change it. Kafka answers a fetch as soon as data arrives, so the wait costs
nothing there; Tansu (the embedded broker) holds the fetch for the whole wait,
which made every saga hop ~0.5 s and one order 1-3 s. The embedded launcher
sets `MOMENTUM_FETCH_MAX_WAIT_MS` low; unset, Faust's default stands.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver


def tuned_app(fetch_max_wait_ms: int | None, *args: Any, **kwargs: Any) -> faust.App:
    if fetch_max_wait_ms is None:
        return faust.App(*args, **kwargs)

    class ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            # Read by aiokafka when the consumer starts its fetcher.
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class Consumer(aiokafka_driver.Consumer):
        def _new_consumer_thread(self) -> ConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class App(faust.App):
        def _new_transport(self) -> Any:
            transport = super()._new_transport()
            transport.Consumer = Consumer  # type: ignore[misc]
            return transport

    return App(*args, **kwargs)
