"""The launcher: status, restart of a killed worker, and clear failures without strays."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.conftest import Stack, momentum, wait_for
from tests.integration.shop import Shop, unique_sku

pytestmark = pytest.mark.integration

PARTS = {"broker", "postgres", "schema-registry", "payment-provider", "worker-1", "sink", "gateway"}


def test_status_lists_endpoints_and_processes(stack: Stack) -> None:
    status = stack.refresh()
    assert status["running"] is True
    for key in ("gateway_url", "schema_registry_url", "kafka_bootstrap_servers", "database_url"):
        assert status["endpoints"][key]
    assert {p["name"] for p in status["processes"]} == PARTS
    for proc in status["processes"]:
        assert proc["state"] == "running", proc
        assert psutil.pid_exists(proc["pid"])
        assert Path(proc["log"]).is_file()
    assert httpx.get(stack.gateway_url + "/health").status_code == 200


def test_killed_worker_is_restarted(stack: Stack, shop: Shop) -> None:
    before = stack.process("worker-1")
    os.kill(before["pid"], signal.SIGKILL)

    after = wait_for(
        lambda: (
            (p := stack.process("worker-1"))["restarts"] == before["restarts"] + 1
            and p["state"] == "running"
            and p
        ),
        timeout=120,
    )
    assert after["pid"] != before["pid"]

    # The restarted worker recovers its tables and goes on processing orders.
    sku = unique_sku("RESTART")
    shop.seed(sku, "5.00", 2)
    assert shop.settled(shop.order_id([(sku, 1)]))["status"] == "CONFIRMED"


def test_second_stack_on_same_state_dir_is_refused(stack: Stack) -> None:
    result = momentum("up", "--detach", "--state-dir", str(stack.state_dir), env=stack.env)
    assert result.returncode != 0
    assert "already running" in result.stderr


def processes_using(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            text = " ".join(proc.info["cmdline"] or []) + str(proc.info["environ"] or "")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if str(path) in text and proc.pid != os.getpid():
            found.append(proc)
    return found


def test_port_in_use_names_the_part(tmp_path: Path, stack: Stack) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = momentum(
            "up",
            "--detach",
            "--state-dir",
            str(tmp_path),
            "--gateway-port",
            str(port),
            env=stack.env,
        )
    assert result.returncode != 0
    assert f"port {port} for gateway is in use" in result.stderr + result.stdout
    assert processes_using(tmp_path) == []


def test_part_that_fails_to_start_names_its_log_and_leaves_no_strays(
    tmp_path: Path, stack: Stack
) -> None:
    # A worker with an unknown table store cannot start.
    env = {**stack.env, "MOMENTUM_STORE": "nosuchstore://"}
    result = momentum("up", "--detach", "--state-dir", str(tmp_path), env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "worker-1" in output
    assert str(tmp_path / "run" / "logs" / "worker-1.log") in output
    assert wait_for(lambda: processes_using(tmp_path) == [], timeout=30)


def test_foreground_stack_stops_cleanly_on_ctrl_c(tmp_path: Path, stack: Stack) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-m", "momentum.cli", "up", "--state-dir", str(tmp_path)],
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(
            lambda: (
                (tmp_path / "stack.json").exists()
                and json.loads((tmp_path / "stack.json").read_text())["ready"]
            ),
            timeout=180,
        )
        launcher.send_signal(signal.SIGINT)
        output, _ = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 0
    assert "Stopped." in output
    assert not (tmp_path / "stack.json").exists()
    assert wait_for(lambda: processes_using(tmp_path) == [], timeout=30)
