"""The sink service's pure parts: dead-letter headers, backoff, consumer settings, metrics."""

from __future__ import annotations

from itertools import islice

from sinks.api import render_metrics
from sinks.batch import DeadLetter, Source
from sinks.config import parse_connector
from sinks.service import backoff_delays, consumer_config, dead_letter_headers


def connector(**extra: str) -> dict[str, object]:
    config = {
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "topics": "orders",
        "table.name.format": "orders",
        "insert.mode": "upsert",
        "pk.mode": "record_key",
        "pk.fields": "order_id",
        **extra,
    }
    return {"name": "momentum-orders-sink", "config": config}


def test_dead_letter_headers_are_connects_context_headers() -> None:
    letter = DeadLetter(
        Source("orders", 2, 249, b"k", b"garbage"),
        "VALUE_CONVERTER",
        "schemas.codec.DecodeError",
        "bad-magic-byte: first byte 0x67, expected 0x00",
    )
    headers = dict(dead_letter_headers(letter, "momentum-orders-sink"))
    assert headers == {
        "__connect.errors.topic": b"orders",
        "__connect.errors.partition": b"2",
        "__connect.errors.offset": b"249",
        "__connect.errors.connector.name": b"momentum-orders-sink",
        "__connect.errors.task.id": b"0",
        "__connect.errors.stage": b"VALUE_CONVERTER",
        "__connect.errors.class.name": b"io.confluent.connect.avro.AvroConverter",
        "__connect.errors.exception.class.name": b"schemas.codec.DecodeError",
        "__connect.errors.exception.message": b"bad-magic-byte: first byte 0x67, expected 0x00",
    }


def test_backoff_doubles_from_a_fifth_of_a_second_up_to_five() -> None:
    assert list(islice(backoff_delays(), 7)) == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_consumer_joins_connects_group_and_reads_committed() -> None:
    config = consumer_config("b:9092", parse_connector(connector()))
    assert config["group.id"] == "connect-momentum-orders-sink"
    assert config["enable.auto.commit"] is False
    assert config["auto.offset.reset"] == "earliest"
    assert config["isolation.level"] == "read_committed"
    assert (config["session.timeout.ms"], config["heartbeat.interval.ms"]) == (10000, 1000)


def test_consumer_overrides_win() -> None:
    document = connector(**{"consumer.override.auto.offset.reset": "latest"})
    assert consumer_config("b:9092", parse_connector(document))["auto.offset.reset"] == "latest"


def test_metrics_render_the_status_figures() -> None:
    status = {
        "connectors": {"momentum-orders-sink": {"retries": 3, "state": "waiting"}},
        "lag": {"orders": 12},
        "written": {"orders": 500},
        "dead_letters": {"orders": 1},
        "db_available": False,
    }
    text = render_metrics(status)
    assert 'momentum_sink_lag_records{topic="orders"} 12\n' in text
    assert 'momentum_sink_records_written_total{topic="orders"} 500\n' in text
    assert 'momentum_sink_dead_letters_total{topic="orders"} 1\n' in text
    assert 'momentum_sink_retries_total{connector="momentum-orders-sink"} 3\n' in text
    assert 'momentum_sink_connector_running{connector="momentum-orders-sink"} 0\n' in text
    assert text.endswith("momentum_sink_db_available 0\n")
