"""Log lines, correlation ids and the HTTP processes' metrics, without a broker."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core import observe
from core.http_observe import NO_ROUTE, observe_requests
from core.topics import ORDER_COMMANDS
from tests.support.gateway import FakeProducer, FakeReader, bearer, running_gateway

ORDER = {
    "items": [{"sku": "tee-m", "quantity": 2}],
    "payment": {"method": "card", "token": "tok_visa"},
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def record(msg: str = "order %s placed", *args: Any, **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord("momentum.test", logging.INFO, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


# -- log lines --------------------------------------------------------------------------------


def test_a_json_line_carries_the_message_the_current_ids_and_extras() -> None:
    with observe.bound(observe.Ids("c-1", "o-1", "cmd-1")):
        line = observe.JsonFormatter().format(record("order %s placed", "o-1", reason="x"))
    parsed = json.loads(line)
    assert "\n" not in line
    assert parsed["msg"] == "order o-1 placed"
    assert (parsed["level"], parsed["logger"]) == ("INFO", "momentum.test")
    assert (parsed["correlation_id"], parsed["order_id"], parsed["command_id"]) == (
        "c-1",
        "o-1",
        "cmd-1",
    )
    assert parsed["reason"] == "x"
    assert "color_message" not in json.loads(
        observe.JsonFormatter().format(record("started", color_message="\x1b[36mstarted"))
    )
    assert parsed["ts"].endswith("Z")


def test_a_json_line_without_ids_has_none_and_keeps_a_traceback_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        made = record("failed")
        made.exc_info = sys.exc_info()
    line = observe.JsonFormatter().format(made)
    parsed = json.loads(line)
    assert "\n" not in line
    assert "correlation_id" not in parsed
    assert "ValueError: boom" in parsed["exc"]


@pytest.mark.parametrize(("fmt", "json_lines"), [("json", True), ("text", False)])
def test_the_logging_config_follows_the_format(fmt: str, json_lines: bool) -> None:
    config = observe.logging_config("info", fmt)
    formatter = config["formatters"]["momentum"]
    assert ("()" in formatter) is json_lines
    assert config["root"]["level"] == "INFO"
    # uvicorn's loggers write through the root handler, so they follow the format too.
    assert config["loggers"]["uvicorn.access"] == {"handlers": [], "propagate": True}
    assert config["loggers"]["httpx"] == {"level": "WARNING"}  # no line per request


def test_the_worker_keeps_faust_text_lines_unless_json_is_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from core.settings import get_settings

    monkeypatch.setenv("MOMENTUM_LOG_FORMAT", "text")
    get_settings.cache_clear()
    try:
        assert observe.faust_logging_config() is None
        monkeypatch.setenv("MOMENTUM_LOG_FORMAT", "json")
        get_settings.cache_clear()
        config = observe.faust_logging_config()
        assert config is not None and config["merge"] is True
        assert config["handlers"]["default"]["formatter"] == "json"
    finally:
        get_settings.cache_clear()


# -- Kafka headers ----------------------------------------------------------------------------


def test_headers_are_read_from_pairs_or_a_mapping() -> None:
    assert observe.header([("a", b"1"), ("correlation.id", b"c")], "correlation.id") == "c"
    assert observe.header({"correlation.id": b"c"}, "correlation.id") == "c"
    assert observe.header(None, "correlation.id") is None
    assert observe.header([("correlation.id", None)], "correlation.id") is None


def test_outgoing_headers_carry_the_current_correlation_id_only_when_there_is_one() -> None:
    assert observe.outgoing_headers() is None
    with observe.bound(observe.Ids("c-7")):
        assert observe.outgoing_headers() == [("correlation.id", b"c-7")]
    assert observe.kept_headers([("correlation.id", b"c"), ("dlq.error", b"x")]) == [
        ("correlation.id", b"c")
    ]


# -- the gateway ------------------------------------------------------------------------------


class SeeingProducer(FakeProducer):
    """Records the correlation id current when each command is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.correlation_ids: list[str | None] = []

    async def send(self, topic: str, key: str, value: bytes) -> None:
        self.correlation_ids.append(observe.current().correlation_id)
        await super().send(topic, key, value)


