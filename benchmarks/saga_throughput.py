"""How fast orders go through the saga, against the broker's own speed in the same run.

    .venv/bin/python -m benchmarks.saga_throughput [--orders 2000] [--state-dir D]

Uses a running stack (`momentum up --detach`) or starts one in a temporary
state directory and stops it afterwards. It prints:
  - baseline: confluent-kafka produce + consume of the same number of messages
    on a scratch topic (the broker's ceiling here);
  - saga: PlaceOrder commands produced straight to `order-commands` until every
    order is CONFIRMED on the public `orders` topic (every hop of the saga:
    reserve, authorize over HTTP, commit, capture, publish);
  - gateway: `POST /v1/orders` requests per second with 16 concurrent clients;
  - latency: one order at a time from POST to CONFIRMED, against the broker's
    own produce-to-consume round trip.
Figures are ratios against the baseline because these machines are shared and
noisy; absolute numbers vary from run to run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition

from gateway.auth import issue_token
from schemas import envelopes, messages


def momentum(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "momentum.cli", *args], capture_output=True, text=True, check=False
    )


def stack_status(state_dir: Path) -> dict[str, Any] | None:
    result = momentum("status", "--json", "--state-dir", str(state_dir))
    return json.loads(result.stdout) if result.returncode == 0 else None


def consume_until(bootstrap: str, topic: str, done: Any, timeout: float) -> int:
    """Read `topic` from the start until `done(message)` says all were seen."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
        seen, deadline = 0, time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error():
                    continue
                seen += 1
                if done(message):
                    return seen
        raise TimeoutError(f"{topic}: not done after {timeout}s ({seen} messages read)")
    finally:
        consumer.close()


def baseline(bootstrap: str, n: int) -> float:
    topic = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    payload = b"x" * 120
    began = time.perf_counter()
    for i in range(n):
        producer.produce(topic, key=str(i).encode(), value=payload)
        producer.poll(0)
    producer.flush(30)
    count = 0

    def all_seen(_: Any) -> bool:
        nonlocal count
        count += 1
        return count >= n

    consume_until(bootstrap, topic, all_seen, timeout=120)
    return n / (time.perf_counter() - began)


def saga(stack: dict[str, Any], n: int) -> float:
    from core.topics import ORDER_COMMANDS, ORDERS, key_codec, value_codec

    endpoints = stack["endpoints"]
    bootstrap = endpoints["kafka_bootstrap_servers"]
    seller = {"Authorization": f"Bearer {issue_token('bench', 'seller', 3600, secret())}"}
    # Eight skus, so reservations spread over the sku partitions.
    skus = [f"BENCH-{uuid.uuid4().hex[:8]}" for _ in range(8)]
    with httpx.Client(base_url=endpoints["gateway_url"], timeout=30) as http:
        for sku in skus:
            http.put(
                f"/v1/products/{sku}",
                json={"name": "bench", "price": "1.00", "currency": "BRL"},
                headers=seller,
            )
            http.post(f"/v1/inventory/{sku}/restock", json={"quantity": n}, headers=seller)
        for sku in skus:
            while http.get(f"/v1/inventory/{sku}", headers=seller).status_code != 200:
                time.sleep(0.2)

    codec, keys, values = value_codec(ORDER_COMMANDS), key_codec(ORDERS), value_codec(ORDERS)
    run = uuid.uuid4().hex[:8]
    order_ids = {f"bench-{run}-{i}" for i in range(n)}
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "partitioner": "murmur2_random"}
    )
    began = time.perf_counter()
    for i, order_id in enumerate(sorted(order_ids)):
        sku = skus[i % len(skus)]
        command = envelopes.order_command(
            order_id,
            messages.place_order(
                customer_id="bench",
                lines=[{"sku": sku, "quantity": 1}],
                payment={"method": "card", "token": "tok_ok"},
                request_hash="",
            ),
        )
        producer.produce(ORDER_COMMANDS.name, key=order_id.encode(), value=codec.encode(command))
        producer.poll(0)
    producer.flush(30)
    pending = set(order_ids)

    def confirmed(message: Any) -> bool:
        key = keys.decode(message.key())
        if key in pending and values.decode(message.value())["status"] == "CONFIRMED":
            pending.discard(key)
        return not pending

    consume_until(bootstrap, ORDERS.name, confirmed, timeout=600)
    return n / (time.perf_counter() - began)


