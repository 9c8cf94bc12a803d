"""The launcher without a stack: worker command line, secrets, and never leaving orphans.

Parts here are `sleep` processes recorded in a state directory the way the
supervisor records real parts, so orphan handling is tested in seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import psutil
import pytest

from momentum import stack as launcher
from momentum.cli import main
from momentum.supervisor import (
    STACK_FILE,
    Part,
    StackError,
    Supervisor,
    launcher_alive,
    live_parts,
    read_stack,
    same_process,
    start_time,
    stop_recorded_parts,
    wait_until,
)

# -- the worker's command line ---------------------------------------------------------------


def option(words: list[str], name: str) -> str:
    return words[words.index(name) + 1]


def test_worker_web_server_binds_loopback(tmp_path: Path) -> None:
    part = launcher.worker_part(1, 6123, tmp_path, tmp_path, {})
    assert option(part.command, "--web-bind") == "127.0.0.1"
    assert option(part.command, "--web-host") == "127.0.0.1"
    assert option(part.command, "--web-port") == "6123"


def test_a_crashed_worker_restarts_on_wiped_local_state(tmp_path: Path) -> None:
    """RocksDB may hold writes its changelog never got: after a crash it is rebuilt."""
    part = launcher.worker_part(1, 6123, tmp_path, tmp_path / "logs", {})
    assert part.wipe_on_crash == tmp_path / "worker-1"
    data = tmp_path / "worker-1" / "tables"
    data.mkdir(parents=True)
    (data / "rows").write_text("written before the changelog")
    sup = Supervisor(tmp_path, {})
    crashed = Part("worker-1", ["sleep", "600"], tmp_path / "w.log", lambda: True)
    crashed.wipe_on_crash = part.wipe_on_crash
    sup.parts.append(crashed)
    crashed.spawn()
    try:
        assert crashed.process is not None
        crashed.process.kill()
        crashed.process.wait(5)
        sup.watch_once()
        assert crashed.restarts == 1 and crashed.alive()
        assert not (tmp_path / "worker-1").exists()
        assert "wiped" in (tmp_path / "w.log").read_text()
    finally:
        crashed.stop()


# -- the JWT secret of an embedded stack -------------------------------------------------------


def test_stack_makes_a_random_secret_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOMENTUM_JWT_SECRET", raising=False)
    first, second = launcher.stack_jwt_secret(), launcher.stack_jwt_secret()
    assert first != second and len(first.encode()) >= 32
    monkeypatch.setenv("MOMENTUM_JWT_SECRET", "g" * 40)
    assert launcher.stack_jwt_secret() == "g" * 40


def test_stack_refuses_a_short_secret_before_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOMENTUM_JWT_SECRET", "too-short")
    with pytest.raises(StackError, match="at least 32"):
        launcher.stack_jwt_secret()


def test_stack_secret_is_private_to_its_owner(tmp_path: Path) -> None:
    launcher.write_jwt_secret(tmp_path, "s" * 40)
    assert (tmp_path / launcher.JWT_SECRET_FILE).stat().st_mode & 0o777 == 0o600
    (tmp_path / "run").mkdir()
    launcher.write_jwt_secret(tmp_path / "run", "t" * 40)
    assert launcher.read_jwt_secret(tmp_path) == "t" * 40


# -- state directories with recorded processes ---------------------------------------------------


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Stand-ins for parts: each in its own session, as the supervisor starts parts."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def sleeper(started: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    started.append(proc)
    return proc


def dead_pid() -> tuple[int, float]:
    proc = subprocess.Popen(["true"])
    created = start_time(proc.pid)
    proc.wait()
    assert created is not None
    return proc.pid, created


def record(
    state_dir: Path, launcher_pid: tuple[int, float], parts: list[subprocess.Popen[bytes]]
) -> dict[str, Any]:
    stack = {
        "pid": launcher_pid[0],
        "create_time": launcher_pid[1],
        "ready": True,
        "state_dir": str(state_dir),
        "endpoints": {},
        "processes": [
            {
                "name": f"part-{i}",
                "pid": p.pid,
                "create_time": start_time(p.pid),
                "stop_signal": int(signal.SIGTERM),
                "state": "running",
                "restarts": 0,
                "port": None,
                "url": None,
                "log": str(state_dir / f"part-{i}.log"),
            }
            for i, p in enumerate(parts, 1)
        ],
    }
    (state_dir / STACK_FILE).write_text(json.dumps(stack))
    return stack


def test_a_reused_pid_is_not_the_recorded_process(sleepers: list[Any]) -> None:
    proc = sleeper(sleepers)
    created = start_time(proc.pid)
    assert created is not None
    assert same_process(proc.pid, created)
    assert not same_process(proc.pid, created - 3600)  # same pid, another process
    assert not same_process(proc.pid, None)
    proc.kill()
    proc.wait()
    assert not same_process(proc.pid, created)


def test_parts_of_a_dead_launcher_are_found(tmp_path: Path, sleepers: list[Any]) -> None:
    parts = [sleeper(sleepers), sleeper(sleepers)]
    stack = record(tmp_path, dead_pid(), parts)
    assert not launcher_alive(stack)
    assert [p["pid"] for p in live_parts(stack)] == [p.pid for p in parts]
    parts[0].kill()
    parts[0].wait()
    assert [p["pid"] for p in live_parts(stack)] == [parts[1].pid]


def test_new_stack_is_refused_while_parts_of_the_last_one_run(
    tmp_path: Path, sleepers: list[Any]
) -> None:
    part = sleeper(sleepers)
    record(tmp_path, dead_pid(), [part])
    with pytest.raises(StackError, match="momentum down") as refused:
        Supervisor(tmp_path, {}).acquire()
    assert f"part-1 pid {part.pid}" in str(refused.value)
    part.kill()
    part.wait()
    sup = Supervisor(tmp_path, {})
    sup.acquire()  # nothing runs any more: a new stack may start
    sup.release()


def test_status_reports_orphans_and_down_stops_them(
    tmp_path: Path, sleepers: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    parts = [sleeper(sleepers), sleeper(sleepers)]
    record(tmp_path, dead_pid(), parts)

    assert main(["status", "--json", "--state-dir", str(tmp_path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["running"] is False and report["orphaned"] is True
    assert [p["state"] for p in report["processes"]] == ["orphaned", "orphaned"]
    assert main(["status", "--state-dir", str(tmp_path)]) == 1
    assert f"momentum down --state-dir {tmp_path}" in capsys.readouterr().out

    assert main(["up", "--detach", "--state-dir", str(tmp_path)]) == 1
    assert "still running" in capsys.readouterr().err
    assert all(p.poll() is None for p in parts), "a refused `up` touches nothing"

    assert main(["down", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "stopping part-2" in out and "stopping part-1" in out
    assert out.index("part-2") < out.index("part-1"), "last started, first stopped"
    assert [p.wait(timeout=10) for p in parts] == [-signal.SIGTERM, -signal.SIGTERM]
    assert not (tmp_path / STACK_FILE).exists()
    assert main(["status", "--state-dir", str(tmp_path)]) == 1
    assert "No Momentum stack" in capsys.readouterr().out


def test_down_kills_a_part_that_ignores_its_stop_signal(
    tmp_path: Path, sleepers: list[Any]
) -> None:
    ignores_sigterm = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    stubborn = subprocess.Popen(
        [sys.executable, "-c", ignores_sigterm],
        start_new_session=True,
        stdout=subprocess.PIPE,
    )
    sleepers.append(stubborn)
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    stack = record(tmp_path, dead_pid(), [stubborn])
    assert stop_recorded_parts(stack, timeout=0.5) == []
    assert stubborn.wait(timeout=10) == -signal.SIGKILL


def test_down_leaves_a_reused_pid_alone(tmp_path: Path, sleepers: list[Any]) -> None:
    stranger = sleeper(sleepers)
    stack = record(tmp_path, dead_pid(), [stranger])
    stack["processes"][0]["create_time"] -= 3600  # the recorded part was another process
    (tmp_path / STACK_FILE).write_text(json.dumps(stack))
    assert main(["down", "--state-dir", str(tmp_path)]) == 0
    assert stranger.poll() is None


# -- the launcher stops its parts when nobody reads its output ----------------------------------

# A launcher whose stack is one `sleep` part: the real run_stack, signals and supervisor.
FAKE_LAUNCHER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from momentum import stack
    from momentum.cli import main
    from momentum.supervisor import Part

    def start_sleeper(sup, opts, say):
        sup.start(Part("sleeper", ["sleep", "600"], opts.state_dir / "sleeper.log", lambda: True))
        sup.ready = True
        sup.publish()

    stack.start_stack = start_sleeper
    stack.say_endpoints = lambda endpoints, say: say("up")
    sys.exit(main(["up", "--state-dir", sys.argv[1]]))
    """
)


