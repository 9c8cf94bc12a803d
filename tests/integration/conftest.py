"""The embedded stack, started once per test session by the project's own launcher.

`momentum up --detach` starts every part as a real process on 127.0.0.1; the
tests talk to it over HTTP, Kafka and Postgres exactly as users do, and
`momentum down` stops it at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

JWT_SECRET = "integration-tests-secret-of-32-bytes!"
RESERVATION_TTL_SECONDS = 10
BREAKER_RESET_SECONDS = 2
# Long enough for a test to fill and check out a cart, short enough to watch one idle.
CART_IDLE_SECONDS = 20

STACK_ENV = {
    "MOMENTUM_JWT_SECRET": JWT_SECRET,
    "MOMENTUM_RESERVATION_TTL_SECONDS": str(RESERVATION_TTL_SECONDS),
    # An outage test opens the worker's circuit breaker; let it close soon after.
    "MOMENTUM_PAYMENT_BREAKER_RESET_SECONDS": str(BREAKER_RESET_SECONDS),
    "MOMENTUM_PROVIDER_SLOW_DELAY": "3",
    # The replay test parks a refund in the dead-letter topic during an outage.
    "MOMENTUM_PAYMENT_SETTLE_PATIENCE_SECONDS": "1",
    "MOMENTUM_CART_IDLE_SECONDS": str(CART_IDLE_SECONDS),
}


def momentum(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "momentum.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Stack:
    state_dir: Path
    env: dict[str, str]
    status: dict[str, Any]

    @property
    def endpoints(self) -> dict[str, str]:
        return dict(self.status["endpoints"])

    @property
    def gateway_url(self) -> str:
        return self.endpoints["gateway_url"]

    @property
    def registry_url(self) -> str:
        return self.endpoints["schema_registry_url"]

    @property
    def bootstrap(self) -> str:
        return self.endpoints["kafka_bootstrap_servers"]

    @property
    def database_url(self) -> str:
        return self.endpoints["database_url"]

    @property
    def provider_url(self) -> str:
        return self.endpoints["payment_provider_url"]

    def refresh(self) -> dict[str, Any]:
        result = momentum("status", "--json", "--state-dir", str(self.state_dir), env=self.env)
        self.status = json.loads(result.stdout)
        return self.status

    def process(self, name: str) -> dict[str, Any]:
        return next(p for p in self.refresh()["processes"] if p["name"] == name)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir = tmp_path_factory.mktemp("momentum-stack")
    env = {**os.environ, **STACK_ENV, "MOMENTUM_STATE_DIR": str(state_dir)}
    os.environ.update(STACK_ENV)
    started = momentum("up", "--detach", "--state-dir", str(state_dir), env=env)
    if started.returncode != 0:
        logs = "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}"
            for log in sorted((state_dir / "run" / "logs").glob("*.log"))
        )
        pytest.fail(f"momentum up failed:\n{started.stdout}\n{started.stderr}\n{logs}")
    result = momentum("status", "--json", "--state-dir", str(state_dir), env=env)
    running = Stack(state_dir, env, json.loads(result.stdout))
    # Everything the tests' own clients read from settings points at this stack.
    os.environ.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": running.bootstrap,
            "SCHEMA_REGISTRY_URL": running.registry_url,
            "DATABASE_URL": running.database_url,
        }
    )
    yield running
    momentum("down", "--state-dir", str(state_dir), env=env)


def token(sub: str, role: str, ttl: int = 86400) -> str:
    from gateway.auth import issue_token

    return issue_token(sub, role, ttl, JWT_SECRET)


def auth(sub: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, role)}"}


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll until `check` returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


@pytest.fixture
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=40.0) as client:
        yield client


@pytest.fixture
def shop(gateway: httpx.Client) -> Any:
    from tests.integration.shop import Shop

    return Shop(gateway)


@pytest.fixture
def provider(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.provider_url, timeout=10.0) as client:
        yield client
