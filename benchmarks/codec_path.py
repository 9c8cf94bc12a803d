"""The codec path with envelopes built by hand against built by `schemas.envelopes`.

    .venv/bin/python -m benchmarks.codec_path [--number 2000] [--repeat 40]
    momentum bench --scenario codec          (the same, in the bench's report)

For an OrderCommand carrying a two-line PlaceOrder and an OrderEvent carrying a
StockReserved, it times in one process: building the value (fresh uuid4 id,
`datetime.now(UTC)`), and building it then encoding and decoding it with
`schemas.codec.AvroCodec` (no registry). The hand-built values are the dicts
`gateway/commands.py` and `streams/inventory/agents.py` write today. Each
figure is the best of `--repeat` runs of `--number` messages, the runs of the
two ways interleaved (many short runs: the best of them is what a quiet machine
would show), in microseconds per message, with the difference and the ratio of
builders to hand (1.00: no cost). These machines are shared: compare the ratio
and the difference, not the absolute figures, between runs.
"""

from __future__ import annotations

import argparse
import timeit
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from schemas import envelopes, messages
from schemas.codec import AvroCodec

LINES = [("TEE-1", 2), ("MUG-1", 1)]


def place_order_by_hand() -> dict[str, Any]:
    return {
        "command_id": str(uuid.uuid4()),
        "order_id": "o-1",
        "issued_at": datetime.now(UTC),
        "payload": (
            "momentum.PlaceOrder",
            {
                "customer_id": "ana",
                "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in LINES],
                "payment": {"method": "card", "token": "tok_ok"},
                "request_hash": "abc",
            },
        ),
    }


def place_order_by_builders() -> messages.OrderCommand:
    return envelopes.order_command(
        "o-1",
        messages.place_order(
            customer_id="ana",
            lines=[{"sku": sku, "quantity": quantity} for sku, quantity in LINES],
            payment={"method": "card", "token": "tok_ok"},
            request_hash="abc",
        ),
    )


def stock_reserved_by_hand() -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "order_id": "o-1",
        "occurred_at": datetime.now(UTC),
        "payload": (
            "momentum.StockReserved",
            {"sku": "TEE-1", "quantity": 2, "unit_price": Decimal("12.34"), "currency": "BRL"},
        ),
    }


def stock_reserved_by_builders() -> messages.OrderEvent:
    return envelopes.order_event(
        "o-1",
        messages.stock_reserved(
            sku="TEE-1", quantity=2, unit_price=Decimal("12.34"), currency="BRL"
        ),
    )


CASES: list[tuple[str, str, Callable[[], Any], Callable[[], Any]]] = [
    ("OrderCommand/PlaceOrder", "OrderCommand", place_order_by_hand, place_order_by_builders),
    ("OrderEvent/StockReserved", "OrderEvent", stock_reserved_by_hand, stock_reserved_by_builders),
]


def time_run(fn: Callable[[], Any], number: int, runs: list[float]) -> None:
    runs.append(timeit.timeit(fn, number=number) / number * 1e6)


def measure(number: int, repeat: int) -> list[dict[str, Any]]:
    """Best microseconds per message of each case and path, by hand and by the builders."""
    rows = []
    for label, record, by_hand, by_builders in CASES:
        codec = AvroCodec(record, schema_id=1)
        assert codec.decode(codec.encode(by_hand()))["payload"][0] == by_builders()["payload"][0]

        def round_trip(build: Callable[[], Any], codec: AvroCodec = codec) -> Callable[[], Any]:
            return lambda: codec.decode(codec.encode(build()))

        for path, hand, built in [
            ("build", by_hand, by_builders),
            ("build+encode+decode", round_trip(by_hand), round_trip(by_builders)),
        ]:
            hand_runs: list[float] = []
            built_runs: list[float] = []
            for _ in range(repeat):
                time_run(hand, number, hand_runs)
                time_run(built, number, built_runs)
            rows.append(
                {
                    "message": label,
                    "path": path,
                    "by_hand_us": min(hand_runs),
                    "builders_us": min(built_runs),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000, help="messages per run")
    parser.add_argument("--repeat", type=int, default=40, help="runs of each way; the best counts")
    args = parser.parse_args()

    print(f"us per message, best of {args.repeat} runs of {args.number}")
    print(f"{'message':26} {'path':20} {'by hand':>8} {'builders':>9} {'diff':>6} {'ratio':>6}")
    for row in measure(args.number, args.repeat):
        h, b = row["by_hand_us"], row["builders_us"]
        print(f"{row['message']:26} {row['path']:20} {h:8.2f} {b:9.2f} {b - h:+6.2f} {b / h:6.2f}")


if __name__ == "__main__":
    main()
