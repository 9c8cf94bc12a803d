"""Stock rules for one sku: restock, reserve, release, commit, return and the low-stock signal;
and who owns a sku's product (first creator; admins edit without taking it over)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal

import pytest

from streams.errors import RuleError
from streams.inventory.rules import (
    RECENT_COMMANDS_KEPT,
    Granted,
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
    committed: dict[str, int] | None = None,
    threshold: int = 5,
    recent: tuple[str, ...] = (),
) -> Stock:
    return Stock(
        sku="tee",
        on_hand=on_hand,
        reservations=dict(reservations or {}),
        committed=dict(committed or {}),
        low_stock_threshold=threshold,
        recent_commands=recent,
    )


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
        pytest.param(
            stock(7, committed={"o1": 3}),
            PRODUCT,
            3,
            stock(7, committed={"o1": 3}),
            GRANT_3,
            id="duplicate-after-commit",
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


# -- release, commit, return ----------------------------------------------------------------


def closed(s: Stock, *order_ids: str) -> Stock:
    return dataclasses.replace(s, closed_orders=order_ids)


HELD = stock(10, {"o1": 3, "o2": 1})
COMMITTED = stock(7, {"o2": 1}, committed={"o1": 3})


@pytest.mark.parametrize(
    ("operation", "before", "expected"),
    [
        pytest.param(release, HELD, closed(stock(10, {"o2": 1}), "o1"), id="release-held"),
        pytest.param(release, stock(10, {"o2": 1}), stock(10, {"o2": 1}), id="release-unknown"),
        pytest.param(release, COMMITTED, COMMITTED, id="release-after-commit"),
        pytest.param(commit, HELD, COMMITTED, id="commit-held"),
        pytest.param(commit, COMMITTED, COMMITTED, id="commit-twice"),
        pytest.param(commit, stock(10, {"o2": 1}), stock(10, {"o2": 1}), id="commit-released"),
        pytest.param(
            return_stock, COMMITTED, closed(stock(10, {"o2": 1}), "o1"), id="return-committed"
        ),
        pytest.param(return_stock, HELD, HELD, id="return-only-reserved"),
        pytest.param(return_stock, stock(10, {"o2": 1}), stock(10, {"o2": 1}), id="return-twice"),
    ],
)
def test_release_commit_return(
    operation: Callable[[Stock, str], Stock], before: Stock, expected: Stock
) -> None:
    assert operation(before, "o1") == expected


@pytest.mark.parametrize("operation", [release, commit, return_stock])
@pytest.mark.parametrize("before", [stock(), HELD, COMMITTED, stock(2, committed={"o1": 5})])
def test_applying_twice_is_applying_once(
    operation: Callable[[Stock, str], Stock], before: Stock
) -> None:
    once = operation(before, "o1")
    assert operation(once, "o1") == once


def test_commit_moves_reserved_units_off_on_hand_and_return_brings_them_back() -> None:
    committed = commit(HELD, "o1")
    assert (committed.on_hand, committed.reserved, committed.available) == (7, 1, 6)
    assert committed.committed == {"o1": 3}
    returned = return_stock(committed, "o1")
    assert (returned.on_hand, returned.reserved, returned.available) == (10, 1, 9)
    assert returned.committed == {}


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
    # Reserve -> Release, then the Reserve is delivered again out of order.
    held, _ = decide_reservation(stock(10), PRODUCT, "o1", 3)
    released = release(held, "o1")
    again, decision = decide_reservation(released, PRODUCT, "o1", 3)
    assert isinstance(decision, Refused)
    assert again.reserved == 0
    assert commit(again, "o1") == again


def test_late_duplicate_reserve_after_return_holds_nothing() -> None:
    held, _ = decide_reservation(stock(10), PRODUCT, "o1", 3)
    returned = return_stock(commit(held, "o1"), "o1")
    again, decision = decide_reservation(returned, PRODUCT, "o1", 3)
    assert isinstance(decision, Refused)
    assert (again.on_hand, again.reserved, again.committed) == (10, 0, {})


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
