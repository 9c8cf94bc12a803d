"""A bare Faust relay (consume, send on) on the stack's broker: the saga's Faust baseline.

`faust -A benchmarks.relay worker` runs the app below: one agent that sends
every message from `BENCH_RELAY_IN` on to `BENCH_RELAY_OUT`, with the workers'
broker settings (`core.tuning.worker_app`) and no tables. `relay_rate` starts it, feeds it
messages the size of an encoded PlaceOrder and times them through.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from benchmarks.broker import consume_until
from core.settings import get_settings
from core.tuning import worker_app
from momentum.stack import free_port

settings = get_settings()
IN = os.environ.get("BENCH_RELAY_IN", "bench-relay-in")
OUT = os.environ.get("BENCH_RELAY_OUT", "bench-relay-out")

app = worker_app(
    settings,
    os.environ.get("BENCH_RELAY_APP", "momentum-bench-relay"),
    store="memory://",
    datadir=os.environ.get("BENCH_RELAY_DATA", tempfile.gettempdir()),
    web_enabled=False,
)
inbox = app.topic(IN, key_type=bytes, value_type=bytes, value_serializer="raw")
outbox = app.topic(OUT, key_type=bytes, value_type=bytes, value_serializer="raw")


@app.agent(inbox)
async def relay(stream: Any) -> None:
    async for key, value in stream.items():
        await outbox.send(key=key, value=value)


def relay_rate(bootstrap: str, n: int, size: int) -> float:
    """Events/s through the relay for `n` messages of `size` bytes, once it has joined."""
    run = uuid.uuid4().hex[:8]
    names = {"BENCH_RELAY_IN": f"bench-relay-in-{run}", "BENCH_RELAY_OUT": f"bench-relay-out-{run}"}
    partitions = get_settings().topic_partitions
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics(
        [NewTopic(name, partitions, 1) for name in names.values()]
    ).values():
        future.result(30)
    data = tempfile.mkdtemp(prefix="bench-relay-")
    env = {
        **os.environ,
        **names,
        "BENCH_RELAY_APP": f"momentum-bench-relay-{run}",
        "BENCH_RELAY_DATA": data,
        # The workers' consumer settings on the embedded stack (momentum.stack).
        "MOMENTUM_FETCH_MAX_WAIT_MS": os.environ.get("MOMENTUM_FETCH_MAX_WAIT_MS", "50"),
        "MOMENTUM_END_OFFSETS_FROM_FETCH": os.environ.get(
            "MOMENTUM_END_OFFSETS_FROM_FETCH", "true"
        ),
    }
    log = open(os.path.join(data, "relay.log"), "wb")  # noqa: SIM115 (closed in finally)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "faust",
            "-A",
            "benchmarks.relay",
            "worker",
            "-l",
            "warn",
            "--web-port",
            str(free_port()),
            "--web-bind",
            "127.0.0.1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    out = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    try:
        # Joined once a warm-up message comes through.
        out.produce(names["BENCH_RELAY_IN"], key=b"warm-up", value=b"x" * size)
        out.flush(10)
        deadline = time.monotonic() + 180
        while True:
            try:
                consume_until(bootstrap, names["BENCH_RELAY_OUT"], lambda _: True, timeout=5)
                break
            except TimeoutError:
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the relay did not start; see {log.name}") from None
        payload = b"x" * size
        began = time.perf_counter()
        for i in range(n):
            out.produce(names["BENCH_RELAY_IN"], key=str(i).encode(), value=payload)
            out.poll(0)
        out.flush(30)
        seen = 0

        def all_through(_: Any) -> bool:
            nonlocal seen
            seen += 1
            return seen >= n + 1  # and the warm-up

        consume_until(bootstrap, names["BENCH_RELAY_OUT"], all_through, timeout=600)
        rate = n / (time.perf_counter() - began)
        shutil.rmtree(data, ignore_errors=True)  # kept when it failed: the log is there
        return rate
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
        log.close()
        admin.delete_topics(list(names.values()))
