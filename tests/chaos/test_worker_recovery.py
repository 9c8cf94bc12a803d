"""A worker killed under load comes back with all of its state (issue 7, section 1).

Tansu, the embedded broker, answers ListOffsets(latest) short of the log end when
a partition's last batch holds several records. Faust took its changelog
highwaters from that answer, so a worker killed under load came back to local
state "ahead of" its changelog and crashed at every start (ConsistencyError). The
stack now takes end offsets from fetch responses too (core/end_offsets.py).

Both tests run on a stack of their own, since they kill and stop its worker.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from core.end_offsets import end_offsets
from momentum.supervisor import read_stack
from streams.inventory.records import (
    inventory_view,
    product_from_state,
    product_view,
    stock_from_state,
)
from streams.orders.records import order_from_state, order_view
from tests.chaos.faults import quiescent
from tests.integration.conftest import STACK_ENV, Stack, auth, momentum, wait_for
from tests.integration.shop import SELLER, Shop, unique_sku

pytestmark = pytest.mark.integration

INVENTORY_CHANGELOG = "momentum-inventory-changelog"
SETTLED = {"CONFIRMED", "REJECTED", "EXPIRED", "CANCELLED"}
# Placing and settling retry through worker restarts; this bounds a crash loop.
PLACE_DEADLINE_SECONDS = 240.0
SETTLE_DEADLINE_SECONDS = 240.0
# Orders a second: slow enough that orders are still arriving at each kill.
PLACE_RATE = 25.0


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir: Path = tmp_path_factory.mktemp("worker-recovery")
    env = {**os.environ, **STACK_ENV, "MOMENTUM_STATE_DIR": str(state_dir)}
    started = momentum("up", "--detach", "--state-dir", str(state_dir), env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    status = json.loads(momentum("status", "--json", "--state-dir", str(state_dir), env=env).stdout)
    yield Stack(state_dir, env, status)
    momentum("down", "--state-dir", str(state_dir), env=env)


@pytest.fixture
def own_gateway(own_stack: Stack) -> Iterator[httpx.Client]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with httpx.Client(base_url=own_stack.gateway_url, timeout=40.0, limits=limits) as client:
        yield client


# -- helpers ---------------------------------------------------------------------------------


def worker(stack: Stack) -> dict[str, Any]:
    """worker-1 as the launcher last published it (`momentum status` without a process)."""
    published = read_stack(stack.state_dir)
    assert published is not None, "no stack.json: the launcher is gone"
    return next(p for p in published["processes"] if p["name"] == "worker-1")


def worker_log(stack: Stack) -> str:
    return Path(worker(stack)["log"]).read_text(errors="replace")


def worker_summary(stack: Stack) -> str:
    worker_ = worker(stack)
    tail = "\n".join(worker_log(stack).splitlines()[-25:])
    return f"worker-1 {worker_['state']}, {worker_['restarts']} restarts; log tail:\n{tail}"


def kill_worker(stack: Stack) -> int:
    """SIGKILL the running worker; the launcher starts a new one."""
    pid = int(worker(stack)["pid"])
    os.kill(pid, signal.SIGKILL)
    return pid


def await_worker(stack: Stack, deadline: float, not_pid: int | None = None) -> None:
    """Wait until worker-1 (another process than `not_pid`) is running, or fail saying why."""
    while time.monotonic() < deadline:
        worker_ = worker(stack)
        if worker_["state"] == "running" and worker_["pid"] != not_pid:
            return
        time.sleep(0.5)
    log = worker_log(stack)
    raise AssertionError(
        f"worker-1 did not come back: {log.count('ConsistencyError')} ConsistencyError lines "
        f"in its log; {worker_summary(stack)}"
    )


def seed(shop: Shop, sku: str, stock: int) -> None:
    shop.seed(sku, "4.00", stock)


@dataclass
class Placement:
    customer: str
    lines: list[tuple[str, int]]
    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    order_id: str | None = None
    attempts: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    accepted_at: float | None = None


def place_until_accepted(http: httpx.Client, placement: Placement, deadline: float) -> str:
    """POST the order, retrying with the same Idempotency-Key while the worker is away."""
    shop = Shop(http, customer=placement.customer)
    last = ""
    while time.monotonic() < deadline:
        placement.attempts += 1
        try:
            r = shop.place(placement.lines, key=placement.key)
        except httpx.HTTPError as exc:
            last = repr(exc)
            placement.refusals[type(exc).__name__] += 1
        else:
            if r.status_code == 202:
                placement.order_id = str(r.json()["order_id"])
                placement.accepted_at = time.monotonic()
                return placement.order_id
            assert r.status_code in (502, 503), r.text  # only unavailability is retried
            last = f"{r.status_code} {r.text[:200]}"
            placement.refusals[str(r.status_code)] += 1
        time.sleep(0.5)
    raise AssertionError(f"order never accepted after {placement.attempts} tries: {last}")


def settle(http: httpx.Client, placement: Placement, deadline: float) -> dict[str, Any]:
    """The order once it is settled, asking again through worker restarts."""
    assert placement.order_id is not None
    headers = auth(placement.customer, "customer")
    last = ""
    while time.monotonic() < deadline:
        try:
            r = http.get(f"/v1/orders/{placement.order_id}", params={"wait": 20}, headers=headers)
        except httpx.HTTPError as exc:
            last = repr(exc)
        else:
            if r.status_code == 200 and r.json()["status"] in SETTLED:
                return dict(r.json())
            last = f"{r.status_code} {r.text[:200]}"
        time.sleep(0.5)
    raise AssertionError(f"order {placement.order_id} never settled: {last}")


def stock_of(http: httpx.Client, sku: str) -> dict[str, Any] | None:
    try:
        r = http.get(f"/v1/inventory/{sku}", headers=SELLER)
    except httpx.HTTPError:
        return None
    return dict(r.json()) if r.status_code == 200 else None


def settled_stock(http: httpx.Client, sku: str, timeout: float = 60.0) -> dict[str, Any] | None:
    """The sku's stock once nothing is reserved, or as it is at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        stock = stock_of(http, sku)
        if (stock is not None and stock["reserved"] == 0) or time.monotonic() > deadline:
            return stock
        time.sleep(0.5)