async def test_a_command_is_sent_under_the_callers_correlation_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tests.support.gateway as support

    monkeypatch.setattr(support, "FakeProducer", SeeingProducer)
    async with running_gateway() as gw:
        headers = bearer("alice") | {"Idempotency-Key": "k1", "X-Correlation-ID": "caller-1"}
        given = await gw.client.post("/v1/orders", json=ORDER, headers=headers)
        headers = bearer("alice") | {"Idempotency-Key": "k2"}
        made = await gw.client.post("/v1/orders", json=ORDER, headers=headers)
        assert given.status_code == made.status_code == 202
        assert given.headers["X-Correlation-ID"] == "caller-1"
        new_id = made.headers["X-Correlation-ID"]
        assert new_id and new_id != "caller-1"
        assert isinstance(gw.producer, SeeingProducer)
        assert gw.producer.correlation_ids == ["caller-1", new_id]


async def test_the_gateway_counts_requests_by_route_template_and_commands_by_topic() -> None:
    async with running_gateway() as gw:
        for key in ("a", "b"):
            headers = bearer("alice") | {"Idempotency-Key": key}
            assert (await gw.client.post("/v1/orders", json=ORDER, headers=headers)).is_success
        await gw.client.get("/v1/orders/" + str(uuid.uuid4()), headers=bearer("alice"))
        await gw.client.get("/no/such/route")
        text = (await gw.client.get("/metrics")).text
    found = samples(text)
    route = (("method", "POST"), ("route", "/v1/orders"), ("status", "202"))
    assert found[("momentum_http_requests_total", route)] == 2
    one = (("method", "GET"), ("route", "/v1/orders/{order_id}"), ("status", "404"))
    assert found[("momentum_http_requests_total", one)] == 1
    unmatched = (("method", "GET"), ("route", NO_ROUTE), ("status", "404"))
    assert found[("momentum_http_requests_total", unmatched)] == 1
    timed = (("method", "POST"), ("route", "/v1/orders"))
    assert found[("momentum_http_request_seconds_count", timed)] == 2
    topic = (("topic", ORDER_COMMANDS.name),)
    assert found[("momentum_gateway_commands_total", topic)] == 2


async def test_rate_limit_refusals_are_counted_and_metrics_are_never_refused() -> None:
    tight = {"MOMENTUM_RATE_LIMIT_PER_SECOND": 0.001, "MOMENTUM_RATE_LIMIT_BURST": 1}
    async with running_gateway(FakeReader(), **tight) as gw:
        codes = [(await gw.client.get("/v1/rejections", headers=bearer())).status_code]
        codes.append((await gw.client.get("/v1/rejections", headers=bearer())).status_code)
        pages = [await gw.client.get("/metrics") for _ in range(3)]
    assert codes[1] == 429
    assert all(page.status_code == 200 for page in pages)
    found = samples(pages[-1].text)
    assert found[("momentum_gateway_refused_total", (("reason", "rate_limited"),))] == 1


def test_any_fastapi_app_gets_request_metrics_by_template() -> None:
    app = FastAPI()

    @app.get("/v1/payments/{order_id}")
    def payment(order_id: str) -> dict[str, str]:
        return {"order_id": order_id}

    observe_requests(app)
    with TestClient(app) as client:
        for order_id in ("o-1", "o-2", "o-3"):
            assert client.get(f"/v1/payments/{order_id}").status_code == 200
        found = samples(client.get("/metrics").text)
    labels = (("method", "GET"), ("route", "/v1/payments/{order_id}"), ("status", "200"))
    assert found[("momentum_http_requests_total", labels)] == 3
    # No correlation here: only the gateway gives requests their id.
    assert observe.current() == observe.NO_IDS


@pytest.fixture
def root_logging() -> Any:
    """The root logger's handlers and level, restored after a test that reconfigures it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_a_gateway_told_json_writes_json_lines_however_uvicorn_set_up_logging(
    root_logging: logging.Logger,
) -> None:
    async with running_gateway(MOMENTUM_LOG_FORMAT="json"):
        formatters = [h.formatter for h in root_logging.handlers]
    assert any(isinstance(f, observe.JsonFormatter) for f in formatters)
