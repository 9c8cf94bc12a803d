"""The stack a benchmark runs against: one it starts itself, or a running one (`--target`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.auth import issue_token


def momentum(*args: str, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "momentum.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def stack_status(state_dir: Path) -> dict[str, Any] | None:
    result = momentum("status", "--json", "--state-dir", str(state_dir))
    return json.loads(result.stdout) if result.returncode == 0 else None


@dataclass
class BenchStack:
    """A running stack's endpoints and processes, and whether this run must stop it."""

    state_dir: Path
    status: dict[str, Any]
    owned: bool
    secret: str = field(default="")

    @property
    def endpoints(self) -> dict[str, str]:
        return dict(self.status["endpoints"])

    @property
    def bootstrap(self) -> str:
        return self.endpoints["kafka_bootstrap_servers"]

    @property
    def gateway_url(self) -> str:
        return self.endpoints["gateway_url"]

    def token(self, sub: str, role: str) -> str:
        return issue_token(sub, role, 3600, self.secret)

    def headers(self, sub: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, role)}"}

    def worker_pids(self) -> dict[str, int]:
        fresh = stack_status(self.state_dir) or self.status
        return {
            p["name"]: int(p["pid"])
            for p in fresh["processes"]
            if p["name"].startswith("worker-") and p["pid"]
        }

    def worker_ready(self) -> bool:
        try:
            return httpx.get(self.endpoints["worker_url"] + "/ready/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.owned:
            stopped = momentum("down", "--state-dir", str(self.state_dir))
            if stopped.returncode == 0:
                shutil.rmtree(self.state_dir, ignore_errors=True)


def open_stack(target: Path | None, workers: int = 1) -> BenchStack:
    """Use the stack running from `target`, or start one in a temporary state directory."""
    if target is not None:
        status = stack_status(target)
        if status is None:
            raise SystemExit(f"no Momentum stack is running from {target}")
        stack = BenchStack(target, status, owned=False)
    else:
        state_dir = Path(tempfile.mkdtemp(prefix="momentum-bench-"))
        started = momentum(
            "up", "--detach", "--state-dir", str(state_dir), "--workers", str(workers)
        )
        status = stack_status(state_dir)
        if started.returncode != 0 or status is None:
            momentum("down", "--state-dir", str(state_dir))
            raise SystemExit(f"could not start the stack:\n{started.stdout}{started.stderr}")
        stack = BenchStack(state_dir, status, owned=True)
    # The project's codecs read the registry URL from the settings; tokens need the secret.
    os.environ["SCHEMA_REGISTRY_URL"] = stack.endpoints["schema_registry_url"]
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = stack.bootstrap
    from core.settings import get_settings
    from core.topics import get_serdes
    from gateway.auth import require_secret
    from momentum.stack import read_jwt_secret

    get_settings.cache_clear()
    # Codecs are cached with the registry they registered with: a second stack has its own.
    get_serdes.cache_clear()
    configured = get_settings().jwt_secret
    secret = configured.get_secret_value() if configured else ""
    stack.secret = require_secret(secret or read_jwt_secret(stack.state_dir) or "")
    return stack