def held_by(
    stack: Stack, http: httpx.Client, sku: str, placements: list[Placement]
) -> dict[str, Any]:
    """Diagnosis of a stock that stays reserved: who holds it, per the inventory changelog."""
    topic = "momentum-inventory-changelog"
    partitions = changelog_topics(stack.bootstrap)[topic]
    ends = ends_of(stack.bootstrap, {topic: partitions}, from_fetch=True)
    raw = last_values(stack.bootstrap, topic, ends).get(sku.encode())
    if raw is None:
        return {"inventory changelog": None}
    registry = SchemaRegistryClient({"url": stack.registry_url})
    record = decoded(registry, topic, raw)
    customers = {p.order_id: p.customer for p in placements}
    holders = {}
    for order_id in record["reservations"]:
        customer = customers.get(order_id, "unknown")
        r = http.get(f"/v1/orders/{order_id}", headers=auth(customer, "customer"))
        holders[order_id] = r.json() if r.status_code == 200 else r.status_code
    return {"reservations": record["reservations"], "holders": holders}


def place_under_kills(
    stack: Stack,
    http: httpx.Client,
    placements: list[Placement],
    kill_at: list[int],
) -> list[int]:
    """Place every order, PLACE_RATE a second from 32 threads; SIGKILL the worker at `kill_at`.

    A kill comes when that many orders are accepted, and after the worker killed
    before is running again, so every kill hits a worker that is processing while
    orders keep coming. Returns the killed pids.
    """
    accepted = 0
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + PLACE_DEADLINE_SECONDS

    def place(index: int, placement: Placement) -> str:
        nonlocal accepted
        time.sleep(max(started + index / PLACE_RATE - time.monotonic(), 0))
        order_id = place_until_accepted(http, placement, deadline)
        with lock:
            accepted += 1
        return order_id

    killed: list[int] = []
    killed_at: list[float] = []
    with ThreadPoolExecutor(max_workers=32) as pool:
        futures = [pool.submit(place, i, p) for i, p in enumerate(placements)]
        for threshold in kill_at:
            while accepted < threshold and time.monotonic() < deadline:
                time.sleep(0.05)
            await_worker(stack, deadline, not_pid=killed[-1] if killed else None)
            killed.append(kill_worker(stack))
            killed_at.append(time.monotonic())
        for future in futures:
            future.result()
    accepted_at = [p.accepted_at - started for p in placements if p.accepted_at is not None]
    refusals = sum((p.refusals for p in placements), Counter[str]())
    print(
        f"\nplaced {len(accepted_at)} orders from t=0 to t={max(accepted_at):.1f}s; "
        f"kills at t={', '.join(f'{t - started:.1f}s' for t in killed_at)}; "
        f"{sum(p.attempts > 1 for p in placements)} placements retried, refused {dict(refusals)}"
    )
    return killed


