"""Tests for the card provider client against the simulator running for real.

The simulator runs under uvicorn in a subprocess on a free loopback port, with
tok_slow answering after 1 s, longer than the 0.3 s timeout of the clients
that test it. Assertions are on outcomes and ledger counts, never on timings.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from streams.payments.client import (
    BreakerState,
    CardProviderClient,
    OperationOutcome,
    PaymentStatus,
    ProviderRequestError,
    format_amount,
)

ROOT = Path(__file__).resolve().parents[2]
SLOW_DELAY = 1.0
AMOUNT = Decimal("12.30")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def provider_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("provider") / "provider.log"
    command = [
        sys.executable,
        "-m",
        "momentum.provider",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, "--slow-delay", str(SLOW_DELAY)],
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
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
async def operator(provider_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Reads the ledger and flips the fault switch, as a test or an operator would."""
    async with httpx.AsyncClient(base_url=provider_url) as http:
        yield http


def make_client(
    url: str,
    *,
    timeout: float = 5.0,
    attempts: int = 4,
    breaker_fail_max: int = 5,
    breaker_reset_timeout: float = 60.0,
) -> CardProviderClient:
    # A generous timeout unless a test is about timeouts: the machine is shared.
    return CardProviderClient(
        url,
        timeout=timeout,
        attempts=attempts,
        backoff_initial=0.01,
        backoff_max=0.1,
        breaker_fail_max=breaker_fail_max,
        breaker_reset_timeout=breaker_reset_timeout,
    )


def new_order() -> str:
    return f"order-{uuid.uuid4().hex[:12]}"


async def counts(operator: httpx.AsyncClient, order_id: str) -> dict[str, int]:
    """The ledger's call counts for one order; all zero if it never heard of it."""
    response = await operator.get(f"/v1/payments/{order_id}")
    result: dict[str, int] = response.json()["counts"]
    return result


async def payment(operator: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await operator.get(f"/v1/payments/{order_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def set_unavailable(operator: httpx.AsyncClient, unavailable: bool) -> None:
    response = await operator.post("/v1/faults", json={"unavailable": unavailable})
    assert response.json() == {"unavailable": unavailable}


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("12.3"), "12.30"),
        (Decimal("12"), "12.00"),
        (Decimal("0.01"), "0.01"),
        (Decimal("1E+1"), "10.00"),
        (Decimal("12.340"), "12.34"),
    ],
)
def test_amounts_are_sent_with_two_decimals(amount: Decimal, text: str) -> None:
    assert format_amount(amount) == text


@pytest.mark.parametrize("amount", ["12.345", "0", "-1.00", "NaN", "Infinity"])
def test_amounts_that_cannot_be_sent_are_refused(amount: str) -> None:
    with pytest.raises(ValueError):
        format_amount(Decimal(amount))


async def test_tok_ok_is_approved(provider_url: str, operator: httpx.AsyncClient) -> None:
    order_id = new_order()
    async with make_client(provider_url) as client:
        result = await client.authorize(order_id, AMOUNT, "EUR", "tok_ok")
    assert result.approved
    assert result.status is PaymentStatus.AUTHORIZED
    recorded = await payment(operator, order_id)
    assert result.payment_id == recorded["payment_id"]
    assert (recorded["amount"], recorded["currency"]) == ("12.30", "EUR")
    assert recorded["counts"]["authorizations_created"] == 1


async def test_tok_decline_is_declined_and_not_retried(
    provider_url: str, operator: httpx.AsyncClient
) -> None:
    order_id = new_order()
    async with make_client(provider_url) as client:
        result = await client.authorize(order_id, AMOUNT, "EUR", "tok_decline")
    assert result.status is PaymentStatus.DECLINED
    assert result.detail == "card_declined"
    assert result.attempts == 1
    assert (await counts(operator, order_id))["authorize_calls"] == 1


