"""`momentum bench`: Momentum's figures beside the baselines they are bounded by, in one run.

Scenarios (all by default; pick with --scenario, repeatable):
  baselines  broker produce+consume rate and round trip, a bare Faust relay
             agent, a bare FastAPI endpoint served like the gateway (wrk)
  codec      building, encoding and decoding messages (benchmarks.codec_path)
  latency    POST to settled at a fixed offered rate (open loop, 50% of what the
             gateway path sustains), against the sequential Kafka hops x the
             broker's round trip
  saga       confirmed orders/s at saturation, single- and three-line orders over
             the catalog; messages and changelog writes per order; the worker's
             Faust events/s as a share of the bare relay
  sink       the Postgres read model's lag while the single-line saga runs
  recovery   SIGKILL the worker with many skus in the inventory table; seconds
             until an order confirms again
  ingress    POST /v1/orders with wrk (a separate process), beside the bare endpoint
  scale      the single-line saga on a stack with 2 workers, beside 1 worker

It starts its own stack (or uses `--target STATE_DIR`), writes
bench-<time>.json and bench-<time>.png to --out, and prints each figure beside
its baseline. Nothing is asserted: these machines are shared and noisy, so read
the ratios, not only the absolute figures. The embedded broker (Tansu, memory
storage) keeps every record and lists a partition's batches on each fetch, so
the longer a run, the more each fetch costs it (benchmarks.broker_batches); the
report says what it held as each scenario began. Latency, a few orders at a
time, is the most sensitive to it, so it runs before the saga scenarios. The
ingress run leaves a backlog of rejected orders in the workers, so it runs
after every saga scenario; scale starts a second stack after the first one is
stopped.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich comes with the bench extra; `momentum --help` does without it.
    from rich.console import Console
    from rich.progress import Progress

SCENARIOS = ("baselines", "codec", "latency", "saga", "sink", "recovery", "ingress", "scale")
RESULTS = Path(__file__).with_name("results")


@dataclass(frozen=True)
class Sizes:
    orders: int  # per saturation run
    catalog: int  # skus the orders spread over
    broker_messages: int
    relay_messages: int
    latency_seconds: float
    latency_share: float  # offered rate as a share of the gateway path's saturation
    latency_clients: int  # closed-loop clients measuring that saturation
    latency_saturation_seconds: float
    wrk_seconds: float
    connections: int
    recovery_skus: int
    codec_number: int
    codec_repeat: int


FULL = Sizes(
    orders=2000,
    catalog=10_000,
    broker_messages=50_000,
    relay_messages=10_000,
    latency_seconds=20.0,
    latency_share=0.5,
    latency_clients=32,
    latency_saturation_seconds=10.0,
    wrk_seconds=10.0,
    connections=32,
    recovery_skus=100_000,
    codec_number=2000,
    codec_repeat=20,
)
QUICK = Sizes(
    orders=60,
    catalog=100,
    broker_messages=2000,
    relay_messages=500,
    latency_seconds=3.0,
    latency_share=0.5,
    latency_clients=8,
    latency_saturation_seconds=2.0,
    wrk_seconds=2.0,
    connections=32,
    recovery_skus=300,
    codec_number=200,
    codec_repeat=3,
)


class Bench:
    """One run: the stack, the figures so far, and the progress display."""

    def __init__(self, args: argparse.Namespace, sizes: Sizes, console: Console):
        self.args, self.sizes, self.console = args, sizes, console
        self.scenarios: dict[str, dict[str, Any]] = {}
        self.series: dict[str, Any] = {"confirmed_at": {}}
        self.rows: list[tuple[str, str, str, str]] = []
        self.catalog: list[str] = []
        # What the broker held as each scenario began (see benchmarks.broker.held).
        self.broker_held: dict[str, dict[str, Any]] = {}
        self.progress: Progress | None = None
        self.task: Any = None

    # -- display ------------------------------------------------------------------------------

    def step(self, what: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=what)
        self.console.log(what)

    def note_broker(self, scenario: str, stack: Any) -> None:
        from benchmarks.broker import held

        self.broker_held[scenario] = now = held(stack.bootstrap)
        self.console.log(
            f"broker holds {now['records']:,} records; fullest partition "
            f"{now['fullest_partition']} {now['fullest_partition_records']:,}"
        )

    def figure(self, name: str, value: str, baseline: str = "", share: str = "") -> None:
        self.rows.append((name, value, baseline, share))
        self.console.log(
            f"[bold]{name}[/]: {value}" + (f"  (baseline {baseline})" if baseline else "")
        )

    def baseline(self, key: str) -> float | None:
        value = self.scenarios.get("baselines", {}).get(key)
        return float(value) if value else None


def share(value: float, base: float | None) -> str:
    return f"{value / base:.1%}" if base else ""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# -- scenarios --------------------------------------------------------------------------------


def run_baselines(bench: Bench, stack: Any) -> None:
    from benchmarks import broker, http, relay
    from benchmarks.saga_throughput import place_order_command
    from core.topics import ORDER_COMMANDS, value_codec

    size = len(value_codec(ORDER_COMMANDS).encode(place_order_command("bench-size", ["SKU-1"])))
    bench.step("baseline: broker produce+consume")
    rate = broker.produce_consume(stack.bootstrap, bench.sizes.broker_messages, size)
    bench.step("baseline: broker round trip")
    rtt = broker.round_trip(stack.bootstrap)
    bench.step("baseline: bare Faust relay agent")
    relay_rate = relay.relay_rate(stack.bootstrap, bench.sizes.relay_messages, size)
    bench.step(f"baseline: bare FastAPI endpoint, wrk -c{bench.sizes.connections}")
    bare = http.bare_endpoint(bench.sizes.connections, bench.sizes.wrk_seconds)
    bench.scenarios["baselines"] = {
        "message_bytes": size,
        "broker_produce_consume_per_s": rate,
        "broker_round_trip_s": rtt,
        "relay_events_per_s": relay_rate,
        "bare_endpoint": bare,
    }
    bench.figure("broker produce+consume", f"{rate:,.0f} msg/s", f"{size} B messages")
    bench.figure("broker produce->consume round trip", ms(rtt), "median of 20")
    bench.figure(
        "bare Faust relay (consume, send on)",
        f"{relay_rate:,.0f} events/s",
        "",
        share(relay_rate, rate) + " of broker",
    )
    bench.figure(
        "bare FastAPI POST (wrk)",
        f"{bare['requests_per_second']:,.0f} req/s, p50 {ms(bare['p50'])}, p99 {ms(bare['p99'])}",
    )


def run_codec(bench: Bench, stack: Any) -> None:
    from benchmarks.codec_path import measure

    bench.step("codec: build, encode, decode")
    rows = measure(bench.sizes.codec_number, bench.sizes.codec_repeat)
    bench.scenarios["codec"] = {"us_per_message": rows}
    for row in rows:
        bench.figure(
            f"codec {row['message']} {row['path']}",
            f"{row['builders_us']:.1f} us",
            f"{row['by_hand_us']:.1f} us by hand",
            f"{row['builders_us'] / row['by_hand_us']:.2f}x",
        )


def ensure_catalog(bench: Bench, stack: Any) -> list[str]:
    from benchmarks.saga_throughput import new_run, seed_catalog

    if not bench.catalog:
        bench.step(f"seeding a catalog of {bench.sizes.catalog:,} skus")
        began = time.perf_counter()
        # Enough stock for every run of this bench on this catalog, three-line orders included.
        quantity = max(100, 20 * bench.sizes.orders * 3 // bench.sizes.catalog)
        bench.catalog = seed_catalog(stack, bench.sizes.catalog, quantity, f"BENCH-{new_run()}")
        bench.console.log(f"catalog seeded in {time.perf_counter() - began:.1f}s")
    return bench.catalog


def quiet(bench: Bench, stack: Any) -> None:
    """Start a run only once the workers are done with the last one's tail."""
    from benchmarks.broker import PIPELINE_TOPICS, wait_quiet

    bench.step("waiting until the workers are idle")
    waited = wait_quiet(stack.bootstrap, PIPELINE_TOPICS)
    bench.console.log(f"idle after {waited:.1f}s")


