# Generated from schemas/avro/*.avsc by schemas/generate_messages.py: do not edit.
# Regenerate with: python -m schemas.generate_messages
"""Every Avro named type of schemas/avro, typed as schemas.codec reads and writes it.

Records are TypedDicts (plain dicts at run time, checked by mypy) and enums are
Literal aliases. A union of records holds `(full record name, record)` tuples:
match on the name to narrow the record. Each branch record has its name as a
constant and a builder that pairs the two.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final, Literal, TypeAlias, TypedDict

CartStatus: TypeAlias = Literal["OPEN", "CHECKED_OUT", "ABANDONED"]
CART_STATUS_SYMBOLS: Final[tuple[CartStatus, ...]] = ("OPEN", "CHECKED_OUT", "ABANDONED")

# A client command, as named in a rejection.
CommandKind: TypeAlias = Literal[
    "PLACE_ORDER",
    "CANCEL_ORDER",
    "UPSERT_PRODUCT",
    "RESTOCK",
    "SET_CART_LINE",
    "REMOVE_CART_LINE",
    "CHECKOUT_CART",
]
COMMAND_KIND_SYMBOLS: Final[tuple[CommandKind, ...]] = (
    "PLACE_ORDER",
    "CANCEL_ORDER",
    "UPSERT_PRODUCT",
    "RESTOCK",
    "SET_CART_LINE",
    "REMOVE_CART_LINE",
    "CHECKOUT_CART",
)

# Where one order line stands in the saga.
LineState: TypeAlias = Literal[
    "REQUESTED",
    "RESERVED",
    "REJECTED",
    "RELEASED",
    "COMMITTED",
    "RETURNED",
]
LINE_STATE_SYMBOLS: Final[tuple[LineState, ...]] = (
    "REQUESTED",
    "RESERVED",
    "REJECTED",
    "RELEASED",
    "COMMITTED",
    "RETURNED",
)

NotificationKind: TypeAlias = Literal[
    "ORDER_CONFIRMED",
    "ORDER_REJECTED",
    "ORDER_EXPIRED",
    "ORDER_CANCELLED",
    "LOW_STOCK",
    "CART_ABANDONED",
]
NOTIFICATION_KIND_SYMBOLS: Final[tuple[NotificationKind, ...]] = (
    "ORDER_CONFIRMED",
    "ORDER_REJECTED",
    "ORDER_EXPIRED",
    "ORDER_CANCELLED",
    "LOW_STOCK",
    "CART_ABANDONED",
)

# Why an order was rejected, expired or cancelled. CURRENCY_MISMATCH: its skus are priced in
# different currencies.
OrderReason: TypeAlias = Literal[
    "OUT_OF_STOCK",
    "UNKNOWN_SKU",
    "PAYMENT_DECLINED",
    "PAYMENT_UNAVAILABLE",
    "RESERVATION_EXPIRED",
    "CUSTOMER_CANCELLED",
    "CURRENCY_MISMATCH",
]
ORDER_REASON_SYMBOLS: Final[tuple[OrderReason, ...]] = (
    "OUT_OF_STOCK",
    "UNKNOWN_SKU",
    "PAYMENT_DECLINED",
    "PAYMENT_UNAVAILABLE",
    "RESERVATION_EXPIRED",
    "CUSTOMER_CANCELLED",
    "CURRENCY_MISMATCH",
)

# Lifecycle of an order. Settled: CONFIRMED, REJECTED, EXPIRED, CANCELLED.
OrderStatus: TypeAlias = Literal[
    "PENDING",
    "RESERVED",
    "CONFIRMED",
    "REJECTED",
    "EXPIRED",
    "CANCELLED",
]
ORDER_STATUS_SYMBOLS: Final[tuple[OrderStatus, ...]] = (
    "PENDING",
    "RESERVED",
    "CONFIRMED",
    "REJECTED",
    "EXPIRED",
    "CANCELLED",
)

# What an outbox entry asks for (see momentum.OutboxEffect).
OutboxKind: TypeAlias = Literal[
    "RESERVE",
    "RELEASE",
    "COMMIT",
    "RETURN",
    "AUTHORIZE",
    "CAPTURE",
    "VOID",
    "REFUND",
    "PUBLISH",
    "SETTLE",
]
OUTBOX_KIND_SYMBOLS: Final[tuple[OutboxKind, ...]] = (
    "RESERVE",
    "RELEASE",
    "COMMIT",
    "RETURN",
    "AUTHORIZE",
    "CAPTURE",
    "VOID",
    "REFUND",
    "PUBLISH",
    "SETTLE",
)

# What the card provider last said about an order's payment.
PaymentStatus: TypeAlias = Literal[
    "PENDING",
    "AUTHORIZED",
    "DECLINED",
    "UNAVAILABLE",
    "CAPTURED",
    "VOIDED",
    "REFUNDED",
]
PAYMENT_STATUS_SYMBOLS: Final[tuple[PaymentStatus, ...]] = (
    "PENDING",
    "AUTHORIZED",
    "DECLINED",
    "UNAVAILABLE",
    "CAPTURED",
    "VOIDED",
    "REFUNDED",
)

# Why the agent that owns a command's state refused it. UNKNOWN_ORDER: no such order, or not the
# requester's (not told apart, like the API's 404). ORDER_NOT_CANCELLABLE: the order is REJECTED or
# EXPIRED. IDEMPOTENCY_KEY_REUSED: a PlaceOrder for an existing order id with another request; the
# order stays as first placed. SKU_OWNED_BY_ANOTHER_SELLER: the product belongs to another seller.
# TRANSFER_NOT_ALLOWED: only an admin may name a product's seller. UNKNOWN_SKU: a restock of a sku
# that has no product. CART_OF_ANOTHER_CUSTOMER: the cart id belongs to another customer.
# CART_CLOSED: the cart is checked out or abandoned. CART_EMPTY: a checkout of a cart with no lines
# (or none at all). CART_FULL: a new line for a cart that has as many as an order may.
RejectionReason: TypeAlias = Literal[
    "UNKNOWN_ORDER",
    "ORDER_NOT_CANCELLABLE",
    "IDEMPOTENCY_KEY_REUSED",
    "SKU_OWNED_BY_ANOTHER_SELLER",
    "TRANSFER_NOT_ALLOWED",
    "UNKNOWN_SKU",
    "CART_OF_ANOTHER_CUSTOMER",
    "CART_CLOSED",
    "CART_EMPTY",
    "CART_FULL",
]
REJECTION_REASON_SYMBOLS: Final[tuple[RejectionReason, ...]] = (
    "UNKNOWN_ORDER",
    "ORDER_NOT_CANCELLABLE",
    "IDEMPOTENCY_KEY_REUSED",
    "SKU_OWNED_BY_ANOTHER_SELLER",
    "TRANSFER_NOT_ALLOWED",
    "UNKNOWN_SKU",
    "CART_OF_ANOTHER_CUSTOMER",
    "CART_CLOSED",
    "CART_EMPTY",
    "CART_FULL",
)

# The authenticated role of whoever sent a command (the gateway's token role).
Role: TypeAlias = Literal["CUSTOMER", "SELLER", "ADMIN"]
ROLE_SYMBOLS: Final[tuple[Role, ...]] = ("CUSTOMER", "SELLER", "ADMIN")

ABANDON_CART: Final = "momentum.AbandonCart"
AUTHORIZE_PAYMENT: Final = "momentum.AuthorizePayment"
CANCEL_ORDER: Final = "momentum.CancelOrder"
CAPTURE_PAYMENT: Final = "momentum.CapturePayment"
CHECKOUT_CART: Final = "momentum.CheckoutCart"
COMMIT_STOCK: Final = "momentum.CommitStock"
EXPIRE_ORDER: Final = "momentum.ExpireOrder"
PAYMENT_RESULT: Final = "momentum.PaymentResult"
PLACE_ORDER: Final = "momentum.PlaceOrder"
REFUND_PAYMENT: Final = "momentum.RefundPayment"
RELEASE_STOCK: Final = "momentum.ReleaseStock"
REMOVE_CART_LINE: Final = "momentum.RemoveCartLine"
RESERVE_STOCK: Final = "momentum.ReserveStock"
RESTOCK: Final = "momentum.Restock"
RETURN_STOCK: Final = "momentum.ReturnStock"
SET_CART_LINE: Final = "momentum.SetCartLine"
STOCK_REJECTED: Final = "momentum.StockRejected"
STOCK_RESERVED: Final = "momentum.StockReserved"
UPSERT_PRODUCT: Final = "momentum.UpsertProduct"
VOID_PAYMENT: Final = "momentum.VoidPayment"


class AbandonCart(TypedDict):
    """Sent by the idle-cart timer; the cart rule decides."""


class AuthorizePayment(TypedDict):
    amount: Decimal
    currency: str
    token: str


class CancelOrder(TypedDict):
    requested_by: str
    # The requester's role: an ADMIN may cancel any order, anyone else only their own.
    role: Role


class CapturePayment(TypedDict):
    pass


class CartAbandoned(TypedDict):
    """A cart idle past the limit was marked abandoned (topic cart-events)."""

    cart_id: str
    customer_id: str
    item_count: int
    occurred_at: datetime


class PaymentMethod(TypedDict):
    method: str
    token: str


class CheckoutCart(TypedDict):
    order_id: str
    payment: PaymentMethod
    request_hash: str


class RemoveCartLine(TypedDict):
    sku: str


class SetCartLine(TypedDict):
    sku: str
    quantity: int


CartCommandPayload: TypeAlias = (
    tuple[Literal["momentum.SetCartLine"], SetCartLine]
    | tuple[Literal["momentum.RemoveCartLine"], RemoveCartLine]
    | tuple[Literal["momentum.CheckoutCart"], CheckoutCart]
    | tuple[Literal["momentum.AbandonCart"], AbandonCart]
)
CART_COMMAND_PAYLOAD_BRANCHES: Final = (
    SET_CART_LINE,
    REMOVE_CART_LINE,
    CHECKOUT_CART,
    ABANDON_CART,
)


class CartCommand(TypedDict):
    """A command for one cart; keyed by cart id."""

    command_id: str
    cart_id: str
    customer_id: str
    issued_at: datetime
    payload: CartCommandPayload


class CartState(TypedDict):
    """A cart (carts table, public carts topic)."""

    cart_id: str
    customer_id: str
    status: CartStatus
    items: dict[str, int]
    order_id: str | None
    created_at: datetime
    updated_at: datetime


class CommandRejected(TypedDict):
    """A client command the agent owning its state refused (topic command-rejections, keyed by
    requested_by).
    """

    command_id: str
    command: CommandKind
    # What the command was about: an order id, a sku or a cart id.
    subject: str
    # The authenticated subject that sent the command.
    requested_by: str
    reason: RejectionReason
    rejected_at: datetime


class CommitStock(TypedDict):
    order_id: str


class ExpireOrder(TypedDict):
    """Sent by the expiry timer; the saga decides."""


class ReleaseStock(TypedDict):
    order_id: str


class ReserveStock(TypedDict):
    order_id: str
    quantity: int


class Restock(TypedDict):
    quantity: int
    # The authenticated subject that asked; only the product's seller or an ADMIN may restock.
    requested_by: str
    role: Role


class ReturnStock(TypedDict):
    """A confirmed order was cancelled: its committed units of the sku come back on hand."""

    order_id: str
    # The order line's quantity (0: sent before quantities were carried; refused).
    quantity: int


class UpsertProduct(TypedDict):
    name: str
    price: Decimal
    currency: str
    # The authenticated subject that asked (requested_by).
    seller_id: str
    low_stock_threshold: int
    role: Role
    # ADMIN only: the seller the product belongs to after this upsert. Null keeps the owner (or, for
    # a new product, makes the requester its owner).
    transfer_to: str | None


class MessageOrigin(TypedDict):
    """The consumed message a command was sent while handling: a sku recognises a saga step it
    already applied by it.
    """

    topic: str
    partition: int
    offset: int


InventoryCommandPayload: TypeAlias = (
    tuple[Literal["momentum.UpsertProduct"], UpsertProduct]
    | tuple[Literal["momentum.Restock"], Restock]
    | tuple[Literal["momentum.ReserveStock"], ReserveStock]
    | tuple[Literal["momentum.ReleaseStock"], ReleaseStock]
    | tuple[Literal["momentum.CommitStock"], CommitStock]
    | tuple[Literal["momentum.ReturnStock"], ReturnStock]
)
INVENTORY_COMMAND_PAYLOAD_BRANCHES: Final = (
    UPSERT_PRODUCT,
    RESTOCK,
    RESERVE_STOCK,
    RELEASE_STOCK,
    COMMIT_STOCK,
    RETURN_STOCK,
)


class InventoryCommand(TypedDict):
    """A command for one sku's stock or catalog entry; keyed by sku."""

    command_id: str
    sku: str
    issued_at: datetime
    payload: InventoryCommandPayload
    # Set by the order saga on reservation steps: the saga message this step was sent for.
    origin: MessageOrigin | None


