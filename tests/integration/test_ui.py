"""`momentum ui` drives kaskade in a real terminal (tmux) against the embedded stack.

The test reads the screen as an operator would: topic names in the admin view,
and a record decoded field by field in the consumer view.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from core.topics import PRODUCTS
from tests.integration.conftest import Stack, wait_for
from tests.integration.shop import unique_sku

pytestmark = pytest.mark.integration

TMUX = "/usr/bin/tmux"
# kaskade starts a Textual app and connects to Kafka and the registry: on a loaded
# machine that takes a while, so the screen is polled, never waited on once.
SCREEN_TIMEOUT = 90.0


class Terminal:
    """A detached tmux session on its own server socket (no clash with anyone's tmux)."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.socket = f"momentum-ui-test-{uuid.uuid4().hex[:8]}"
        env_args = [
            a
            for k, v in env.items()
            if k.startswith(("MOMENTUM_", "KAFKA_", "SCHEMA_"))
            for a in ("-e", f"{k}={v}")
        ]
        # The pane stays open after the command ends, so an error stays readable.
        shell = f"{shlex.join(command)}; echo EXITED $?; sleep 600"
        self.tmux("new-session", "-d", "-x", "220", "-y", "60", *env_args, shell)

    def tmux(self, *args: str) -> str:
        # Textual takes COLUMNS and LINES (pytest's terminal) over the pane's real size.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        result = subprocess.run(
            [TMUX, "-L", self.socket, *args], capture_output=True, text=True, timeout=30, env=env
        )
        return result.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def wait_for_text(self, *texts: str) -> str:
        def shows_all() -> str | None:
            screen = self.screen()
            return screen if all(t in screen for t in texts) else None

        try:
            return str(wait_for(shows_all, timeout=SCREEN_TIMEOUT, interval=1.0))
        except AssertionError:
            raise AssertionError(f"{texts} not on screen:\n{self.screen()}") from None

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def terminal(stack: Stack) -> Iterator[Any]:
    opened: list[Terminal] = []

    def open_ui(*args: str) -> Terminal:
        command = [sys.executable, "-m", "momentum.cli", "ui", *args]
        term = Terminal([*command, "--state-dir", str(stack.state_dir)], stack.env)
        opened.append(term)
        return term

    yield open_ui
    for term in opened:
        term.close()


def record_position(bootstrap: str, topic: str, key_text: str) -> tuple[int, int]:
    """Partition and offset of the first record whose key holds `key_text`."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"ui-test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions

        def find() -> tuple[int, int] | None:
            consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
            for message in consumer.consume(500, timeout=2):
                if message.error() is None and key_text.encode() in (message.key() or b""):
                    return message.partition(), message.offset()
            return None

        return wait_for(find, timeout=60)  # type: ignore[no-any-return]
    finally:
        consumer.close()


def test_admin_view_lists_the_stacks_topics(stack: Stack, terminal: Any) -> None:
    term = terminal()
    screen = term.wait_for_text("Topics", "inventory-commands", "order-commands.dlq")
    assert stack.bootstrap in screen
    assert "Partitions" in screen and "Lag" in screen


def test_consumer_view_decodes_a_public_record_through_the_registry(
    stack: Stack, shop: Any, terminal: Any
) -> None:
    sku = unique_sku("ui")
    shop.seed(sku, "12.50", 0)
    partition, offset = record_position(stack.bootstrap, PRODUCTS.name, sku)
    term = terminal(PRODUCTS.name, "--partition", f"{partition}:{offset}")
    # The Avro key as text and the value's fields by name: decoded, not bytes.
    term.wait_for_text(f"Records [{PRODUCTS.name}]", sku, f"'sku': '{sku}'", "'name': ")


def test_without_a_stack_it_says_so(tmp_path: Any, stack: Stack) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "momentum.cli", "ui", "--state-dir", str(tmp_path)],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"no Momentum stack is running from {tmp_path}" in result.stderr
