"""Simulated external card provider: an HTTP service with an in-memory ledger.

The embedded stack runs it where production talks to a real card gateway, so the
payments agent and its client meet the same failure modes: retries carrying an
idempotency key, slow answers, transient 5xx and outages.

Run it with ``python -m momentum.provider --host 127.0.0.1 --port 8090``.

Tokens decide what an authorization does:

- ``tok_ok`` approves, ``tok_decline`` and any unknown token decline.
- ``tok_slow`` records the authorization at once but answers only after the slow
  delay (``--slow-delay`` or ``MOMENTUM_PROVIDER_SLOW_DELAY``, default 3 s), as a
  real provider that is slower than its client's timeout; a retry with the same
  idempotency key gets the recorded result immediately.
- ``tok_flaky`` answers 503 to the first two calls for an idempotency key and
  approves on the third.
- ``tok_pending`` leaves the authorization PENDING, as a card whose holder never
  completes the bank's challenge: the order waits until its reservation expires,
  and the saga then voids the pending authorization.

``POST /v1/faults {"unavailable": true}`` makes every provider operation answer
503 until turned off. Reads (``/health``, ``/v1/ledger``, ``/v1/payments/{id}``)
and ``/v1/faults`` itself always answer, so tests and operators can look inside.

Payments are addressed by order id: one order has at most one payment. The
ledger lives in one process's memory and is lost when the process stops.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from types import FrameType
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from core.http_observe import observe_requests
from core.observe import configure_logging

SLOW_DELAY_ENV = "MOMENTUM_PROVIDER_SLOW_DELAY"
DEFAULT_SLOW_DELAY = 3.0
FLAKY_FAILURES = 2

APPROVING_TOKENS = frozenset({"tok_ok", "tok_slow", "tok_flaky"})

Operation = Literal["authorize", "capture", "void", "refund"]
Status = Literal["PENDING", "AUTHORIZED", "DECLINED", "CAPTURED", "VOIDED", "REFUNDED"]

# operation -> (the statuses it applies to, the status it leads to)
TRANSITIONS: dict[Operation, tuple[tuple[Status, ...], Status]] = {
    "capture": (("AUTHORIZED",), "CAPTURED"),
    "void": (("AUTHORIZED", "PENDING"), "VOIDED"),
    "refund": (("CAPTURED",), "REFUNDED"),
}

# Hints for the transitions callers most often get wrong in a saga's compensation.
HINTS: dict[tuple[Operation, Status], str] = {
    ("refund", "AUTHORIZED"): "it was never captured; void it instead",
    ("void", "CAPTURED"): "it is already captured; refund it instead",
}


class AuthorizationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(min_length=1, max_length=200)
    # A string, as card APIs take money, so no float ever touches an amount.
    amount: str = Field(pattern=r"^[0-9]{1,10}\.[0-9]{2}$", examples=["12.34"])
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])
    token: str = Field(min_length=1, max_length=200)


class FaultsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unavailable: bool


@dataclass
class OrderCounts:
    """Calls received per order, so "never charged twice" can be checked from outside."""

    authorize_calls: int = 0
    authorizations_created: int = 0
    capture_calls: int = 0
    void_calls: int = 0
    refund_calls: int = 0
    unavailable_responses: int = 0

    def count_call(self, operation: Operation) -> None:
        name = f"{operation}_calls"
        setattr(self, name, getattr(self, name) + 1)


@dataclass
class Payment:
    payment_id: str
    order_id: str
    idempotency_key: str
    token: str
    amount: Decimal
    currency: str
    status: Status
    created_at: str
    reason: str | None = None
    history: list[dict[str, str]] = field(default_factory=list)
    # The answer each operation gave when it was applied; repeats get it again.
    results: dict[Operation, dict[str, Any]] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return {
            "payment_id": self.payment_id,
            "order_id": self.order_id,
            "status": self.status,
            "amount": f"{self.amount:.2f}",
            "currency": self.currency,
            "reason": self.reason,
        }

    def apply(self, operation: Operation, status: Status) -> dict[str, Any]:
        self.status = status
        self.history.append({"operation": operation, "status": status, "at": _now()})
        self.results[operation] = self.snapshot()
        return self.results[operation]

    def same_request(self, request: AuthorizationRequest) -> bool:
        return (
            self.order_id == request.order_id
            and self.amount == Decimal(request.amount)
            and self.currency == request.currency
            and self.token == request.token
        )


@dataclass
class Ledger:
    """Everything the provider remembers; one instance per app."""

    slow_delay: float
    unavailable: bool = False
    payments: dict[str, Payment] = field(default_factory=dict)  # by order id
    keys: dict[str, str] = field(default_factory=dict)  # idempotency key -> order id
    counts: dict[str, OrderCounts] = field(default_factory=dict)  # by order id
    flaky_calls: Counter[str] = field(default_factory=Counter)  # by idempotency key

    def counts_for(self, order_id: str) -> OrderCounts:
        return self.counts.setdefault(order_id, OrderCounts())

    def view(self, payment: Payment) -> dict[str, Any]:
        return {
            **payment.snapshot(),
            "created_at": payment.created_at,
            "history": list(payment.history),
            "counts": asdict(self.counts_for(payment.order_id)),
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _error(status_code: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status_code, content={"code": code, "detail": detail, **extra})


def _slow_delay_from_env() -> float:
    return float(os.environ.get(SLOW_DELAY_ENV, DEFAULT_SLOW_DELAY))


def create_app(slow_delay: float | None = None) -> FastAPI:
    """Build the provider app with an empty ledger (exposed as ``app.state.ledger``)."""
    ledger = Ledger(slow_delay=_slow_delay_from_env() if slow_delay is None else slow_delay)
    app = FastAPI(title="Momentum simulated card provider", version="1")
    app.state.ledger = ledger

    def unavailable(order_id: str) -> JSONResponse | None:
        if not ledger.unavailable:
            return None
        ledger.counts_for(order_id).unavailable_responses += 1
        return _error(503, "unavailable", "the provider is unavailable (injected fault)")

    @app.get("/health", tags=["operators"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/authorizations", tags=["payments"], response_model=None)
    async def authorize(
        request: AuthorizationRequest,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any] | JSONResponse:
        if not idempotency_key:
            return _error(400, "missing_idempotency_key", "the Idempotency-Key header is required")
        counts = ledger.counts_for(request.order_id)
        counts.count_call("authorize")
        if (fault := unavailable(request.order_id)) is not None:
            return fault

        # No await between the lookup and the insert below, so concurrent
        # requests with one key cannot both create an authorization.
        if (known := ledger.keys.get(idempotency_key)) is not None:
            payment = ledger.payments[known]
            if not payment.same_request(request):
                return _error(
                    409,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with different parameters",
                )
            return payment.results["authorize"]
        if request.order_id in ledger.payments:
            return _error(
                409,
                "order_already_authorized",
                "this order already has a payment, made with another Idempotency-Key",
            )

        if request.token == "tok_flaky":
            ledger.flaky_calls[idempotency_key] += 1
            if ledger.flaky_calls[idempotency_key] <= FLAKY_FAILURES:
                counts.unavailable_responses += 1
                return _error(503, "unavailable", "transient failure (tok_flaky)")

        approved = request.token in APPROVING_TOKENS
        reason = None
        if not approved and request.token != "tok_pending":
            reason = "card_declined" if request.token == "tok_decline" else "unknown_token"
        payment = Payment(
            payment_id=f"pay_{uuid.uuid4().hex}",
            order_id=request.order_id,
            idempotency_key=idempotency_key,
            token=request.token,
            amount=Decimal(request.amount),
            currency=request.currency,
            status="PENDING"
            if request.token == "tok_pending"
            else ("AUTHORIZED" if approved else "DECLINED"),
            created_at=_now(),
            reason=reason,
        )
        ledger.payments[request.order_id] = payment
        ledger.keys[idempotency_key] = request.order_id
        counts.authorizations_created += 1
        result = payment.apply("authorize", payment.status)

        if request.token == "tok_slow":
            # Recorded already: the caller may give up, the authorization stays.
            await asyncio.sleep(ledger.slow_delay)
        return result

    def operate(order_id: str, operation: Operation) -> dict[str, Any] | JSONResponse:
        ledger.counts_for(order_id).count_call(operation)
        if (fault := unavailable(order_id)) is not None:
            return fault
        payment = ledger.payments.get(order_id)
        if payment is None:
            return _error(404, "payment_not_found", f"no payment for order {order_id!r}")
        if operation in payment.results:
            return payment.results[operation]
        sources, target = TRANSITIONS[operation]
        if payment.status not in sources:
            needs = " or ".join(sources)
            hint = HINTS.get((operation, payment.status), f"{operation} needs {needs}")
            return _error(
                409,
                "invalid_transition",
                f"cannot {operation} a payment that is {payment.status}: {hint}",
                operation=operation,
                status=payment.status,
                payment_id=payment.payment_id,
            )
        return payment.apply(operation, target)

    @app.post("/v1/payments/{order_id}/capture", tags=["payments"], response_model=None)
    async def capture(order_id: str) -> dict[str, Any] | JSONResponse:
        return operate(order_id, "capture")

    @app.post("/v1/payments/{order_id}/void", tags=["payments"], response_model=None)
    async def void(order_id: str) -> dict[str, Any] | JSONResponse:
        return operate(order_id, "void")

    @app.post("/v1/payments/{order_id}/refund", tags=["payments"], response_model=None)
    async def refund(order_id: str) -> dict[str, Any] | JSONResponse:
        return operate(order_id, "refund")

    @app.get("/v1/payments/{order_id}", tags=["operators"], response_model=None)
    async def get_payment(order_id: str) -> dict[str, Any] | JSONResponse:
        payment = ledger.payments.get(order_id)
        if payment is None:
            return _error(
                404,
                "payment_not_found",
                f"no payment for order {order_id!r}",
                counts=asdict(ledger.counts_for(order_id)),
            )
        return ledger.view(payment)

    @app.get("/v1/ledger", tags=["operators"])
    async def get_ledger() -> dict[str, Any]:
        orders = {order_id: asdict(counts) for order_id, counts in ledger.counts.items()}
        return {
            "payments": [ledger.view(p) for p in ledger.payments.values()],
            "orders": orders,
            "totals": {
                f.name: sum(counts[f.name] for counts in orders.values())
                for f in fields(OrderCounts)
            },
            "faults": {"unavailable": ledger.unavailable},
        }

    @app.get("/v1/faults", tags=["operators"])
    async def get_faults() -> dict[str, bool]:
        return {"unavailable": ledger.unavailable}

    @app.post("/v1/faults", tags=["operators"])
    async def set_faults(update: FaultsUpdate) -> dict[str, bool]:
        ledger.unavailable = update.unavailable
        return {"unavailable": ledger.unavailable}

    observe_requests(app)
    return app


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m momentum.provider", description="Run the simulated card provider."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--slow-delay",
        type=float,
        default=None,
        help=f"seconds tok_slow waits before answering (env {SLOW_DELAY_ENV}, "
        f"default {DEFAULT_SLOW_DELAY})",
    )
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the
    # signal to the handler that was there before it; make that handler a
    # normal exit so supervisors see status 0 rather than death by signal.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    configure_logging(args.log_level)
    uvicorn.run(
        create_app(slow_delay=args.slow_delay),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.access_log,
        log_config=None,  # uvicorn's lines go through ours (core.observe)
        # tok_slow answers still sleeping must not hold up a shutdown for long.
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