class InventoryRecord(TypedDict):
    """Public stock level of a sku (topic inventory, table inventory)."""

    sku: str
    on_hand: int
    reserved: int
    available: int
    updated_at: datetime


class LineRequest(TypedDict):
    """A sku and quantity asked for by a customer."""

    sku: str
    quantity: int


class Notification(TypedDict):
    """A message for a person (topic notifications); the id is derived from what it is about, so a
    repeat has the same id.
    """

    notification_id: str
    kind: NotificationKind
    recipient: str
    subject_id: str
    message: str
    created_at: datetime


class PlaceOrder(TypedDict):
    customer_id: str
    lines: list[LineRequest]
    payment: PaymentMethod
    # Fingerprint of the HTTP request that placed the order, for Idempotency-Key conflicts.
    request_hash: str


OrderCommandPayload: TypeAlias = (
    tuple[Literal["momentum.PlaceOrder"], PlaceOrder]
    | tuple[Literal["momentum.CancelOrder"], CancelOrder]
    | tuple[Literal["momentum.ExpireOrder"], ExpireOrder]
)
ORDER_COMMAND_PAYLOAD_BRANCHES: Final = (PLACE_ORDER, CANCEL_ORDER, EXPIRE_ORDER)


class OrderCommand(TypedDict):
    """A command for one order; keyed by order id."""

    command_id: str
    order_id: str
    issued_at: datetime
    payload: OrderCommandPayload


