"""Tests for the simulated card provider, mostly against its ASGI app in process."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from momentum.provider import create_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(slow_delay=0.0))
    async with httpx.AsyncClient(transport=transport, base_url="http://provider") as http:
        yield http


async def authorize(
    client: httpx.AsyncClient,
    order_id: str,
    token: str = "tok_ok",
    *,
    amount: str = "12.34",
    key: str | None = "",
) -> httpx.Response:
    """POST an authorization; the key defaults to the order id, None leaves it out."""
    headers = {} if key is None else {"Idempotency-Key": key or order_id}
    body = {"order_id": order_id, "amount": amount, "currency": "EUR", "token": token}
    return await client.post("/v1/authorizations", json=body, headers=headers)


async def counts(client: httpx.AsyncClient, order_id: str) -> dict[str, int]:
    orders: dict[str, dict[str, int]] = (await client.get("/v1/ledger")).json()["orders"]
    return orders[order_id]


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("token", "status", "reason"),
    [
        ("tok_ok", "AUTHORIZED", None),
        ("tok_slow", "AUTHORIZED", None),
        ("tok_decline", "DECLINED", "card_declined"),
        ("tok_never_heard_of", "DECLINED", "unknown_token"),
    ],
)
async def test_tokens_decide_the_answer(
    client: httpx.AsyncClient, token: str, status: str, reason: str | None
) -> None:
    response = await authorize(client, "o-1", token)
    assert response.status_code == 200
    body = response.json()
    assert body["payment_id"].startswith("pay_")
    assert body == {
        "payment_id": body["payment_id"],
        "order_id": "o-1",
        "status": status,
        "amount": "12.34",
        "currency": "EUR",
        "reason": reason,
    }


@pytest.mark.parametrize("token", ["tok_ok", "tok_decline"])
async def test_same_key_twice_is_one_authorization(client: httpx.AsyncClient, token: str) -> None:
    first = await authorize(client, "o-1", token)
    second = await authorize(client, "o-1", token)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert (await counts(client, "o-1"))["authorize_calls"] == 2
    assert (await counts(client, "o-1"))["authorizations_created"] == 1
    payments = (await client.get("/v1/ledger")).json()["payments"]
    assert len(payments) == 1
    assert [entry["operation"] for entry in payments[0]["history"]] == ["authorize"]


async def test_missing_idempotency_key_is_400_and_records_nothing(
    client: httpx.AsyncClient,
) -> None:
    response = await authorize(client, "o-1", key=None)
    assert response.status_code == 400
    assert response.json()["code"] == "missing_idempotency_key"
    ledger = (await client.get("/v1/ledger")).json()
    assert ledger["payments"] == [] and ledger["orders"] == {}


@pytest.mark.parametrize(
    "change",
    [
        {"amount": "12.3"},
        {"amount": "-1.00"},
        {"amount": 12.34},
        {"currency": "eur"},
        {"token": ""},
        {"surprise": True},
    ],
)
async def test_malformed_authorization_is_422(
    client: httpx.AsyncClient, change: dict[str, Any]
) -> None:
    body = {"order_id": "o-1", "amount": "12.34", "currency": "EUR", "token": "tok_ok"} | change
    response = await client.post(
        "/v1/authorizations", json=body, headers={"Idempotency-Key": "o-1"}
    )
    assert response.status_code == 422
    assert (await client.get("/v1/ledger")).json()["payments"] == []


async def test_key_reused_with_other_parameters_is_409(client: httpx.AsyncClient) -> None:
    assert (await authorize(client, "o-1")).status_code == 200
    response = await authorize(client, "o-1", amount="99.00")
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert (await counts(client, "o-1"))["authorizations_created"] == 1


async def test_second_key_for_one_order_is_409(client: httpx.AsyncClient) -> None:
    assert (await authorize(client, "o-1")).status_code == 200
    response = await authorize(client, "o-1", key="another-key")
    assert response.status_code == 409
    assert response.json()["code"] == "order_already_authorized"
    assert (await counts(client, "o-1"))["authorizations_created"] == 1


async def test_tok_flaky_answers_503_twice_then_approves(client: httpx.AsyncClient) -> None:
    codes = [(await authorize(client, "o-1", "tok_flaky")).status_code for _ in range(4)]
    assert codes == [503, 503, 200, 200]
    assert await counts(client, "o-1") == {
        "authorize_calls": 4,
        "authorizations_created": 1,
        "capture_calls": 0,
        "void_calls": 0,
        "refund_calls": 0,
        "unavailable_responses": 2,
    }


async def test_tok_flaky_counts_per_idempotency_key(client: httpx.AsyncClient) -> None:
    assert (await authorize(client, "o-1", "tok_flaky")).status_code == 503
    assert (await authorize(client, "o-2", "tok_flaky")).status_code == 503
    assert (await authorize(client, "o-1", "tok_flaky")).status_code == 503
    assert (await authorize(client, "o-1", "tok_flaky")).status_code == 200
    assert (await authorize(client, "o-2", "tok_flaky")).status_code == 503


async def test_tok_slow_records_before_answering() -> None:
    transport = httpx.ASGITransport(app=create_app(slow_delay=60.0))
    async with httpx.AsyncClient(transport=transport, base_url="http://provider") as http:
        body = {"order_id": "o-1", "amount": "5.00", "currency": "EUR", "token": "tok_slow"}
        headers = {"Idempotency-Key": "o-1"}
        first = asyncio.create_task(http.post("/v1/authorizations", json=body, headers=headers))
        try:
            # Wait until the first call is recorded; it is still far from answering.
            for _ in range(1000):
                if (await http.get("/v1/payments/o-1")).status_code == 200:
                    break
                await asyncio.sleep(0.01)
            assert (await http.get("/v1/payments/o-1")).status_code == 200
            assert not first.done()
            retry = await http.post("/v1/authorizations", json=body, headers=headers)
            assert retry.status_code == 200
            assert retry.json()["status"] == "AUTHORIZED"
            payment = (await http.get("/v1/payments/o-1")).json()
            assert retry.json()["payment_id"] == payment["payment_id"]
            assert payment["counts"]["authorize_calls"] == 2
            assert payment["counts"]["authorizations_created"] == 1
        finally:
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first


# Each step: operation, expected HTTP status, payment status in the answer.
TRANSITIONS = {
    "capture then refund, each twice": (
        "tok_ok",
        [
            ("capture", 200, "CAPTURED"),
            ("capture", 200, "CAPTURED"),
            ("void", 409, "CAPTURED"),
            ("refund", 200, "REFUNDED"),
            ("refund", 200, "REFUNDED"),
            ("capture", 200, "CAPTURED"),  # a repeat gets the first answer again
        ],
    ),
    "void twice, then nothing else": (
        "tok_ok",
        [
            ("void", 200, "VOIDED"),
            ("void", 200, "VOIDED"),
            ("capture", 409, "VOIDED"),
            ("refund", 409, "VOIDED"),
        ],
    ),
    "refund before capture": ("tok_ok", [("refund", 409, "AUTHORIZED")]),
    "declined cannot move": (
        "tok_decline",
        [("capture", 409, "DECLINED"), ("void", 409, "DECLINED"), ("refund", 409, "DECLINED")],
    ),
}


@pytest.mark.parametrize("case", TRANSITIONS, ids=list(TRANSITIONS))
async def test_transitions(client: httpx.AsyncClient, case: str) -> None:
    token, steps = TRANSITIONS[case]
    payment_id = (await authorize(client, "o-1", token)).json()["payment_id"]
    for operation, code, status in steps:
        response = await client.post(f"/v1/payments/o-1/{operation}")
        assert (operation, response.status_code) == (operation, code)
        body = response.json()
        assert body["status"] == status
        assert body["payment_id"] == payment_id
        if code == 409:
            assert body["code"] == "invalid_transition"
            assert operation in body["detail"]


async def test_rejections_say_what_to_do_instead(client: httpx.AsyncClient) -> None:
    await authorize(client, "o-1")
    assert "void it instead" in (await client.post("/v1/payments/o-1/refund")).json()["detail"]
    await client.post("/v1/payments/o-1/capture")
    assert "refund it instead" in (await client.post("/v1/payments/o-1/void")).json()["detail"]


async def test_history_records_each_applied_operation_once(client: httpx.AsyncClient) -> None:
    await authorize(client, "o-1")
    for operation in ["capture", "capture", "refund", "refund"]:
        await client.post(f"/v1/payments/o-1/{operation}")
    payment = (await client.get("/v1/payments/o-1")).json()
    assert payment["status"] == "REFUNDED"
    history = payment["history"]
    assert [(h["operation"], h["status"]) for h in history] == [
        ("authorize", "AUTHORIZED"),
        ("capture", "CAPTURED"),
        ("refund", "REFUNDED"),
    ]
    assert all(h["at"].endswith("+00:00") for h in history)
    assert payment["counts"]["capture_calls"] == 2
    assert payment["counts"]["refund_calls"] == 2


@pytest.mark.parametrize("operation", ["capture", "void", "refund"])
async def test_operation_on_unknown_order_is_404(client: httpx.AsyncClient, operation: str) -> None:
    response = await client.post(f"/v1/payments/nobody/{operation}")
    assert response.status_code == 404
    assert response.json()["code"] == "payment_not_found"
    assert (await counts(client, "nobody"))[f"{operation}_calls"] == 1


async def test_unknown_payment_read_is_404_with_counts(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/payments/nobody")
    assert response.status_code == 404
    assert response.json()["counts"]["authorize_calls"] == 0


async def test_fault_switch_makes_every_operation_unavailable(client: httpx.AsyncClient) -> None:
    await authorize(client, "o-1")
    switched = await client.post("/v1/faults", json={"unavailable": True})
    assert switched.json() == {"unavailable": True}

    assert (await authorize(client, "o-2")).status_code == 503
    assert (await authorize(client, "o-1")).status_code == 503  # even a replay
    for operation in ["capture", "void", "refund"]:
        assert (await client.post(f"/v1/payments/o-1/{operation}")).status_code == 503
    # Reads and the switch itself stay reachable.
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/v1/faults")).json() == {"unavailable": True}
    ledger = (await client.get("/v1/ledger")).json()
    assert ledger["faults"] == {"unavailable": True}
    assert ledger["orders"]["o-2"]["unavailable_responses"] == 1
    assert ledger["orders"]["o-2"]["authorizations_created"] == 0
    assert ledger["orders"]["o-1"]["unavailable_responses"] == 4

    switched = await client.post("/v1/faults", json={"unavailable": False})
    assert switched.json() == {"unavailable": False}
    assert (await authorize(client, "o-2")).json()["status"] == "AUTHORIZED"
    assert (await client.post("/v1/payments/o-1/capture")).json()["status"] == "CAPTURED"


async def test_ledger_shape(client: httpx.AsyncClient) -> None:
    await authorize(client, "o-1")
    await authorize(client, "o-2", "tok_decline")
    await authorize(client, "o-3", "tok_flaky")
    await client.post("/v1/payments/o-1/capture")
    ledger = (await client.get("/v1/ledger")).json()

    assert set(ledger) == {"payments", "orders", "totals", "faults"}
    assert {p["order_id"]: p["status"] for p in ledger["payments"]} == {
        "o-1": "CAPTURED",
        "o-2": "DECLINED",
    }
    payment = ledger["payments"][0]
    assert set(payment) == {
        "payment_id",
        "order_id",
        "status",
        "amount",
        "currency",
        "reason",
        "created_at",
        "history",
        "counts",
    }
    assert payment["counts"] == ledger["orders"]["o-1"]
    assert set(ledger["orders"]) == {"o-1", "o-2", "o-3"}
    assert ledger["totals"] == {
        "authorize_calls": 3,
        "authorizations_created": 2,
        "capture_calls": 1,
        "void_calls": 0,
        "refund_calls": 0,
        "unavailable_responses": 1,
    }


def test_slow_delay_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOMENTUM_PROVIDER_SLOW_DELAY", "0.25")
    assert create_app().state.ledger.slow_delay == 0.25
    assert create_app(slow_delay=1.0).state.ledger.slow_delay == 1.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_command_line_serves_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "provider.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "momentum.provider", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        body = {"order_id": "o-1", "amount": "1.00", "currency": "EUR", "token": "tok_ok"}
        headers = {"Idempotency-Key": "o-1"}
        answer = httpx.post(f"{url}/v1/authorizations", json=body, headers=headers)
        assert answer.json()["status"] == "AUTHORIZED"
        process.terminate()
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
