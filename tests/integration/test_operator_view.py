"""What an operator and a newcomer see of the running stack: status, env, the worker's pages."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Stack, momentum, wait_for
from tests.integration.shop import unique_sku

pytestmark = pytest.mark.integration


def status_json(stack: Stack) -> dict[str, Any]:
    result = momentum("status", "--json", "--state-dir", str(stack.state_dir), env=stack.env)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_status_reports_lag_dead_letters_and_orders_by_status(stack: Stack, shop: Any) -> None:
    sku = unique_sku("status")
    shop.seed(sku, "5.00", 3)
    order_id = shop.order_id([(sku, 1)])
    assert shop.settled(order_id)["status"] == "CONFIRMED"

    def confirmed_in_read_model() -> dict[str, Any] | None:
        status = status_json(stack)
        orders = status.get("orders_by_status") or {}
        return status if orders.get("CONFIRMED", 0) >= 1 else None

    status = wait_for(confirmed_in_read_model, timeout=60, interval=1.0)
    groups = status["consumer_groups"]
    # The workers' group (the app id) with its input topics, and the sink's groups.
    assert "inventory-commands" in groups["momentum"]["lag"]
    assert all(lag >= 0 for g in groups.values() for lag in g["lag"].values())
    assert any(group.startswith("connect-") for group in groups)
    letters = status["dead_letters"]
    assert "order-commands.dlq" in letters and "orders.connect-dlq" in letters
    assert all(isinstance(count, int) and count >= 0 for count in letters.values())

    table = momentum("status", "--state-dir", str(stack.state_dir), env=stack.env)
    assert table.returncode == 0, table.stderr
    for title in ("Parts", "Consumer lag", "Sink lag", "Dead letters", "Orders (read model)"):
        assert title in table.stdout, table.stdout
    assert "CONFIRMED" in table.stdout


def test_env_prints_the_stacks_settings_for_a_shell(stack: Stack) -> None:
    result = momentum("env", "--state-dir", str(stack.state_dir), env=stack.env)
    assert result.returncode == 0, result.stderr
    assert "MOMENTUM_JWT_SECRET" not in result.stdout
    script = result.stdout + (
        'printf "%s\\n" "$KAFKA_BOOTSTRAP_SERVERS" "$SCHEMA_REGISTRY_URL" '
        '"$MOMENTUM_FETCH_MAX_WAIT_MS" "$MOMENTUM_END_OFFSETS_FROM_FETCH"\n'
    )
    shell = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert shell.stdout.splitlines() == [stack.bootstrap, stack.registry_url, "50", "true"]


def test_env_without_a_stack_says_so(stack: Stack, tmp_path: Any) -> None:
    result = momentum("env", "--state-dir", str(tmp_path), env=stack.env)
    assert result.returncode == 1
    assert f"no Momentum stack is running from {tmp_path}" in result.stderr


@pytest.mark.parametrize("path", ["/ready", "/ready/", "/metrics", "/metrics/"])
def test_worker_pages_answer_with_or_without_the_slash(stack: Stack, path: str) -> None:
    response = httpx.get(stack.endpoints["worker_url"] + path, timeout=10.0)
    assert response.status_code == 200, response.text
    if path.startswith("/ready"):
        assert response.json()["status"] == "ready"
    else:
        assert "# TYPE" in response.text