class PaymentResult(TypedDict):
    status: PaymentStatus
    payment_id: str | None
    detail: str | None


class StockRejected(TypedDict):
    sku: str
    reason: OrderReason


class StockReserved(TypedDict):
    sku: str
    quantity: int
    unit_price: Decimal
    currency: str


OrderEventPayload: TypeAlias = (
    tuple[Literal["momentum.StockReserved"], StockReserved]
    | tuple[Literal["momentum.StockRejected"], StockRejected]
    | tuple[Literal["momentum.PaymentResult"], PaymentResult]
)
ORDER_EVENT_PAYLOAD_BRANCHES: Final = (STOCK_RESERVED, STOCK_REJECTED, PAYMENT_RESULT)


class OrderEvent(TypedDict):
    """A reply from inventory or payments to the order saga; keyed by order id."""

    event_id: str
    order_id: str
    occurred_at: datetime
    payload: OrderEventPayload


class OrderLineRecord(TypedDict):
    """One line of an order (topic order-lines, table order_lines), keyed by order_id:sku."""

    line_id: str
    order_id: str
    sku: str
    quantity: int
    unit_price: Decimal
    currency: str


class OrderLineState(TypedDict):
    sku: str
    quantity: int
    unit_price: Decimal | None
    state: LineState


class OrderRecord(TypedDict):
    """Public state of an order (topic orders, table orders). Lines travel on order-lines."""

    order_id: str
    customer_id: str
    status: OrderStatus
    reason: OrderReason | None
    total: Decimal
    currency: str | None
    line_count: int
    created_at: datetime
    updated_at: datetime