def saturation(
    bench: Bench, stack: Any, lines: int, label: str, watch_sink: bool
) -> dict[str, Any]:
    from benchmarks import broker
    from benchmarks.saga_throughput import new_run, saturate
    from benchmarks.sink_lag import SinkWatch

    catalog = ensure_catalog(bench, stack)
    n = bench.sizes.orders
    quiet(bench, stack)
    bench.step(f"saga: {n:,} {label} orders at once")
    before = broker.topic_totals(stack.bootstrap)
    run = new_run()
    watch = None
    if watch_sink:
        watch = SinkWatch(
            stack.endpoints["database_url"], stack.endpoints["sink_url"], f"bench-{run}-"
        ).start()
    result = saturate(stack, catalog, n, lines, run)
    if watch is not None:
        bench.step("sink: waiting for the read model to catch up")
        watch.wait_for(n, timeout=300)
        watch.stop()
    # Let the saga's tail (commits, captures, publishes after CONFIRMED) land before counting.
    time.sleep(3)
    written = broker.written_between(before, broker.topic_totals(stack.bootstrap))
    figures: dict[str, Any] = {
        "orders": n,
        "lines_per_order": lines,
        "seconds": result.seconds,
        "orders_per_s": result.orders_per_second,
        "messages_per_order": broker.count(written, broker.PIPELINE_TOPICS) / n,
        "changelog_writes_per_order": broker.changelog_writes(written) / n,
        "worker_events_per_order": broker.count(written, broker.WORKER_INPUTS) / n,
        "written_per_topic": written,
    }
    figures["worker_events_per_s"] = figures["worker_events_per_order"] * result.orders_per_second
    bench.series["confirmed_at"][label] = result.confirmed_at
    if watch is not None:
        bench.scenarios["sink"] = {
            "orders": n,
            **watch.figures(result.confirmed_at, result.started),
        }
    return figures


