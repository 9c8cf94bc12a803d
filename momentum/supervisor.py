"""Runs the parts of the embedded stack as child processes and keeps them running.

Each part is a real process on 127.0.0.1 with its log in the state directory.
The supervisor starts parts in order, waits on each one's health probe (never a
sleep), restarts parts that die when their policy says so, and publishes what
runs where in `stack.json`, which `momentum status` and `momentum down` read.

`stack.json` names every part by pid and start time, so a stack outlives no
launcher unnoticed: when the launcher is gone (SIGKILL, a crash) its parts are
still found, `momentum down` stops them by those pids after checking each pid
is still the process it started, and a new stack is refused while any runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

STACK_FILE = "stack.json"
LOCK_FILE = "stack.lock"
# psutil derives a start time from the boot time, which the kernel may report a
# second apart in two readers; a reused pid is never that close to the original.
START_TIME_TOLERANCE_SECONDS = 1.0


class StackError(RuntimeError):
    """A part could not start or the stack cannot run; the message names the part and its log."""


@dataclass
class Part:
    name: str
    command: list[str]
    log: Path
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    port: int | None = None
    url: str | None = None
    restart: bool = True
    startup_timeout: float = 60.0
    # Postgres stops fast on SIGINT; SIGTERM would wait for clients to leave.
    stop_signal: int = signal.SIGTERM
    user: str | None = None
    cwd: Path | None = None
    # Local state a crash leaves untrustworthy, wiped before a restart: a Faust
    # worker writes RocksDB before its changelog, so after a SIGKILL its local
    # tables may hold writes the changelog (the source of truth) never got.
    wipe_on_crash: Path | None = None

    process: subprocess.Popen[bytes] | None = None
    started_at: float | None = None  # psutil create_time: tells the process from a reused pid
    restarts: int = 0
    state: str = "stopped"
    _log_file: IO[bytes] | None = None

    def spawn(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log, "ab")  # noqa: SIM115 - kept open while the part runs
        self.process = subprocess.Popen(
            self.command,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            user=self.user,
            # Own session: a Ctrl-C in the terminal reaches the supervisor only,
            # which then stops the parts in order.
            start_new_session=True,
        )
        self.started_at = start_time(self.process.pid)
        self.state = "starting"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if self._log_file:
            self._log_file.close()
            self._log_file = None
        self.state = "stopped"

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "create_time": self.started_at,
            "stop_signal": int(self.stop_signal),
            "state": self.state,
            "restarts": self.restarts,
            "port": self.port,
            "url": self.url,
            "log": str(self.log),
        }


def wait_until(probe: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if probe():
                return True
        time.sleep(interval)
    return False


class Supervisor:
    """Starts parts in order, restarts the ones that die, and stops them all in reverse."""

    def __init__(self, state_dir: Path, endpoints: dict[str, str]) -> None:
        self.state_dir = state_dir
        self.endpoints = endpoints
        self.parts: list[Part] = []
        self.ready = False
        self._lock: IO[str] | None = None
        self._stopping = False
        self._started_at = start_time(os.getpid())

    # -- the single-stack lock ---------------------------------------------------------
    def acquire(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.state_dir / LOCK_FILE, "w")  # noqa: SIM115 - held for the stack's life
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            running = read_stack(self.state_dir)
            pid = running.get("pid") if running else "unknown"
            raise StackError(
                f"a Momentum stack is already running from {self.state_dir} (launcher pid {pid}); "
                "stop it with `momentum down` or use another --state-dir"
            ) from None
        # The lock dies with its launcher, the parts do not: a stack whose launcher
        # was killed still runs until `momentum down` stops it.
        left = live_parts(read_stack(self.state_dir))
        if left:
            lock.close()
            raise StackError(orphans_message(self.state_dir, left))
        self._lock = lock

    def release(self) -> None:
        if self._lock:
            self._lock.close()
            self._lock = None

    # -- starting --------------------------------------------------------------------
    def start(self, part: Part) -> None:
        """Start one part and wait until its probe passes; on failure stop it and say why."""
        self.parts.append(part)
        part.spawn()
        self.publish()
        deadline = time.monotonic() + part.startup_timeout
        while time.monotonic() < deadline:
            if not part.alive():
                code = part.process.returncode if part.process else None
                part.state = "failed"
                raise StackError(
                    f"{part.name} exited with code {code} while starting; log: {part.log}\n"
                    f"{part.tail()}"
                )
            with contextlib.suppress(Exception):
                if part.ready():
                    part.state = "running"
                    self.publish()
                    return
            time.sleep(0.1)
        part.state = "failed"
        raise StackError(
            f"{part.name} was not ready after {part.startup_timeout:.0f}s; log: {part.log}\n"
            f"{part.tail()}"
        )

    # -- running ---------------------------------------------------------------------
    def watch_once(self) -> None:
        """Restart parts that died; a part that may not restart stops the stack."""
        for part in self.parts:
            if self._stopping or part.alive():
                if part.state == "restarting" and part.alive():
                    with contextlib.suppress(Exception):
                        if part.ready():
                            part.state = "running"
                            self.publish()
                continue
            code = part.process.returncode if part.process else None
            if not part.restart:
                raise StackError(
                    f"{part.name} exited with code {code} and cannot be restarted; log: {part.log}"
                )
            part.stop()
            part.restarts += 1
            note = f"exited with {code}; restart {part.restarts}"
            if part.wipe_on_crash is not None:
                shutil.rmtree(part.wipe_on_crash, ignore_errors=True)
                note += f", local state {part.wipe_on_crash} wiped (rebuilt from changelogs)"
            with open(part.log, "ab") as log:
                log.write(f"\n--- momentum: {note}\n".encode())
            part.spawn()
            part.state = "restarting"
            self.publish()

    def stop_all(self) -> None:
        self._stopping = True
        self.ready = False
        for part in reversed(self.parts):
            part.stop()
            self.publish()
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / STACK_FILE).unlink()

    # -- stack.json ------------------------------------------------------------------
    def publish(self) -> None:
        data = {
            "pid": os.getpid(),
            "create_time": self._started_at,
            "ready": self.ready,
            "state_dir": str(self.state_dir),
            "endpoints": self.endpoints,
            "processes": [p.describe() for p in self.parts],
        }
        tmp = self.state_dir / (STACK_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.state_dir / STACK_FILE)


def read_stack(state_dir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((state_dir / STACK_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child is not alive for our purposes.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


# -- finding a stack's processes again ------------------------------------------------------


def start_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def same_process(pid: int | None, started_at: float | None) -> bool:
    """`pid` still runs, and is the process that started at `started_at` (not a reused pid)."""
    if not pid or started_at is None:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return bool(abs(proc.create_time() - started_at) < START_TIME_TOLERANCE_SECONDS)
    except psutil.Error:
        return False


def launcher_alive(stack: dict[str, Any] | None) -> bool:
    if not stack:
        return False
    return same_process(stack.get("pid"), stack.get("create_time"))


def live_parts(stack: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The parts `stack.json` names that are still running, in start order."""
    if not stack:
        return []
    return [
        proc
        for proc in stack.get("processes", [])
        if same_process(proc.get("pid"), proc.get("create_time"))
    ]


