"""How fast orders go through the saga, and how long one takes, against the broker.

Part of `momentum bench` (benchmarks.run): the saturation run (PlaceOrder
commands produced straight to `order-commands` until every order is CONFIRMED
on the public `orders` topic), the open-loop latency run through the gateway,
the number of sequential Kafka hops an order takes (derived from the saga's
pure rules), and the recovery run (SIGKILL a worker, time until an order
confirms again).
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from confluent_kafka import Producer

from benchmarks.broker import consume_until
from benchmarks.stack import BenchStack
from schemas import envelopes, messages
from streams.orders import rules

SELLER = "bench-seller"


def producer(stack: BenchStack) -> Producer:
    return Producer(
        {"bootstrap.servers": stack.bootstrap, "linger.ms": 5, "partitioner": "murmur2_random"}
    )


def seed_catalog(stack: BenchStack, skus: int, quantity: int, prefix: str) -> list[str]:
    """`skus` products with `quantity` on hand, sent as inventory commands (as the gateway
    would), then waited for: the last sku of each partition readable through the gateway."""
    from core.topics import INVENTORY_COMMANDS, value_codec

    codec = value_codec(INVENTORY_COMMANDS)
    names = [f"{prefix}-{i:06d}" for i in range(skus)]
    out = producer(stack)
    for sku in names:
        upsert = messages.upsert_product(
            name="bench",
            price=Decimal("1.00"),
            currency="BRL",
            seller_id=SELLER,
            low_stock_threshold=0,
            role="SELLER",
            transfer_to=None,
        )
        restock = messages.restock(quantity=quantity, requested_by=SELLER, role="SELLER")
        for payload in (upsert, restock):
            value = codec.encode(envelopes.inventory_command(sku, payload))
            out.produce(INVENTORY_COMMANDS.name, key=sku.encode(), value=value)
            out.poll(0)
    out.flush(60)
    # Commands of one sku stay in order; a sample of skus (the last ones) all
    # stocked means the inventory agent has worked through (nearly) the whole batch.
    headers = stack.headers(SELLER, "seller")
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        for sku in names[-min(skus, 16) :]:
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                answer = http.get(f"/v1/inventory/{sku}", headers=headers)
                if answer.status_code == 200 and answer.json().get("on_hand", 0) >= quantity:
                    break
                time.sleep(0.2)
            else:
                raise TimeoutError(f"{sku} not stocked after 900 s")
    return names


def place_order_command(order_id: str, skus: list[str]) -> messages.OrderCommand:
    return envelopes.order_command(
        order_id,
        messages.place_order(
            customer_id="bench",
            lines=[{"sku": sku, "quantity": 1} for sku in skus],
            payment={"method": "card", "token": "tok_ok"},
            request_hash="",
        ),
    )


@dataclass
class SagaRun:
    orders: int
    lines: int
    seconds: float
    run: str
    # time.perf_counter() when the first command was produced.
    started: float
    # Seconds since `started`, one per CONFIRMED order as the bench read it.
    confirmed_at: list[float] = field(default_factory=list)

    @property
    def orders_per_second(self) -> float:
        return self.orders / self.seconds


def new_run() -> str:
    """An id for one run's orders: their ids start with `bench-<run>-`."""
    return uuid.uuid4().hex[:8]


def saturate(
    stack: BenchStack, catalog: list[str], n: int, lines: int, run: str | None = None
) -> SagaRun:
    """Produce `n` orders of `lines` random skus at once; time until all are CONFIRMED."""
    from core.topics import ORDER_COMMANDS, ORDERS, key_codec, value_codec

    codec, keys, values = value_codec(ORDER_COMMANDS), key_codec(ORDERS), value_codec(ORDERS)
    run = run or new_run()
    chosen = random.Random(run)
    commands = {
        f"bench-{run}-{i}": place_order_command(f"bench-{run}-{i}", chosen.sample(catalog, lines))
        for i in range(n)
    }
    encoded = {oid: codec.encode(command) for oid, command in commands.items()}
    out = producer(stack)
    began = time.perf_counter()
    for oid, value in encoded.items():
        out.produce(ORDER_COMMANDS.name, key=oid.encode(), value=value)
        out.poll(0)
    out.flush(30)
    pending = set(commands)
    confirmed_at: list[float] = []

    def confirmed(message: Any) -> bool:
        key = keys.decode(message.key())
        if key in pending and values.decode(message.value())["status"] == "CONFIRMED":
            pending.discard(key)
            confirmed_at.append(time.perf_counter() - began)
        return not pending

    consume_until(stack.bootstrap, ORDERS.name, confirmed, timeout=1800)
    return SagaRun(n, lines, time.perf_counter() - began, run, began, confirmed_at)


# -- hops -----------------------------------------------------------------------------------