class OrderSettled(TypedDict):
    """An order reached a settled status (internal topic order-settlements, keyed by status)."""

    order_id: str
    status: OrderStatus
    total: Decimal
    currency: str | None
    # Priced lines, for sales per sku.
    lines: list[OrderLineRecord]
    settled_at: datetime


class OutboxEffect(TypedDict):
    """One effect an order's last transition asked for (orders table): sent after the state is
    stored, and sent again with its first origin when that message is handled again or the next
    transition replaces it.
    """

    kind: OutboxKind
    sku: str | None
    quantity: int | None


class OrderState(TypedDict):
    """The saga's state for one order (orders table)."""

    order_id: str
    customer_id: str
    status: OrderStatus
    reason: OrderReason | None
    lines: list[OrderLineState]
    currency: str | None
    payment_token: str
    # Fingerprint of the HTTP request that placed the order, for Idempotency-Key conflicts.
    request_hash: str
    payment_status: PaymentStatus | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    # The effects the last transition asked for (see momentum.OutboxEffect).
    outbox: list[OutboxEffect]
    # Where the message of the last transition was read; its effects carry it.
    outbox_origin: MessageOrigin | None
    # The correlation id of the request that placed the order; the expiry timer's ExpireOrder
    # carries it, so one order is one correlation id end to end.
    correlation_id: str | None
    # The W3C traceparent of the step that placed the order, when tracing is on; the expiry timer's
    # ExpireOrder continues that trace, so one order is one trace.
    trace_parent: str | None