def run_saga(bench: Bench, stack: Any) -> None:
    relay = bench.baseline("relay_events_per_s")
    broker_rate = bench.baseline("broker_produce_consume_per_s")
    saga: dict[str, Any] = {"catalog_skus": bench.sizes.catalog}
    for lines, key, label in ((1, "single_line", "single-line"), (3, "three_line", "three-line")):
        figures = saturation(
            bench, stack, lines, label, watch_sink=lines == 1 and "sink" in bench.args.scenarios
        )
        saga[key] = figures
        events = figures["worker_events_per_s"]
        bench.figure(
            f"saga {label}: CONFIRMED",
            f"{figures['orders_per_s']:,.1f} orders/s",
            f"{broker_rate:,.0f} msg/s broker" if broker_rate else "",
            share(figures["orders_per_s"], broker_rate),
        )
        bench.figure(
            f"saga {label}: Faust events handled",
            f"{events:,.0f} events/s ({figures['worker_events_per_order']:.1f} per order)",
            f"{relay:,.0f} events/s bare relay" if relay else "",
            share(events, relay),
        )
        bench.figure(
            f"saga {label}: per order",
            f"{figures['messages_per_order']:.1f} messages, "
            f"{figures['changelog_writes_per_order']:.1f} changelog writes",
        )
    bench.scenarios["saga"] = saga


def run_sink_alone(bench: Bench, stack: Any) -> None:
    """The sink scenario without the saga scenario: one single-line saturation run for it."""
    saturation(bench, stack, 1, "single-line", watch_sink=True)


def report_sink(bench: Bench) -> None:
    sink = bench.scenarios.get("sink")
    if not sink:
        return
    bench.figure(
        "sink: read model behind the saga (CONFIRMED on Kafka -> row in Postgres)",
        f"p50 {ms(sink['lag_p50_s'] or 0)}, max {ms(sink['lag_max_s'] or 0)}; "
        f"at most {sink['records_behind_max']} records behind",
        f"sampled every {ms(sink['sample_interval_s'])}",
    )


