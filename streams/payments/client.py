"""Client for the external card provider, used by the payments agent.

Every call carries the order id as its ``Idempotency-Key``, so a retry (ours, or
a redelivered command under at-least-once) can never authorize or charge twice.
Each HTTP attempt has one deadline; timeouts, connection errors and 5xx are
retried with exponential backoff and jitter, a bounded number of times; a
circuit breaker counts failed attempts and, once open, fails calls fast without
touching the network until its reset timeout has passed.

Answers are values, never exceptions: a provider that cannot be reached yields
``PaymentStatus.UNAVAILABLE`` (the order reason ``PAYMENT_UNAVAILABLE``); a
refused transition (HTTP 409) yields ``OperationOutcome.REJECTED``. Only a
request the provider calls malformed raises ``ProviderRequestError``, because
that is a bug on our side that no retry will fix.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiohttp
from aiobreaker import CircuitBreaker, CircuitBreakerError, CircuitBreakerState
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from schemas.money import CENT
from streams.payments.rules import PaymentStatus

logger = logging.getLogger(__name__)


class Operation(StrEnum):
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


class OperationOutcome(StrEnum):
    DONE = "DONE"  # applied, now or by an earlier call (the provider repeats its first answer)
    REJECTED = "REJECTED"  # the payment's status does not allow it (HTTP 409); see `status`
    NOT_FOUND = "NOT_FOUND"  # the provider has no payment for this order
    UNAVAILABLE = "UNAVAILABLE"  # retries exhausted or circuit breaker open


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class AuthorizationResult:
    order_id: str
    status: PaymentStatus  # AUTHORIZED, DECLINED or UNAVAILABLE
    payment_id: str | None = None
    detail: str | None = None  # decline reason, or why the provider was unavailable
    attempts: int = 0  # HTTP requests sent; 0 when the breaker was already open

    @property
    def approved(self) -> bool:
        return self.status is PaymentStatus.AUTHORIZED


@dataclass(frozen=True, slots=True)
class OperationResult:
    order_id: str
    operation: Operation
    outcome: OperationOutcome
    # The payment's status as the provider reported it (after a REJECTED call: the
    # status that forbade it); UNAVAILABLE when unreachable; None only for NOT_FOUND.
    status: PaymentStatus | None = None
    payment_id: str | None = None
    detail: str | None = None
    attempts: int = 0


class ProviderRequestError(Exception):
    """The provider refused the request itself (a 4xx that is not a business answer)."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"card provider answered {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


class _TransientError(Exception):
    """A failed attempt worth retrying; also what the circuit breaker counts."""


@dataclass(frozen=True, slots=True)
class _Answer:
    """The provider's HTTP answer, read whole."""

    status_code: int
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


@dataclass(frozen=True, slots=True)
class _Reply:
    response: _Answer | None  # None: the provider could not be reached
    attempts: int
    detail: str | None = None


_BREAKER_STATES = {
    CircuitBreakerState.CLOSED: BreakerState.CLOSED,
    CircuitBreakerState.OPEN: BreakerState.OPEN,
    CircuitBreakerState.HALF_OPEN: BreakerState.HALF_OPEN,
}


def format_amount(amount: Decimal) -> str:
    """Render an amount as the provider wants it: a string with exactly two decimals."""
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"amount must be a positive finite decimal, got {amount}")
    cents = amount.quantize(CENT)
    if cents != amount:
        # Rounding money silently would charge a different amount than the order says.
        raise ValueError(f"amount {amount} has more than two decimals")
    return str(cents)


def _detail(response: _Answer) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:200]