class OrdersPerMinute(TypedDict):
    """How many orders settled with one status in one minute (topic orders-per-minute)."""

    window_id: str
    status: OrderStatus
    window_start: datetime
    window_end: datetime
    orders: int


class RefundPayment(TypedDict):
    pass


class VoidPayment(TypedDict):
    pass


PaymentCommandPayload: TypeAlias = (
    tuple[Literal["momentum.AuthorizePayment"], AuthorizePayment]
    | tuple[Literal["momentum.CapturePayment"], CapturePayment]
    | tuple[Literal["momentum.VoidPayment"], VoidPayment]
    | tuple[Literal["momentum.RefundPayment"], RefundPayment]
)
PAYMENT_COMMAND_PAYLOAD_BRANCHES: Final = (
    AUTHORIZE_PAYMENT,
    CAPTURE_PAYMENT,
    VOID_PAYMENT,
    REFUND_PAYMENT,
)


class PaymentCommand(TypedDict):
    """A command for the card provider about one order; keyed by order id. The order id is the
    idempotency key.
    """

    command_id: str
    order_id: str
    issued_at: datetime
    payload: PaymentCommandPayload


class PaymentRecord(TypedDict):
    """Public state of an order's payment (topic payments, table payments)."""

    order_id: str
    status: PaymentStatus
    payment_id: str | None
    amount: Decimal
    currency: str
    updated_at: datetime


class Product(TypedDict):
    """A catalog entry (catalog table, public products topic)."""

    sku: str
    name: str
    price: Decimal
    currency: str
    seller_id: str
    updated_at: datetime


class RejectionLog(TypedDict):
    """The latest rejected commands of one requester, oldest first, bounded (rejections table)."""

    requested_by: str
    rejections: list[CommandRejected]


class SalesPerMinute(TypedDict):
    """Units sold and revenue of one sku in one minute, from confirmed orders (topic
    sales-per-minute).
    """

    window_id: str
    sku: str
    window_start: datetime
    window_end: datetime
    units: int
    revenue: Decimal
    currency: str


class StockAlert(TypedDict):
    """Availability of a sku fell below its threshold (topic stock-alerts)."""

    sku: str
    seller_id: str | None
    available: int
    threshold: int
    occurred_at: datetime


class StockState(TypedDict):
    """Stock of one sku (inventory table): on hand, the reservations still open per order id, and
    what makes every step idempotent. Its size is bounded: open reservations, the last restock ids,
    one offset per saga input partition.
    """

    sku: str
    on_hand: int
    # Units held per open order id; removed when the order's stock is committed or released.
    reservations: dict[str, int]
    low_stock_threshold: int
    # Ids of the last restocks applied, so a redelivered restock adds nothing.
    recent_commands: list[str]
    # Per saga input partition (topic:partition), the offset of the newest saga message whose stock
    # step this sku applied: an older or equal one is a redelivery.
    applied: dict[str, int]
    updated_at: datetime


class VoidRecheck(TypedDict):
    """A void that found no payment while the order's authorization may still land (table
    void-rechecks): asked again until then.
    """

    # Epoch ms until which the void is asked again (the late-authorization window from its first
    # miss).
    deadline_ms: int
    # The correlation id of the void that found nothing; the void asked again carries it.
    correlation_id: str | None
    # The W3C traceparent of that void's step, when tracing is on; the void asked again continues
    # it.
    trace_parent: str | None


def set_cart_line(
    *,
    sku: str,
    quantity: int,
) -> tuple[Literal["momentum.SetCartLine"], SetCartLine]:
    body: SetCartLine = {"sku": sku, "quantity": quantity}
    return SET_CART_LINE, body


def remove_cart_line(*, sku: str) -> tuple[Literal["momentum.RemoveCartLine"], RemoveCartLine]:
    body: RemoveCartLine = {"sku": sku}
    return REMOVE_CART_LINE, body


def checkout_cart(
    *,
    order_id: str,
    payment: PaymentMethod,
    request_hash: str,
) -> tuple[Literal["momentum.CheckoutCart"], CheckoutCart]:
    body: CheckoutCart = {"order_id": order_id, "payment": payment, "request_hash": request_hash}
    return CHECKOUT_CART, body