def round_trip(bootstrap: str, n: int = 20) -> float:
    """Median seconds for one message from produce to consume (the latency baseline)."""
    topic = f"bench-rtt-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4()}",
            "fetch.wait.max.ms": 50,
        }
    )

    def next_message(timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                return
        raise TimeoutError(f"{topic}: no message within {timeout}s")

    try:
        producer.produce(topic, value=b"warm-up")
        producer.flush(10)
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        next_message()
        times = []
        for _ in range(n):
            began = time.perf_counter()
            producer.produce(topic, value=b"x")
            producer.flush(10)
            next_message()
            times.append(time.perf_counter() - began)
        return statistics.median(times)
    finally:
        consumer.close()


def order_latency(stack: dict[str, Any], n: int = 10) -> float:
    """Median seconds from POST /v1/orders to CONFIRMED, one order at a time."""
    seller = {"Authorization": f"Bearer {issue_token('bench', 'seller', 3600, secret())}"}
    customer = {"Authorization": f"Bearer {issue_token('bench-l', 'customer', 3600, secret())}"}
    sku = f"BENCH-LAT-{uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=stack["endpoints"]["gateway_url"], timeout=40) as http:
        http.put(
            f"/v1/products/{sku}",
            json={"name": "bench", "price": "1.00", "currency": "BRL"},
            headers=seller,
        )
        http.post(f"/v1/inventory/{sku}/restock", json={"quantity": n}, headers=seller)
        while http.get(f"/v1/inventory/{sku}", headers=seller).status_code != 200:
            time.sleep(0.1)
        times = []
        for _ in range(n):
            began = time.perf_counter()
            placed = http.post(
                "/v1/orders",
                json={
                    "items": [{"sku": sku, "quantity": 1}],
                    "payment": {"method": "card", "token": "tok_ok"},
                },
                headers={**customer, "Idempotency-Key": str(uuid.uuid4())},
            ).json()
            order = http.get(
                f"/v1/orders/{placed['order_id']}", params={"wait": 30}, headers=customer
            ).json()
            assert order["status"] == "CONFIRMED", order
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def gateway(stack: dict[str, Any], n: int, clients: int = 16) -> float:
    # One customer per client, as the gateway's per-client rate limit expects.
    customers = [
        {"Authorization": f"Bearer {issue_token(f'bench-c{c}', 'customer', 3600, secret())}"}
        for c in range(clients)
    ]
    body = {
        "items": [{"sku": "BENCH-NONE", "quantity": 1}],
        "payment": {"method": "card", "token": "tok_ok"},
    }
    with httpx.Client(base_url=stack["endpoints"]["gateway_url"], timeout=30) as http:

        def post(i: int) -> int:
            headers = {
                **customers[i % clients],
                "Idempotency-Key": f"bench-{i}-{uuid.uuid4().hex[:6]}",
            }
            return http.post("/v1/orders", json=body, headers=headers).status_code

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            codes = list(pool.map(post, range(n)))
        elapsed = time.perf_counter() - began
    assert set(codes) == {202}, set(codes)
    return n / elapsed


def secret() -> str:
    from core.settings import get_settings
    from gateway.auth import require_secret

    return require_secret(get_settings().jwt_secret)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--state-dir", type=Path)
    args = parser.parse_args()

    # A SIGTERM (e.g. from `timeout`) still stops the stack this run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    own = args.state_dir is None
    state_dir = Path(tempfile.mkdtemp(prefix="momentum-bench-")) if own else args.state_dir
    stack = stack_status(state_dir)
    if stack is None:
        started = momentum("up", "--detach", "--state-dir", str(state_dir))
        if started.returncode != 0:
            sys.exit(f"could not start the stack:\n{started.stdout}{started.stderr}")
        stack = stack_status(state_dir)
        assert stack is not None
    # The project's codecs read the registry URL from the settings, tokens the secret.
    os.environ["SCHEMA_REGISTRY_URL"] = stack["endpoints"]["schema_registry_url"]
    if not os.environ.get("MOMENTUM_JWT_SECRET"):
        from momentum.stack import read_jwt_secret

        os.environ["MOMENTUM_JWT_SECRET"] = read_jwt_secret(Path(stack["state_dir"])) or ""
    try:
        bootstrap = stack["endpoints"]["kafka_bootstrap_servers"]
        base = baseline(bootstrap, args.orders)
        orders = saga(stack, args.orders)
        http = gateway(stack, args.requests)
        rtt = round_trip(bootstrap)
        latency = order_latency(stack)
        print(f"baseline  broker produce+consume   {base:10.0f} msg/s")
        print(
            f"saga      orders to CONFIRMED      {orders:10.1f} orders/s  "
            f"({orders / base:.4f} of baseline)"
        )
        print(
            f"gateway   POST /v1/orders (16 cl.) {http:10.1f} req/s     "
            f"({http / base:.4f} of baseline)"
        )
        print(f"baseline  broker round trip        {rtt * 1000:10.1f} ms (median)")
        print(
            f"latency   POST to CONFIRMED        {latency * 1000:10.1f} ms (median, "
            f"{latency / rtt:.1f}x the round trip)"
        )
    finally:
        if own:
            momentum("down", "--state-dir", str(state_dir))


if __name__ == "__main__":
    main()