async def test_tok_flaky_is_approved_after_retries_with_one_authorization(
    provider_url: str, operator: httpx.AsyncClient
) -> None:
    order_id = new_order()
    async with make_client(provider_url) as client:
        result = await client.authorize(order_id, AMOUNT, "EUR", "tok_flaky")
        assert client.breaker_state is BreakerState.CLOSED
    assert result.status is PaymentStatus.AUTHORIZED
    assert result.attempts == 3
    ledger_counts = await counts(operator, order_id)
    assert ledger_counts["authorize_calls"] == 3
    assert ledger_counts["unavailable_responses"] == 2
    assert ledger_counts["authorizations_created"] == 1


async def test_exhausted_retries_are_unavailable_and_a_later_call_is_safe(
    provider_url: str, operator: httpx.AsyncClient
) -> None:
    order_id = new_order()
    async with make_client(provider_url, attempts=2) as client:
        first = await client.authorize(order_id, AMOUNT, "EUR", "tok_flaky")
        assert first.status is PaymentStatus.UNAVAILABLE
        assert first.attempts == 2
        assert "HTTP 503" in (first.detail or "")
        assert (await counts(operator, order_id))["authorizations_created"] == 0

        # A redelivered command calls again with the same key.
        second = await client.authorize(order_id, AMOUNT, "EUR", "tok_flaky")
    assert second.status is PaymentStatus.AUTHORIZED
    ledger_counts = await counts(operator, order_id)
    assert ledger_counts["authorize_calls"] == 3
    assert ledger_counts["authorizations_created"] == 1


async def test_tok_slow_is_retried_with_the_same_key_and_never_authorized_twice(
    provider_url: str, operator: httpx.AsyncClient
) -> None:
    order_id = new_order()
    async with make_client(provider_url, timeout=0.3) as client:
        result = await client.authorize(order_id, AMOUNT, "EUR", "tok_slow")
    ledger_counts = await counts(operator, order_id)
    # The first attempt cannot answer within 0.3 s, so the client retried.
    assert result.attempts >= 2
    assert ledger_counts["authorize_calls"] <= result.attempts
    assert ledger_counts["authorizations_created"] <= 1
    assert result.status in {PaymentStatus.AUTHORIZED, PaymentStatus.UNAVAILABLE}
    if result.status is PaymentStatus.AUTHORIZED:
        # Approved from the recorded result of the first call, by a retry.
        assert ledger_counts["authorize_calls"] >= 2
        assert ledger_counts["authorizations_created"] == 1
        assert result.payment_id == (await payment(operator, order_id))["payment_id"]


async def test_outage_is_unavailable_and_opens_the_breaker(
    provider_url: str, operator: httpx.AsyncClient
) -> None:
    first_order, later_order = new_order(), new_order()
    await set_unavailable(operator, True)
    try:
        async with make_client(provider_url, attempts=4, breaker_fail_max=3) as client:
            first = await client.authorize(first_order, AMOUNT, "EUR", "tok_ok")
            assert first.status is PaymentStatus.UNAVAILABLE
            # The third consecutive failure opened the breaker, ending the retries.
            assert first.attempts == 3
            assert client.breaker_state is BreakerState.OPEN

            later = await client.authorize(later_order, AMOUNT, "EUR", "tok_ok")
            capture = await client.capture(later_order)
            assert client.breaker_state is BreakerState.OPEN
    finally:
        await set_unavailable(operator, False)

    assert later.status is PaymentStatus.UNAVAILABLE
    assert later.attempts == 0
    assert "circuit breaker open" in (later.detail or "")
    assert capture.outcome is OperationOutcome.UNAVAILABLE
    assert capture.status is PaymentStatus.UNAVAILABLE
    assert capture.attempts == 0
    assert (await counts(operator, first_order))["authorize_calls"] == 3
    # Failing fast means the provider never heard of the later order.
    assert await counts(operator, later_order) == dict.fromkeys(
        [
            "authorize_calls",
            "authorizations_created",
            "capture_calls",
            "void_calls",
            "refund_calls",
            "unavailable_responses",
        ],
        0,
    )


