"""The payments agent: talks to the card provider for one order at a time.

The order id is the provider's idempotency key, so a redelivered command never
charges twice; the payments table remembers the last answer so a redelivered
authorize is answered without calling the provider again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

import faust
from tenacity import AsyncRetrying, retry_if_result, stop_after_delay, wait_exponential

from core import observe, tracing
from core.app import app, settings
from core.errors import RuleError
from core.topics import ORDER_EVENTS, PAYMENT_COMMANDS, PAYMENTS
from schemas import envelopes, messages
from schemas.money import CENT
from streams import metrics, sending
from streams.channels import channel
from streams.payments import rules
from streams.payments.client import CardProviderClient, OperationOutcome, OperationResult
from streams.payments.records import payment_record
from streams.payments.rules import PaymentStatus
from streams.steps import check_key, consume, send_then_store
from tables.payments import payments, void_rechecks

log = logging.getLogger(__name__)

OPERATIONS: dict[str, Callable[[CardProviderClient, str], Awaitable[OperationResult]]] = {
    messages.CAPTURE_PAYMENT: CardProviderClient.capture,
    messages.VOID_PAYMENT: CardProviderClient.void,
    messages.REFUND_PAYMENT: CardProviderClient.refund,
}


# How often voids that found no payment are asked again (see track_unconfirmed_void).
VOID_RECHECK_SECONDS = 2.0


class ProviderUnavailable(RuntimeError):
    """The provider did not answer a capture, void or refund; retried, then dead-lettered."""


_client: CardProviderClient | None = None


def provider() -> CardProviderClient:
    global _client
    if _client is None:
        _client = CardProviderClient(
            settings.payment_provider_url,
            timeout=settings.payment_timeout_seconds,
            attempts=settings.payment_attempts,
            breaker_fail_max=settings.payment_breaker_fail_max,
            breaker_reset_timeout=settings.payment_breaker_reset_seconds,
        )
    return _client


# Provider calls wait on the network, so several commands are in flight at once.
# Commands for one order never overlap in the saga's normal flow (capture follows
# the authorization's reply), and a void racing an authorization is absorbed by
# the provider's idempotency, the saga's late-authorization rule, and a void that
# found nothing being asked again (track_unconfirmed_void).
@app.agent(channel(PAYMENT_COMMANDS), concurrency=settings.payment_concurrency)
async def process_payment_commands(stream: faust.StreamT[bytes]) -> None:
    await consume(stream, apply_payment_command)


async def apply_payment_command(key: str, command: messages.PaymentCommand) -> None:
    order_id = command["order_id"]
    check_key(key, order_id, "payment command for order")
    current = payments.get(order_id)

    match command["payload"]:
        case (messages.AUTHORIZE_PAYMENT, payload):
            await authorize(order_id, payload, current)
        case (kind, _):
            await settle(order_id, kind, current)


async def settle(order_id: str, kind: str, current: Mapping[str, Any] | None) -> None:
    """A capture, void or refund: waited out through an outage, its answer told to the saga."""
    operation = OPERATIONS.get(kind)
    if operation is None:
        raise RuleError(f"unknown payment command {kind}")
    outcome = await settling(operation, order_id)
    if outcome.outcome is OperationOutcome.UNAVAILABLE:
        # Raising lets the dead-letter handler retry, then park the command for replay.
        raise ProviderUnavailable(f"{kind} for order {order_id}: {outcome.detail}")
    found = outcome.outcome is not OperationOutcome.NOT_FOUND
    if kind == messages.VOID_PAYMENT:
        stored = current["status"] if current is not None else None
        track_unconfirmed_void(
            order_id, found=found, authorization_unanswered=rules.unanswered(stored)
        )
    status = rules.settled_status(outcome.status, found=found)
    if status is None or current is None:
        return  # nothing authorized for this order (yet): nothing to release
    await reply(order_id, status.value, outcome.payment_id or current["payment_id"])
    await record(order_id, status, outcome.payment_id, current["amount"], current["currency"])


async def authorize(
    order_id: str, payload: messages.AuthorizePayment, current: Mapping[str, Any] | None
) -> None:
    """Ask the provider once per order: a redelivered authorize is answered from the table."""
    if current and (answered := rules.repeated_authorization(current["status"])) is not None:
        await reply(order_id, answered.value, current["payment_id"])
        return
    amount = Decimal(payload["amount"]).quantize(CENT)
    began = time.perf_counter()
    result = await provider().authorize(order_id, amount, payload["currency"], payload["token"])
    count_call("authorize", result.status.value, began)
    if rules.tells_the_saga(result.status):
        await reply(order_id, result.status.value, result.payment_id)
    await record(order_id, result.status, result.payment_id, amount, payload["currency"])


def track_unconfirmed_void(order_id: str, *, found: bool, authorization_unanswered: bool) -> None:
    """Keep void-rechecks in step with the void's answer (rules.follow_up_void); the timer
    below asks the voids listed there again, under the ids this void was asked under."""
    recheck = void_rechecks.get(order_id)
    deadline = recheck["deadline_ms"] if recheck is not None else None
    follow_up = rules.follow_up_void(
        deadline,
        found=found,
        authorization_unanswered=authorization_unanswered,
        now_ms=epoch_ms(),
        window_ms=int(settings.payment_late_authorization_seconds * 1000),
    )
    if follow_up.gave_up:
        log.info("order %s: no authorization landed for its void; not asking again", order_id)
    if follow_up.deadline is None:
        if recheck is not None:
            void_rechecks.pop(order_id)
    elif recheck is None:
        void_rechecks[order_id] = {
            "deadline_ms": follow_up.deadline,
            "correlation_id": observe.current().correlation_id,
            "trace_parent": tracing.current_traceparent(),
        }


def epoch_ms() -> int:
    return int(time.time() * 1000)


@app.timer(interval=VOID_RECHECK_SECONDS)  # type: ignore[untyped-decorator]
async def ask_unconfirmed_voids_again() -> None:
    await resend_unconfirmed_voids()


async def resend_unconfirmed_voids() -> None:
    for order_id, recheck in list(void_rechecks.items()):
        void = envelopes.payment_command(order_id, messages.void_payment())
        # Under the first void's correlation id and trace: the order's story stays one.
        ids = observe.Ids(recheck["correlation_id"], order_id, void["command_id"])
        with (
            tracing.continuing("ask void again", recheck["trace_parent"], order_id),
            observe.bound(ids),
        ):
            await sending.send(PAYMENT_COMMANDS, order_id, void)


async def settling(
    operation: Callable[[CardProviderClient, str], Awaitable[OperationResult]], order_id: str
) -> OperationResult:
    """Call a capture, void or refund until the provider answers, within the patience setting.

    These must happen (the order is confirmed, or money must go back), so a short
    outage or an open circuit breaker is waited out here, the breaker's own reset
    bounding the backoff, instead of parking the command at the first refusal.
    """
    retrying = AsyncRetrying(
        retry=retry_if_result(lambda o: o.outcome is OperationOutcome.UNAVAILABLE),
        wait=wait_exponential(multiplier=0.25, max=settings.payment_breaker_reset_seconds),
        stop=stop_after_delay(settings.payment_settle_patience_seconds),
        # Out of patience: hand back the last answer, which the caller dead-letters.
        retry_error_callback=lambda state: state.outcome.result(),  # type: ignore[union-attr]
    )
    return await retrying(timed(operation), provider(), order_id)


def timed(
    operation: Callable[[CardProviderClient, str], Awaitable[OperationResult]],
) -> Callable[[CardProviderClient, str], Awaitable[OperationResult]]:
    """`operation`, counted and timed per call in the worker's metrics."""

    async def call(client: CardProviderClient, order_id: str) -> OperationResult:
        began = time.perf_counter()
        result = await operation(client, order_id)
        count_call(result.operation.value, result.outcome.value, began)
        return result

    return call


def count_call(operation: str, outcome: str, began: float) -> None:
    metrics.PAYMENT_CALLS.labels(operation=operation, outcome=outcome).inc()
    metrics.PAYMENT_CALL_SECONDS.labels(operation=operation).observe(time.perf_counter() - began)


async def record(
    order_id: str, status: PaymentStatus, payment_id: str | None, amount: Decimal, currency: str
) -> None:
    current = payments.get(order_id)
    if not rules.is_news(current["status"] if current is not None else None, status):
        return
    # The provider's answer may carry no payment id: keep the one known.
    known_id = payment_id or (current or {}).get("payment_id")
    value = payment_record(order_id, status, known_id, amount, currency, sending.now())
    # Sent before it is stored, as in the order saga (streams.orders.agents).
    await send_then_store(sending.publish(PAYMENTS, order_id, value), payments, order_id, value)


async def reply(order_id: str, status: messages.PaymentStatus, payment_id: str | None) -> None:
    result = messages.payment_result(status=status, payment_id=payment_id, detail=None)
    await sending.send(ORDER_EVENTS, order_id, envelopes.order_event(order_id, result))
