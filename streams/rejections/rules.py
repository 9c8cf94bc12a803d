"""Refusals: why an agent refused a client command, and the requester's bounded log of them.

Authorization that depends on state is decided by the agent that owns the state
(the saga for orders, the inventory agent for products and stock, the cart
agent for carts), from the identity the command carries. A refusal changes no
state: the rule returns the `Reject` effect and the agent sends a
CommandRejected record, keyed by the requester, to `command-rejections`. The
rejections agent keeps each requester's latest `REJECTIONS_KEPT` in a table
that the gateway serves at `GET /v1/rejections`.

The enums mirror `momentum.RejectionReason` and `momentum.CommandKind`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# Per requester; older rejections drop out of the log (and out of the API).
REJECTIONS_KEPT = 100


class RejectionReason(StrEnum):
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    ORDER_NOT_CANCELLABLE = "ORDER_NOT_CANCELLABLE"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    SKU_OWNED_BY_ANOTHER_SELLER = "SKU_OWNED_BY_ANOTHER_SELLER"
    TRANSFER_NOT_ALLOWED = "TRANSFER_NOT_ALLOWED"
    UNKNOWN_SKU = "UNKNOWN_SKU"
    CART_OF_ANOTHER_CUSTOMER = "CART_OF_ANOTHER_CUSTOMER"
    CART_CLOSED = "CART_CLOSED"
    CART_EMPTY = "CART_EMPTY"
    CART_FULL = "CART_FULL"


class CommandKind(StrEnum):
    PLACE_ORDER = "PLACE_ORDER"
    CANCEL_ORDER = "CANCEL_ORDER"
    UPSERT_PRODUCT = "UPSERT_PRODUCT"
    RESTOCK = "RESTOCK"
    SET_CART_LINE = "SET_CART_LINE"
    REMOVE_CART_LINE = "REMOVE_CART_LINE"
    CHECKOUT_CART = "CHECKOUT_CART"


@dataclass(frozen=True)
class Reject:
    """Effect: the command is refused for `reason`; the state is left as it was."""

    reason: RejectionReason


@dataclass(frozen=True)
class Rejection:
    command_id: str
    command: CommandKind
    subject: str
    requested_by: str
    reason: RejectionReason
    rejected_at: datetime


def record_rejection(log: tuple[Rejection, ...], rejection: Rejection) -> tuple[Rejection, ...]:
    """The log with `rejection` appended, once per command id, keeping the latest ones."""
    if any(kept.command_id == rejection.command_id for kept in log):
        return log  # a redelivered command refused again, or a redelivered rejection
    return (*log, rejection)[-REJECTIONS_KEPT:]
