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


# -- no orphans: the launcher's parts never outlive it unnoticed ------------------------------


@pytest.fixture
def launcher_env() -> dict[str, str]:
    """What a user's shell gives `momentum up` (no session stack needed)."""
    from tests.integration.conftest import STACK_ENV

    return {**os.environ, **STACK_ENV}


def recorded_parts(state_dir: Path) -> list[psutil.Process]:
    """The parts stack.json names, as psutil handles (which notice a reused pid)."""
    stack = json.loads((state_dir / "stack.json").read_text())
    found = []
    for proc in stack["processes"]:
        try:
            found.append(psutil.Process(proc["pid"]))
        except psutil.NoSuchProcess:
            continue
    return found


def running(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    return alive


def kill_leftovers(procs: list[psutil.Process]) -> None:
    """Clean up after a failing test: other engineers share this machine."""
    for proc in running(procs):
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # parts lead their own process group
        except (ProcessLookupError, PermissionError):
            proc.kill()


def wait_ready(state_dir: Path) -> None:
    wait_for(
        lambda: (
            (state_dir / "stack.json").exists()
            and json.loads((state_dir / "stack.json").read_text())["ready"]
        ),
        timeout=180,
    )


def test_ctrl_c_with_stdout_into_a_dead_pipe_leaves_no_parts(
    tmp_path: Path, launcher_env: dict[str, str]
) -> None:
    # `make run 2>&1 | tee run.log`, then Ctrl-C: the terminal sends SIGINT to the
    # whole foreground job, tee dies with it, and every line the launcher prints
    # from then on meets a pipe without a reader.
    launcher = subprocess.Popen(
        [sys.executable, "-m", "momentum.cli", "up", "--state-dir", str(tmp_path)],
        env=launcher_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        process_group=0,  # its own job, as a shell starts a pipeline
    )
    parts: list[psutil.Process] = []
    try:
        wait_ready(tmp_path)
        parts = recorded_parts(tmp_path)
        assert len(parts) == len(PARTS)
        assert launcher.stdout is not None
        launcher.stdout.close()  # the reader (tee) is gone
        os.killpg(launcher.pid, signal.SIGINT)
        launcher.wait(timeout=120)
        assert wait_for(lambda: running(parts) == [], timeout=30)
        assert not (tmp_path / "stack.json").exists()
        status = momentum("status", "--state-dir", str(tmp_path), env=launcher_env)
        assert status.returncode == 1 and "No Momentum stack" in status.stdout
    finally:
        if launcher.poll() is None:
            launcher.kill()
        kill_leftovers(parts)


def test_parts_of_a_killed_launcher_are_found_and_stopped_by_down(
    tmp_path: Path, launcher_env: dict[str, str]
) -> None:
    started = momentum("up", "--detach", "--state-dir", str(tmp_path), env=launcher_env)
    assert started.returncode == 0, started.stderr
    parts = recorded_parts(tmp_path)
    try:
        assert len(parts) == len(PARTS)
        launcher = psutil.Process(json.loads((tmp_path / "stack.json").read_text())["pid"])
        launcher.kill()
        wait_for(lambda: running([launcher]) == [], timeout=30)

        # status still finds the parts, and says they are orphans.
        status = momentum("status", "--json", "--state-dir", str(tmp_path), env=launcher_env)
        assert status.returncode == 1
        report = json.loads(status.stdout)
        assert report["running"] is False and report["orphaned"] is True
        assert {p["name"] for p in report["processes"] if p["state"] == "orphaned"} == PARTS
        text = momentum("status", "--state-dir", str(tmp_path), env=launcher_env)
        assert "momentum down" in text.stdout

        # A new stack on the same state directory is refused, and touches nothing.
        again = momentum("up", "--detach", "--state-dir", str(tmp_path), env=launcher_env)
        assert again.returncode == 1
        assert "still running" in again.stderr and "momentum down" in again.stderr
        assert len(running(parts)) == len(PARTS)

        down = momentum("down", "--state-dir", str(tmp_path), env=launcher_env)
        assert down.returncode == 0, down.stderr
        assert running(parts) == []
        after = momentum("status", "--state-dir", str(tmp_path), env=launcher_env)
        assert after.returncode == 1 and "No Momentum stack" in after.stdout
    finally:
        kill_leftovers(parts)


def test_worker_web_server_listens_on_loopback_only(stack: Stack) -> None:
    worker = stack.process("worker-1")
    listening = [
        c.laddr
        for c in psutil.Process(worker["pid"]).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert worker["port"] in {addr.port for addr in listening}
    assert {addr.ip for addr in listening} == {"127.0.0.1"}, listening
