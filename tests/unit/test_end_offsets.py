"""End offsets on a broker that batches: the correction, Faust's highwaters, the registry.

A private Tansu broker (the embedded stack's, started in ~0.1 s) gets 9 records in
three batches of 5, 1 and 3. Its ListOffsets answer is 7 (the last batch's base + 1);
a fetch response's high watermark is 9, and so must be every end Momentum uses.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP

from core import end_offsets
from core.recovery import FetchTrackingConsumer
from core.settings import Settings
from core.tuning import ConsumerTuning, TunedConsumerThread, tuned_app
from momentum.registry_store import KafkaStore, config_key, schema_key
from tests.private_broker import LISTED_END, TRUE_END, private_broker, produce_in_batches

# -- pure parts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        ({"a": 0}, {}),
        ({"a": 1}, {"a": 0}),
        ({"a": 7, "b": 0, "c": 3}, {"a": 6, "c": 2}),
    ],
)
def test_probe_positions_are_last_batch_bases(
    listed: dict[str, int], expected: dict[str, int]
) -> None:
    assert end_offsets.probe_positions(listed) == expected


@pytest.mark.parametrize(
    ("listed", "fetched", "expected"),
    [
        ({"a": 7}, {"a": 9}, {"a": 9}),  # Tansu: the fetch high watermark is right
        ({"a": 9}, {"a": 9}, {"a": 9}),  # Kafka: both agree
        ({"a": 9}, {"a": 4}, {"a": 9}),  # a stale watermark never lowers the end
        ({"a": 7, "b": 0}, {"a": None}, {"a": 7, "b": 0}),  # no fetch response yet
    ],
)
def test_the_larger_end_wins(
    listed: dict[str, int], fetched: dict[str, int | None], expected: dict[str, int]
) -> None:
    assert end_offsets.corrected(listed, fetched) == expected


def test_the_setting_is_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOMENTUM_END_OFFSETS_FROM_FETCH", raising=False)
    assert Settings().end_offsets_from_fetch is False
    monkeypatch.setenv("MOMENTUM_END_OFFSETS_FROM_FETCH", "true")
    assert Settings().end_offsets_from_fetch is True


def test_without_tuning_the_consumer_is_fausts_tracking_its_fetches() -> None:
    # Only what the recovery needs (core.recovery); its thread keeps Faust's settings.
    app = tuned_app(ConsumerTuning(), f"stock-{uuid.uuid4().hex[:6]}", store="memory://")
    assert app.transport.Consumer.__mro__[1:3] == (FetchTrackingConsumer, aiokafka_driver.Consumer)
    assert app.consumer._thread.tuning == ConsumerTuning()  # type: ignore[attr-defined]


# -- against a broker that batches ------------------------------------------------------------


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with private_broker() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="module")
def batched_topic(broker: str) -> str:
    topic = f"batched-{uuid.uuid4().hex[:8]}"
    produce_in_batches(broker, topic, [(b"k%d" % i, b"v%d" % i) for i in range(TRUE_END)])
    return topic


def test_listoffsets_falls_short_and_the_helper_does_not(broker: str, batched_topic: str) -> None:
    config = {"bootstrap.servers": broker}
    stock = end_offsets.end_offsets(config, [(batched_topic, 0)], from_fetch=False)
    corrected = end_offsets.end_offsets(config, [(batched_topic, 0)], from_fetch=True)
    assert stock == {(batched_topic, 0): LISTED_END}  # the broker batches as the bug needs
    assert corrected == {(batched_topic, 0): TRUE_END}


async def test_aiokafka_helper_corrects_listed_ends(broker: str, batched_topic: str) -> None:
    tp = TP(batched_topic, 0)
    ends = await end_offsets.aiokafka_end_offsets({tp: LISTED_END}, bootstrap_servers=broker)
    assert ends == {tp: TRUE_END}


@pytest.fixture
async def empty_topic(broker: str) -> str:
    topic = f"empty-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)
    return topic


async def faust_highwaters(tuning: ConsumerTuning, broker: str, *tps: TP) -> tuple[Any, dict]:
    """The highwaters Faust's table recovery would get, from a consumer of a tuned app."""
    app = tuned_app(
        tuning,
        f"end-offsets-{uuid.uuid4().hex[:6]}",
        broker=f"kafka://{broker}",
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="end-offsets-"),
        web_enabled=False,
    )
    app.finalize()
    consumer = app.consumer
    await consumer.start()
    try:
        return consumer._thread, dict(await consumer.highwaters(*tps))
    finally:
        await consumer.stop()


async def test_faust_highwaters_are_true_ends_with_the_setting(
    broker: str, batched_topic: str, empty_topic: str
) -> None:
    full, empty = TP(batched_topic, 0), TP(empty_topic, 0)
    thread, highwaters = await faust_highwaters(
        ConsumerTuning(end_offsets_from_fetch=True), broker, full, empty
    )
    assert isinstance(thread, TunedConsumerThread)
    assert highwaters == {full: TRUE_END, empty: 0}


@pytest.mark.parametrize(
    "tuning",
    [ConsumerTuning(), ConsumerTuning(fetch_max_wait_ms=50)],
    ids=["stock-app", "tuned-fetch-wait-only"],
)
async def test_without_the_setting_faust_keeps_its_stock_highwaters(
    broker: str, batched_topic: str, tuning: ConsumerTuning
) -> None:
    tp = TP(batched_topic, 0)
    _, highwaters = await faust_highwaters(tuning, broker, tp)
    assert highwaters == {tp: LISTED_END}  # ListOffsets, as Faust has it


# -- the registry stand-in replays `_schemas` to its end -------------------------------------


def registry_records(count: int) -> list[tuple[bytes, bytes]]:
    """`count` records of the registry's log: a global level, then one subject each."""
    schema = json.dumps({"type": "record", "name": "R", "fields": []})
    records = [(config_key(None), {"compatibilityLevel": "NONE"})]
    for i in range(1, count):
        key = schema_key(f"subject-{i}", 1)
        records.append((key, {"subject": f"subject-{i}", "version": 1, "id": 1, "schema": schema}))
    return [(json.dumps(k).encode(), json.dumps(v).encode()) for k, v in records]


def loaded_subjects(bootstrap: str, topic: str, from_fetch: bool) -> list[str]:
    store = KafkaStore(bootstrap, topic=topic, timeout=10, end_offsets_from_fetch=from_fetch)
    try:
        store.start()
        deadline = time.monotonic() + 30
        while not store.ready:
            assert time.monotonic() < deadline, store.load_error
            time.sleep(0.05)
        return store.subjects()
    finally:
        store.close()


def test_registry_replays_its_topic_to_the_true_end(broker: str) -> None:
    topic = f"_schemas-{uuid.uuid4().hex[:8]}"
    produce_in_batches(broker, topic, registry_records(TRUE_END))
    everything = [f"subject-{i}" for i in range(1, TRUE_END)]

    assert sorted(loaded_subjects(broker, topic, from_fetch=True)) == sorted(everything)
    # Stock reading stops at ListOffsets' end: the last batch's tail is missing.
    assert sorted(loaded_subjects(broker, topic, from_fetch=False)) == sorted(
        everything[: LISTED_END - 1]
    )
