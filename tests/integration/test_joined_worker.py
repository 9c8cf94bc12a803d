"""A worker started by hand with `momentum env` joins the stack, and `status` lists it.

On a stack of its own (as test_scale_out does): a worker joining and leaving
rebalances the group, which the session's shared stack should not see.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Stack, momentum, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_stack(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir: Path = tmp_path_factory.mktemp("joined-worker")
    env = {**stack.env, "MOMENTUM_STATE_DIR": str(state_dir)}
    started = momentum("up", "--detach", "--state-dir", str(state_dir), env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    status = json.loads(momentum("status", "--json", "--state-dir", str(state_dir), env=env).stdout)
    yield Stack(state_dir, env, status)
    momentum("down", "--state-dir", str(state_dir), env=env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status_of(stack: Stack) -> dict[str, Any]:
    result = momentum("status", "--json", "--state-dir", str(stack.state_dir), env=stack.env)
    return dict(json.loads(result.stdout))


def test_a_worker_joined_with_momentum_env_is_listed_by_status(
    own_stack: Stack, tmp_path: Path
) -> None:
    exported = momentum("env", "--state-dir", str(own_stack.state_dir), env=own_stack.env)
    assert exported.returncode == 0, exported.stderr
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # What a developer types: the export lines, then Faust's own CLI.
    script = exported.stdout + (
        f'exec "{sys.executable}" -m faust -A streams.app worker -l info '
        f"--web-bind 127.0.0.1 --web-host 127.0.0.1 --web-port {port}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOMENTUM_")}
    env["MOMENTUM_DATA_DIR"] = str(tmp_path / "worker")
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        ["sh", "-c", script], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
    )
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/ready", timeout=2.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=180, interval=1.0)
        status = wait_for(
            lambda: (s := status_of(own_stack)) and s.get("outside_workers") and s,
            timeout=60,
            interval=2.0,
        )
        assert status["outside_workers"] == [url]
        supervised = next(p["url"] for p in status["processes"] if p["name"] == "worker-1")
        assert sorted(status["workers_in_group"]) == sorted([url, supervised])
        table = momentum("status", "--state-dir", str(own_stack.state_dir), env=own_stack.env)
        assert f"not started by the launcher: {url}" in table.stdout
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
        log.close()