async def test_breaker_lets_a_trial_through_after_the_reset_timeout(
    provider_url: str, operator: httpx.AsyncClient
) -> None:
    reset_timeout = 0.5
    await set_unavailable(operator, True)
    try:
        async with make_client(
            provider_url, attempts=1, breaker_fail_max=1, breaker_reset_timeout=reset_timeout
        ) as client:
            failed = await client.authorize(new_order(), AMOUNT, "EUR", "tok_ok")
            assert failed.status is PaymentStatus.UNAVAILABLE
            states = [client.breaker_state]
            await set_unavailable(operator, False)

            # Only ever waits longer than the reset timeout, whatever the load.
            await asyncio.sleep(reset_timeout * 2)
            result = await client.authorize(new_order(), AMOUNT, "EUR", "tok_ok")
            assert result.status is PaymentStatus.AUTHORIZED
            states.append(client.breaker_state)
            assert states == [BreakerState.OPEN, BreakerState.CLOSED]
    finally:
        await set_unavailable(operator, False)


async def test_connection_refused_is_unavailable() -> None:
    async with make_client(f"http://127.0.0.1:{free_port()}", attempts=2) as client:
        result = await client.authorize(new_order(), AMOUNT, "EUR", "tok_ok")
    assert result.status is PaymentStatus.UNAVAILABLE
    assert result.attempts == 2
    assert "Cannot connect" in (result.detail or "")


async def test_capture_then_refund_are_idempotent(
    provider_url: str, operator: httpx.AsyncClient
) -> None:
    order_id = new_order()
    async with make_client(provider_url) as client:
        authorized = await client.authorize(order_id, AMOUNT, "EUR", "tok_ok")
        captures = [await client.capture(order_id) for _ in range(2)]
        refunds = [await client.refund(order_id) for _ in range(2)]
    expected = [PaymentStatus.CAPTURED] * 2 + [PaymentStatus.REFUNDED] * 2
    assert [(r.outcome, r.status, r.payment_id) for r in captures + refunds] == [
        (OperationOutcome.DONE, status, authorized.payment_id) for status in expected
    ]
    recorded = await payment(operator, order_id)
    assert [h["operation"] for h in recorded["history"]] == ["authorize", "capture", "refund"]
    assert recorded["counts"]["capture_calls"] == 2
    assert recorded["counts"]["refund_calls"] == 2


async def test_void_is_idempotent_and_blocks_capture(
    provider_url: str, operator: httpx.AsyncClient
) -> None:
    order_id = new_order()
    async with make_client(provider_url) as client:
        await client.authorize(order_id, AMOUNT, "EUR", "tok_ok")
        voids = [await client.void(order_id) for _ in range(2)]
        capture = await client.capture(order_id)
    assert [(v.outcome, v.status) for v in voids] == [
        (OperationOutcome.DONE, PaymentStatus.VOIDED)
    ] * 2
    assert capture.outcome is OperationOutcome.REJECTED
    assert capture.status is PaymentStatus.VOIDED
    assert capture.attempts == 1
    recorded = await payment(operator, order_id)
    assert [h["operation"] for h in recorded["history"]] == ["authorize", "void"]
    assert recorded["counts"]["capture_calls"] == 1


async def test_business_answers_are_not_retried(
    provider_url: str, operator: httpx.AsyncClient
) -> None:
    order_id, unknown = new_order(), new_order()
    async with make_client(provider_url) as client:
        await client.authorize(order_id, AMOUNT, "EUR", "tok_ok")
        refund = await client.refund(order_id)
        void = await client.void(unknown)
    assert refund.outcome is OperationOutcome.REJECTED
    assert refund.status is PaymentStatus.AUTHORIZED
    assert "void it instead" in (refund.detail or "")
    assert void.outcome is OperationOutcome.NOT_FOUND
    assert void.status is None
    assert (await counts(operator, order_id))["refund_calls"] == 1
    assert (await counts(operator, unknown))["void_calls"] == 1


async def test_malformed_request_raises_and_leaves_the_breaker_closed(provider_url: str) -> None:
    async with make_client(provider_url, breaker_fail_max=1) as client:
        with pytest.raises(ProviderRequestError) as raised:
            await client.authorize(new_order(), AMOUNT, "eur", "tok_ok")
        assert raised.value.status_code == 422
        assert client.breaker_state is BreakerState.CLOSED