def saga_hops(lines: int) -> list[str]:
    """The sequential Kafka hops from POST to a settled order, walked through the saga's rules.

    Start with the gateway's PlaceOrder (one hop into the saga), then answer
    every effect that leaves the saga the way its agent does on the happy
    path: each Reserve goes to inventory-commands and comes back as
    StockReserved on order-events, all lines in parallel (one round trip
    whatever the number of lines); Authorize goes to payment-commands and comes
    back as AUTHORIZED on order-events. The order is then CONFIRMED in the
    saga's table, where `GET /v1/orders/{id}?wait` reads it; Commit, Capture
    and Publish happen after and add no hop to that path.
    """
    now = datetime.now(UTC)
    path = ["gateway -> order-commands -> saga (PlaceOrder)"]
    order, effects = rules.place_order(
        None,
        order_id="o",
        customer_id="c",
        lines=[(f"sku-{i}", 1) for i in range(lines)],
        payment_token="tok_ok",
        request_hash="",
        now=now,
        ttl=timedelta(minutes=15),
    )
    while order is not None and not order.settled:
        reserves = [e for e in effects if isinstance(e, rules.Reserve)]
        if reserves:
            path += [
                f"saga -> inventory-commands -> inventory (ReserveStock x{len(reserves)})",
                "inventory -> order-events -> saga (StockReserved)",
            ]
            effects = []
            for reserve in reserves:
                order, more = rules.apply_stock_reserved(order, reserve.sku, Decimal(1), "BRL", now)
                effects += more
        elif any(isinstance(e, rules.Authorize) for e in effects):
            path += [
                "saga -> payment-commands -> payments (AuthorizePayment; HTTP to the provider)",
                "payments -> order-events -> saga (PaymentResult AUTHORIZED)",
            ]
            order, effects = rules.apply_payment(order, rules.PaymentOutcome.AUTHORIZED, now)
        else:
            raise RuntimeError(f"the happy path stalls at {order.status} with {effects}")
    return path


# -- latency at a fixed offered rate ----------------------------------------------------------


class GatewayOrders:
    """Places one-line orders through the gateway and waits for each to settle, as a
    client would: `POST /v1/orders`, then `GET /v1/orders/{id}?wait=30`. Thread-safe."""

    def __init__(self, stack: BenchStack, catalog: list[str], http: httpx.Client) -> None:
        self.customers = [stack.headers(f"bench-l{c}", "customer") for c in range(16)]
        self.catalog = catalog
        self.http = http
        self.chosen = random.Random(1)

    def place_and_settle(self, i: int) -> str | None:
        """None once the order settled, else why it did not."""
        headers = {**self.customers[i % len(self.customers)], "Idempotency-Key": str(uuid.uuid4())}
        body = {
            "items": [{"sku": self.chosen.choice(self.catalog), "quantity": 1}],
            "payment": {"method": "card", "token": "tok_ok"},
        }
        placed = self.http.post("/v1/orders", json=body, headers=headers)
        if placed.status_code != 202:
            return f"POST {placed.status_code}"
        oid = placed.json()["order_id"]
        settled = self.http.get(f"/v1/orders/{oid}", params={"wait": 30}, headers=headers)
        status = settled.json().get("status") if settled.status_code == 200 else None
        if status in {s.value for s in rules.SETTLED}:
            return None
        return f"GET {settled.status_code} {status}"


def _gateway_client(stack: BenchStack) -> httpx.Client:
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    return httpx.Client(base_url=stack.gateway_url, timeout=60, limits=limits)


def gateway_saturation(
    stack: BenchStack, catalog: list[str], clients: int, seconds: float
) -> float:
    """Orders settled per second through the gateway (POST, then the held GET) with
    `clients` clients each placing its next order once the last settled (closed loop):
    what the whole path sustains, the gateway's CPU included."""
    settled = 0
    lock = threading.Lock()
    with _gateway_client(stack) as http:
        orders = GatewayOrders(stack, catalog, http)
        began = time.perf_counter()
        deadline = began + seconds

        def client(c: int) -> None:
            nonlocal settled
            i = c
            while time.perf_counter() < deadline:
                if orders.place_and_settle(i) is None:
                    with lock:
                        settled += 1
                i += clients

        with ThreadPoolExecutor(max_workers=clients) as pool:
            list(pool.map(client, range(clients)))
        return settled / (time.perf_counter() - began)


def open_loop_latency(
    stack: BenchStack, catalog: list[str], rate: float, seconds: float
) -> tuple[list[float], list[str]]:
    """Seconds from POST /v1/orders to the settled answer of `GET ?wait`, for orders offered
    at `rate` per second whatever the answers (open loop); each measured from its scheduled
    start, so a stall counts for every order it delays. Also why orders did not settle within
    the 30 s wait (those are not among the latencies)."""
    total = max(1, int(rate * seconds))
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    with _gateway_client(stack) as http:
        orders = GatewayOrders(stack, catalog, http)

        def one(i: int, scheduled: float) -> None:
            failure = orders.place_and_settle(i)
            with lock:
                if failure is None:
                    latencies.append(time.perf_counter() - scheduled)
                else:
                    failures.append(failure)

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=128) as pool:
            for i in range(total):
                scheduled = began + i / rate
                time.sleep(max(0.0, scheduled - time.perf_counter()))
                pool.submit(one, i, scheduled)
    return latencies, failures


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50": at(0.50),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


# -- recovery -----------------------------------------------------------------------------


def recovery(stack: BenchStack, sku: str) -> float:
    """SIGKILL the first worker; seconds until an order placed right then is CONFIRMED
    (the launcher restarts the worker, which rebuilds its tables from the changelogs)."""
    from core.topics import ORDER_COMMANDS, ORDERS, key_codec, value_codec

    pid = stack.worker_pids()["worker-1"]
    oid = f"bench-recovery-{uuid.uuid4().hex[:8]}"
    keys, values = key_codec(ORDERS), value_codec(ORDERS)
    value = value_codec(ORDER_COMMANDS).encode(place_order_command(oid, [sku]))
    out = producer(stack)
    began = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    out.produce(ORDER_COMMANDS.name, key=oid.encode(), value=value)
    out.flush(30)

    def confirmed(message: Any) -> bool:
        return bool(
            keys.decode(message.key()) == oid
            and values.decode(message.value())["status"] == "CONFIRMED"
        )

    consume_until(stack.bootstrap, ORDERS.name, confirmed, timeout=900)
    return time.perf_counter() - began
