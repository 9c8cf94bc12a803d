"""`momentum ui`'s kaskade command lines and `momentum env`'s export lines, without a stack."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from momentum.cli import export_lines
from momentum.stack import run_env
from momentum.ui import UiError, deserializers, kaskade_args, source_topic


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("orders", ("registry", "registry")),  # public: Avro keys and values
        ("sales-per-minute", ("registry", "registry")),
        ("inventory-commands", ("string", "registry")),  # internal: UTF-8 keys
        ("order-commands.dlq", ("string", "registry")),  # a letter keeps its source's bytes
        ("orders.dlq", ("registry", "registry")),
        ("orders.connect-dlq", ("registry", "registry")),
    ],
)
def test_each_topic_is_decoded_as_it_was_written(topic: str, expected: tuple[str, str]) -> None:
    assert deserializers(topic) == expected


def test_dead_letter_topics_name_their_source() -> None:
    assert source_topic("payment-commands.dlq") == "payment-commands"
    assert source_topic("orders.connect-dlq") == "orders"
    assert source_topic("orders") == "orders"


def test_an_unknown_topic_is_refused_with_the_known_ones() -> None:
    with pytest.raises(UiError, match="unknown topic 'nope'.*order-commands"):
        deserializers("nope")


def test_admin_view_needs_only_the_bootstrap() -> None:
    assert kaskade_args("127.0.0.1:9", "http://r", None) == ["admin", "-b", "127.0.0.1:9"]


def test_consumer_view_reads_from_the_start_through_the_registry() -> None:
    args = kaskade_args("127.0.0.1:9", "http://r:1", "inventory-commands")
    assert args[:5] == ["consumer", "-b", "127.0.0.1:9", "-t", "inventory-commands"]
    assert "--earliest" in args
    assert args[args.index("-k") + 1] == "string"
    assert args[args.index("-v") + 1] == "registry"
    assert args[args.index("--registry") + 1] == "url=http://r:1"


def test_one_partition_replaces_earliest() -> None:
    args = kaskade_args("b:1", "http://r", "orders", partition="2:15")
    assert "--earliest" not in args
    assert args[args.index("--partition") + 1] == "2:15"


def test_run_env_keeps_the_stacks_settings_but_not_secrets_or_per_process_ones() -> None:
    env = run_env(
        {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "MOMENTUM_JWT_SECRET": "s" * 40},
        {
            "MOMENTUM_FETCH_MAX_WAIT_MS": "50",
            "MOMENTUM_DATA_DIR": "/x",
            "MOMENTUM_STATE_DIR": "/y",
            "HOME": "/root",
        },
    )
    assert env == {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "MOMENTUM_FETCH_MAX_WAIT_MS": "50"}


def test_export_lines_read_back_unchanged_by_a_shell() -> None:
    env = {"DATABASE_URL": "postgresql://u@h:1/db", "ODD": "a b'c$d"}
    script = "\n".join([*export_lines(env), 'printf "%s\\n" "$DATABASE_URL" "$ODD"'])
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["postgresql://u@h:1/db", "a b'c$d"]
    assert export_lines({"A": "1"}) == [f"export A={shlex.quote('1')}"]


def test_next_steps_after_the_demo_name_the_stack_and_what_to_try() -> None:
    from momentum.demo import next_steps

    endpoints = {
        "gateway_url": "http://127.0.0.1:8001",
        "database_url": "postgresql://postgres@127.0.0.1:5999/momentum",
    }
    text = "\n".join(next_steps(endpoints, "/srv/.momentum"))
    assert "momentum token --sub me --role customer --state-dir /srv/.momentum" in text
    assert "curl -s -X POST http://127.0.0.1:8001/v1/orders" in text
    assert "psql postgresql://postgres@127.0.0.1:5999/momentum" in text
    assert "momentum ui --state-dir /srv/.momentum" in text
    assert "/srv/.momentum/run/logs/" in text