def run_latency(bench: Bench, stack: Any) -> None:
    from benchmarks import broker, hop_times
    from benchmarks.saga_throughput import (
        gateway_saturation,
        open_loop_latency,
        percentiles,
        saga_hops,
    )

    catalog = ensure_catalog(bench, stack)
    saturated = None
    if bench.args.rate:
        rate = float(bench.args.rate)
    else:
        # The orders go through the gateway, whose CPU comes from the same cores as the
        # workers': half of what that path sustains, not of the Kafka-direct saturation.
        quiet(bench, stack)
        sizes = bench.sizes
        bench.step(
            f"latency: the gateway path's saturation, {sizes.latency_clients} clients "
            f"for {sizes.latency_saturation_seconds:.0f}s"
        )
        saturated = gateway_saturation(
            stack, catalog, sizes.latency_clients, sizes.latency_saturation_seconds
        )
        if not saturated:
            raise RuntimeError("latency: no order settled through the gateway")
        rate = saturated * sizes.latency_share
    quiet(bench, stack)
    bench.step(f"latency: {rate:.1f} orders/s offered for {bench.sizes.latency_seconds:.0f}s")
    since = broker.partition_ends(stack.bootstrap)
    samples, failures = open_loop_latency(stack, catalog, rate, bench.sizes.latency_seconds)
    if not samples:
        raise RuntimeError("latency: no order settled")
    quiet(bench, stack)  # the tails (captures) land, then each step's time from the records
    records = hop_times.read_path(stack.bootstrap, since, broker.partition_ends(stack.bootstrap))
    steps = hop_times.median_after_start(hop_times.first_times(records))
    hops = saga_hops(1)
    rtt = bench.baseline("broker_round_trip_s")
    if rtt is None:
        from benchmarks.broker import round_trip

        rtt = round_trip(stack.bootstrap)
    figures = {f"{k}_s": v for k, v in percentiles(samples).items()}
    bench.scenarios["latency"] = {
        "offered_rate_per_s": rate,
        "gateway_path_saturation_per_s": saturated,
        "saturation_share": rate / saturated if saturated else None,
        "orders_settled": len(samples),
        "orders_not_settled": len(failures),
        "not_settled_because": sorted(set(failures))[:5],
        **figures,
        "hops": len(hops),
        "hop_path": hops,
        "broker_round_trip_s": rtt,
        "hops_x_round_trip_s": len(hops) * rtt,
        "median_ms_after_place_order": steps,
    }
    bench.series["latency_s"] = samples
    offered = f"{rate:.0f}/s" + (f" (of {saturated:.0f}/s sustained)" if saturated else "")
    bench.figure(
        f"latency POST -> settled at {offered}",
        f"p50 {ms(figures['p50_s'])}, p95 {ms(figures['p95_s'])}, "
        f"p99 {ms(figures['p99_s'])}, max {ms(figures['max_s'])}; "
        f"{len(failures)} of {len(samples) + len(failures)} not settled in 30 s",
        f"{len(hops)} hops x {ms(rtt)} = {ms(len(hops) * rtt)}",
        f"{figures['p50_s'] / (len(hops) * rtt):.1f}x",
    )
    bench.figure(
        "latency: median ms from the PlaceOrder record to each step (record timestamps)",
        ", ".join(f"{step} {after:.0f}" for step, after in steps.items() if after > 0),
        f"round trip {ms(rtt)} a hop",
    )


def run_recovery(bench: Bench, stack: Any) -> None:
    from benchmarks.saga_throughput import new_run, recovery, seed_catalog

    n = bench.sizes.recovery_skus
    bench.step(f"recovery: seeding {n:,} skus into the inventory table")
    began = time.perf_counter()
    skus = seed_catalog(stack, n, 10, f"BENCH-R{new_run()}")
    seeded = time.perf_counter() - began
    bench.step("recovery: SIGKILL worker-1, then one order")
    seconds = recovery(stack, skus[0])
    bench.scenarios["recovery"] = {"skus": n, "seed_seconds": seeded, "seconds": seconds}
    bench.figure(
        f"recovery: SIGKILL -> next order CONFIRMED ({n:,} skus)",
        f"{seconds:.1f} s",
        f"seeding took {seeded:.0f} s",
    )


def run_ingress(bench: Bench, stack: Any) -> None:
    from benchmarks import http

    c, seconds = bench.sizes.connections, bench.sizes.wrk_seconds
    bare = bench.scenarios.get("baselines", {}).get("bare_endpoint")
    bare_rate = bare["requests_per_second"] if bare else None
    # First the gateway alone, as the target asks (the POST path calls no worker), while
    # the stack is idle; then the stack's own gateway with its workers on the same cores.
    bench.step(f"ingress: wrk -c{c} POST /v1/orders on a gateway with no worker")
    alone = http.gateway_alone_wrk(c, seconds)
    bench.step(f"ingress: wrk -c{c} POST /v1/orders on the stack's gateway")
    tokens = [stack.token(f"bench-w{i}", "customer") for i in range(64)]
    gateway = http.wrk(stack.gateway_url + "/v1/orders", tokens, "BENCH-NONE", c, seconds)
    bench.scenarios["ingress"] = {
        "gateway_alone": alone,
        "gateway": gateway,
        "share_of_bare": gateway["requests_per_second"] / bare_rate if bare_rate else None,
        "alone_share_of_bare": alone["requests_per_second"] / bare_rate if bare_rate else None,
    }
    for label, figures in (("alone, no worker", alone), ("workers running", gateway)):
        bench.figure(
            f"gateway POST /v1/orders (wrk -c{c}), {label}",
            f"{figures['requests_per_second']:,.0f} req/s, p50 {ms(figures['p50'])}, "
            f"p99 {ms(figures['p99'])}; non-2xx {figures['non_2xx']}",
            f"{bare_rate:,.0f} req/s bare" if bare_rate else "",
            share(figures["requests_per_second"], bare_rate),
        )


