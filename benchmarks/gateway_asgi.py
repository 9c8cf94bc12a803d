"""CPU per `POST /v1/orders` inside the gateway app, without sockets or Kafka.

    .venv/bin/python -m benchmarks.gateway_asgi [--requests 20000] [--profile]

Calls the real gateway app (every middleware, dependency and the route) as an
ASGI callable, one request after another, with a producer that keeps nothing
and an in-memory schema registry, and prints the CPU microseconds per request
next to those of `benchmarks.bare_endpoint` driven the same way. The server
(uvicorn's HTTP parsing and socket writes) and the Kafka producer are outside
this figure: `benchmarks.gateway_path` measures the whole path. On a machine
shared with others CPU time per request varies far less than requests/s, so
this is the figure to compare a change with. With `--profile`, pyinstrument
prints where the gateway's time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from starlette.types import ASGIApp, Message

from benchmarks.bare_endpoint import app as bare_app
from benchmarks.gateway_path import BODY
from core.settings import Settings
from gateway.auth import issue_token
from gateway.main import create_app
from schemas.serdes import InMemoryRegistry, Serdes

SECRET = "benchmark-secret-of-at-least-32-bytes-long"


class KeepNothing:
    """A producer that accepts every command at once (Kafka is not measured here)."""

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic: str, key: str, value: bytes) -> None:
        pass

    async def check(self) -> str | None:
        return None


async def post_orders(app: ASGIApp, token: str, n: int, run: str) -> float:
    """CPU seconds for `n` POSTs of a one-line order, each with its own Idempotency-Key."""
    body = BODY.encode()
    statuses: dict[int, int] = {}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] = statuses.get(message["status"], 0) + 1

    began = time.process_time()
    for i in range(n):
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/orders",
            "raw_path": b"/v1/orders",
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"authorization", b"Bearer " + token.encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"idempotency-key", f"{run}-{i}".encode()),
            ],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)  # the client stays; a disconnect is never asked for
            raise AssertionError("unreachable")

        await app(scope, receive, send)
    elapsed = time.process_time() - began
    if set(statuses) != {202}:
        raise RuntimeError(f"not every answer was 202: {statuses}")
    return elapsed


async def measure(n: int, profile: bool) -> None:
    settings = Settings.model_validate(
        {
            "MOMENTUM_JWT_SECRET": SECRET,
            # One customer sends everything: lift its bucket out of the way.
            "MOMENTUM_RATE_LIMIT_PER_SECOND": 1e9,
            "MOMENTUM_RATE_LIMIT_BURST": 10**9,
        }
    )
    gateway = create_app(settings, producer=KeepNothing(), serdes=Serdes(InMemoryRegistry()))
    token = issue_token("bench-customer", "customer", 3600, SECRET)
    async with gateway.router.lifespan_context(gateway):
        await post_orders(gateway, token, 500, "warm")
        await post_orders(bare_app, token, 500, "warm")
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="disabled")
            profiler.start()
            await post_orders(gateway, token, n, "profiled")
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=True))
        gateway_cpu = min([await post_orders(gateway, token, n, f"g{r}") for r in range(3)])
        bare_cpu = min([await post_orders(bare_app, token, n, f"b{r}") for r in range(3)])
    g, b = gateway_cpu / n * 1e6, bare_cpu / n * 1e6
    print(f"POST /v1/orders in-process, best of 3 x {n} requests (CPU time):")
    print(f"  gateway app  {g:6.0f} us/request")
    print(f"  bare app     {b:6.0f} us/request")
    print(f"  gateway/bare {g / b:6.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    asyncio.run(measure(args.requests, args.profile))


if __name__ == "__main__":
    main()
