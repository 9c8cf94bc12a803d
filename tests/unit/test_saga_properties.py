"""The whole saga on an in-memory bus, under at-least-once delivery.

A model world holds the stock of a few skus, a few orders and a simulated payment
provider. Every message travels on its key's partition (inventory commands by sku,
order commands and replies by order id, payment commands by order id): per key the
order of messages is kept, across keys hypothesis interleaves them freely. A consumer
may see its last message again (a redelivery) or restart from an earlier offset (a
rebalance), as Kafka does without transactions. The rules must keep stock, orders and
payments consistent through all of it, and keep every order its customer's: another
customer's cancel, or the order's Idempotency-Key reused with another body, is refused
and changes nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from schemas import envelopes, messages
from streams.inventory import rules as stock_rules
from streams.inventory.records import origin_from_record
from streams.orders import rules as saga
from streams.orders.rules import LineState, PaymentOutcome, Reason, Status
from streams.rejections.rules import Reject, RejectionReason

KNOWN_SKUS = ("tee", "mug", "cap")
UNKNOWN_SKU = "hat"  # stock exists for it, but no product in the catalog
CATALOG = {
    "tee": stock_rules.Product("tee", "Tee", Decimal("12.50"), "BRL", "s1"),
    "mug": stock_rules.Product("mug", "Mug", Decimal("7.25"), "BRL", "s2"),
    "cap": stock_rules.Product("cap", "Cap", Decimal("0.10"), "BRL", "s1"),
}
CUSTOMER = "c1"
INTRUDER = "c2"
TTL = timedelta(minutes=10)
START = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
MAX_ORDERS = 6
DRAIN_LIMIT = 10_000

STOCK_REASONS = {Reason.OUT_OF_STOCK, Reason.UNKNOWN_SKU}
PAYMENT_REASONS = {Reason.PAYMENT_DECLINED, Reason.PAYMENT_UNAVAILABLE}
PROVIDER_ANSWERS = [
    PaymentOutcome.AUTHORIZED,
    PaymentOutcome.DECLINED,
    PaymentOutcome.UNAVAILABLE,
]

# An unknown sku now and then, mostly known ones.
ORDER_LINES = st.lists(
    st.tuples(st.sampled_from((*KNOWN_SKUS * 3, UNKNOWN_SKU)), st.integers(1, 5)),
    min_size=1,
    max_size=3,
    unique_by=lambda line: line[0],
)


# -- messages on the bus --------------------------------------------------------------------
# The real typed records (schemas.messages), in the envelopes the agents send
# (schemas.envelopes); the agents' own translation turns a reservation step's origin into
# the rule's (streams.inventory.records.origin_from_record).

InventoryCommand = messages.InventoryCommand
OrderMessage = messages.OrderCommand | messages.OrderEvent
Message = InventoryCommand | OrderMessage


def is_stock_step(message: Message) -> bool:
    return "sku" in message


def place_order_message(
    order_id: str, lines: tuple[tuple[str, int], ...], request_hash: str | None = None
) -> messages.OrderCommand:
    """`request_hash` None: the order's own request."""
    return envelopes.order_command(
        order_id,
        messages.place_order(
            customer_id=CUSTOMER,
            lines=[{"sku": sku, "quantity": quantity} for sku, quantity in lines],
            payment={"method": "card", "token": f"tok-{order_id}"},
            request_hash=request_hash or f"hash-{order_id}",
        ),
    )


def cancel_message(order_id: str, requested_by: str = CUSTOMER) -> messages.OrderCommand:
    return envelopes.order_command(
        order_id, messages.cancel_order(requested_by=requested_by, role="CUSTOMER")
    )


def expire_message(order_id: str) -> messages.OrderCommand:
    return envelopes.order_command(order_id, messages.expire_order())


def payment_message(order_id: str, outcome: PaymentOutcome) -> messages.OrderEvent:
    result = messages.payment_result(status=outcome.value, payment_id=None, detail=None)
    return envelopes.order_event(order_id, result)


def stock_step(
    sku: str, payload: messages.InventoryCommandPayload, origin: messages.MessageOrigin
) -> messages.InventoryCommand:
    return envelopes.inventory_command(sku, payload, origin=origin)


