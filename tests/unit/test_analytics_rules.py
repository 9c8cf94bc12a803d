"""Per-minute analytics rules: windows, what counts, exact figures, duplicates."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import combinations
from typing import Any

import pytest
from faust.windows import TumblingWindow
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import RuleError
from schemas.codec import AvroCodec
from streams.analytics.records import orders_record, sales_record, settlement_from_record
from streams.analytics.rules import (
    LATE_AFTER,
    Sales,
    Settlement,
    SoldLine,
    Window,
    add_sales,
    count_order,
    count_settlement,
    counted_key,
    dedup_windows,
    is_too_late,
    sales_of,
    window_id,
    window_of,
)
from streams.orders.rules import Status
from tables.windows import DEDUP_EXPIRES, DEDUP_WINDOW, WINDOW, WINDOW_EXPIRES

MINUTE = datetime(2026, 11, 2, 12, 1, tzinfo=UTC)
T = MINUTE + timedelta(seconds=17, milliseconds=250)


def record(
    status: str = "CONFIRMED",
    lines: list[tuple[str, int, str]] | None = None,
    settled_at: datetime = T,
    order_id: str = "o1",
    currency: str | None = "BRL",
) -> dict[str, Any]:
    """An OrderSettled as the codec decodes it."""
    lines = [("tee", 2, "12.50"), ("mug", 1, "7.25")] if lines is None else lines
    return {
        "order_id": order_id,
        "status": status,
        "total": sum((Decimal(p) * q for _, q, p in lines), Decimal("0.00")),
        "currency": currency,
        "lines": [
            {
                "line_id": f"{order_id}:{sku}",
                "order_id": order_id,
                "sku": sku,
                "quantity": q,
                "unit_price": Decimal(p),
                "currency": currency or "",
            }
            for sku, q, p in lines
        ],
        "settled_at": settled_at,
    }


def settlement(**kwargs: Any) -> Settlement:
    return settlement_from_record(record(**kwargs))


# -- windows --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "start"),
    [
        (MINUTE, MINUTE),
        (MINUTE + timedelta(seconds=59, milliseconds=999), MINUTE),
        (MINUTE + timedelta(minutes=1), MINUTE + timedelta(minutes=1)),
        (MINUTE - timedelta(milliseconds=1), MINUTE - timedelta(minutes=1)),
        # Another zone, same instant: windows are UTC minutes.
        (datetime(2026, 11, 2, 9, 1, 30, tzinfo=timezone(timedelta(hours=-3))), MINUTE),
        # Naive means UTC.
        (datetime(2026, 11, 2, 12, 1, 30), MINUTE),
    ],
)
def test_window_is_the_utc_minute_holding_the_moment(at: datetime, start: datetime) -> None:
    window = window_of(at)
    assert window == Window(start, start + WINDOW)
    assert window.start.tzinfo is UTC
    assert window.start <= at.replace(tzinfo=at.tzinfo or UTC) < window.end


@pytest.mark.parametrize(
    "at",
    [MINUTE, T, MINUTE + timedelta(seconds=59, milliseconds=999), datetime(2027, 1, 1, tzinfo=UTC)],
)
def test_faust_tumbling_window_agrees_on_the_window(at: datetime) -> None:
    # The agent hands Faust the window start; Faust must file it under that window.
    faust_window = TumblingWindow(WINDOW.total_seconds(), WINDOW_EXPIRES.total_seconds())
    ours = window_of(at)
    (faust_range,) = faust_window.ranges(ours.start.timestamp())
    assert faust_range[0] == ours.start.timestamp()
    assert ours.start.timestamp() < faust_range[1] < ours.end.timestamp()
    assert faust_window.current(at.timestamp())[0] == ours.start.timestamp()


def test_window_ids_name_the_subject_and_the_minute_in_iso_utc() -> None:
    window = window_of(T)
    assert window_id("tee-black-m", window) == "tee-black-m@2026-11-02T12:01:00Z"
    assert window_id(Status.CONFIRMED.value, window) == "CONFIRMED@2026-11-02T12:01:00Z"
    # Later minutes sort later.
    assert window_id("a", window_of(T + WINDOW)) > window_id("a", window)


@pytest.mark.parametrize(
    ("settled_at", "late"),
    [
        (T, False),
        (T - LATE_AFTER, False),  # its window ends after now - LATE_AFTER
        (T - LATE_AFTER - WINDOW, True),
        (T - WINDOW_EXPIRES, True),
        (T + timedelta(minutes=5), False),
    ],
)
def test_settlements_for_windows_near_expiry_are_too_late(settled_at: datetime, late: bool) -> None:
    assert is_too_late(settled_at, now=T) is late


def test_late_settlements_never_reach_a_window_faust_may_have_expired() -> None:
    # Faust drops a window once its end is before the minute of (now - expires).
    faust_window = TumblingWindow(WINDOW.total_seconds(), WINDOW_EXPIRES.total_seconds())
    now = T
    for seconds_ago in range(0, int(WINDOW_EXPIRES.total_seconds()) + 120, 7):
        settled_at = now - timedelta(seconds=seconds_ago)
        if not is_too_late(settled_at, now):
            (faust_range,) = faust_window.ranges(window_of(settled_at).start.timestamp())
            assert not faust_window.stale(faust_range[1], now.timestamp()), settled_at


# -- which settlements count ----------------------------------------------------------


def test_a_settlement_is_read_from_its_record() -> None:
    s = settlement()
    assert s == Settlement(
        "o1",
        Status.CONFIRMED,
        T,
        (
            SoldLine("tee", 2, Decimal("12.50"), "BRL"),
            SoldLine("mug", 1, Decimal("7.25"), "BRL"),
        ),
    )


def test_a_line_without_currency_takes_the_orders() -> None:
    r = record()
    r["lines"][0]["currency"] = ""
    assert settlement_from_record(r).lines[0].currency == "BRL"


@pytest.mark.parametrize("status", ["PENDING", "RESERVED", "SHIPPED"])
def test_unsettled_or_unknown_statuses_are_refused(status: str) -> None:
    with pytest.raises(RuleError):
        settlement(status=status)


def test_sales_come_from_confirmed_settlements_only() -> None:
    sold, left_out = sales_of(settlement(status="CONFIRMED"))
    assert sold == {
        "tee": Sales(2, Decimal("25.00"), "BRL"),
        "mug": Sales(1, Decimal("7.25"), "BRL"),
    }
    assert left_out == []


@pytest.mark.parametrize("status", ["REJECTED", "EXPIRED", "CANCELLED"])
def test_other_settled_statuses_sell_nothing(status: str) -> None:
    assert sales_of(settlement(status=status)) == ({}, [])


def test_lines_of_one_sku_in_another_currency_are_left_out() -> None:
    r = record(lines=[("tee", 1, "10.00"), ("tee", 2, "3.00")])
    r["lines"][1]["currency"] = "USD"
    sold, left_out = sales_of(settlement_from_record(r))
    assert sold == {"tee": Sales(1, Decimal("10.00"), "BRL")}
    assert left_out == [SoldLine("tee", 2, Decimal("3.00"), "USD")]


# -- how a window's figures add up ----------------------------------------------------


def test_figures_add_up_exactly_in_decimal() -> None:
    # Ten sales of 0.10 are 1.00 exactly (in binary floats they are not).
    figures: Sales | None = None
    for _ in range(10):
        figures = add_sales(figures, Sales(1, Decimal("0.10"), "BRL"))
    assert figures == Sales(10, Decimal("1.00"), "BRL")
    assert sales_record("tee", window_of(T), figures)["revenue"] == Decimal("1.00")


def test_revenue_is_quantity_times_unit_price_summed() -> None:
    sold, _ = sales_of(settlement(lines=[("tee", 3, "0.10"), ("cap", 1000, "19.99")]))
    assert sold["tee"].revenue == Decimal("0.30")
    assert sold["cap"] == Sales(1000, Decimal("19990.00"), "BRL")


def test_a_window_keeps_its_first_currency() -> None:
    brl = Sales(1, Decimal("5.00"), "BRL")
    assert add_sales(brl, Sales(1, Decimal("1.00"), "USD")) is None
    assert add_sales(None, brl) == brl


def test_figures_survive_the_table_round_trip_exactly() -> None:
    figures = Sales(3, Decimal("37.50"), "BRL")
    state = figures.to_state(offset=41)
    assert state == {"units": 3, "revenue": "37.50", "currency": "BRL", "offset": 41}
    assert Sales.from_state(state) == figures
    assert Sales.from_state(None) is None


def test_orders_are_counted_one_by_one() -> None:
    assert count_order(None) == 1
    assert count_order(4) == 5


# -- duplicates -----------------------------------------------------------------------


class Minutes:
    """The agent's bookkeeping over plain dicts: figures per window, counted markers.

    `lose` names writes a crash loses while a settlement is handled (`sales:<sku>`,
    `orders`, `marker`); the agent then handles the same message again.
    """

    def __init__(self) -> None:
        self.sales: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, Any] = {}
        self.counted: dict[tuple[str, Window], int] = {}
        self.next_offset = 0

    def apply(
        self, s: Settlement, offset: int | None = None, lose: frozenset[str] = frozenset()
    ) -> bool:
        if offset is None:
            offset, self.next_offset = self.next_offset, self.next_offset + 1
        here, before = dedup_windows(s.settled_at)
        key = counted_key(s)
        marker = self.counted.get((key, here), self.counted.get((key, before)))
        window = window_of(s.settled_at)
        status_id = window_id(s.status.value, window)
        counting = count_settlement(
            s,
            offset,
            marker,
            {line.sku: self.sales.get(window_id(line.sku, window)) for line in s.lines},
            self.orders.get(status_id),
        )
        for sku, state in counting.sales_writes.items():
            if f"sales:{sku}" not in lose:
                self.sales[window_id(sku, window)] = state
        if counting.orders_write is not None and "orders" not in lose:
            self.orders[status_id] = counting.orders_write
        if counting.marker_write is not None and "marker" not in lose:
            self.counted[(key, here)] = counting.marker_write
        return not counting.duplicate

    def figures(self) -> dict[str, Sales | None]:
        return {window: Sales.from_state(state) for window, state in self.sales.items()}

    def counts(self) -> dict[str, int]:
        return {window: state["orders"] for window, state in self.orders.items()}


def test_a_redelivered_settlement_is_not_counted_twice() -> None:
    minutes = Minutes()
    assert minutes.apply(settlement()) is True
    assert minutes.apply(settlement()) is False
    assert minutes.figures() == {
        "tee@2026-11-02T12:01:00Z": Sales(2, Decimal("25.00"), "BRL"),
        "mug@2026-11-02T12:01:00Z": Sales(1, Decimal("7.25"), "BRL"),
    }
    assert minutes.counts() == {"CONFIRMED@2026-11-02T12:01:00Z": 1}


def test_a_replayed_settlement_with_a_later_time_is_not_counted_twice() -> None:
    # A saga replay can send the same settlement again, stamped later, even in the
    # next dedup window.
    first = datetime(2026, 11, 2, 12, 59, 59, tzinfo=UTC)
    minutes = Minutes()
    assert minutes.apply(settlement(settled_at=first)) is True
    assert minutes.apply(settlement(settled_at=first + timedelta(seconds=2))) is False
    assert list(minutes.counts().values()) == [1]


def test_per_status_counts_per_minute() -> None:
    minutes = Minutes()
    for order_id, status, at in [
        ("o1", "CONFIRMED", T),
        ("o2", "CONFIRMED", T + timedelta(seconds=1)),
        ("o3", "REJECTED", T),
        ("o1", "CANCELLED", T + WINDOW),  # o1 confirmed, then cancelled a minute later
        ("o4", "EXPIRED", T + WINDOW),
    ]:
        minutes.apply(settlement(order_id=order_id, status=status, settled_at=at))
    assert minutes.counts() == {
        "CONFIRMED@2026-11-02T12:01:00Z": 2,
        "REJECTED@2026-11-02T12:01:00Z": 1,
        "CANCELLED@2026-11-02T12:02:00Z": 1,
        "EXPIRED@2026-11-02T12:02:00Z": 1,
    }
    # The cancellation does not take the sale back out of its minute.
    assert minutes.figures()["tee@2026-11-02T12:01:00Z"] == Sales(4, Decimal("50.00"), "BRL")


def test_the_same_order_counts_once_per_status() -> None:
    confirmed, cancelled = settlement(status="CONFIRMED"), settlement(status="CANCELLED")
    assert counted_key(confirmed) == "o1:CONFIRMED"
    assert counted_key(confirmed) != counted_key(cancelled)


def test_dedup_windows_cover_the_previous_hour_and_outlive_late_settlements() -> None:
    here, before = dedup_windows(T)
    assert here == Window(
        datetime(2026, 11, 2, 12, tzinfo=UTC), datetime(2026, 11, 2, 13, tzinfo=UTC)
    )
    assert before == Window(here.start - DEDUP_WINDOW, here.start)
    # While a settlement is still accepted, the previous dedup window is not stale.
    faust_window = TumblingWindow(DEDUP_WINDOW.total_seconds(), DEDUP_EXPIRES.total_seconds())
    for minutes_later in range(0, 60 * 3):
        now = T + timedelta(minutes=minutes_later)
        if not is_too_late(T, now):
            (previous,) = faust_window.ranges(before.start.timestamp())
            assert not faust_window.stale(previous[1], now.timestamp())


# -- published records fit their schemas ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SalesPerMinute", sales_record("tee", window_of(T), Sales(3, Decimal("37.5"), "BRL"))),
        ("OrdersPerMinute", orders_record(Status.REJECTED, window_of(T), 7)),
    ],
)
def test_published_records_round_trip_through_their_avro_schema(
    name: str, value: dict[str, Any]
) -> None:
    codec = AvroCodec(name, schema_id=1)
    decoded = codec.decode(codec.encode(value))
    assert decoded == value
    assert decoded["window_end"] - decoded["window_start"] == WINDOW


def test_sales_record_gives_revenue_in_cents() -> None:
    # decimal(12, 2) on the wire: the exponent must be -2 whatever the sum's was.
    r = sales_record("tee", window_of(T), Sales(1, Decimal("37.5"), "BRL"))
    assert r["revenue"].as_tuple().exponent == -2
    assert str(r["revenue"]) == "37.50"
    assert r["window_id"] == "tee@2026-11-02T12:01:00Z"


# -- crash between the writes of one settlement ---------------------------------------------

ALL_WRITES = ["sales:tee", "sales:mug", "orders", "marker"]


@pytest.mark.parametrize(
    "lost",
    [frozenset(c) for n in range(len(ALL_WRITES) + 1) for c in combinations(ALL_WRITES, n)],
    ids=lambda lost: "+".join(sorted(lost)) or "none",
)
def test_a_crash_between_the_writes_counts_the_settlement_once(lost: frozenset[str]) -> None:
    """Whatever subset of one settlement's writes a crash keeps, handling the message again
    (the consumer resumes from its committed offset) ends with it counted exactly once."""
    minutes = Minutes()
    minutes.apply(settlement(order_id="o0"), offset=6)
    minutes.apply(settlement(order_id="o1"), offset=7, lose=lost)
    minutes.apply(settlement(order_id="o1"), offset=7)  # the same message, again
    minutes.apply(settlement(order_id="o1"), offset=9)  # the saga sent it again: another message
    assert minutes.figures() == {
        "tee@2026-11-02T12:01:00Z": Sales(4, Decimal("50.00"), "BRL"),
        "mug@2026-11-02T12:01:00Z": Sales(2, Decimal("14.50"), "BRL"),
    }
    assert minutes.counts() == {"CONFIRMED@2026-11-02T12:01:00Z": 2}


def test_the_old_two_write_scheme_double_counted_after_a_crash() -> None:
    # What the figure carrying its own offset prevents: without it, a crash that kept the
    # figures and lost the marker counted the settlement again when it was handled again.
    minutes = Minutes()
    minutes.apply(settlement(), offset=3, lose=frozenset({"marker"}))
    for state in minutes.sales.values():
        del state["offset"]  # a figure that does not say what it includes
    minutes.orders = {k: v["orders"] for k, v in minutes.orders.items()}
    minutes.apply(settlement(), offset=3)
    assert minutes.counts() == {"CONFIRMED@2026-11-02T12:01:00Z": 2}


def test_figures_and_markers_from_before_offsets_still_work() -> None:
    minutes = Minutes()
    minutes.sales = {
        "tee@2026-11-02T12:01:00Z": {"units": 1, "revenue": "12.50", "currency": "BRL"}
    }
    minutes.orders = {"CONFIRMED@2026-11-02T12:01:00Z": 1}
    here, _ = dedup_windows(T)
    minutes.counted = {("o0:CONFIRMED", here): True}  # type: ignore[dict-item]
    assert minutes.apply(settlement(order_id="o0"), offset=5) is False
    assert minutes.apply(settlement(order_id="o1"), offset=6) is True
    assert minutes.counts() == {"CONFIRMED@2026-11-02T12:01:00Z": 2}
    assert minutes.figures()["tee@2026-11-02T12:01:00Z"] == Sales(3, Decimal("37.50"), "BRL")


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_settlements_count_once_through_crashes_and_resends(data: st.DataObject) -> None:
    """A topic of settlements, some sent again by the saga; the agent crashes now and then,
    losing any of the writes of messages after its last commit, and resumes there."""
    orders = data.draw(st.lists(st.sampled_from(["o1", "o2", "o3", "o4"]), min_size=1, max_size=12))
    statuses = {"o1": "CONFIRMED", "o2": "REJECTED", "o3": "CONFIRMED", "o4": "CANCELLED"}
    topic = [settlement(order_id=o, status=statuses[o]) for o in orders]
    minutes, position, committed, crashes = Minutes(), 0, 0, 0
    while position < len(topic):
        lose: frozenset[str] = frozenset()
        if crashes < 5 and data.draw(st.integers(0, 4), label="crash?") == 4:
            lose = frozenset(data.draw(st.sets(st.sampled_from(ALL_WRITES)), label="lost"))
        minutes.apply(topic[position], offset=position, lose=lose)
        position += 1
        if lose:
            crashes += 1
            position = data.draw(st.integers(committed, position - 1), label="resume at")
        elif data.draw(st.booleans(), label="commit?"):
            committed = position

    distinct = {o: statuses[o] for o in orders}
    sold = sum(1 for status in distinct.values() if status == "CONFIRMED")
    expected_counts = Counter(distinct.values())
    assert minutes.counts() == {
        f"{status}@2026-11-02T12:01:00Z": n for status, n in expected_counts.items()
    }
    if sold:
        assert minutes.figures() == {
            "tee@2026-11-02T12:01:00Z": Sales(2 * sold, Decimal("25.00") * sold, "BRL"),
            "mug@2026-11-02T12:01:00Z": Sales(sold, Decimal("7.25") * sold, "BRL"),
        }