def orphans_message(state_dir: Path, parts: list[dict[str, Any]]) -> str:
    running = ", ".join(f"{p['name']} pid {p['pid']}" for p in parts)
    return (
        f"parts of a Momentum stack whose launcher is gone are still running from {state_dir} "
        f"({running}); stop them with `momentum down --state-dir {state_dir}` first"
    )


def stop_recorded_parts(
    stack: dict[str, Any], timeout: float = 15.0, say: Callable[[str], None] = lambda _: None
) -> list[dict[str, Any]]:
    """Stop the parts of a stack whose launcher is gone, last started first.

    Each part gets its own stop signal, then SIGKILL to its process group (each
    part leads one) if it has not exited after `timeout`. Only pids that are still
    the recorded process are touched. Returns the parts still running afterwards.
    """

    def gone(part: dict[str, Any]) -> Callable[[], bool]:
        # Not our child, so polled; a zombie left to a subreaper counts as gone.
        return lambda: not same_process(part["pid"], part["create_time"])

    for part in reversed(live_parts(stack)):
        pid = int(part["pid"])
        say(f"  stopping {part['name']} (pid {pid})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, part.get("stop_signal") or signal.SIGTERM)
        if not wait_until(gone(part), timeout):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            wait_until(gone(part), 5.0)
    return live_parts(stack)
