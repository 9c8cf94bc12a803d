"""`momentum`: start, inspect and stop the embedded stack, and operator tools.

momentum up [--detach] [--demo] [--workers N]   start the stack
momentum status [--json]                        parts, consumer and sink lag, dead letters, orders
momentum down                                   stop a stack (also one whose launcher died)
momentum token --sub NAME --role ROLE           print a gateway JWT
momentum dlq list [TOPIC] [--json]              show dead letters
momentum dlq replay TOPIC [--limit N]           send dead letters back to their topic
momentum ui [TOPIC]                             kaskade on the running stack: admin or one topic
momentum env                                    export lines of the running stack's settings
momentum connectors render [--out DIR]          connector configs with this environment's settings
momentum bench [--quick] [--scenario S]         figures beside their baselines (benchmarks.run)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from momentum.supervisor import (
    STACK_FILE,
    StackError,
    launcher_alive,
    live_parts,
    orphans_message,
    read_stack,
    same_process,
    stop_recorded_parts,
    wait_until,
)

DEFAULT_STATE_DIR = ".momentum"


def state_dir_of(args: argparse.Namespace) -> Path:
    return Path(args.state_dir or os.environ.get("MOMENTUM_STATE_DIR", DEFAULT_STATE_DIR)).resolve()


def cmd_up(args: argparse.Namespace) -> int:
    from momentum.stack import StackOptions, run_stack, spawn_detached, unless_gone

    state_dir = state_dir_of(args)
    if args.detach:
        return detach(args, state_dir, spawn_detached)
    opts = StackOptions(
        state_dir=state_dir,
        workers=args.workers,
        gateway_port=args.gateway_port,
    )
    say = unless_gone(lambda line: print(line, flush=True))
    on_ready = None
    if args.demo:
        from momentum.demo import next_steps, run_demo

        def on_ready(sup: Any) -> None:
            run_demo(sup.endpoints, say)
            for line in next_steps(sup.endpoints, str(sup.state_dir)):
                say(line)
            say("\nThe stack keeps running; press Ctrl-C to stop it.")

    return run_stack(opts, say=say, on_ready=on_ready)


def detach(args: argparse.Namespace, state_dir: Path, spawn: Any) -> int:
    running = read_stack(state_dir)
    if launcher_alive(running):
        assert running is not None
        print(
            f"error: a Momentum stack is already running from {state_dir} "
            f"(launcher pid {running['pid']}); stop it with `momentum down`",
            file=sys.stderr,
        )
        return 1
    orphans = live_parts(running)
    if orphans:
        print(f"error: {orphans_message(state_dir, orphans)}", file=sys.stderr)
        return 1
    argv = ["up", "--state-dir", str(state_dir), "--workers", str(args.workers)]
    if args.gateway_port:
        argv += ["--gateway-port", str(args.gateway_port)]
    child = spawn(argv, state_dir)
    log = state_dir / "launcher.log"
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(f"error: the stack did not start; launcher log: {log}", file=sys.stderr)
            print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
            return 1
        stack = read_stack(state_dir)
        if stack and stack.get("ready") and stack.get("pid") == child.pid:
            print_status(stack, as_json=False)
            return 0
        time.sleep(0.2)
    print(f"error: the stack was not ready after {args.timeout}s; log: {log}", file=sys.stderr)
    os.kill(child.pid, signal.SIGTERM)
    return 1


def cmd_status(args: argparse.Namespace) -> int:
    state_dir = state_dir_of(args)
    stack = read_stack(state_dir)
    if not launcher_alive(stack):
        orphans = live_parts(stack)
        if orphans:
            assert stack is not None
            return report_orphans(stack, orphans, state_dir, args.json)
        if args.json:
            print(json.dumps({"running": False, "state_dir": str(state_dir)}))
        else:
            print(f"No Momentum stack is running from {state_dir}.")
        return 1
    assert stack is not None
    for proc in stack["processes"]:
        if proc["state"] in ("running", "starting", "restarting") and not same_process(
            proc["pid"], proc.get("create_time")
        ):
            proc["state"] = "dead"
    stack["running"] = True
    stack["sink"] = sink_status(stack["endpoints"].get("sink_url"))
    add_pipeline_health(stack, state_dir)
    print_status(stack, as_json=args.json)
    return 0


def add_pipeline_health(stack: dict[str, Any], state_dir: Path) -> None:
    """Lag per consumer group, dead letters and orders by status, read from the parts."""
    from momentum import health
    from momentum.stack import read_run_env

    endpoints = stack["endpoints"]
    try:
        env = read_run_env(state_dir)
    except StackError:
        env = {}
    from_fetch = env.get("MOMENTUM_END_OFFSETS_FROM_FETCH", "false").lower() == "true"
    bootstrap = endpoints["kafka_bootstrap_servers"]
    groups = health.lag_by_group(bootstrap, from_fetch)
    stack["consumer_groups"] = groups
    stack["dead_letters"] = health.dead_letter_counts(bootstrap, from_fetch)
    stack["orders_by_status"] = health.orders_by_status(endpoints["database_url"])
    supervised = {
        str(p["url"]).rstrip("/")
        for p in stack["processes"]
        if p["name"].startswith("worker-") and p.get("url")
    }
    in_group = health.workers_in_group(endpoints["worker_url"])
    stack["workers_in_group"] = in_group
    stack["outside_workers"] = health.outside_workers(in_group, supervised)


def report_orphans(
    stack: dict[str, Any], orphans: list[dict[str, Any]], state_dir: Path, as_json: bool
) -> int:
    """A stack whose launcher died: its parts run unsupervised until `momentum down`."""
    live = {proc["pid"] for proc in orphans}
    for proc in stack["processes"]:
        proc["state"] = "orphaned" if proc["pid"] in live else "dead"
    stack["running"] = False
    stack["orphaned"] = True
    print_status(stack, as_json)
    if not as_json:
        print(
            f"The launcher (pid {stack['pid']}) is gone, but {len(orphans)} of its parts "
            f"still run unsupervised; stop them with `momentum down --state-dir {state_dir}`."
        )
    return 1


def sink_status(url: str | None) -> dict[str, Any] | None:
    if not url:
        return None
    import httpx

    try:
        response = httpx.get(f"{url}/status", timeout=2.0)
        return dict(response.json()) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def print_status(stack: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(stack, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    console.print(
        f"[bold]Momentum stack[/] (launcher pid {stack['pid']}, state {stack['state_dir']})"
    )
    endpoints = Table("endpoint", "address", box=None, padding=(0, 2))
    for key, value in stack["endpoints"].items():
        endpoints.add_row(key, str(value))
    console.print(endpoints)
    parts = Table("part", "pid", "state", "restarts", "log", title="Parts")
    for proc in stack["processes"]:
        healthy = proc["state"] == "running"
        state = f"[green]{proc['state']}[/]" if healthy else f"[red]{proc['state']}[/]"
        parts.add_row(
            proc["name"], str(proc["pid"] or "-"), state, str(proc["restarts"]), proc["log"]
        )
    console.print(parts)
    outside = stack.get("outside_workers")
    if outside:
        console.print(f"Workers in the group not started by the launcher: {', '.join(outside)}")
    groups = stack.get("consumer_groups")
    if groups:
        lag = Table("consumer group", "members", "topic", "lag", title="Consumer lag")
        for group, info in groups.items():
            for topic, behind in info["lag"].items() or [("-", 0)]:
                lag.add_row(group, str(info["members"]), topic, str(behind))
        console.print(lag)
    sink_lag = (stack.get("sink") or {}).get("lag")
    if sink_lag is not None:
        sink = Table("topic", "records behind", title="Sink lag")
        for topic, behind in sink_lag.items():
            sink.add_row(topic, str(behind))
        console.print(sink)
    letters = stack.get("dead_letters")
    if letters is not None:
        dlq = Table("dead-letter topic", "letters", title="Dead letters")
        for topic, count in letters.items():
            if count:
                dlq.add_row(topic, f"[red]{count}[/]")
        if not dlq.row_count:
            dlq.add_row("(all)", "0")
        console.print(dlq)
    orders = stack.get("orders_by_status")
    if orders is not None:
        by_status = Table("status", "orders", title="Orders (read model)")
        for status, count in orders.items():
            by_status.add_row(status, str(count))
        console.print(by_status)


def running_stack(state_dir: Path) -> dict[str, Any]:
    """The stack running from `state_dir` (as `status` finds it), else StackError saying so."""
    stack = read_stack(state_dir)
    if not launcher_alive(stack):
        raise StackError(
            f"no Momentum stack is running from {state_dir}; start one with "
            "`momentum up --detach`, or name its --state-dir"
        )
    assert stack is not None
    return stack


def cmd_ui(args: argparse.Namespace) -> int:
    from momentum.ui import UiError, open_ui

    endpoints = running_stack(state_dir_of(args))["endpoints"]
    try:
        if args.partition and not args.topic:
            raise UiError("--partition needs a TOPIC")
        open_ui(
            endpoints["kafka_bootstrap_servers"],
            endpoints["schema_registry_url"],
            args.topic,
            args.partition,
        )
    except UiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0  # not reached: kaskade replaced this process


def cmd_env(args: argparse.Namespace) -> int:
    from momentum.stack import read_run_env

    state_dir = state_dir_of(args)
    running_stack(state_dir)
    for line in export_lines(read_run_env(state_dir)):
        print(line)
    return 0


def export_lines(env: dict[str, str]) -> list[str]:
    """`export NAME=value` lines a POSIX shell reads back unchanged."""
    import shlex

    return [f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items())]


def cmd_down(args: argparse.Namespace) -> int:
    """Stop the stack: through its launcher while it lives, else by the recorded pids."""
    state_dir = state_dir_of(args)
    stack = read_stack(state_dir)
    if stack is None or not (launcher_alive(stack) or live_parts(stack)):
        print(f"No Momentum stack is running from {state_dir}.")
        return 0
    if launcher_alive(stack):
        pid = int(stack["pid"])
        os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: not launcher_alive(stack), args.timeout, interval=0.2):
            print(
                f"the launcher (pid {pid}) did not stop in {args.timeout}s; killing it",
                file=sys.stderr,
            )
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not launcher_alive(stack), 10.0)
        # A launcher that finished removed stack.json; one that was killed left it,
        # with any part it restarted since we read it.
        stack = read_stack(state_dir) or stack
    else:
        print(f"The launcher (pid {stack['pid']}) is gone; stopping the parts it left running:")
    left = stop_recorded_parts(stack, say=print)
    if left:
        names = ", ".join(f"{p['name']} pid {p['pid']}" for p in left)
        print(f"error: could not stop {names}", file=sys.stderr)
        return 1
    (state_dir / STACK_FILE).unlink(missing_ok=True)
    print("Stopped.")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from gateway.auth import InsecureSecret, issue_token, require_secret

    try:
        secret = require_secret(token_secret(state_dir_of(args)))
    except InsecureSecret as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(issue_token(args.sub, args.role, args.ttl, secret))
    return 0


def token_secret(state_dir: Path) -> str | None:
    """MOMENTUM_JWT_SECRET if set, else the secret of the stack running from `state_dir`."""
    from core.settings import get_settings
    from momentum.stack import read_jwt_secret

    configured = get_settings().jwt_secret
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    stack = read_stack(state_dir)
    if launcher_alive(stack) or live_parts(stack):
        return read_jwt_secret(state_dir)
    return None


def cmd_bench(args: argparse.Namespace) -> int:
    """`momentum bench ARGS` is `python -m benchmarks.run ARGS` (see `--help` there)."""
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run", *args.bench_args])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="momentum", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def with_state_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--state-dir", help=f"default $MOMENTUM_STATE_DIR or {DEFAULT_STATE_DIR}")
        return p

    up = with_state_dir(sub.add_parser("up", help="start the embedded stack"))
    up.add_argument("--detach", action="store_true", help="run in the background")
    up.add_argument("--demo", action="store_true", help="seed a catalog and place demo orders")
    up.add_argument("--workers", type=int, default=1, help="number of Faust workers")
    up.add_argument("--gateway-port", type=int, help="fixed gateway port (default: a free one)")
    up.add_argument("--timeout", type=float, default=240.0, help="--detach: seconds to wait")
    up.set_defaults(func=cmd_up)

    status = with_state_dir(sub.add_parser("status", help="endpoints and processes"))
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    down = with_state_dir(sub.add_parser("down", help="stop the stack, or the parts it left"))
    down.add_argument("--timeout", type=float, default=60.0)
    down.set_defaults(func=cmd_down)

    token = with_state_dir(sub.add_parser("token", help="print a JWT for the gateway"))
    token.add_argument("--sub", required=True)
    token.add_argument("--role", required=True, choices=["customer", "seller", "admin"])
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    token.set_defaults(func=cmd_token)

    ui = with_state_dir(sub.add_parser("ui", help="kaskade (a Kafka terminal UI) on the stack"))
    ui.add_argument("topic", nargs="?", help="a topic to read, decoded; default: the admin view")
    ui.add_argument(
        "--partition",
        metavar="P:OFFSET|P:earliest",
        help="read one partition from OFFSET (or its start) instead of all from the start",
    )
    ui.set_defaults(func=cmd_ui)

    env = with_state_dir(sub.add_parser("env", help="export lines of the running stack's settings"))
    env.set_defaults(func=cmd_env)

    from momentum.connectors import add_connector_commands
    from momentum.dlq import add_dlq_commands

    add_dlq_commands(sub)
    add_connector_commands(sub)

    # The bench parses its own arguments (benchmarks.run): the benchmarks sit on top of
    # the CLI (they start stacks with it), so the CLI hands over instead of importing them.
    bench = sub.add_parser(
        "bench",
        add_help=False,
        help="throughput, latency, ingress, sink, recovery and scale beside their baselines",
    )
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    # platformdirs (imported by a dependency) warns when a shell has no XDG_RUNTIME_DIR,
    # as in containers and ssh sessions; it falls back to /tmp and nothing is wrong.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # every argument, --help too, is the bench's own
        return cmd_bench(argparse.Namespace(bench_args=argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