def run_scale(bench: Bench, one: dict[str, Any] | None) -> None:
    from benchmarks.stack import open_stack

    bench.step("scale: starting a stack with 2 workers")
    stack = open_stack(None, workers=2)
    try:
        scaled = Bench(bench.args, bench.sizes, bench.console)
        scaled.progress, scaled.task = bench.progress, bench.task
        two = saturation(scaled, stack, 1, "single-line, 2 workers", watch_sink=False)
        bench.series["confirmed_at"]["single-line, 2 workers"] = scaled.series["confirmed_at"][
            "single-line, 2 workers"
        ]
    finally:
        stack.stop()
    bench.scenarios["scale"] = {
        "workers_1_orders_per_s": one["orders_per_s"] if one else None,
        "workers_2_orders_per_s": two["orders_per_s"],
        "workers_2": two,
    }
    bench.figure(
        "saga single-line, 2 workers",
        f"{two['orders_per_s']:,.1f} orders/s",
        f"{one['orders_per_s']:,.1f} orders/s with 1" if one else "",
        f"{two['orders_per_s'] / one['orders_per_s']:.2f}x" if one else "",
    )


# -- the run ----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        dest="scenarios",
        action="append",
        choices=SCENARIOS,
        help="run only these (repeatable); default: all",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds per scenario")
    parser.add_argument("--target", type=Path, help="state dir of a running stack to use")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"default {RESULTS}")
    parser.add_argument("--orders", type=int, help="orders per saturation run")
    parser.add_argument("--catalog", type=int, help="skus the orders spread over")
    parser.add_argument("--recovery-skus", type=int, help="skus in the table at the SIGKILL")
    parser.add_argument(
        "--rate",
        type=float,
        help="latency: offered orders/s (default: 50%% of the gateway path's saturation)",
    )
    parser.add_argument("--connections", type=int, help="wrk connections (default 32)")
    parser.add_argument("--seconds", type=float, help="latency and wrk duration")


def sizes_of(args: argparse.Namespace) -> Sizes:
    sizes = QUICK if args.quick else FULL
    changes = {
        "orders": args.orders,
        "catalog": args.catalog,
        "recovery_skus": args.recovery_skus,
        "connections": args.connections,
        "latency_seconds": args.seconds,
        "wrk_seconds": args.seconds,
    }
    return replace(sizes, **{k: v for k, v in changes.items() if v is not None})


def bench_main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    # A SIGTERM (e.g. from `timeout`) still stops the stack this run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    console = Console()
    args.scenarios = [s for s in SCENARIOS if s in (args.scenarios or SCENARIOS)]
    sizes = sizes_of(args)
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    bench = Bench(args, sizes, console)
    steps: list[tuple[str, Callable[[Bench, Any], None]]] = [
        ("baselines", run_baselines),
        ("codec", run_codec),
        ("latency", run_latency),
        ("saga", run_saga),
        ("sink", lambda b, s: None if "saga" in args.scenarios else run_sink_alone(b, s)),
        ("recovery", run_recovery),
        ("ingress", run_ingress),
    ]
    from benchmarks.stack import open_stack

    stack_scenarios = [name for name, _ in steps if name in args.scenarios]
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} scenarios"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bench.progress = progress
        bench.task = progress.add_task("starting", total=len(args.scenarios))
        stack = None
        try:
            if stack_scenarios:
                bench.step("starting the stack" if args.target is None else f"using {args.target}")
                stack = open_stack(args.target)
            for name, run in steps:
                if name in args.scenarios:
                    bench.note_broker(name, stack)
                    run(bench, stack)
                    progress.advance(bench.task)
        finally:
            if stack is not None:
                stack.stop()
        report_sink(bench)
        if "scale" in args.scenarios:
            run_scale(bench, bench.scenarios.get("saga", {}).get("single_line"))
            progress.advance(bench.task)
    meta = {
        "title": f"momentum bench {stamp} on {platform.node()} ({os.cpu_count()} cores, "
        f"load {load_before[0]:.1f} at start; shared machine)",
        "started_at": started.isoformat(),
        "seconds": (datetime.now(UTC) - started).total_seconds(),
        "command": " ".join(["momentum", "bench", *sys.argv[1:]]),
        "scenarios": args.scenarios,
        "quick": args.quick,
        "target": str(args.target) if args.target else None,
        "sizes": asdict(sizes),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_start": load_before,
            "load_average_end": os.getloadavg(),
        },
    }
    report = {
        "meta": meta,
        "scenarios": bench.scenarios,
        "broker_held_at_start": bench.broker_held,
        "series": bench.series,
    }
    from benchmarks.report import print_figures, write_chart, write_json

    json_path, png_path = args.out / f"bench-{stamp}.json", args.out / f"bench-{stamp}.png"
    write_json(report, json_path)
    write_chart(report, png_path)
    print_figures(bench.rows, console)
    console.print(f"report: {json_path}\nchart:  {png_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="momentum bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return bench_main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