class CardProviderClient:
    """Async client for the card provider; one instance per process, closed with ``aclose``.

    ``timeout`` bounds each HTTP attempt; ``attempts`` bounds the attempts per call;
    backoff between attempts grows from ``backoff_initial`` to at most
    ``backoff_max`` seconds, plus up to ``backoff_initial`` of random jitter. The
    breaker opens after ``breaker_fail_max`` consecutive failed attempts and lets
    a trial call through after ``breaker_reset_timeout`` seconds.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 1.0,
        attempts: int = 4,
        backoff_initial: float = 0.1,
        backoff_max: float = 2.0,
        breaker_fail_max: int = 5,
        breaker_reset_timeout: float = 30.0,
    ) -> None:
        if attempts < 1 or breaker_fail_max < 1:
            raise ValueError("attempts and breaker_fail_max must be at least 1")
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._attempts = attempts
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._http: aiohttp.ClientSession | None = None  # opened by the first call, in its loop
        self._breaker = CircuitBreaker(
            fail_max=breaker_fail_max,
            timeout_duration=timedelta(seconds=breaker_reset_timeout),
            name="card-provider",
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        # aiohttp, not httpx: a provider call cost the worker about 1 ms of CPU with
        # httpx and about 0.2 ms with aiohttp (benchmarks.payment_client_cost), at
        # two calls per order. Idle connections are dropped after 4 s, before the
        # 5 s a uvicorn server keeps them, so a request never rides one being closed.
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(keepalive_timeout=4.0),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        return self._http

    @property
    def breaker_state(self) -> BreakerState:
        """The breaker's state; it stays OPEN until a call after the reset timeout tries again."""
        return _BREAKER_STATES[self._breaker.current_state]

    async def authorize(
        self, order_id: str, amount: Decimal, currency: str, token: str
    ) -> AuthorizationResult:
        body = {
            "order_id": order_id,
            "amount": format_amount(amount),
            "currency": currency,
            "token": token,
        }
        reply = await self._post("/v1/authorizations", order_id, body)
        if reply.response is None:
            return AuthorizationResult(
                order_id, PaymentStatus.UNAVAILABLE, detail=reply.detail, attempts=reply.attempts
            )
        if not reply.response.is_success:
            raise ProviderRequestError(reply.response.status_code, _detail(reply.response))
        data = reply.response.json()
        return AuthorizationResult(
            order_id,
            PaymentStatus(data["status"]),
            payment_id=data["payment_id"],
            detail=data.get("reason"),
            attempts=reply.attempts,
        )

    async def capture(self, order_id: str) -> OperationResult:
        return await self._operate(order_id, Operation.CAPTURE)

    async def void(self, order_id: str) -> OperationResult:
        return await self._operate(order_id, Operation.VOID)

    async def refund(self, order_id: str) -> OperationResult:
        return await self._operate(order_id, Operation.REFUND)

    async def _operate(self, order_id: str, operation: Operation) -> OperationResult:
        path = f"/v1/payments/{quote(order_id, safe='')}/{operation}"
        reply = await self._post(path, order_id, None)
        response = reply.response
        if response is None:
            return OperationResult(
                order_id,
                operation,
                OperationOutcome.UNAVAILABLE,
                status=PaymentStatus.UNAVAILABLE,
                detail=reply.detail,
                attempts=reply.attempts,
            )
        if response.is_success or response.status_code == 409:
            data = response.json()
            return OperationResult(
                order_id,
                operation,
                OperationOutcome.DONE if response.is_success else OperationOutcome.REJECTED,
                status=PaymentStatus(data["status"]) if "status" in data else None,
                payment_id=data.get("payment_id"),
                detail=data.get("detail"),
                attempts=reply.attempts,
            )
        if response.status_code == 404:
            return OperationResult(
                order_id,
                operation,
                OperationOutcome.NOT_FOUND,
                detail=_detail(response),
                attempts=reply.attempts,
            )
        raise ProviderRequestError(response.status_code, _detail(response))

    async def _post(self, path: str, order_id: str, body: dict[str, Any] | None) -> _Reply:
        """POST with retries and the breaker; ``response`` is None when unavailable."""
        sent = 0

        async def attempt() -> _Answer:
            nonlocal sent
            sent += 1
            return await self._send(path, order_id, body)

        def log_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            logger.warning(
                "card provider %s for order %s failed (%s), attempt %d; retrying in %.2fs",
                path,
                order_id,
                error,
                state.attempt_number,
                wait,
            )

        # A retrier per call: tenacity keeps its statistics on the retrier object.
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            # Composed rather than wait_exponential_jitter, whose parameters
            # changed name between the tenacity versions pyproject allows.
            wait=wait_exponential(multiplier=self._backoff_initial, max=self._backoff_max)
            + wait_random(0, self._backoff_initial),
            # CircuitBreakerError is not retried: an open breaker means fail fast.
            retry=retry_if_exception_type(_TransientError),
            before_sleep=log_retry,
            reraise=True,
        )
        try:
            # The breaker wraps each attempt, so an outage trips it mid-retry too.
            response: _Answer = await retrying(self._breaker.call_async, attempt)
        except _TransientError as exc:
            return _Reply(None, sent, f"gave up after {sent} attempts: {exc}")
        except CircuitBreakerError as exc:
            return _Reply(None, sent, f"circuit breaker open: {exc.message}")
        return _Reply(response, sent)

    async def _send(self, path: str, order_id: str, body: dict[str, Any] | None) -> _Answer:
        try:
            # One deadline per attempt, the answer's body included.
            async with (
                asyncio.timeout(self._timeout),
                self._session().post(
                    self._base_url + path, json=body, headers={"Idempotency-Key": order_id}
                ) as reply,
            ):
                response = _Answer(reply.status, await reply.read())
        except TimeoutError as exc:
            raise _TransientError(f"timed out after {self._timeout}s") from exc
        except aiohttp.ClientError as exc:
            raise _TransientError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise _TransientError(f"HTTP {response.status_code}: {_detail(response)}")
        return response
