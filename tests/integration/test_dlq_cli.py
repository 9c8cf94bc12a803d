"""`momentum dlq list` finds the running stack as `momentum status` does, sink letters included."""

from __future__ import annotations

import json
import uuid

import pytest
from confluent_kafka import Producer

from tests.integration.conftest import Stack, momentum, wait_for

pytestmark = pytest.mark.integration


def test_dlq_list_finds_the_stack_and_shows_worker_and_sink_letters(stack: Stack) -> None:
    # Nothing but the state directory says where the stack is, as for `momentum status`.
    env = {k: v for k, v in stack.env.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    assert env["MOMENTUM_STATE_DIR"] == str(stack.state_dir)

    worker_key, sink_key = f"dlq-cli-{uuid.uuid4()}", f"dlq-cli-{uuid.uuid4()}"
    producer = Producer({"bootstrap.servers": stack.bootstrap})
    # Not Avro: the worker dead-letters the command, the sink the public record.
    producer.produce("order-commands", key=worker_key.encode(), value=b"not avro")
    producer.produce("orders", key=sink_key.encode(), value=b"not avro either")
    assert producer.flush(10) == 0

    wanted = {("order-commands.dlq", worker_key), ("orders.connect-dlq", sink_key)}

    def listed() -> dict[tuple[str, str], dict] | None:
        result = momentum("dlq", "list", "--json", env=env)
        assert result.returncode == 0, result.stderr
        letters = {}
        for line in result.stdout.splitlines():
            letter = json.loads(line)
            letters[(letter["dlq_topic"], letter["key"])] = letter
        return letters if wanted <= set(letters) else None

    letters = wait_for(listed, timeout=90, interval=1.0)
    worker = letters[("order-commands.dlq", worker_key)]
    assert (worker["source_topic"], worker["error"]) == ("order-commands", "bad-magic-byte")
    sink = letters[("orders.connect-dlq", sink_key)]
    assert sink["source_topic"] == "orders"
    assert sink["error"] and sink["detail"]

    # By source topic: both kinds of letters of `orders`, nothing of other topics.
    by_topic = momentum("dlq", "list", "orders", "--json", env=env)
    assert by_topic.returncode == 0, by_topic.stderr
    topics = {json.loads(line)["dlq_topic"] for line in by_topic.stdout.splitlines()}
    assert topics == {"orders.connect-dlq"} or topics == {"orders.dlq", "orders.connect-dlq"}
