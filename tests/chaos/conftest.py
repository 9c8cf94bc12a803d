"""The fault-injection suite's own embedded stack: two workers, started once.

It is separate from the integration stack because its tests kill workers, freeze
Postgres and take the card provider down; `make test` runs it as a second pytest
session after unit and integration tests. `MOMENTUM_CHAOS_SOAK=1` runs the same
scenarios with ten times the load (the soak; not part of `make test`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.integration.conftest import STACK_ENV, Stack, momentum

SOAK = os.environ.get("MOMENTUM_CHAOS_SOAK", "") not in ("", "0")
# Each scenario places orders at this rate for this long (open loop), so every
# fault lands while orders flow.
ORDER_RATE = 25.0
LOAD_SECONDS = 200.0 if SOAK else 20.0
WORKERS = 2

CHAOS_ENV = {
    **STACK_ENV,
    # Low enough that the flood meets both the per-client limit (429) and the
    # in-flight guard (503), while the load's many customers stay well below them.
    "MOMENTUM_RATE_LIMIT_PER_SECOND": "40",
    "MOMENTUM_RATE_LIMIT_BURST": "80",
    "MOMENTUM_MAX_IN_FLIGHT": "48",
    # Captures and refunds ride out the scenarios' outages rather than park.
    "MOMENTUM_PAYMENT_SETTLE_PATIENCE_SECONDS": "60",
}


@pytest.fixture(scope="session")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir = tmp_path_factory.mktemp("momentum-chaos")
    env = {**os.environ, **CHAOS_ENV, "MOMENTUM_STATE_DIR": str(state_dir)}
    started = momentum(
        "up", "--detach", "--workers", str(WORKERS), "--state-dir", str(state_dir), env=env
    )
    if started.returncode != 0:
        logs = "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}"
            for log in sorted((state_dir / "run" / "logs").glob("*.log"))
        )
        pytest.fail(f"momentum up failed:\n{started.stdout}\n{started.stderr}\n{logs}")
    status = json.loads(momentum("status", "--json", "--state-dir", str(state_dir), env=env).stdout)
    stack = Stack(state_dir, env, status)
    os.environ.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
            "SCHEMA_REGISTRY_URL": stack.registry_url,
            "DATABASE_URL": stack.database_url,
        }
    )
    yield stack
    momentum("down", "--state-dir", str(state_dir), env=env)