def test_ctrl_c_stops_the_parts_when_stdout_is_a_dead_pipe(tmp_path: Path) -> None:
    # `momentum up 2>&1 | tee run.log`, Ctrl-C: tee dies with the launcher's interrupt.
    proc = subprocess.Popen(
        [sys.executable, "-c", FAKE_LAUNCHER, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        process_group=0,
    )
    part: dict[str, Any] = {}
    try:
        assert wait_until(lambda: bool((read_stack(tmp_path) or {}).get("ready")), 60)
        part = (read_stack(tmp_path) or {})["processes"][0]
        assert same_process(part["pid"], part["create_time"])
        assert proc.stdout is not None
        proc.stdout.close()
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert not same_process(part["pid"], part["create_time"])
        assert read_stack(tmp_path) is None
    finally:
        if proc.poll() is None:
            proc.kill()
        if part and same_process(part["pid"], part["create_time"]):
            os.kill(part["pid"], signal.SIGKILL)


def test_a_second_ctrl_c_does_not_cut_the_shutdown_short(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", FAKE_LAUNCHER, str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        process_group=0,
    )
    part: dict[str, Any] = {}
    try:
        assert wait_until(lambda: bool((read_stack(tmp_path) or {}).get("ready")), 60)
        part = (read_stack(tmp_path) or {})["processes"][0]
        for _ in range(3):
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.01)
        assert proc.wait(timeout=60) == 0
        assert not same_process(part["pid"], part["create_time"])
    finally:
        if proc.poll() is None:
            proc.kill()
        if part and same_process(part["pid"], part["create_time"]):
            os.kill(part["pid"], signal.SIGKILL)


# -- momentum token finds the running stack's secret ---------------------------------------------


def test_token_uses_the_running_stacks_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.settings import get_settings

    monkeypatch.delenv("MOMENTUM_JWT_SECRET", raising=False)
    get_settings.cache_clear()
    try:
        args = ["token", "--sub", "ana", "--role", "customer", "--state-dir", str(tmp_path)]
        assert main(args) == 1
        assert "MOMENTUM_JWT_SECRET is not set" in capsys.readouterr().err

        me = psutil.Process()
        record(tmp_path, (me.pid, me.create_time()), [])  # this process plays the launcher
        (tmp_path / "run").mkdir()
        launcher.write_jwt_secret(tmp_path / "run", "r" * 43)
        assert main(args) == 0
        claims = jwt.decode(capsys.readouterr().out.strip(), "r" * 43, algorithms=["HS256"])
        assert claims["sub"] == "ana"

        monkeypatch.setenv("MOMENTUM_JWT_SECRET", "e" * 32)  # set by the user: it wins
        get_settings.cache_clear()
        assert main(args) == 0
        jwt.decode(capsys.readouterr().out.strip(), "e" * 32, algorithms=["HS256"])
    finally:
        get_settings.cache_clear()