@dataclass
class Partition:
    """One key's messages: an append-only log and the consumer's position in it."""

    log: list[Message] = field(default_factory=list)
    position: int = 0
    last: int | None = None  # the message processed most recently
    last_output: list[object] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return self.position < len(self.log)


@dataclass
class Card:
    """The payment provider's view of one order: its commands, in order, and what it did."""

    commands: list[saga.Effect] = field(default_factory=list)
    position: int = 0
    answer: PaymentOutcome | None = None
    captures: int = 0
    voided: bool = False
    refunded: bool = False

    @property
    def head(self) -> saga.Effect | None:
        return self.commands[self.position] if self.position < len(self.commands) else None

    @property
    def authorized(self) -> bool:
        return self.answer is PaymentOutcome.AUTHORIZED


def sku_key(sku: str) -> str:
    return f"sku:{sku}"


def order_key(order_id: str) -> str:
    return f"order:{order_id}"


def key_of(message: Message) -> str:
    if is_stock_step(message):
        return sku_key(message["sku"])
    return order_key(message["order_id"])


def saga_partition(order_id: str) -> int:
    """Each order's messages sit on a saga partition of their own in this world."""
    return int(order_id.removeprefix("o"))


class SagaWorld(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = START
        self.stocks = {sku: stock_rules.Stock(sku) for sku in (*KNOWN_SKUS, UNKNOWN_SKU)}
        self.partitions = {sku_key(sku): Partition() for sku in self.stocks}
        self.orders: dict[str, saga.Order] = {}
        self.placed: dict[str, tuple[tuple[str, int], ...]] = {}
        self.cards: dict[str, Card] = {}
        self.cancelled: set[str] = set()
        self.final_answer = PaymentOutcome.AUTHORIZED
        self.ids = 0
        # Restocks: everything asked for, and what was delivered (once per command id).
        self.restocks_sent: Counter[str] = Counter()
        self.restocked: Counter[str] = Counter()
        self.restocks_seen: set[str] = set()
        # Stock movements per (order id, sku), as the inventory state shows them.
        self.held: Counter[tuple[str, str]] = Counter()
        self.released: Counter[tuple[str, str]] = Counter()
        self.committed: Counter[tuple[str, str]] = Counter()
        self.returned: Counter[tuple[str, str]] = Counter()
        # Payment effects the saga asked for, per order.
        self.authorizations: Counter[str] = Counter()
        self.capture_requests: Counter[str] = Counter()
        # Commands the saga must refuse, and the refusals it sent, per (order id, reason).
        self.refusals_due: Counter[tuple[str, RejectionReason]] = Counter()
        self.refusals: Counter[tuple[str, RejectionReason]] = Counter()

    # -- rules ------------------------------------------------------------------------------

    @initialize(
        quantities=st.tuples(*(st.integers(0, 12) for _ in KNOWN_SKUS)),
        final_answer=st.sampled_from(PROVIDER_ANSWERS),
    )
    def opening_stock(self, quantities: tuple[int, ...], final_answer: PaymentOutcome) -> None:
        self.final_answer = final_answer
        for sku, quantity in zip(KNOWN_SKUS, quantities, strict=True):
            if quantity:
                self.restock(sku, quantity)
                self.deliver_next(sku_key(sku))

    @precondition(lambda self: len(self.placed) < MAX_ORDERS)
    @rule(lines=ORDER_LINES)
    def place_order(self, lines: list[tuple[str, int]]) -> None:
        order_id = f"o{len(self.placed)}"
        self.placed[order_id] = tuple(lines)
        self.partitions[order_key(order_id)] = Partition()
        self.cards[order_id] = Card()
        self.send(place_order_message(order_id, tuple(lines)))

    @rule(sku=st.sampled_from(KNOWN_SKUS), quantity=st.integers(1, 6))
    def restock(self, sku: str, quantity: int) -> None:
        self.ids += 1
        self.restocks_sent[sku] += quantity
        restock = messages.restock(quantity=quantity, requested_by="s1", role="ADMIN")
        self.send(envelopes.inventory_command(sku, restock, command_id=f"restock-{self.ids}"))

    @precondition(lambda self: self.deliverable())
    @rule(data=st.data(), count=st.integers(1, 20))
    def deliver(self, data: st.DataObject, count: int) -> None:
        """Consumers make progress: `count` messages, each from a key hypothesis picks."""
        for _ in range(count):
            keys = self.deliverable()
            if not keys:
                return
            key = data.draw(st.sampled_from(keys), label="key")
            if key.startswith("pay:") and isinstance(self.cards[key[4:]].head, saga.Authorize):
                # The provider answers an authorization as it pleases.
                self.answer(key[4:], data.draw(st.sampled_from(PROVIDER_ANSWERS), "answer"))
            else:
                self.deliver_next(key)
            self.check_all_invariants()

    @precondition(lambda self: self.delivered_keys())
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        """The consumer sees the message it processed last once more: nothing may change."""
        key = data.draw(st.sampled_from(self.delivered_keys()), label="key")
        partition = self.partitions[key]
        assert partition.last is not None
        message = partition.log[partition.last]
        before = self.state_of(message)
        output = self.process(message, self.origin(key, partition.last))
        assert self.state_of(message) == before, f"a duplicate {message} changed its key's state"
        if is_stock_step(message):
            assert output == partition.last_output, f"a duplicate {message} answered differently"
        else:
            asked_again = [
                e for e in output if not isinstance(e, saga.Release | saga.Void | Reject)
            ]
            assert asked_again == [], f"a duplicate {message} asked for {asked_again}"

    @precondition(lambda self: self.rewindable_keys())
    @rule(data=st.data(), back=st.integers(1, 4))
    def rebalance(self, data: st.DataObject, back: int) -> None:
        """The consumer restarts from an earlier offset and processes those messages again."""
        partition = self.partitions[data.draw(st.sampled_from(self.rewindable_keys()), "key")]
        partition.position = max(0, partition.position - back)

    @precondition(lambda self: self.not_cancelled())
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """The customer cancels, once (its redeliveries come from the bus)."""
        order_id = data.draw(st.sampled_from(self.not_cancelled()), label="order")
        self.cancelled.add(order_id)
        self.send(cancel_message(order_id))

    @precondition(lambda self: self.placed)
    @rule(data=st.data())
    def intruder_cancels(self, data: st.DataObject) -> None:
        """Another customer asks to cancel an order (issue 7: B cancelled A's order)."""
        order_id = data.draw(st.sampled_from(sorted(self.placed)), label="order")
        self.refusals_due[(order_id, RejectionReason.UNKNOWN_ORDER)] += 1
        self.send(cancel_message(order_id, requested_by=INTRUDER))

    @precondition(lambda self: self.placed)
    @rule(data=st.data(), lines=ORDER_LINES)
    def key_reused(self, data: st.DataObject, lines: list[tuple[str, int]]) -> None:
        """The customer reuses an order's Idempotency-Key with another body."""
        order_id = data.draw(st.sampled_from(sorted(self.placed)), label="order")
        self.refusals_due[(order_id, RejectionReason.IDEMPOTENCY_KEY_REUSED)] += 1
        self.send(place_order_message(order_id, tuple(lines), request_hash=f"other-{order_id}"))

    @rule(minutes=st.integers(1, 5))
    def time_passes(self, minutes: int) -> None:
        """The clock moves on; the expiry timer asks the saga to expire every overdue order."""
        self.clock += timedelta(minutes=minutes)
        for order_id in self.overdue():
            self.send(expire_message(order_id))

    # -- the bus and the agents -----------------------------------------------------------------

    def send(self, message: Message) -> None:
        self.partitions[key_of(message)].log.append(message)

    def not_cancelled(self) -> list[str]:
        return sorted(self.placed.keys() - self.cancelled)

    def deliverable(self) -> list[str]:
        busy_cards = [order_id for order_id, card in self.cards.items() if card.head is not None]
        return self.pending_keys() + [f"pay:{order_id}" for order_id in sorted(busy_cards)]

    def pending_keys(self) -> list[str]:
        return sorted(key for key, partition in self.partitions.items() if partition.pending)

    def delivered_keys(self) -> list[str]:
        return sorted(key for key, p in self.partitions.items() if p.last is not None)

    def rewindable_keys(self) -> list[str]:
        return sorted(key for key, partition in self.partitions.items() if partition.position)

    def overdue(self) -> list[str]:
        return sorted(
            order_id
            for order_id, order in self.orders.items()
            if saga.is_open_past_deadline(order, self.clock)
        )

    def deliver_next(self, key: str) -> None:
        if key.startswith("pay:"):
            self.provider_step(key.removeprefix("pay:"))
            return
        partition = self.partitions[key]
        partition.last = partition.position
        partition.position += 1
        partition.last_output = self.process(
            partition.log[partition.last], self.origin(key, partition.last)
        )

    def state_of(self, message: Message) -> object:
        if is_stock_step(message):
            return self.stocks[message["sku"]]
        return self.orders.get(message["order_id"])

    def origin(self, key: str, position: int) -> messages.MessageOrigin | None:
        """Where a saga message was read, as the order agent stamps it (origin_of)."""
        if not key.startswith("order:"):
            return None
        order_id = key.removeprefix("order:")
        return {"topic": "order", "partition": saga_partition(order_id), "offset": position}

    def process(self, message: Message, origin: messages.MessageOrigin | None) -> list[object]:
        if is_stock_step(message):
            return list(self.apply_to_stock(message))
        assert origin is not None
        return list(self.apply_to_order(message, origin))

    def apply_to_stock(self, message: InventoryCommand) -> list[stock_rules.Reservation]:
        """The inventory agent: look up the sku's stock, call the rule, store, reply."""
        sku = message["sku"]
        before = self.stocks[sku]
        origin = origin_from_record(message["origin"])
        replies: list[stock_rules.Reservation] = []
        match message["payload"]:
            case (messages.RESTOCK, payload):
                command_id = message["command_id"]
                after = stock_rules.restock(before, command_id, payload["quantity"])
                if command_id not in self.restocks_seen:
                    self.restocks_seen.add(command_id)
                    self.restocked[sku] += payload["quantity"]
            case (messages.RESERVE_STOCK, payload):
                order_id, quantity = payload["order_id"], payload["quantity"]
                after, decision = stock_rules.decide_reservation(
                    before, CATALOG.get(sku), order_id, quantity, origin
                )
                replies.append(decision)
                new_hold = order_id in after.reservations and order_id not in before.reservations
                if isinstance(decision, stock_rules.Granted):
                    assert decision.quantity == quantity
                    if new_hold:
                        assert quantity <= before.available, "granted beyond available stock"
                    reply: messages.OrderEventPayload = messages.stock_reserved(
                        sku=sku,
                        quantity=decision.quantity,
                        unit_price=decision.unit_price,
                        currency=decision.currency,
                    )
                else:
                    assert not new_hold, "refused but held"
                    reply = messages.stock_rejected(sku=sku, reason=decision.reason.value)
                self.send(envelopes.order_event(order_id, reply))
            case (messages.RELEASE_STOCK, payload):
                after = stock_rules.release(before, payload["order_id"], origin)
            case (messages.COMMIT_STOCK, payload):
                after = stock_rules.commit(before, payload["order_id"], origin)
            case (messages.RETURN_STOCK, payload):
                after = stock_rules.return_stock(
                    before, payload["order_id"], payload["quantity"], origin
                )
            case (kind, _):
                raise AssertionError(f"no inventory command {kind} on this bus")
        self.account(message, before, after)
        self.stocks[sku] = after
        return replies

    def account(
        self, message: InventoryCommand, before: stock_rules.Stock, after: stock_rules.Stock
    ) -> None:
        """Count each order's units held, released, committed and returned at this sku.

        The sku keeps no record of committed orders, so the movements are read from the
        step and the change it made.
        """
        kind, payload = message["payload"]
        if kind == messages.RESTOCK:
            return
        order_id = payload["order_id"]
        key = (order_id, message["sku"])
        was_held = before.reservations.get(order_id)
        now_held = after.reservations.get(order_id)
        moved = after.on_hand - before.on_hand
        match kind:
            case messages.RESERVE_STOCK:
                assert moved == 0
                if was_held is None and now_held is not None:
                    self.held[key] += now_held
                    if self.held[key] > now_held:
                        event("a replayed reserve held stock again")
            case messages.RELEASE_STOCK:
                assert moved == 0
                if was_held is not None and now_held is None:
                    self.released[key] += was_held
            case messages.COMMIT_STOCK:
                if was_held is not None and now_held is None:
                    assert moved == -was_held, "a commit took other than the held units"
                    self.committed[key] += was_held
                else:
                    assert moved == 0
            case messages.RETURN_STOCK:
                assert after.reservations == before.reservations
                self.returned[key] += moved

    def net_committed(self, sku: str) -> dict[str, int]:
        """Units each order has committed at `sku` and not had returned (zeros left out)."""
        net = {
            order_id: self.committed[(order_id, s)] - self.returned[(order_id, s)]
            for order_id, s in self.committed
            if s == sku
        }
        return {order_id: units for order_id, units in net.items() if units}

    def apply_to_order(
        self, message: OrderMessage, origin: messages.MessageOrigin
    ) -> list[saga.Effect]:
        """The order agent: look up the order, call the saga rule, store, carry out effects."""
        order_id = message["order_id"]
        before = self.orders.get(order_id)
        now = self.clock
        match message["payload"]:
            case (messages.PLACE_ORDER, payload):
                after, effects = saga.place_order(
                    before,
                    order_id=order_id,
                    customer_id=payload["customer_id"],
                    lines=[(line["sku"], line["quantity"]) for line in payload["lines"]],
                    payment_token=payload["payment"]["token"],
                    request_hash=payload["request_hash"],
                    now=now,
                    ttl=TTL,
                )
            case (messages.STOCK_RESERVED, payload):
                after, effects = saga.apply_stock_reserved(
                    before, payload["sku"], payload["unit_price"], payload["currency"], now
                )
            case (messages.STOCK_REJECTED, payload):
                after, effects = saga.apply_stock_rejected(
                    before, payload["sku"], Reason(payload["reason"]), now
                )
            case (messages.PAYMENT_RESULT, payload):
                after, effects = saga.apply_payment(before, PaymentOutcome(payload["status"]), now)
            case (messages.CANCEL_ORDER, payload):
                after, effects = saga.cancel_order(
                    before,
                    requested_by=payload["requested_by"],
                    is_admin=payload["role"] == "ADMIN",
                    now=now,
                )
            case (messages.EXPIRE_ORDER, _):
                after, effects = saga.expire_order(before, now)
            case (kind, _):
                raise AssertionError(f"no order message {kind} on this bus")
        assert after is not None, f"{message} for an order never placed"
        if before is not None and before.settled:
            allowed = {before.status}
            if before.status is Status.CONFIRMED:
                allowed.add(Status.CANCELLED)  # a customer may cancel a confirmed order
            assert after.status in allowed, f"settled {before.status} became {after.status}"
        # What makes the origin enough to spot a repeated step (streams.inventory.rules): one
        # message sends at most one step to a sku.
        steps = [e.sku for e in effects if isinstance(e, saga.Reserve | saga.Release | saga.Commit)]
        steps += [e.sku for e in effects if isinstance(e, saga.Return)]
        assert len(steps) == len(set(steps)), f"{message} sent two steps to one sku: {effects}"
        self.orders[order_id] = after
        for effect in effects:
            self.carry_out(after, effect, origin)
        return effects

    def carry_out(
        self, order: saga.Order, effect: saga.Effect, origin: messages.MessageOrigin
    ) -> None:
        order_id = order.order_id
        match effect:
            case saga.Reserve(sku, quantity):
                step = messages.reserve_stock(order_id=order_id, quantity=quantity)
                self.send(stock_step(sku, step, origin))
            case saga.Release(sku):
                self.send(stock_step(sku, messages.release_stock(order_id=order_id), origin))
            case saga.Commit(sku):
                self.send(stock_step(sku, messages.commit_stock(order_id=order_id), origin))
            case saga.Return(sku, quantity):
                step = messages.return_stock(order_id=order_id, quantity=quantity)
                self.send(stock_step(sku, step, origin))
            case saga.Authorize(amount, currency, token):
                self.authorizations[order_id] += 1
                assert self.authorizations[order_id] == 1, f"{order_id} authorized twice"
                assert (amount, currency, token) == (
                    self.expected_total(order_id),
                    "BRL",
                    f"tok-{order_id}",
                )
                self.cards[order_id].commands.append(effect)
            case saga.Capture():
                self.capture_requests[order_id] += 1
                assert self.capture_requests[order_id] == 1, f"{order_id} captured twice"
                assert self.cards[order_id].authorized, f"{order_id} captured, never authorized"
                self.cards[order_id].commands.append(effect)
            case saga.Void() | saga.Refund():
                self.cards[order_id].commands.append(effect)
            case saga.Publish():
                pass
            case Reject(reason):
                self.refusals[(order_id, reason)] += 1

    def expected_total(self, order_id: str) -> Decimal:
        return sum(
            (CATALOG[sku].price * quantity for sku, quantity in self.placed[order_id]),
            Decimal("0.00"),
        )

    # -- the payment provider -------------------------------------------------------------------

    def awaiting_answer(self) -> list[str]:
        return sorted(o for o, card in self.cards.items() if isinstance(card.head, saga.Authorize))

    def provider_work(self) -> list[str]:
        return sorted(
            order_id
            for order_id, card in self.cards.items()
            if card.head is not None and not isinstance(card.head, saga.Authorize)
        )

    def answer(self, order_id: str, outcome: PaymentOutcome) -> None:
        card = self.cards[order_id]
        card.position += 1
        card.answer = outcome
        self.send(payment_message(order_id, outcome))

    def provider_step(self, order_id: str) -> None:
        card = self.cards[order_id]
        command = card.head
        card.position += 1
        match command:
            case saga.Capture():
                assert card.authorized and not card.voided, f"{order_id}: capture without a hold"
                card.captures += 1
                self.send(payment_message(order_id, PaymentOutcome.CAPTURED))
            case saga.Void():
                assert card.captures == 0, f"{order_id}: void after capture"
                card.voided = card.authorized
                self.send(payment_message(order_id, PaymentOutcome.VOIDED))
            case saga.Refund():
                assert card.captures == 1, f"{order_id}: refund without a capture"
                card.refunded = True
                self.send(payment_message(order_id, PaymentOutcome.REFUNDED))

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def stock_is_never_oversold(self) -> None:
        for sku, stock in self.stocks.items():
            assert stock.on_hand >= 0, stock
            assert stock.available >= 0, stock
            assert stock.reserved <= stock.on_hand, stock
            assert all(q > 0 for q in stock.reservations.values())
            # Units only leave on hand by commit and come back by return.
            committed = sum(self.net_committed(sku).values())
            assert stock.on_hand + committed == self.restocked[sku], stock
            # The row is bounded: open holds, and one offset per saga partition that sent a step.
            assert set(stock.applied) <= {
                f"order:{saga_partition(order_id)}" for order_id in self.placed
            }

    @invariant()
    def stock_movements_add_up(self) -> None:
        for key in self.held | self.released | self.committed | self.returned:
            assert self.released[key] + self.committed[key] <= self.held[key], key
            assert self.returned[key] <= self.committed[key], key

    @invariant()
    def every_order_is_in_one_consistent_status(self) -> None:
        for order_id, order in self.orders.items():
            assert order.status in Status
            states = {line.state for line in order.lines}
            for line in order.lines:
                if line.state in (LineState.RESERVED, LineState.COMMITTED, LineState.RETURNED):
                    assert line.unit_price == CATALOG[line.sku].price, (order_id, line)
            match order.status:
                case Status.PENDING:
                    assert LineState.REQUESTED in states, order
                    assert states <= {LineState.REQUESTED, LineState.RESERVED}, order
                    assert order.reason is None, order
                case Status.RESERVED:
                    assert states == {LineState.RESERVED} and order.reason is None, order
                case Status.CONFIRMED:
                    assert states == {LineState.COMMITTED} and order.reason is None, order
                case Status.CANCELLED:
                    assert order.reason is Reason.CUSTOMER_CANCELLED, order
                    assert states in ({LineState.RETURNED}, {LineState.RELEASED}), order
                case Status.EXPIRED:
                    assert order.reason is Reason.RESERVATION_EXPIRED, order
                    assert states == {LineState.RELEASED}, order
                case Status.REJECTED:
                    assert order.reason in STOCK_REASONS | PAYMENT_REASONS, order
                    refused = [line for line in order.lines if line.state is LineState.REJECTED]
                    assert len(refused) == (1 if order.reason in STOCK_REASONS else 0), order
                    assert states <= {LineState.RELEASED, LineState.REJECTED}, order

    @invariant()
    def orders_stay_their_customers(self) -> None:
        for order_id, order in self.orders.items():
            # As placed first, whatever came with the same id since.
            assert order.customer_id == CUSTOMER, order
            assert tuple((line.sku, line.quantity) for line in order.lines) == self.placed[order_id]
            if order.status is Status.CANCELLED:
                assert order_id in self.cancelled, f"{order_id} cancelled by someone else"

    @invariant()
    def at_most_one_charge(self) -> None:
        for order_id, card in self.cards.items():
            assert self.authorizations[order_id] <= 1
            assert self.capture_requests[order_id] <= 1
            assert card.captures <= 1
            assert not (card.captures and card.voided), order_id
            assert card.captures or not card.refunded, order_id

    # -- the end: drain, expire what is open, drain, and count --------------------------------

    def drain(self) -> None:
        for _ in range(DRAIN_LIMIT):
            keys, work = self.pending_keys(), self.provider_work()
            if not keys and not work:
                return
            for key in keys:
                self.deliver_next(key)
            for order_id in work:
                self.provider_step(order_id)
            self.check_all_invariants()
        raise AssertionError("messages kept coming: the saga does not quiesce")

    def check_all_invariants(self) -> None:
        self.stock_is_never_oversold()
        self.stock_movements_add_up()
        self.every_order_is_in_one_consistent_status()
        self.orders_stay_their_customers()
        self.at_most_one_charge()

    def teardown(self) -> None:
        self.drain()
        assert self.orders.keys() == self.placed.keys()
        awaiting = set(self.awaiting_answer())
        for order_id, order in self.orders.items():
            # All messages delivered: an order is settled, or reserved and awaiting payment.
            if not order.settled:
                assert order.status is Status.RESERVED and order_id in awaiting, order

        if self.orders:
            self.clock = max(o.expires_at for o in self.orders.values()) + timedelta(seconds=1)
        for order_id in self.overdue():
            self.send(expire_message(order_id))
        self.drain()
        for order_id in self.awaiting_answer():
            self.answer(order_id, self.final_answer)
        self.drain()
        assert not self.awaiting_answer()

        for order_id, order in self.orders.items():
            assert order.settled, order
            event(f"settled {order.status} {order.reason}")
            card = self.cards[order_id]
            returned = order.status is Status.CANCELLED and all(
                line.state is LineState.RETURNED for line in order.lines
            )
            if order.status is Status.CONFIRMED:
                assert (card.authorized, card.captures, card.voided, card.refunded) == (
                    True,
                    1,
                    False,
                    False,
                ), order_id
            elif returned:
                assert (card.captures, card.refunded) == (1, True), order_id
            else:
                assert card.captures == 0, order_id
                assert card.voided or not card.authorized, f"{order_id}: hold left on the card"

        for due, count in self.refusals_due.items():
            # Each refused command was told at least once (more when redelivered).
            assert self.refusals[due] >= count, due

        for sku, stock in self.stocks.items():
            assert stock.reservations == {}, f"{sku} still holds {stock.reservations}"
            confirmed = {
                order_id: quantity
                for order_id, lines in self.placed.items()
                for line_sku, quantity in lines
                if line_sku == sku and self.orders[order_id].status is Status.CONFIRMED
            }
            assert self.net_committed(sku) == confirmed, sku
            assert stock.on_hand + sum(confirmed.values()) == self.restocks_sent[sku], sku


SagaWorld.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestSaga = SagaWorld.TestCase