# -- (a) kill -9 under load ---------------------------------------------------------------------


@pytest.mark.timeout(1500)
def test_worker_killed_under_load_comes_back_with_its_state(
    own_stack: Stack, own_gateway: httpx.Client
) -> None:
    """~200 concurrent orders on one sku (and others), SIGKILL twice while they flow; twice."""
    seller = Shop(own_gateway)
    for round_ in (1, 2):
        restarts_before = worker(own_stack)["restarts"]
        hot, plenty, other = unique_sku("HOT"), unique_sku("PLENTY"), unique_sku("OTHER")
        restocks = {hot: 150, plenty: 1000, other: 1000}
        for sku, units in restocks.items():
            seed(seller, sku, units)
        placements = [Placement(f"hot-{round_}-{i}", [(hot, 1)]) for i in range(200)]
        placements += [Placement(f"plenty-{round_}-{i}", [(plenty, 2)]) for i in range(30)]
        placements += [Placement(f"mixed-{round_}-{i}", [(other, 1), (hot, 1)]) for i in range(20)]
        random.Random(round_).shuffle(placements)  # every kind of order arrives throughout

        killed = place_under_kills(own_stack, own_gateway, placements, kill_at=[40, 140])
        assert len(killed) == 2

        deadline = time.monotonic() + SETTLE_DEADLINE_SECONDS
        with ThreadPoolExecutor(max_workers=16) as pool:
            orders = list(
                pool.map(lambda p, until=deadline: settle(own_gateway, p, until), placements)
            )

        # Every accepted order settled, once per placement.
        assert len({o["order_id"] for o in orders}) == len(placements)
        outcomes = Counter((o["status"], o["reason"]) for o in orders)

        # The worker is healthy: one restart per kill (no crash loop), no ConsistencyError.
        await_worker(own_stack, time.monotonic() + 60)
        restarts = worker(own_stack)["restarts"] - restarts_before
        log = worker_log(own_stack)
        assert "ConsistencyError" not in log, worker_summary(own_stack)
        assert restarts == len(killed), worker_summary(own_stack)

        # Stock is consistent: on hand + confirmed units = restocks, nothing left reserved.
        confirmed: Counter[str] = Counter()
        for order in orders:
            if order["status"] == "CONFIRMED":
                for line in order["lines"]:
                    confirmed[line["sku"]] += line["quantity"]
        for sku, units in restocks.items():
            stock = settled_stock(own_gateway, sku)
            assert stock is not None and stock["reserved"] == 0, (
                sku,
                stock,
                dict(outcomes),
                held_by(own_stack, own_gateway, sku, placements),
            )
            assert stock["on_hand"] + confirmed[sku] == units, (sku, stock, confirmed[sku])
        assert confirmed[hot] <= restocks[hot]

        print(
            f"round {round_}: {len(orders)} orders settled {dict(outcomes)}; "
            f"killed pids {killed}; worker restarts {restarts}; confirmed units {dict(confirmed)}"
        )


# -- (b) a table rebuilt from its changelog -------------------------------------------------------


def changelog_topics(bootstrap: str, app_id: str = "momentum") -> dict[str, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4()}"})
    try:
        topics = consumer.list_topics(timeout=10).topics
    finally:
        consumer.close()
    return {
        name: len(meta.partitions)
        for name, meta in topics.items()
        if name.startswith(f"{app_id}-") and name.endswith("-changelog")
    }


def ends_of(bootstrap: str, topics: dict[str, int], from_fetch: bool) -> dict[tuple[str, int], int]:
    partitions = [(t, p) for t, n in topics.items() for p in range(n)]
    return end_offsets({"bootstrap.servers": bootstrap}, partitions, from_fetch=from_fetch)


def last_values(
    bootstrap: str, topic: str, ends: dict[tuple[str, int], int]
) -> dict[bytes, bytes | None]:
    """The last value per key of `topic`, read from the start to each partition's `ends`."""
    wanted = {p: end for (t, p), end in ends.items() if t == topic and end > 0}
    if not wanted:
        return {}
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    values: dict[bytes, bytes | None] = {}
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in wanted])
        read = dict.fromkeys(wanted, -1)
        deadline = time.monotonic() + 60
        while any(read[p] < wanted[p] - 1 for p in wanted):
            assert time.monotonic() < deadline, f"{topic}: read to {read}, ends {wanted}"
            for message in consumer.consume(num_messages=500, timeout=1.0):
                if message.error():
                    continue
                read[message.partition()] = message.offset()
                if message.offset() < wanted[message.partition()]:
                    values[message.key()] = message.value()
    finally:
        consumer.close()
    return values


