"""Per-minute sales through the embedded stack, read the way analysts read them.

Orders placed over HTTP settle in the saga; the analytics agent turns the
settlements into per-sku, per-minute figures on `sales-per-minute`; the example
consumer (confluent-kafka, Avro through the registry URL, nothing from the
project) must add them up to the totals of the confirmed orders, and the sink
must have written the same figures into Postgres. Skus are unique to this test
and the figures are filtered by their prefix, since other tests share the stack.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from core.topics import SALES_PER_MINUTE
from sinks.config import load_connectors
from tests.integration.conftest import Stack, wait_for
from tests.integration.shop import Shop

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONSUMER = REPO / "examples" / "analytics_consumer.py"


def run_consumer(stack: Stack, prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(CONSUMER),
            "--bootstrap-servers",
            stack.bootstrap,
            "--schema-registry-url",
            stack.registry_url,
            "--group-id",
            f"analytics-test-{uuid.uuid4().hex[:8]}",
            "--from-beginning",
            "--stop-at-end",
            "--max-seconds",
            "30",
            "--sku-prefix",
            prefix,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def parse_summary(stdout: str) -> dict[str, Any]:
    summary: dict[str, Any] = {"TOTAL_REVENUE": {}}
    for line in stdout.splitlines():
        match line.split():
            case ["WINDOWS", n]:
                summary["WINDOWS"] = int(n)
            case ["TOTAL_UNITS", n]:
                summary["TOTAL_UNITS"] = int(n)
            case ["TOTAL_REVENUE", currency, amount]:
                summary["TOTAL_REVENUE"][currency] = Decimal(amount)
    return summary


@pytest.fixture(scope="module")
def orders(stack: Stack) -> dict[str, Any]:
    """A few orders on fresh skus: two confirmed, one out of stock, one declined."""
    prefix = f"AN-{uuid.uuid4().hex[:8]}-"
    tee, mug = prefix + "tee", prefix + "mug"
    with httpx.Client(base_url=stack.gateway_url, timeout=40.0) as gateway:
        shop = Shop(gateway, customer="customer-analytics")
        shop.seed(tee, "12.50", 10)
        shop.seed(mug, "7.25", 1)
        confirmed = [shop.order_id([(tee, 2), (mug, 1)]), shop.order_id([(tee, 1)])]
        refused = [shop.order_id([(mug, 5)]), shop.order_id([(tee, 1)], token="tok_decline")]
        confirmed_orders = [shop.settled(o) for o in confirmed]
        refused_orders = [shop.settled(o) for o in refused]
    assert [o["status"] for o in confirmed_orders] == ["CONFIRMED", "CONFIRMED"], confirmed_orders
    assert [o["status"] for o in refused_orders] == ["REJECTED", "REJECTED"], refused_orders
    revenue = sum((Decimal(o["total"]) for o in confirmed_orders), Decimal("0.00"))
    assert revenue == Decimal("44.75")  # 2 x 12.50 + 7.25, then 12.50
    return {"prefix": prefix, "revenue": revenue, "units": 4}


def test_the_analyst_consumer_adds_up_to_the_confirmed_orders(
    stack: Stack, orders: dict[str, Any]
) -> None:
    last: dict[str, Any] = {}

    def consumer_total() -> bool:
        result = run_consumer(stack, orders["prefix"])
        if result.returncode != 0:
            pytest.fail(f"the consumer failed:\n{result.stderr[-3000:]}")
        last.update(stdout=result.stdout, summary=parse_summary(result.stdout))
        return bool(last["summary"]["TOTAL_REVENUE"] == {"BRL": orders["revenue"]})

    # The figures follow the orders within seconds; each run reads from the start.
    try:
        wait_for(consumer_total, timeout=120, interval=1)
    except AssertionError:
        pytest.fail(
            f"expected BRL {orders['revenue']}; the consumer printed:\n{last.get('stdout')}"
        )
    summary = last["summary"]
    assert summary["TOTAL_UNITS"] == orders["units"]
    # mug sold in one minute, tee in one or two (the orders may straddle a minute).
    assert summary["WINDOWS"] in (2, 3), last["stdout"]
    assert "revenue BRL" in last["stdout"]  # the live view printed minutes as they came


def test_sales_per_minute_reach_postgres(stack: Stack, orders: dict[str, Any]) -> None:
    connectors = [c for c in load_connectors() if SALES_PER_MINUTE.name in c.topics]
    assert connectors, "no connector in connectors/ sinks sales-per-minute"
    table = connectors[0].table_for(SALES_PER_MINUTE.name)
    expected = (orders["units"], orders["revenue"])
    last: list[Any] = []

    def totals_match() -> bool:
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            try:
                row = conn.execute(
                    f'select sum(units), sum(revenue) from "{table}" where sku like %s',
                    (orders["prefix"] + "%",),
                ).fetchone()
            except psycopg.errors.UndefinedTable:
                row = None
        last[:] = [row]
        return row is not None and (row[0], row[1]) == expected

    try:
        wait_for(totals_match, timeout=60)
    except AssertionError:
        pytest.fail(
            f"{table}: (units, revenue) {last} for {orders['prefix']}*, expected {expected}"
        )


def test_the_example_imports_nothing_from_the_project() -> None:
    project = {"streams", "tables", "gateway", "schemas", "sinks", "momentum", "tests"}
    tree = ast.parse(CONSUMER.read_text())
    imported = {
        ((node.module or "") if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert "confluent_kafka" in imported
    assert not imported & project, imported & project
