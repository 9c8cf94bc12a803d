"""`momentum bench --quick`: every scenario runs end to end and reports positive figures.

One bench run (its own stacks: one with a worker, then one with two for the
scale scenario) feeds every test below. Benchmarks are not tests: no figure is
compared with a time or a target, only the report's shape and that each figure
was measured (a positive number; a lag may be zero).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.run import SCENARIOS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "momentum.cli", "bench", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1400,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    reports = list(out.glob("bench-*.json"))
    assert len(reports) == 1, reports
    return json.loads(reports[0].read_text()), out


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def test_every_scenario_reported_with_its_chart(run: tuple[dict[str, Any], Path]) -> None:
    report, out = run
    assert report["meta"]["scenarios"] == list(SCENARIOS)
    assert set(report["scenarios"]) == set(SCENARIOS)
    chart = next(out.glob("bench-*.png"))
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["series"]["latency_s"] and all(positive(s) for s in report["series"]["latency_s"])
    assert set(report["series"]["confirmed_at"]) == {
        "single-line",
        "three-line",
        "single-line, 2 workers",
    }


def test_what_the_broker_held_as_each_scenario_began(run: tuple[dict[str, Any], Path]) -> None:
    held = run[0]["broker_held_at_start"]
    # Every scenario on the first stack, in the order they ran; scale has a stack of its own.
    assert list(held) == [s for s in SCENARIOS if s != "scale"]
    records = [held[s]["records"] for s in held]
    assert records == sorted(records), "a broker without retention only grows"
    # The latency run placed orders, so the saga began on a fuller broker.
    assert held["saga"]["records"] > held["latency"]["records"]
    for figures in held.values():
        assert 0 <= figures["fullest_partition_records"] <= figures["records"]
        assert figures["fullest_partition"].endswith("]")
    assert held["saga"]["fullest_partition_records"] > 0


def test_baselines(run: tuple[dict[str, Any], Path]) -> None:
    baselines = run[0]["scenarios"]["baselines"]
    for key in ("message_bytes", "broker_produce_consume_per_s", "broker_round_trip_s"):
        assert positive(baselines[key]), key
    assert positive(baselines["relay_events_per_s"])
    bare = baselines["bare_endpoint"]
    for key in ("requests_per_second", "p50", "p90", "p99", "max"):
        assert positive(bare[key]), key
    assert bare["non_2xx"] == 0


def test_saga_counts_messages_and_changelog_writes(run: tuple[dict[str, Any], Path]) -> None:
    saga = run[0]["scenarios"]["saga"]
    for mix, lines in (("single_line", 1), ("three_line", 3)):
        figures = saga[mix]
        assert figures["lines_per_order"] == lines
        for key in (
            "orders_per_s",
            "seconds",
            "messages_per_order",
            "changelog_writes_per_order",
            "worker_events_per_s",
            "worker_events_per_order",
        ):
            assert positive(figures[key]), (mix, key)
        # Every order went through order-commands at least once.
        assert figures["written_per_topic"]["order-commands"] >= figures["orders"]


def test_latency_against_hops(run: tuple[dict[str, Any], Path]) -> None:
    latency = run[0]["scenarios"]["latency"]
    for key in ("offered_rate_per_s", "p50_s", "p95_s", "p99_s", "max_s", "hops_x_round_trip_s"):
        assert positive(latency[key]), key
    assert latency["p50_s"] <= latency["p95_s"] <= latency["p99_s"] <= latency["max_s"]
    assert latency["hops"] == len(latency["hop_path"]) == 5
    assert latency["orders_settled"] > 0
    # Each order's path, read back from its records: placed, reserved, authorized, confirmed.
    steps = latency["median_ms_after_place_order"]
    assert steps["order-commands: PlaceOrder"] == 0
    path = [
        "orders: PENDING",
        "order-events: StockReserved",
        "payment-commands: AuthorizePayment",
        "order-events: PaymentResult AUTHORIZED",
        "orders: CONFIRMED",
    ]
    medians = [steps[step] for step in path]
    assert medians == sorted(medians) and medians[-1] > 0


def test_ingress_beside_the_bare_endpoint(run: tuple[dict[str, Any], Path]) -> None:
    ingress = run[0]["scenarios"]["ingress"]
    for gateway in ("gateway", "gateway_alone"):
        assert positive(ingress[gateway]["requests_per_second"]), gateway
        assert positive(ingress[gateway]["p99"]), gateway
        assert ingress[gateway]["connections"] >= 32
    # Its rate limit lifted, the gateway alone answers every request 202.
    assert ingress["gateway_alone"]["non_2xx"] == 0
    assert positive(ingress["share_of_bare"])
    assert positive(ingress["alone_share_of_bare"])


def test_sink_recovery_and_scale(run: tuple[dict[str, Any], Path]) -> None:
    scenarios = run[0]["scenarios"]
    sink = scenarios["sink"]
    assert sink["rows_seen"] == sink["orders"]
    assert sink["lag_max_s"] is not None and sink["lag_max_s"] >= 0
    assert sink["records_behind_max"] is not None and sink["records_behind_max"] >= 0
    assert positive(scenarios["recovery"]["seconds"])
    assert positive(scenarios["recovery"]["skus"])
    scale = scenarios["scale"]
    assert positive(scale["workers_1_orders_per_s"]) and positive(scale["workers_2_orders_per_s"])
