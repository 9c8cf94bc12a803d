"""What the gateway's producer costs: aiokafka `send_and_wait` on a Tansu broker.

    .venv/bin/python -m benchmarks.producer_acks

Starts a Tansu broker (memory storage) on loopback, then for acks=all and 1 and
linger 0 and 2 ms, keeps 1, 32 and 64 concurrent `send_and_wait` calls going
for 3 s each (200-byte values, as a PlaceOrder command) and prints messages/s
and the median wait for the acknowledgement. The gateway answers 202 only after
that acknowledgement (acks=all, linger 0): this says what that promise costs.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaProducer

from benchmarks.broker import private_broker
from core.topics import ORDER_COMMANDS
from momentum.stack import create_topics


async def keep_sending(producer: AIOKafkaProducer, concurrency: int) -> tuple[float, float]:
    """Messages/s and the median seconds to an acknowledgement, over 3 s."""
    waits: list[float] = []

    async def one_client(task: int) -> None:
        end = time.monotonic() + 3
        while time.monotonic() < end:
            began = time.perf_counter()
            key = f"k{len(waits)}-{task}".encode()
            await producer.send_and_wait(ORDER_COMMANDS.name, b"x" * 200, key=key)
            waits.append(time.perf_counter() - began)

    began = time.monotonic()
    await asyncio.gather(*(one_client(t) for t in range(concurrency)))
    rate = len(waits) / (time.monotonic() - began)
    return rate, sorted(waits)[len(waits) // 2]


async def measure(bootstrap: str) -> None:
    for acks in ("all", 1):
        for linger in (0, 2):
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=acks, linger_ms=linger)
            await producer.start()
            try:
                for concurrency in (1, 32, 64):
                    rate, median = await keep_sending(producer, concurrency)
                    print(
                        f"acks={acks:<3} linger={linger} ms  {concurrency:2d} concurrent: "
                        f"{rate:7.0f} msg/s, ack after {median * 1000:4.1f} ms (median)"
                    )
            finally:
                await producer.stop()


def main() -> None:
    with private_broker() as broker:
        create_topics(broker.bootstrap, 4)
        asyncio.run(measure(broker.bootstrap))


if __name__ == "__main__":
    main()
