"""Every topic Momentum uses: its name, key, value schema and who reads it.

This registry is the one place topics are named. The workers, the gateway, the
launcher (which creates the topics), the sink and the tests all read it.
Internal topics have UTF-8 string keys; public topics, read by analysts and
Kafka Connect, carry Avro keys and values in the Confluent wire format.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from core.kafka_clients import registry_auth
from core.settings import get_settings
from schemas.codec import AvroCodec
from schemas.registry import SchemaRegistryClient
from schemas.serdes import Serdes

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    value_record: str
    key: str  # what the key is, e.g. "sku"
    public: bool = False
    compacted: bool = False
    description: str = ""
    # None: the settings' partition count.
    partitions: int | None = None

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX

    @property
    def key_subject(self) -> str:
        return f"{self.name}-key"

    @property
    def value_subject(self) -> str:
        return f"{self.name}-value"


# Commands and saga events (internal; UTF-8 keys).
INVENTORY_COMMANDS = TopicSpec(
    "inventory-commands",
    "InventoryCommand",
    "sku",
    description="catalog upserts, restocks and reservation steps for one sku",
)
ORDER_COMMANDS = TopicSpec(
    "order-commands",
    "OrderCommand",
    "order_id",
    description="place, cancel and expire orders",
)
ORDER_EVENTS = TopicSpec(
    "order-events",
    "OrderEvent",
    "order_id",
    description="replies from inventory and payments to the order saga",
)
PAYMENT_COMMANDS = TopicSpec(
    "payment-commands",
    "PaymentCommand",
    "order_id",
    description="authorize, capture, void and refund, one order at a time",
)
CART_COMMANDS = TopicSpec(
    "cart-commands",
    "CartCommand",
    "cart_id",
    description="set and remove cart lines, check out, abandon",
)
STOCK_ALERTS = TopicSpec(
    "stock-alerts",
    "StockAlert",
    "sku",
    description="a sku's availability fell below its threshold",
)
CART_EVENTS = TopicSpec(
    "cart-events",
    "CartAbandoned",
    "cart_id",
    description="carts marked abandoned after idling",
)
COMMAND_REJECTIONS = TopicSpec(
    "command-rejections",
    "CommandRejected",
    "requested_by",
    description="client commands refused by the agent that owns their state, with the reason",
)
ORDER_SETTLEMENTS = TopicSpec(
    "order-settlements",
    "OrderSettled",
    "status",
    description="orders reaching a settled status, for the per-minute analytics",
    # One partition: the analytics agent's windowed tables (by sku, by status)
    # then live in one place and stay co-partitioned with this topic.
    partitions=1,
)

# Public state (Avro keys and values; compacted: the latest record per key is the state).
ORDERS = TopicSpec(
    "orders",
    "OrderRecord",
    "order_id",
    public=True,
    compacted=True,
    description="every state change of every order",
)
ORDER_LINES = TopicSpec(
    "order-lines",
    "OrderLineRecord",
    "line_id",
    public=True,
    compacted=True,
    description="priced lines of orders, keyed order_id:sku",
)
INVENTORY = TopicSpec(
    "inventory",
    "InventoryRecord",
    "sku",
    public=True,
    compacted=True,
    description="stock on hand, reserved and available per sku",
)
PAYMENTS = TopicSpec(
    "payments",
    "PaymentRecord",
    "order_id",
    public=True,
    compacted=True,
    description="payment state per order",
)
PRODUCTS = TopicSpec(
    "products",
    "Product",
    "sku",
    public=True,
    compacted=True,
    description="the catalog: name, price and seller per sku",
)
CARTS = TopicSpec(
    "carts",
    "CartState",
    "cart_id",
    public=True,
    compacted=True,
    description="cart contents and status per cart",
)
NOTIFICATIONS = TopicSpec(
    "notifications",
    "Notification",
    "recipient",
    public=True,
    description="messages for customers and sellers",
)
SALES_PER_MINUTE = TopicSpec(
    "sales-per-minute",
    "SalesPerMinute",
    "window_id",
    public=True,
    compacted=True,
    description="units and revenue per sku per minute (tumbling), keyed sku@window_start",
)
ORDERS_PER_MINUTE = TopicSpec(
    "orders-per-minute",
    "OrdersPerMinute",
    "window_id",
    public=True,
    compacted=True,
    description="settled orders per status per minute (tumbling), keyed status@window_start",
)

COMMAND_TOPICS = (
    INVENTORY_COMMANDS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
    PAYMENT_COMMANDS,
    CART_COMMANDS,
    STOCK_ALERTS,
    CART_EVENTS,
    COMMAND_REJECTIONS,
    ORDER_SETTLEMENTS,
)
PUBLIC_TOPICS = (
    ORDERS,
    ORDER_LINES,
    INVENTORY,
    PAYMENTS,
    PRODUCTS,
    CARTS,
    NOTIFICATIONS,
    SALES_PER_MINUTE,
    ORDERS_PER_MINUTE,
)
ALL_TOPICS = COMMAND_TOPICS + PUBLIC_TOPICS
BY_NAME = {t.name: t for t in ALL_TOPICS}


def topic_names(include_dlq: bool = True) -> list[str]:
    names = [t.name for t in ALL_TOPICS]
    if include_dlq:
        names += [t.dlq for t in ALL_TOPICS]
    return names


@cache
def get_serdes() -> Serdes:
    settings = get_settings()
    return Serdes(SchemaRegistryClient(settings.schema_registry_url, auth=registry_auth(settings)))


def value_codec(topic: TopicSpec, serdes: Serdes | None = None) -> AvroCodec:
    return (serdes or get_serdes()).codec(topic.value_subject, topic.value_record)


def key_codec(topic: TopicSpec, serdes: Serdes | None = None) -> AvroCodec:
    """Avro string keys, for public topics only."""
    return (serdes or get_serdes()).codec(topic.key_subject, "string")


def register_all(serdes: Serdes | None = None) -> None:
    """Register every topic's subjects (start-up; fails fast if the registry is away)."""
    for topic in ALL_TOPICS:
        value_codec(topic, serdes)
        if topic.public:
            key_codec(topic, serdes)
