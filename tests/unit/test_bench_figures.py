"""The bench's pure parts: the saga's hop count, percentiles, the sink's lag per order, the
time of each step of an order's path."""

from __future__ import annotations

import pytest

from benchmarks.hop_times import first_times, median_after_start, step_of
from benchmarks.report import per_second
from benchmarks.saga_throughput import percentiles, saga_hops
from benchmarks.sink_lag import SinkWatch


@pytest.mark.parametrize("lines", [1, 2, 3])
def test_an_order_takes_five_sequential_hops_whatever_its_lines(lines: int) -> None:
    hops = saga_hops(lines)
    assert len(hops) == 5
    assert hops[0].startswith("gateway -> order-commands")
    assert f"ReserveStock x{lines}" in hops[1]
    assert "AUTHORIZED" in hops[-1]


def test_percentiles_of_samples() -> None:
    figures = percentiles([float(i) for i in range(1, 101)])
    assert (figures["p50"], figures["p95"], figures["p99"], figures["max"]) == (51, 96, 100, 100)


def test_per_second_buckets_count_events_and_keep_empty_seconds() -> None:
    assert per_second([0.1, 0.5, 2.2]) == ([0, 1, 2], [2, 0, 1])


def test_sink_lag_is_when_postgres_held_k_rows_after_the_kth_confirmation() -> None:
    watch = SinkWatch("postgresql://unused", "http://unused", "bench-x-")
    watch.began = 100.0
    watch.rows = [(0.5, 0), (1.0, 1), (2.0, 3)]
    watch.records_behind = [(0.5, 4), (1.0, 2)]
    # Confirmations seen 0.2, 0.4 and 1.5 s after a run that started at 100.0.
    figures = watch.figures([0.2, 0.4, 1.5], started=100.0)
    assert figures["lag_max_s"] == pytest.approx(1.6)  # the 2nd row came at 2.0, seen at 0.4
    assert figures["lag_p50_s"] == pytest.approx(0.8)
    assert figures["records_behind_max"] == 4
    assert figures["rows_seen"] == 3


def test_a_step_is_the_record_kind_on_its_topic() -> None:
    reserved = {"order_id": "o", "payload": ("momentum.StockReserved", {"sku": "S", "quantity": 1})}
    authorized = {"order_id": "o", "payload": ("momentum.PaymentResult", {"status": "AUTHORIZED"})}
    assert step_of("order-events", reserved) == "order-events: StockReserved"
    assert step_of("order-events", authorized) == "order-events: PaymentResult AUTHORIZED"
    assert step_of("orders", {"order_id": "o", "status": "CONFIRMED"}) == "orders: CONFIRMED"


def test_each_step_counts_from_its_orders_placement_and_a_resend_does_not_move_it() -> None:
    records = [
        ("a", "order-commands: PlaceOrder", 1000),
        ("a", "orders: PENDING", 1020),
        ("a", "orders: CONFIRMED", 1130),
        ("a", "orders: PENDING", 1200),  # sent again: the first time counts
        ("b", "order-commands: PlaceOrder", 5000),
        ("b", "orders: PENDING", 5040),
        ("b", "orders: CONFIRMED", 5150),
        ("c", "orders: CONFIRMED", 9000),  # placed before the window: not counted
    ]
    orders = first_times(records)
    assert orders["a"]["orders: PENDING"] == 1020
    assert median_after_start(orders) == {
        "order-commands: PlaceOrder": 0.0,
        "orders: PENDING": 30.0,
        "orders: CONFIRMED": 140.0,
    }
