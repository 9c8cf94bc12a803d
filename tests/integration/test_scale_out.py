"""Two workers: table routing lets any worker answer for any key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Stack, momentum, wait_for
from tests.integration.shop import Shop, unique_sku

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_workers(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir: Path = tmp_path_factory.mktemp("two-workers")
    env = {**stack.env, "MOMENTUM_STATE_DIR": str(state_dir)}
    started = momentum("up", "--detach", "--workers", "2", "--state-dir", str(state_dir), env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    status = json.loads(momentum("status", "--json", "--state-dir", str(state_dir), env=env).stdout)
    yield Stack(state_dir, env, status)
    momentum("down", "--state-dir", str(state_dir), env=env)


def test_any_worker_answers_for_any_key(two_workers: Stack) -> None:
    workers = [p["url"] for p in two_workers.status["processes"] if p["name"].startswith("worker")]
    assert len(workers) == 2
    with httpx.Client(base_url=two_workers.gateway_url, timeout=40.0) as gateway:
        shop = Shop(gateway)
        skus = [unique_sku("ROUTE") for _ in range(6)]
        for sku in skus:
            shop.seed(sku, "3.00", 2)
        order_ids = [shop.order_id([(sku, 1)]) for sku in skus]
        for order_id in order_ids:
            assert shop.settled(order_id)["status"] == "CONFIRMED"

    # Keys spread over partitions owned by both workers; each worker serves all of them.
    for url in workers:
        for sku in skus:
            # Settled orders commit their stock one hop later.
            stock = wait_for(
                lambda url=url, sku=sku: (
                    (r := httpx.get(f"{url}/inventory/{sku}/", timeout=10)).status_code == 200
                    and r.json()["reserved"] == 0
                    and r.json()
                )
            )
            assert (stock["on_hand"], stock["available"]) == (1, 1)
        for order_id in order_ids:
            r = httpx.get(f"{url}/orders/{order_id}/", timeout=10)
            assert r.status_code == 200, (url, r.text)
            assert r.json()["status"] == "CONFIRMED"
