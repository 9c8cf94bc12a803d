"""What one HTTP call to the card provider costs the worker: httpx against aiohttp.

    .venv/bin/python -m benchmarks.payment_client_cost [--calls 2000]

Serves `benchmarks.bare_endpoint` with uvicorn on loopback (a stand-in: the
figure is the client's side) and posts a small JSON body with a pooled
`httpx.AsyncClient` (what `streams.payments.client` uses) and a pooled
`aiohttp.ClientSession` (which Faust already brings), `--calls` times one
after another and 8 at a time (the worker's payment concurrency). Prints the
client process's CPU microseconds per call: the worker pays that per
authorize, capture, void or refund.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx

from benchmarks.gateway_path import BODY, UVICORN, wait_until
from momentum.stack import free_port, tcp_open

Call = Callable[[], Awaitable[int]]


async def cpu_per_call(call: Call, calls: int, concurrency: int) -> float:
    """Client CPU microseconds per call; every answer must be 202."""

    async def worker(share: int) -> None:
        for _ in range(share):
            status = await call()
            if status != 202:
                raise RuntimeError(f"answer {status}")

    await worker(50)  # connections open, caches warm
    began = time.process_time()
    await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
    return (time.process_time() - began) / calls * 1e6


async def measure(url: str, calls: int) -> None:
    headers = {"content-type": "application/json", "idempotency-key": "bench"}
    async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:

        async def with_httpx() -> int:
            response = await client.post("/v1/orders", content=BODY, headers=headers)
            return response.status_code

        for concurrency in (1, 8):
            us = await cpu_per_call(with_httpx, calls, concurrency)
            print(f"  httpx   {concurrency} at a time: {us:5.0f} us CPU per call")
    timeout = aiohttp.ClientTimeout(total=5.0)
    async with aiohttp.ClientSession(base_url=url, timeout=timeout) as session:

        async def with_aiohttp() -> int:
            async with session.post("/v1/orders", data=BODY, headers=headers) as response:
                await response.read()
                return response.status

        for concurrency in (1, 8):
            us = await cpu_per_call(with_aiohttp, calls, concurrency)
            print(f"  aiohttp {concurrency} at a time: {us:5.0f} us CPU per call")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    port = free_port()
    server = subprocess.Popen(
        [*UVICORN, "--port", str(port), "benchmarks.bare_endpoint:app"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(tcp_open(port), "server")
        print(f"POST with a small JSON body, {args.calls} calls (python {sys.version.split()[0]}):")
        asyncio.run(measure(f"http://127.0.0.1:{port}", args.calls))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
