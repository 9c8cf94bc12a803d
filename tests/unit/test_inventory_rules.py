"""Stock rules for one sku: restock, reserve, release, commit, return and the low-stock signal;
and who owns a sku's product (first creator; admins edit without taking it over)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import RuleError
from streams.inventory.rules import (
    RECENT_COMMANDS_KEPT,
    Granted,
    Origin,
    Product,
    Refused,
    RejectReason,
    Requester,
    Stock,
    authorize_restock,
    commit,
    crossed_low_stock,
    decide_reservation,
    decide_upsert,
    release,
    restock,
    return_stock,
    set_threshold,
)
from streams.rejections.rules import Reject, RejectionReason

PRODUCT = Product(sku="tee", name="Tee", price=Decimal("12.50"), currency="BRL", seller_id="s1")
GRANT_3 = Granted(3, Decimal("12.50"), "BRL")


def stock(
    on_hand: int = 0,
    reservations: dict[str, int] | None = None,
    threshold: int = 5,
    recent: tuple[str, ...] = (),
    applied: dict[str, int] | None = None,
) -> Stock:
    return Stock(
        sku="tee",
        on_hand=on_hand,
        reservations=dict(reservations or {}),
        low_stock_threshold=threshold,
        recent_commands=recent,
        applied=dict(applied or {}),
    )


def at(offset: int, source: str = "order-events:0") -> Origin:
    """The origin of a saga step: the saga message it was sent for."""
    return Origin(source, offset)


# -- restock ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "command_id", "quantity", "expected"),
    [
        pytest.param(stock(), "c1", 4, stock(4, recent=("c1",)), id="first-restock"),
        pytest.param(
            stock(3, {"o1": 2}, recent=("c1",)),
            "c2",
            5,
            stock(8, {"o1": 2}, recent=("c1", "c2")),
            id="adds-to-on-hand-keeps-reservations",
        ),
        pytest.param(stock(4, recent=("c1",)), "c1", 4, stock(4, recent=("c1",)), id="duplicate"),
        pytest.param(
            stock(9, recent=("c1", "c2")),
            "c1",
            4,
            stock(9, recent=("c1", "c2")),
            id="older-duplicate-still-remembered",
        ),
    ],
)
def test_restock(before: Stock, command_id: str, quantity: int, expected: Stock) -> None:
    assert restock(before, command_id, quantity) == expected


def test_restock_twice_with_the_same_command_id_adds_once() -> None:
    once = restock(stock(2), "c1", 5)
    assert restock(once, "c1", 5) == once
    assert once.on_hand == 7


def test_restock_remembers_a_bounded_window_of_command_ids() -> None:
    current = stock()
    for n in range(RECENT_COMMANDS_KEPT + 3):
        current = restock(current, f"c{n}", 1)
    assert len(current.recent_commands) == RECENT_COMMANDS_KEPT
    assert current.recent_commands[-1] == f"c{RECENT_COMMANDS_KEPT + 2}"
    # The newest ids are still deduplicated.
    assert restock(current, f"c{RECENT_COMMANDS_KEPT + 2}", 1) == current
    assert restock(current, "c3", 1) == current


@pytest.mark.parametrize("quantity", [0, -1])
def test_restock_needs_a_positive_quantity(quantity: int) -> None:
    with pytest.raises(RuleError):
        restock(stock(), "c1", quantity)


@pytest.mark.parametrize(
    ("before", "threshold", "expected"),
    [
        pytest.param(stock(threshold=5), 5, stock(threshold=5), id="same"),
        pytest.param(stock(2, threshold=5), 1, stock(2, threshold=1), id="changed"),
    ],
)
def test_set_threshold(before: Stock, threshold: int, expected: Stock) -> None:
    assert set_threshold(before, threshold) == expected


# -- reserve ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "product", "quantity", "expected_stock", "expected_decision"),
    [
        pytest.param(stock(10), PRODUCT, 3, stock(10, {"o1": 3}), GRANT_3, id="granted"),
        pytest.param(
            stock(5, {"o0": 2}), PRODUCT, 3, stock(5, {"o0": 2, "o1": 3}), GRANT_3, id="exactly-all"
        ),
        pytest.param(
            stock(5, {"o0": 3}),
            PRODUCT,
            3,
            stock(5, {"o0": 3}),
            Refused(RejectReason.OUT_OF_STOCK),
            id="beyond-available",
        ),
        pytest.param(
            stock(), PRODUCT, 1, stock(), Refused(RejectReason.OUT_OF_STOCK), id="no-stock"
        ),
        pytest.param(
            stock(10), None, 3, stock(10), Refused(RejectReason.UNKNOWN_SKU), id="unknown-sku"
        ),
        pytest.param(
            stock(10), PRODUCT, 0, stock(10), Refused(RejectReason.OUT_OF_STOCK), id="zero"
        ),
        pytest.param(
            stock(10, {"o1": 3}), PRODUCT, 3, stock(10, {"o1": 3}), GRANT_3, id="duplicate"
        ),
        pytest.param(
            stock(3, {"o1": 3}),
            PRODUCT,
            3,
            stock(3, {"o1": 3}),
            GRANT_3,
            id="duplicate-when-nothing-else-available",
        ),
    ],
)
def test_decide_reservation(
    before: Stock,
    product: Product | None,
    quantity: int,
    expected_stock: Stock,
    expected_decision: Granted | Refused,
) -> None:
    assert decide_reservation(before, product, "o1", quantity) == (
        expected_stock,
        expected_decision,
    )


def test_reserve_twice_answers_the_same_grant_and_holds_once() -> None:
    first_stock, first = decide_reservation(stock(4), PRODUCT, "o1", 3)
    second_stock, second = decide_reservation(first_stock, PRODUCT, "o1", 3)
    assert second == first == GRANT_3
    assert second_stock == first_stock
    assert second_stock.reserved == 3
    assert second_stock.available == 1


def test_reservation_snapshots_the_catalog_price() -> None:
    cheap = Product(sku="tee", name="Tee", price=Decimal("0.10"), currency="USD", seller_id="s2")
    _, decision = decide_reservation(stock(10), cheap, "o1", 2)
    assert decision == Granted(2, Decimal("0.10"), "USD")


# -- origins: a redelivered saga step changes nothing ---------------------------------------


@pytest.mark.parametrize(
    ("before", "origin", "expected_stock", "expected_decision"),
    [
        pytest.param(
            stock(10),
            at(5),
            stock(10, {"o1": 3}, applied={"order-events:0": 5}),
            GRANT_3,
            id="first-is-applied-and-marked",
        ),
        pytest.param(
            stock(10, {"o1": 3}, applied={"order-events:0": 5}),
            at(5),
            stock(10, {"o1": 3}, applied={"order-events:0": 5}),
            GRANT_3,
            id="redelivery-while-held-answers-the-grant-again",
        ),
        pytest.param(
            stock(7, applied={"order-events:0": 9}),
            at(5),
            stock(7, applied={"order-events:0": 9}),
            Refused(RejectReason.OUT_OF_STOCK),
            id="redelivery-after-commit-holds-nothing",
        ),
        pytest.param(
            stock(10, applied={"order-events:0": 9, "order-commands:0": 2}),
            at(3, "order-commands:0"),
            stock(10, {"o1": 3}, applied={"order-events:0": 9, "order-commands:0": 3}),
            GRANT_3,
            id="each-saga-partition-has-its-own-offset",
        ),
        pytest.param(
            stock(1),
            at(5),
            stock(1, applied={"order-events:0": 5}),
            Refused(RejectReason.OUT_OF_STOCK),
            id="a-refusal-is-marked-too",
        ),
    ],
)
def test_reserve_with_origin(
    before: Stock, origin: Origin, expected_stock: Stock, expected_decision: Granted | Refused
) -> None:
    assert decide_reservation(before, PRODUCT, "o1", 3, origin) == (
        expected_stock,
        expected_decision,
    )


def test_reserve_of_an_unknown_sku_stores_nothing() -> None:
    assert decide_reservation(stock(), None, "o1", 3, at(5)) == (
        stock(),
        Refused(RejectReason.UNKNOWN_SKU),
    )


HELD = stock(10, {"o1": 3, "o2": 1}, applied={"order-events:0": 4})


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        pytest.param(
            lambda s: release(s, "o1", at(5)),
            stock(10, {"o2": 1}, applied={"order-events:0": 5}),
            id="release-held",
        ),
        pytest.param(lambda s: release(s, "o3", at(5)), HELD, id="release-unknown"),
        pytest.param(
            lambda s: commit(s, "o1", at(5)),
            stock(7, {"o2": 1}, applied={"order-events:0": 5}),
            id="commit-held-drops-the-hold",
        ),
        pytest.param(lambda s: commit(s, "o3", at(5)), HELD, id="commit-unknown"),
        pytest.param(
            lambda s: return_stock(s, "o9", 2, at(5)),
            stock(12, {"o1": 3, "o2": 1}, applied={"order-events:0": 5}),
            id="return-adds-its-quantity",
        ),
        pytest.param(lambda s: release(s, "o1", at(4)), HELD, id="release-redelivered"),
        pytest.param(lambda s: commit(s, "o1", at(3)), HELD, id="commit-redelivered"),
        pytest.param(lambda s: return_stock(s, "o9", 2, at(4)), HELD, id="return-redelivered"),
        pytest.param(
            lambda s: commit(s, "o1", None),
            stock(7, {"o2": 1}, applied={"order-events:0": 4}),
            id="commit-without-origin",
        ),
    ],
)
def test_release_commit_return(step: Callable[[Stock], Stock], expected: Stock) -> None:
    assert step(HELD) == expected


@pytest.mark.parametrize(
    "step",
    [
        lambda s, o: release(s, "o1", o),
        lambda s, o: commit(s, "o1", o),
        lambda s, o: return_stock(s, "o1", 3, o),
        lambda s, o: decide_reservation(s, PRODUCT, "o1", 3, o)[0],
    ],
    ids=["release", "commit", "return", "reserve"],
)
@pytest.mark.parametrize("before", [stock(), HELD, stock(2, applied={"order-events:0": 9})])
def test_applying_twice_is_applying_once(
    step: Callable[[Stock, Origin], Stock], before: Stock
) -> None:
    once = step(before, at(7))
    assert step(once, at(7)) == once


def test_commit_twice_without_origin_commits_once() -> None:
    once = commit(HELD, "o1")
    assert commit(once, "o1") == once


def test_commit_moves_reserved_units_off_on_hand_and_return_brings_them_back() -> None:
    committed = commit(HELD, "o1", at(5))
    assert (committed.on_hand, committed.reserved, committed.available) == (7, 1, 6)
    assert "o1" not in committed.reservations
    returned = return_stock(committed, "o1", 3, at(6))
    assert (returned.on_hand, returned.reserved, returned.available) == (10, 1, 9)


@pytest.mark.parametrize(
    ("origin", "quantity"), [(None, 3), (at(5), 0), (at(5), -1)], ids=["no-origin", "0", "-1"]
)
def test_return_needs_its_origin_and_a_quantity(origin: Origin | None, quantity: int) -> None:
    with pytest.raises(RuleError):
        return_stock(HELD, "o1", quantity, origin)


def test_a_sku_row_does_not_grow_with_orders_sold() -> None:
    # Thousands of orders reserved, committed, some returned, through two saga partitions:
    # the row holds the open reservations and one offset per saga partition, nothing more.
    current = restock(stock(), "r1", 10_000)
    for n in range(3000):
        source = f"order-events:{n % 2}"
        current, decision = decide_reservation(current, PRODUCT, f"o{n}", 2, at(3 * n, source))
        assert isinstance(decision, Granted)
        current = commit(current, f"o{n}", at(3 * n + 1, source))
        if n % 10 == 0:
            current = return_stock(current, f"o{n}", 2, at(3 * n + 2, source))
    current, _ = decide_reservation(current, PRODUCT, "open", 1, at(10**6))
    assert current.on_hand == 10_000 - 2 * 3000 + 2 * 300
    assert current.reservations == {"open": 1}
    assert set(current.applied) == {"order-events:0", "order-events:1"}


# -- low stock ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param(stock(8), stock(8, {"o1": 4}), True, id="falls-below"),
        pytest.param(stock(8), stock(8, {"o1": 3}), False, id="lands-on-threshold"),
        pytest.param(stock(8), stock(8, {"o1": 2}), False, id="stays-above"),
        pytest.param(stock(4), stock(4, {"o1": 1}), False, id="already-low"),
        pytest.param(stock(4), stock(9), False, id="restocked-out-of-low"),
        pytest.param(stock(8), stock(8), False, id="unchanged"),
        pytest.param(stock(1, threshold=0), stock(1, {"o1": 1}, threshold=0), False, id="off"),
        pytest.param(
            stock(8, {"o1": 4}, threshold=5),
            stock(8, {"o1": 4}, threshold=6),
            False,
            id="threshold-raised-while-low",
        ),
        pytest.param(
            stock(9, {"o1": 2}), commit(stock(9, {"o1": 2}), "o1"), False, id="commit-keeps-level"
        ),
    ],
)
def test_crossed_low_stock(before: Stock, after: Stock, expected: bool) -> None:
    assert crossed_low_stock(before, after) is expected


def test_late_duplicate_reserve_after_release_holds_nothing() -> None:
    # Reserve -> Release, then the Reserve is delivered again (a redelivery: same origin).
    held, _ = decide_reservation(stock(10), PRODUCT, "o1", 3, at(1, "order-commands:0"))
    released = release(held, "o1", at(2))
    again, decision = decide_reservation(released, PRODUCT, "o1", 3, at(1, "order-commands:0"))
    assert isinstance(decision, Refused)
    assert again == released
    assert commit(again, "o1", at(1)) == again


def test_late_duplicate_reserve_after_return_holds_nothing() -> None:
    held, _ = decide_reservation(stock(10), PRODUCT, "o1", 3, at(1, "order-commands:0"))
    returned = return_stock(commit(held, "o1", at(2)), "o1", 3, at(3, "order-commands:0"))
    again, decision = decide_reservation(returned, PRODUCT, "o1", 3, at(1, "order-commands:0"))
    assert isinstance(decision, Refused)
    assert again == returned
    assert (again.on_hand, again.reserved) == (10, 0)
    # And the return sent again for the same cancel brings nothing back twice.
    assert return_stock(again, "o1", 3, at(3, "order-commands:0")) == returned


# -- property: each saga step counts once, whatever is delivered again ------------------------

SOURCES = ("order-commands:0", "order-events:0", "order-events:1")


@dataclass(frozen=True)
class Step:
    kind: str  # reserve, release, commit, return
    order_id: str
    quantity: int
    origin: Origin


def apply_step(current: Stock, step: Step) -> tuple[Stock, Granted | Refused | None]:
    match step.kind:
        case "reserve":
            return decide_reservation(current, PRODUCT, step.order_id, step.quantity, step.origin)
        case "release":
            return release(current, step.order_id, step.origin), None
        case "commit":
            return commit(current, step.order_id, step.origin), None
        case _:
            return return_stock(current, step.order_id, step.quantity, step.origin), None


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_each_saga_step_counts_once_whatever_is_delivered_again(data: st.DataObject) -> None:
    """A saga sends steps from several partitions, each in offset order; it may send again
    every step since its last commit (a restart that lost its uncommitted state), and the
    sku's consumer may read part of its log again (a rebalance). The sku must end exactly
    where applying each distinct step once leads: the reference ledger below."""
    opening = data.draw(st.integers(0, 15), label="opening stock")
    on_hand, holds = opening, dict[str, int]()  # the reference ledger
    answers: dict[str, bool] = {}  # order id -> granted, per the reference
    states: dict[str, str] = {}
    offsets = dict.fromkeys(SOURCES, 0)
    sent: dict[str, list[Step]] = {source: [] for source in SOURCES}
    committed = dict.fromkeys(SOURCES, 0)  # how many of a source's sends are committed
    log: list[Step] = []

    def emit(kind: str, order_id: str, quantity: int) -> None:
        source = data.draw(st.sampled_from(SOURCES), label="source")
        offsets[source] += data.draw(st.integers(1, 3), label="gap")
        step = Step(kind, order_id, quantity, Origin(source, offsets[source]))
        sent[source].append(step)
        log.append(step)

    for n in range(data.draw(st.integers(1, 40), label="actions")):
        held = sorted(o for o, s in states.items() if s == "held")
        done = sorted(o for o, s in states.items() if s == "committed")
        choices = ["reserve", "resend", "commit-offsets"]
        choices += ["release", "commit"] if held else []
        choices += ["return"] if done else []
        match data.draw(st.sampled_from(choices), label="action"):
            case "reserve":
                order_id, quantity = f"o{n}", data.draw(st.integers(1, 5), label="quantity")
                granted = on_hand - sum(holds.values()) >= quantity
                answers[order_id] = granted
                states[order_id] = "held" if granted else "refused"
                if granted:
                    holds[order_id] = quantity
                emit("reserve", order_id, quantity)
            case "release":
                order_id = data.draw(st.sampled_from(held), label="order")
                states[order_id] = "released"
                emit("release", order_id, holds.pop(order_id))
            case "commit":
                order_id = data.draw(st.sampled_from(held), label="order")
                states[order_id] = "committed"
                on_hand -= holds[order_id]
                emit("commit", order_id, holds.pop(order_id))
            case "return":
                order_id = data.draw(st.sampled_from(done), label="order")
                states[order_id] = "returned"
                quantity = next(s.quantity for s in log if s.order_id == order_id)
                on_hand += quantity
                emit("return", order_id, quantity)
            case "resend":
                # The saga restarts from its last committed offset and sends it all again.
                source = data.draw(st.sampled_from(SOURCES), label="saga restarts")
                log.extend(sent[source][committed[source] :])
            case "commit-offsets":
                source = data.draw(st.sampled_from(SOURCES), label="saga commits")
                committed[source] = len(sent[source])

    # The sku's consumer reads the log, now and then going back a few messages.
    current, position, first_answer = stock(opening), 0, dict[str, bool]()
    rewinds = 0
    while position < len(log):
        step = log[position]
        current, decision = apply_step(current, step)
        if step.kind == "reserve" and step.order_id not in first_answer:
            first_answer[step.order_id] = isinstance(decision, Granted)
        elif step.kind == "reserve":
            held_now = step.order_id in current.reservations
            assert isinstance(decision, Granted) is held_now, "a repeated reserve answered wrong"
        position += 1
        if rewinds < 10 and data.draw(st.integers(0, 9), label="rewind?") == 9:
            rewinds += 1
            position = max(0, position - data.draw(st.integers(1, 5), label="back"))

    assert first_answer == answers
    assert (current.on_hand, dict(current.reservations)) == (on_hand, holds)
    assert set(current.applied) <= set(SOURCES)


# -- ownership: upsert and restock --------------------------------------------------------

SELLER_A = Requester("s1")  # PRODUCT's seller
SELLER_B = Requester("s2")
ADMIN = Requester("root", is_admin=True)
OWNED_ELSEWHERE = Reject(RejectionReason.SKU_OWNED_BY_ANOTHER_SELLER)


def upsert(
    product: Product | None, requester: Requester, transfer_to: str | None = None
) -> Product | Reject:
    return decide_upsert(
        product,
        requester,
        sku="tee",
        name="New name",
        price=Decimal("0.01"),
        currency="BRL",
        transfer_to=transfer_to,
    )


def owned_by(seller_id: str) -> Product:
    return Product("tee", "New name", Decimal("0.01"), "BRL", seller_id)


@pytest.mark.parametrize(
    ("before", "requester", "transfer_to", "expected"),
    [
        pytest.param(None, SELLER_B, None, owned_by("s2"), id="first-upsert-creates-and-owns"),
        pytest.param(PRODUCT, SELLER_A, None, owned_by("s1"), id="owner-edits"),
        pytest.param(PRODUCT, SELLER_B, None, OWNED_ELSEWHERE, id="race-second-seller-refused"),
        pytest.param(PRODUCT, ADMIN, None, owned_by("s1"), id="admin-edit-keeps-the-owner"),
        pytest.param(PRODUCT, ADMIN, "s2", owned_by("s2"), id="admin-transfers-explicitly"),
        pytest.param(None, ADMIN, None, owned_by("root"), id="admin-creates-for-itself"),
        pytest.param(None, ADMIN, "s2", owned_by("s2"), id="admin-creates-for-a-seller"),
        pytest.param(
            PRODUCT, SELLER_A, "s2", Reject(RejectionReason.TRANSFER_NOT_ALLOWED), id="seller-gives"
        ),
        pytest.param(
            None, SELLER_B, "s1", Reject(RejectionReason.TRANSFER_NOT_ALLOWED), id="seller-names"
        ),
        pytest.param(PRODUCT, SELLER_A, "s1", owned_by("s1"), id="seller-names-itself"),
    ],
)
def test_decide_upsert(
    before: Product | None,
    requester: Requester,
    transfer_to: str | None,
    expected: Product | Reject,
) -> None:
    assert upsert(before, requester, transfer_to) == expected


def test_two_sellers_racing_for_a_new_sku_the_first_in_the_log_wins() -> None:
    """Seller A creates race-X, seller B's upsert right after must not take it (issue 7)."""
    created = upsert(None, SELLER_A)
    assert isinstance(created, Product) and created.seller_id == "s1"
    assert upsert(created, SELLER_B) == OWNED_ELSEWHERE
    # A keeps control of its product.
    assert upsert(created, SELLER_A) == owned_by("s1")


@pytest.mark.parametrize(
    ("product", "requester", "expected"),
    [
        pytest.param(PRODUCT, SELLER_A, None, id="owner"),
        pytest.param(PRODUCT, ADMIN, None, id="admin"),
        pytest.param(PRODUCT, SELLER_B, OWNED_ELSEWHERE, id="another-seller"),
        pytest.param(None, SELLER_B, Reject(RejectionReason.UNKNOWN_SKU), id="before-create"),
        pytest.param(None, ADMIN, Reject(RejectionReason.UNKNOWN_SKU), id="admin-before-create"),
    ],
)
def test_authorize_restock(
    product: Product | None, requester: Requester, expected: Reject | None
) -> None:
    assert authorize_restock(product, requester) == expected


def test_restock_before_create_does_not_make_the_restocker_owner() -> None:
    """B restocked a sku before A created it (issue 7): refused, and A's upsert creates it."""
    assert authorize_restock(None, SELLER_B) == Reject(RejectionReason.UNKNOWN_SKU)
    created = upsert(None, SELLER_A)
    assert isinstance(created, Product) and created.seller_id == "s1"
    assert authorize_restock(created, SELLER_B) == OWNED_ELSEWHERE
    assert authorize_restock(created, SELLER_A) is None
