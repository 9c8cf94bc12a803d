"""Fault injection under sustained load: one fault at a time, then all together.

Every scenario places orders at a steady rate through the gateway (scarce and
plentiful skus, every card token, carts, cancels) while it causes its fault,
lets the load drain, and has `invariants.check` read everything back. The
figures are printed (`pytest -s` shows them); a scenario fails on any broken
promise, never on a time.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest

from tests.chaos import faults
from tests.chaos.conftest import LOAD_SECONDS, ORDER_RATE
from tests.chaos.invariants import ADMIN, check
from tests.chaos.load import (
    Answers,
    Client,
    OrderPlan,
    Placed,
    plan_catalog,
    plan_orders,
    run_load,
    scenario_id,
    seed,
)
from tests.integration.conftest import Stack, momentum

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

COMMANDS = ("place", "checkout", "cart-line", "upsert", "restock")
Fault = Callable[[Stack], None]


def cli_env(stack: Stack) -> dict[str, str]:
    return {
        **stack.env,
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "SCHEMA_REGISTRY_URL": stack.registry_url,
    }


def replay_payment_dead_letters(stack: Stack) -> None:
    """The operator's step after a provider outage: send parked captures and refunds back."""
    replayed = momentum("dlq", "replay", "payment-commands", env=cli_env(stack))
    assert replayed.returncode == 0, replayed.stderr


def scenario(
    stack: Stack,
    name: str,
    *,
    during: Fault | None = None,
    duplicate: bool = False,
    malformed: bool = False,
    flood: bool = False,
    after_outage: bool = False,
) -> None:
    sid = scenario_id(name)
    catalog = plan_catalog(sid)
    answers = Answers()
    client = Client(stack.gateway_url, answers, duplicate=duplicate)
    plans = plan_orders(
        sid, catalog, int(ORDER_RATE * LOAD_SECONDS), seed=zlib.crc32(name.encode())
    )
    bad = faults.malformed_messages(stack, max(4, len(plans) // 100)) if malformed else []

    with ExitStack() as running:
        if duplicate:
            copies = running.enter_context(faults.Duplicator(stack))
        seed(client, catalog)
        with ThreadPoolExecutor(max_workers=4) as pool:
            load = pool.submit(run_load, client, plans, ORDER_RATE)
            side = []
            if bad:
                side.append(pool.submit(faults.inject_malformed, stack, bad, LOAD_SECONDS * 0.8))
            if flood:
                flooded = pool.submit(flood_midway, stack, catalog.plentiful[0])
            if during is not None:
                time.sleep(2)  # let orders flow first
                during(stack)
            placed = load.result()
            for future in side:
                future.result()
            if flood:
                placed += flooded.result()
        if duplicate:
            time.sleep(3)  # the copies of the last commands are on their way
    if duplicate:
        print(f"duplicator re-sent {copies.copies} commands")

    report = check(
        stack,
        name,
        catalog,
        placed,
        bad,
        repair=(lambda: replay_payment_dead_letters(stack)) if after_outage else None,
    )
    refused = {what: answers.statuses(what) for what in COMMANDS}
    print(f"  gateway answers: {dict(answers.counts)}")
    print(f"  transport errors: {dict(answers.transport_errors)}")
    assert not report.violations, report.render()
    assert not any(s >= 500 and s != 503 for s in answers.statuses()), dict(answers.counts)
    if not flood:
        # Commands are accepted whenever Kafka is: never a 503 while workers restart
        # (under a flood, the gateway's in-flight guard answers 503 by design).
        assert all(503 not in statuses for statuses in refused.values()), refused
    assert len(placed) >= len(plans) * 0.95, (len(placed), len(plans))


def flood_midway(stack: Stack, sku: str) -> list[Placed]:
    """Flood the gateway from a few clients: every request answered, refusals fast."""
    time.sleep(LOAD_SECONDS / 3)
    result = faults.flood(stack, sku, requests=2000, concurrency=96, customers=2)
    print(f"  flood: {dict(result.statuses)}, errors {dict(result.errors)}")
    print(f"  flood: slowest answer {result.slowest:.2f}s")
    assert not result.errors, result.errors
    assert set(result.statuses) <= {202, 429, 503}, result.statuses
    assert result.statuses[429] + result.statuses[503] > 0, result.statuses
    # Another client is still answered: a read, or a 503 with Retry-After while a
    # worker is down (the all-faults scenario kills one meanwhile).
    with httpx.Client(base_url=stack.gateway_url, timeout=20) as other:
        r = other.get(f"/v1/inventory/{sku}", headers=ADMIN)
        assert r.status_code == 200 or (r.status_code == 503 and r.headers.get("Retry-After"))
    return [
        Placed(OrderPlan(f"flood-{n}", customer, lines, "tok_ok", False, False), order_id)
        for n, (customer, order_id, lines) in enumerate(result.accepted)
    ]


def kill_worker_repeatedly(stack: Stack) -> None:
    killer = faults.WorkerKiller(stack, "worker-1", times=3, interval=LOAD_SECONDS / 4)
    killer.start()
    killer.wait_recovered()
    print(f"  worker-1 killed {killer.kills} times")


def kill_one_of_two_and_restart(stack: Stack) -> None:
    killer = faults.WorkerKiller(stack, "worker-2", times=1, interval=1)
    killer.start()
    killer.wait_recovered()
    print("  worker-2 killed once and back: partitions moved away and back")


def provider_outage(stack: Stack) -> None:
    with faults.provider_outage(stack):
        time.sleep(6)


def postgres_outage(stack: Stack) -> None:
    faults.postgres_outage(stack, frozen_seconds=6)


def everything(stack: Stack) -> None:
    threads = [
        threading.Thread(target=kill_worker_repeatedly, args=(stack,)),
        threading.Thread(target=provider_outage, args=(stack,)),
        threading.Thread(target=postgres_outage, args=(stack,)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_worker_killed_repeatedly_under_load(chaos_stack: Stack) -> None:
    scenario(chaos_stack, "kill-repeatedly", during=kill_worker_repeatedly)


def test_one_of_two_workers_killed_and_restarted(chaos_stack: Stack) -> None:
    scenario(chaos_stack, "kill-one-of-two", during=kill_one_of_two_and_restart)


def test_every_command_delivered_twice(chaos_stack: Stack) -> None:
    scenario(chaos_stack, "duplicates", duplicate=True)


def test_malformed_messages_among_the_load(chaos_stack: Stack) -> None:
    scenario(chaos_stack, "malformed", malformed=True)


def test_provider_outage(chaos_stack: Stack) -> None:
    scenario(chaos_stack, "provider-outage", during=provider_outage, after_outage=True)


def test_postgres_stopped_while_the_sink_writes(chaos_stack: Stack) -> None:
    scenario(chaos_stack, "postgres-outage", during=postgres_outage)


def test_gateway_flooded(chaos_stack: Stack) -> None:
    scenario(chaos_stack, "flood", flood=True)


def test_all_faults_together(chaos_stack: Stack) -> None:
    scenario(
        chaos_stack,
        "all-together",
        during=everything,
        duplicate=True,
        malformed=True,
        flood=True,
        after_outage=True,
    )