def decoded(registry: SchemaRegistryClient, topic: str, raw: bytes) -> dict[str, Any]:
    value = AvroDeserializer(registry)(raw, SerializationContext(topic, MessageField.VALUE))
    assert isinstance(value, dict)
    return value


def start_fresh_worker(
    stack: Stack, data_dir: Path, port: int, log: Path
) -> subprocess.Popen[bytes]:
    """`faust -A streams.app worker` with the stack worker's own settings and an empty data dir."""
    worker_pid = int(worker(stack)["pid"])
    raw = Path(f"/proc/{worker_pid}/environ").read_bytes()
    env = dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
    env["MOMENTUM_DATA_DIR"] = str(data_dir)
    # Text lines: the test reads Faust's highwater table from this worker's log.
    env["MOMENTUM_LOG_FORMAT"] = "text"
    command = [sys.executable, "-m", "faust", "-A", "streams.app", "worker", "-l", "info",
               "--web-host", "127.0.0.1", "--web-port", str(port)]  # fmt: skip
    with open(log, "wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ready_or_exited(process: subprocess.Popen[bytes], url: str) -> bool:
    if process.poll() is not None:
        return True
    try:
        return httpx.get(f"{url}/ready/", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def recovery_highwaters(log: str) -> dict[tuple[str, int], int]:
    """The last "Highwater - Active" table in a worker's log: (changelog, partition) -> value."""
    lines = log[log.rindex("Highwater - Active") :].splitlines()
    highwaters: dict[tuple[str, int], int] = {}
    topic = ""
    # After the title line: the column names, a rule, then one row per partition.
    for line in lines[3:]:
        if line.startswith("+"):
            break
        name, partition, value = (cell.strip() for cell in line.strip().strip("|").split("|"))
        topic = topic if name == "\u3003" else name  # a ditto mark repeats the topic above
        highwaters[(topic, int(partition))] = int(value)
    return highwaters


def restock(http: httpx.Client, sku: str) -> int:
    r = http.post(f"/v1/inventory/{sku}/restock", json={"quantity": 1}, headers=SELLER)
    assert r.status_code == 202, r.text
    return 1


def short_partitions(bootstrap: str) -> dict[tuple[str, int], tuple[int, int]]:
    """Changelog partitions whose ListOffsets end falls short of the true end: (listed, true)."""
    topics = changelog_topics(bootstrap)
    listed = ends_of(bootstrap, topics, from_fetch=False)
    true_ends = ends_of(bootstrap, topics, from_fetch=True)
    return {tp: (listed[tp], end) for tp, end in true_ends.items() if end != listed[tp]}


def faust_json(value: Any) -> Any:
    """A view as the worker's web server sends it (Faust's JSON encoder)."""
    from faust.utils import json as faust_json_module

    return json.loads(faust_json_module.dumps(value))


@dataclass(frozen=True)
class TableCheck:
    table: str  # Faust table name; its changelog is momentum-<table>-changelog
    path: str  # the worker's view of one key
    view: Callable[[str, dict[str, Any]], Any]


TABLE_CHECKS = [
    TableCheck("inventory", "/inventory/{}/", lambda k, r: inventory_view(stock_from_state(k, r))),
    TableCheck("catalog", "/products/{}/", lambda k, r: product_view(product_from_state(r))),
    TableCheck("orders", "/orders/{}/", lambda k, r: order_view(order_from_state(r))),
]


@pytest.mark.timeout(900)
def test_table_rebuilt_from_changelog_equals_its_last_values(
    own_stack: Stack, own_gateway: httpx.Client, tmp_path: Path
) -> None:
    bootstrap = own_stack.bootstrap
    seller = Shop(own_gateway)
    hot, other = unique_sku("REBUILD-HOT"), unique_sku("REBUILD-OTHER")
    seed(seller, hot, 60)
    seed(seller, other, 500)
    # Concurrent orders make the changelogs' producer batch several records at once.
    placements = [Placement(f"rebuild-{i}", [(hot, 1)]) for i in range(100)]
    placements += [Placement(f"rebuild-o-{i}", [(other, 1), (hot, 1)]) for i in range(20)]
    deadline = time.monotonic() + PLACE_DEADLINE_SECONDS
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda p: place_until_accepted(own_gateway, p, deadline), placements))
        deadline = time.monotonic() + SETTLE_DEADLINE_SECONDS
        orders = list(pool.map(lambda p: settle(own_gateway, p, deadline), placements))
    confirmed = sum(
        line["quantity"]
        for order in orders
        if order["status"] == "CONFIRMED"
        for line in order["lines"]
        if line["sku"] == hot
    )
    wait_for(lambda: (s := stock_of(own_gateway, hot)) and s["reserved"] == 0, timeout=60)
    # Let the worker finish what follows a settlement (captures, analytics) and commit
    # it, so the fresh worker has state to rebuild and nothing of its own to write.
    wait_for(lambda: quiescent(bootstrap), timeout=180, interval=1.0)
    # Those trail off one record at a time; a burst of restocks, which nothing follows,
    # leaves the sku's inventory changelog partition ending in a batch of several
    # records, each with another on-hand figure.
    restocked = 0
    for _ in range(5):
        with ThreadPoolExecutor(max_workers=16) as pool:
            restocked += sum(pool.map(lambda _: restock(own_gateway, hot), range(40)))
        wait_for(lambda: quiescent(bootstrap), timeout=180, interval=1.0)
        if any(t == INVENTORY_CHANGELOG for t, _ in short_partitions(bootstrap)):
            break

    # Stop the stack's worker (SIGSTOP: the launcher sees it alive and leaves it be), so
    # the group gives every partition to a fresh worker that has nothing but changelogs.
    worker_pid = int(worker(own_stack)["pid"])
    topics = changelog_topics(bootstrap)
    assert {f"momentum-{c.table}-changelog" for c in TABLE_CHECKS} <= set(topics)
    port = free_port()
    log = tmp_path / "fresh-worker.log"
    os.kill(worker_pid, signal.SIGSTOP)
    fresh: subprocess.Popen[bytes] | None = None
    try:
        # Ends taken with nothing writing: the worker is stopped, the fresh one not started.
        true_ends = ends_of(bootstrap, topics, from_fetch=True)
        short = short_partitions(bootstrap)
        # The case that matters: a partition whose last batch holds several records.
        assert any(t == INVENTORY_CHANGELOG for t, _ in short), f"no batch to test: {short}"

        fresh = start_fresh_worker(own_stack, tmp_path / "fresh-data", port, log)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: ready_or_exited(fresh, url), timeout=180, interval=1.0)
        assert fresh.poll() is None, log.read_text(errors="replace")[-3000:]

        registry = SchemaRegistryClient({"url": own_stack.registry_url})
        compared: Counter[str] = Counter()
        differ: list[tuple[str, str, Any, Any]] = []  # (changelog, key, rebuilt, last value)
        with httpx.Client(base_url=url, timeout=20) as fresh_http:
            for check in TABLE_CHECKS:
                topic = f"momentum-{check.table}-changelog"
                for raw_key, raw_value in last_values(bootstrap, topic, true_ends).items():
                    key = raw_key.decode()
                    r = fresh_http.get(check.path.format(key))
                    rebuilt = r.json() if r.status_code == 200 else r.status_code
                    expected = (
                        404
                        if raw_value is None
                        else faust_json(check.view(key, decoded(registry, topic, raw_value)))
                    )
                    compared[check.table] += 1
                    if rebuilt != expected:
                        differ.append((topic, key, rebuilt, expected))
        # Recovery waited for every changelog partition of every table (analytics
        # included) up to its true end; Faust logs highwaters as end - 1.
        highwaters = recovery_highwaters(log.read_text(errors="replace"))
        short_highwaters = {
            tp: (value, true_ends[tp] - 1)
            for tp, value in highwaters.items()
            if value != true_ends[tp] - 1
        }
        print(
            f"\nrebuilt by a fresh worker: {dict(compared)} keys compared, {len(differ)} differ "
            f"from their changelog ({restocked} restocks at the end); "
            f"ListOffsets fell short on {short} (listed, true); "
            f"recovery highwaters short on {short_highwaters} (used, true)"
        )
        assert not differ, differ[:5]
        assert set(highwaters) == set(true_ends)
        assert not short_highwaters
        assert compared["orders"] >= len(placements)
        # The restocks at the tail of the inventory changelog are all in the rebuilt table.
        rebuilt = httpx.get(f"{url}/inventory/{hot}/", timeout=20).json()
        assert rebuilt["on_hand"] == 60 - confirmed + restocked, (rebuilt, confirmed, restocked)
    finally:
        if fresh is not None and fresh.poll() is None:
            fresh.terminate()
            try:
                fresh.wait(30)
            except subprocess.TimeoutExpired:
                fresh.kill()
                fresh.wait(10)
        os.kill(worker_pid, signal.SIGCONT)