def abandon_cart() -> tuple[Literal["momentum.AbandonCart"], AbandonCart]:
    return ABANDON_CART, {}


def upsert_product(
    *,
    name: str,
    price: Decimal,
    currency: str,
    seller_id: str,
    low_stock_threshold: int,
    role: Role,
    transfer_to: str | None,
) -> tuple[Literal["momentum.UpsertProduct"], UpsertProduct]:
    body: UpsertProduct = {
        "name": name,
        "price": price,
        "currency": currency,
        "seller_id": seller_id,
        "low_stock_threshold": low_stock_threshold,
        "role": role,
        "transfer_to": transfer_to,
    }
    return UPSERT_PRODUCT, body


def restock(
    *,
    quantity: int,
    requested_by: str,
    role: Role,
) -> tuple[Literal["momentum.Restock"], Restock]:
    body: Restock = {"quantity": quantity, "requested_by": requested_by, "role": role}
    return RESTOCK, body


def reserve_stock(
    *,
    order_id: str,
    quantity: int,
) -> tuple[Literal["momentum.ReserveStock"], ReserveStock]:
    body: ReserveStock = {"order_id": order_id, "quantity": quantity}
    return RESERVE_STOCK, body


def release_stock(*, order_id: str) -> tuple[Literal["momentum.ReleaseStock"], ReleaseStock]:
    body: ReleaseStock = {"order_id": order_id}
    return RELEASE_STOCK, body


def commit_stock(*, order_id: str) -> tuple[Literal["momentum.CommitStock"], CommitStock]:
    body: CommitStock = {"order_id": order_id}
    return COMMIT_STOCK, body


def return_stock(
    *,
    order_id: str,
    quantity: int,
) -> tuple[Literal["momentum.ReturnStock"], ReturnStock]:
    body: ReturnStock = {"order_id": order_id, "quantity": quantity}
    return RETURN_STOCK, body


def place_order(
    *,
    customer_id: str,
    lines: list[LineRequest],
    payment: PaymentMethod,
    request_hash: str,
) -> tuple[Literal["momentum.PlaceOrder"], PlaceOrder]:
    body: PlaceOrder = {
        "customer_id": customer_id,
        "lines": lines,
        "payment": payment,
        "request_hash": request_hash,
    }
    return PLACE_ORDER, body


def cancel_order(
    *,
    requested_by: str,
    role: Role,
) -> tuple[Literal["momentum.CancelOrder"], CancelOrder]:
    body: CancelOrder = {"requested_by": requested_by, "role": role}
    return CANCEL_ORDER, body


def expire_order() -> tuple[Literal["momentum.ExpireOrder"], ExpireOrder]:
    return EXPIRE_ORDER, {}


def stock_reserved(
    *,
    sku: str,
    quantity: int,
    unit_price: Decimal,
    currency: str,
) -> tuple[Literal["momentum.StockReserved"], StockReserved]:
    body: StockReserved = {
        "sku": sku,
        "quantity": quantity,
        "unit_price": unit_price,
        "currency": currency,
    }
    return STOCK_RESERVED, body


def stock_rejected(
    *,
    sku: str,
    reason: OrderReason,
) -> tuple[Literal["momentum.StockRejected"], StockRejected]:
    body: StockRejected = {"sku": sku, "reason": reason}
    return STOCK_REJECTED, body


def payment_result(
    *,
    status: PaymentStatus,
    payment_id: str | None,
    detail: str | None,
) -> tuple[Literal["momentum.PaymentResult"], PaymentResult]:
    body: PaymentResult = {"status": status, "payment_id": payment_id, "detail": detail}
    return PAYMENT_RESULT, body


def authorize_payment(
    *,
    amount: Decimal,
    currency: str,
    token: str,
) -> tuple[Literal["momentum.AuthorizePayment"], AuthorizePayment]:
    body: AuthorizePayment = {"amount": amount, "currency": currency, "token": token}
    return AUTHORIZE_PAYMENT, body


def capture_payment() -> tuple[Literal["momentum.CapturePayment"], CapturePayment]:
    return CAPTURE_PAYMENT, {}


def void_payment() -> tuple[Literal["momentum.VoidPayment"], VoidPayment]:
    return VOID_PAYMENT, {}


def refund_payment() -> tuple[Literal["momentum.RefundPayment"], RefundPayment]:
    return REFUND_PAYMENT, {}
