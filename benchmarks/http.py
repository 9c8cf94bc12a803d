"""Requests/s and latency of `POST /v1/orders` measured by wrk, a separate process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from momentum.stack import free_port, uvicorn_args

WRK = shutil.which("wrk") or "/usr/bin/wrk"
SCRIPT = Path(__file__).with_name("post_order.lua")


def wrk(url: str, tokens: list[str], sku: str, connections: int, seconds: float) -> dict[str, Any]:
    """wrk with post_order.lua: a unique Idempotency-Key per request, tokens in turn."""
    result = subprocess.run(
        [
            WRK,
            "-t2",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(SCRIPT),
            url,
            "--",
            uuid.uuid4().hex[:8],
            sku,
            *tokens,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("{"))
    figures: dict[str, Any] = json.loads(line)
    figures["connections"] = connections
    figures["requests_per_second"] = figures["requests"] / (figures["duration_us"] / 1e6)
    for key in ("p50", "p90", "p99", "max"):
        figures[key] = figures.pop(f"{key}_us") / 1e6
    return figures


def bare_endpoint(connections: int, seconds: float) -> dict[str, Any]:
    """wrk against benchmarks.bare_endpoint served like the gateway, in its own process."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, *uvicorn_args("benchmarks.bare_endpoint:app", port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the bare endpoint did not start")
            time.sleep(0.1)
        return wrk(url + "/v1/orders", ["none"], "BENCH-NONE", connections, seconds)
    finally:
        server.terminate()
        server.wait(10)


def gateway_alone_wrk(connections: int, seconds: float) -> dict[str, Any]:
    """wrk against a gateway of its own with no worker (benchmarks.gateway_path's setup:
    a broker, the registry stand-in and the gateway), after a 2 s warm-up."""
    import tempfile

    from benchmarks.gateway_path import Processes, start_gateway_alone
    from gateway.auth import issue_token

    with tempfile.TemporaryDirectory(prefix="momentum-gateway-alone-") as work:
        procs = Processes(Path(work))
        try:
            gateway, _ = start_gateway_alone(procs)
            tokens = [
                issue_token(f"bench-a{i}", "customer", 3600, gateway.secret) for i in range(64)
            ]
            url = gateway.url + "/v1/orders"
            wrk(url, tokens, "BENCH-NONE", connections, 2)
            return wrk(url, tokens, "BENCH-NONE", connections, seconds)
        finally:
            procs.stop_all()
