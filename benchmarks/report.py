"""The bench's report: a JSON file, a PNG chart, and each figure beside its baseline."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def write_json(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def per_second(times: list[float]) -> tuple[list[int], list[int]]:
    """Events per one-second bucket, from event times in seconds since the start."""
    buckets = Counter(int(t) for t in times)
    seconds = list(range(max(buckets) + 1)) if buckets else []
    return seconds, [buckets.get(s, 0) for s in seconds]


def write_chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = report["series"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, times in series.get("confirmed_at", {}).items():
        seconds, counts = per_second(times)
        left.plot(seconds, counts, label=label, drawstyle="steps-post")
    left.set_title("Saga at saturation: orders CONFIRMED per second")
    left.set_xlabel("seconds since the first PlaceOrder")
    left.set_ylabel("orders/s")
    if series.get("confirmed_at"):
        left.legend()
    latencies = [s * 1000 for s in series.get("latency_s", [])]
    if latencies:
        right.hist(latencies, bins=40)
        latency = report["scenarios"].get("latency", {})
        for key, style in (("p50_s", "-"), ("p99_s", "--")):
            if latency.get(key):
                right.axvline(latency[key] * 1000, color="black", linestyle=style, label=key[:3])
        if latency.get("hops_x_round_trip_s"):
            right.axvline(
                latency["hops_x_round_trip_s"] * 1000,
                color="red",
                linestyle=":",
                label="hops x broker round trip",
            )
        right.legend()
        rate = latency.get("offered_rate_per_s", 0)
        right.set_title(f"POST to settled at {rate:.0f} orders/s offered (open loop)")
        right.set_xlabel("ms")
        right.set_ylabel("orders")
    fig.suptitle(report["meta"]["title"], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_figures(rows: list[tuple[str, str, str, str]], console: Console) -> None:
    table = Table(title="figures beside their baselines (this run)")
    for column in ("figure", "value", "baseline", "share"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
