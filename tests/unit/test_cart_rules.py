"""Cart transitions: ownership, line limits, checkout once, abandon when idle, repeats."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import RuleError
from streams.carts.rules import (
    MAX_LINES,
    MAX_QUANTITY,
    Abandoned,
    Cart,
    Outcome,
    Payment,
    PlaceOrder,
    Publish,
    Status,
    abandon,
    check_out,
    is_idle,
    remove_line,
    set_line,
)
from streams.rejections.rules import Reject, RejectionReason

CLOSED = Reject(RejectionReason.CART_CLOSED)
NOT_YOURS = Reject(RejectionReason.CART_OF_ANOTHER_CUSTOMER)
EMPTY = Reject(RejectionReason.CART_EMPTY)

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
IDLE = timedelta(hours=1)
CARD = Payment("card", "tok_visa")


def cart(
    items: dict[str, int] | None = None,
    status: Status = Status.OPEN,
    order_id: str | None = None,
    updated_at: datetime = T0,
) -> Cart:
    return Cart(
        cart_id="c1",
        customer_id="alice",
        status=status,
        created_at=T0,
        updated_at=updated_at,
        items=dict(items if items is not None else {"tee": 2}),
        order_id=order_id,
    )


def put(before: Cart | None, sku: str = "tee", quantity: int = 3, who: str = "alice") -> Outcome:
    return set_line(before, cart_id="c1", customer_id=who, sku=sku, quantity=quantity, now=T1)


def checkout(before: Cart | None, order_id: str = "o1", who: str = "alice") -> Outcome:
    return check_out(
        before, customer_id=who, order_id=order_id, payment=CARD, request_hash="h1", now=T1
    )


def place(lines: tuple[tuple[str, int], ...], order_id: str = "o1") -> PlaceOrder:
    return PlaceOrder(order_id, "alice", lines, CARD, "h1")


# -- set and remove -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "sku", "quantity", "expected"),
    [
        pytest.param(
            None,
            "tee",
            2,
            (Cart("c1", "alice", Status.OPEN, T1, T1, {"tee": 2}), [Publish()]),
            id="first-line-creates-the-cart",
        ),
        pytest.param(
            cart(),
            "mug",
            1,
            (cart({"tee": 2, "mug": 1}, updated_at=T1), [Publish()]),
            id="adds-a-line",
        ),
        pytest.param(
            cart(), "tee", 5, (cart({"tee": 5}, updated_at=T1), [Publish()]), id="sets-not-adds"
        ),
        pytest.param(cart(), "tee", 2, (cart(), []), id="same-quantity-changes-nothing"),
        pytest.param(
            cart(status=Status.CHECKED_OUT, order_id="o1"),
            "mug",
            1,
            (cart(status=Status.CHECKED_OUT, order_id="o1"), [CLOSED]),
            id="checked-out-is-frozen",
        ),
        pytest.param(
            cart(status=Status.ABANDONED),
            "tee",
            9,
            (cart(status=Status.ABANDONED), [CLOSED]),
            id="abandoned-is-frozen",
        ),
        pytest.param(
            cart(status=Status.CHECKED_OUT, order_id="o1"),
            "tee",
            2,
            (cart(status=Status.CHECKED_OUT, order_id="o1"), []),
            id="closed-but-already-so-is-not-refused",
        ),
        pytest.param(
            cart({"tee": 1}),
            "tee",
            MAX_QUANTITY,
            (cart({"tee": MAX_QUANTITY}, updated_at=T1), [Publish()]),
            id="max-quantity",
        ),
    ],
)
def test_set_line(before: Cart | None, sku: str, quantity: int, expected: Outcome) -> None:
    assert put(before, sku, quantity) == expected


@pytest.mark.parametrize("quantity", [0, -1, MAX_QUANTITY + 1])
def test_set_line_refuses_quantities_outside_1_to_1000(quantity: int) -> None:
    with pytest.raises(RuleError, match="quantity"):
        put(cart(), quantity=quantity)


def test_set_line_refuses_a_line_beyond_the_limit_but_changes_existing_ones() -> None:
    full = cart({f"sku-{i}": 1 for i in range(MAX_LINES)})
    assert put(full, "one-more", 1) == (full, [Reject(RejectionReason.CART_FULL)])
    changed, effects = put(full, "sku-0", 7)
    assert changed is not None and changed.items["sku-0"] == 7
    assert effects == [Publish()]


@pytest.mark.parametrize(
    ("before", "sku", "expected"),
    [
        pytest.param(None, "tee", (None, []), id="unknown-cart-is-not-created"),
        pytest.param(
            cart({"tee": 2, "mug": 1}),
            "tee",
            (cart({"mug": 1}, updated_at=T1), [Publish()]),
            id="removes-the-line",
        ),
        pytest.param(cart(), "mug", (cart(), []), id="absent-sku-changes-nothing"),
        pytest.param(
            cart(status=Status.CHECKED_OUT, order_id="o1"),
            "tee",
            (cart(status=Status.CHECKED_OUT, order_id="o1"), [CLOSED]),
            id="checked-out-is-frozen",
        ),
        pytest.param(
            cart(status=Status.CHECKED_OUT, order_id="o1"),
            "mug",
            (cart(status=Status.CHECKED_OUT, order_id="o1"), []),
            id="closed-and-absent-is-not-refused",
        ),
    ],
)
def test_remove_line(before: Cart | None, sku: str, expected: Outcome) -> None:
    assert remove_line(before, customer_id="alice", sku=sku, now=T1) == expected


# -- ownership ----------------------------------------------------------------------------

OTHER_CUSTOMER = [
    pytest.param(lambda c: put(c, who="bob"), id="set"),
    pytest.param(lambda c: put(c, quantity=2, who="bob"), id="set-same-quantity"),
    pytest.param(lambda c: remove_line(c, customer_id="bob", sku="tee", now=T1), id="remove"),
    pytest.param(
        lambda c: remove_line(c, customer_id="bob", sku="cap", now=T1), id="remove-absent"
    ),
    pytest.param(lambda c: checkout(c, who="bob"), id="checkout"),
]


@pytest.mark.parametrize("command", OTHER_CUSTOMER)
@pytest.mark.parametrize("status", list(Status))
def test_commands_from_another_customer_are_refused(
    command: Callable[[Cart], Outcome], status: Status
) -> None:
    before = cart(status=status, order_id="o1" if status is Status.CHECKED_OUT else None)
    assert command(before) == (before, [NOT_YOURS])


def test_abandon_naming_another_customer_is_a_bug_for_the_dead_letters() -> None:
    # Only the idle-cart timer abandons, with the stored owner.
    with pytest.raises(RuleError, match="another customer"):
        abandon(cart(), customer_id="bob", now=T0 + 2 * IDLE, idle=IDLE)


def test_a_cart_is_owned_by_the_customer_whose_line_created_it() -> None:
    """Issue 7: B checks out cart id cartX before it exists, then A fills and checks it out."""
    squatted, refused = checkout(None, who="bob")
    assert (squatted, refused) == (None, [EMPTY])  # no cart, so nothing for bob to own
    created, _ = put(None, who="alice")
    assert created is not None and created.customer_id == "alice"
    assert put(created, "mug", 1, who="bob") == (created, [NOT_YOURS])
    checked_out, effects = checkout(created, who="alice")
    assert checked_out is not None and checked_out.status is Status.CHECKED_OUT
    assert [e.customer_id for e in effects if isinstance(e, PlaceOrder)] == ["alice"]
    assert checkout(checked_out, who="bob") == (checked_out, [NOT_YOURS])


# -- checkout -----------------------------------------------------------------------------


def test_checkout_places_one_order_with_the_lines_sorted_by_sku() -> None:
    before = cart({"tee": 2, "mug": 1})
    after, effects = checkout(before)
    assert after == replace(before, status=Status.CHECKED_OUT, order_id="o1", updated_at=T1)
    assert effects == [place((("mug", 1), ("tee", 2))), Publish()]


def test_repeated_checkout_resends_the_same_order_and_changes_nothing() -> None:
    after, _ = checkout(cart())
    again, effects = checkout(after)
    assert again is after
    # The saga applies one PlaceOrder per order id; no new public state either.
    assert effects == [place((("tee", 2),))]


@pytest.mark.parametrize(
    ("before", "reason"),
    [
        pytest.param(None, RejectionReason.CART_EMPTY, id="unknown-cart"),
        pytest.param(cart({}), RejectionReason.CART_EMPTY, id="empty-cart"),
        pytest.param(cart(status=Status.ABANDONED), RejectionReason.CART_CLOSED, id="abandoned"),
    ],
)
def test_checkout_refused(before: Cart | None, reason: RejectionReason) -> None:
    assert checkout(before) == (before, [Reject(reason)])


def test_checkout_as_another_order_id_is_a_bug_for_the_dead_letters() -> None:
    # The gateway derives the order id from the cart id: it never differs.
    with pytest.raises(RuleError, match="already checked out as order o1"):
        checkout(cart(status=Status.CHECKED_OUT, order_id="o1"), order_id="o2")


# -- abandon ------------------------------------------------------------------------------


def test_idle_open_cart_is_abandoned_with_an_event() -> None:
    now = T0 + IDLE
    after, effects = abandon(cart({"tee": 2, "mug": 1}), customer_id="alice", now=now, idle=IDLE)
    assert after == cart({"tee": 2, "mug": 1}, status=Status.ABANDONED, updated_at=now)
    assert effects == [Abandoned(item_count=3, occurred_at=now), Publish()]


def test_cart_active_within_the_idle_time_is_kept() -> None:
    before = cart()
    assert abandon(before, customer_id="alice", now=T0 + IDLE / 2, idle=IDLE) == (before, [])
    assert not is_idle(before, T0 + IDLE / 2, IDLE)
    assert is_idle(before, T0 + IDLE, IDLE)


def test_redelivered_abandon_repeats_the_same_event_only() -> None:
    now = T0 + IDLE
    after, first = abandon(cart(), customer_id="alice", now=now, idle=IDLE)
    again, repeat = abandon(after, customer_id="alice", now=now + IDLE, idle=IDLE)
    assert again is after
    assert repeat == [first[0]]  # same event, same time: one notification downstream


def test_empty_idle_cart_is_closed_quietly() -> None:
    now = T0 + IDLE
    after, effects = abandon(cart({}), customer_id="alice", now=now, idle=IDLE)
    assert after is not None and after.status is Status.ABANDONED
    assert effects == [Publish()]


@pytest.mark.parametrize(
    "before",
    [None, cart(status=Status.CHECKED_OUT, order_id="o1")],
    ids=["unknown", "checked-out"],
)
def test_abandon_leaves_unknown_and_checked_out_carts(before: Cart | None) -> None:
    assert abandon(before, customer_id="alice", now=T0 + 2 * IDLE, idle=IDLE) == (before, [])


# -- properties ---------------------------------------------------------------------------

SKUS = ("tee", "mug", "cap")
COMMANDS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(SKUS), st.integers(-2, MAX_QUANTITY + 2)),
    st.tuples(st.just("remove"), st.sampled_from(SKUS), st.just(0)),
    st.tuples(st.just("checkout"), st.sampled_from(("o1", "o2")), st.just(0)),
    st.tuples(st.just("abandon"), st.just(""), st.integers(0, 2)),
)
RANK = {Status.OPEN: 0, Status.CHECKED_OUT: 1, Status.ABANDONED: 1}


def apply(c: Cart | None, command: tuple[str, str, int], now: datetime) -> Outcome:
    kind, arg, number = command
    match kind:
        case "set":
            return set_line(c, cart_id="c1", customer_id="alice", sku=arg, quantity=number, now=now)
        case "remove":
            return remove_line(c, customer_id="alice", sku=arg, now=now)
        case "checkout":
            return check_out(
                c, customer_id="alice", order_id=arg, payment=CARD, request_hash="h", now=now
            )
        case _:
            return abandon(c, customer_id="alice", now=now + number * IDLE, idle=IDLE)


@settings(max_examples=300, deadline=None)
@given(st.lists(COMMANDS, max_size=30))
def test_any_command_sequence_keeps_the_cart_consistent(
    commands: list[tuple[str, str, int]],
) -> None:
    c: Cart | None = None
    placed: list[PlaceOrder] = []
    now = T0
    for command in commands:
        now += timedelta(minutes=1)
        before = c
        try:
            c, effects = apply(c, command, now)
        except RuleError:
            continue  # refused: dead-lettered, the stored cart stays as it was
        if any(isinstance(e, Reject) for e in effects):
            # Refused: the customer is told, the cart stays as it was, nothing else goes out.
            assert c is before and all(isinstance(e, Reject) for e in effects)
            continue
        placed += [e for e in effects if isinstance(e, PlaceOrder)]
        assert c is not None or before is None
        if c is None:
            continue
        assert all(1 <= q <= MAX_QUANTITY for q in c.items.values())
        if before is not None:
            # One-way: never back to OPEN, never from one closed status to the other.
            assert RANK[c.status] >= RANK[before.status]
            if before.status is not Status.OPEN:
                assert (c.status, c.items, c.order_id) == (
                    before.status,
                    before.items,
                    before.order_id,
                )
        if c.status is Status.CHECKED_OUT:
            assert c.order_id is not None and c.items
    # Checked out at most once: every PlaceOrder is the same order with the same lines.
    assert len({(p.order_id, p.lines) for p in placed}) <= 1
    if placed:
        assert c is not None and c.status is Status.CHECKED_OUT
        assert placed[0].order_id == c.order_id
        assert placed[0].lines == c.lines
