"""After a scenario's load drains: read everything back and check the promises.

The checker reads the stack the way outsiders do (the gateway as an admin, the
public `orders` topic and the dead-letter topics with plain confluent-kafka,
the provider's ledger, Postgres) and checks, for this scenario's orders and skus:

- every accepted order is in exactly one settled state (the only change after
  settling is CONFIRMED -> CANCELLED, a refund), on the topic and in the API;
- nothing oversold: on hand + units of confirmed orders = units restocked, and
  nothing still reserved;
- nobody charged twice: at most one authorization and one capture per order,
  confirmed orders captured, every other order's money voided or refunded;
- every malformed message in its dead-letter topic with its reason;
- Postgres equal to the settled orders, the stock and the confirmed revenue per
  minute.

It returns the figures it measured and the violations it found; the tests print
the first and assert there are none of the second.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import psycopg
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.chaos.faults import Malformed, quiescent, read_to_end
from tests.chaos.load import Catalog, Placed
from tests.integration.conftest import Stack, auth, wait_for

SETTLED = {"CONFIRMED", "REJECTED", "EXPIRED", "CANCELLED"}
ADMIN = auth("chaos-admin", "admin")
DRAIN_SECONDS = 240.0
READ_MODEL_SECONDS = 120.0


@dataclass
class Report:
    scenario: str
    figures: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        if len(self.violations) < 50:
            self.violations.append(message)

    def render(self) -> str:
        lines = [f"chaos scenario {self.scenario}:"]
        lines += [f"  {name}: {value}" for name, value in self.figures.items()]
        lines += [f"  VIOLATION {v}" for v in self.violations] or ["  invariants: all hold"]
        return "\n".join(lines)


def settle_all(gateway: httpx.Client, placed: list[Placed]) -> dict[str, dict[str, Any]]:
    """Each order's view once settled; an order that never settles is reported as it is."""
    deadline = time.monotonic() + DRAIN_SECONDS

    def settled(p: Placed) -> dict[str, Any]:
        last: dict[str, Any] = {"status": "UNKNOWN"}
        while time.monotonic() < deadline:
            try:
                r = gateway.get(f"/v1/orders/{p.order_id}", params={"wait": 10}, headers=ADMIN)
            except httpx.HTTPError:
                time.sleep(1)
                continue
            if r.status_code == 200:
                last = r.json()
                if last["status"] in SETTLED:
                    return last
            else:
                time.sleep(1)
        return last

    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(zip((p.order_id for p in placed), pool.map(settled, placed), strict=True))


def order_histories(stack: Stack, order_ids: set[str]) -> dict[str, list[str]]:
    values = AvroDeserializer(SchemaRegistryClient({"url": stack.registry_url}))
    context = SerializationContext("orders", MessageField.VALUE)
    histories: dict[str, list[str]] = defaultdict(list)
    for _key, value, _ in read_to_end(stack.bootstrap, "orders"):
        if value is None:
            continue
        record = values(value, context)
        if record["order_id"] in order_ids:
            histories[record["order_id"]].append(record["status"])
    return histories


def settled_once(history: list[str]) -> bool:
    """After the first settled state the order never changes but by a confirmed-order cancel."""
    settled = [s for s in history if s in SETTLED]
    distinct = list(dict.fromkeys(settled))
    return distinct in ([], [distinct[0]] if distinct else [], ["CONFIRMED", "CANCELLED"])


def query(stack: Stack, sql: str, *params: object) -> list[tuple[Any, ...]]:
    try:
        with psycopg.connect(stack.database_url, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()
    except (psycopg.errors.UndefinedTable, psycopg.OperationalError):
        return []


def check(
    stack: Stack,
    scenario: str,
    catalog: Catalog,
    placed: list[Placed],
    malformed: list[Malformed],
    repair: Callable[[], None] | None = None,
) -> Report:
    """Check every promise for these orders and skus; `repair` is an operator's fix-up
    (replaying parked payment commands after an outage), run until payments settle."""
    report = Report(scenario)
    started = time.monotonic()
    with httpx.Client(base_url=stack.gateway_url, timeout=40.0) as gateway:
        views = settle_all(gateway, placed)
        # A customer's cancel may be handled after its order first reads CONFIRMED: it
        # goes straight to order-commands while a cart's order comes through the cart
        # agent, and a cancel refused as UNKNOWN_ORDER is handled again if a rebalance
        # came before its offset's commit. Those orders are read again once the saga
        # has handled everything sent to it.
        maybe_cancelled = [
            p for p in placed if p.plan.cancel and views[p.order_id]["status"] == "CONFIRMED"
        ]
        if maybe_cancelled:
            with contextlib.suppress(AssertionError):  # still moving: check what there is
                wait_for(lambda: quiescent(stack.bootstrap), timeout=60, interval=1.0)
            views.update(settle_all(gateway, maybe_cancelled))
        report.figures["drain_seconds"] = round(time.monotonic() - started, 1)
        report.figures["orders_accepted"] = len(placed)
        statuses = Counter(v["status"] for v in views.values())
        report.figures["final_status"] = dict(sorted(statuses.items()))
        for order_id, view in views.items():
            if view["status"] not in SETTLED:
                report.fail(f"order {order_id} never settled: {view['status']}")

        histories = check_orders_topic(stack, views, report)
        check_stock(stack, gateway, catalog, views, report)
    # Sales count every confirmation, also of orders cancelled (and refunded) later.
    ever_confirmed = {oid for oid, h in histories.items() if "CONFIRMED" in h}
    if repair is not None:
        deadline = time.monotonic() + DRAIN_SECONDS
        while True:
            repair()
            scratch = Report(scenario)
            check_payments(stack, views, scratch)
            if not scratch.violations or time.monotonic() > deadline:
                break
            time.sleep(3)
    check_payments(stack, views, report)
    check_dead_letters(stack, malformed, report)
    check_read_model(stack, catalog, views, ever_confirmed, report)
    report.figures["check_seconds"] = round(time.monotonic() - started, 1)
    print(report.render())
    return report


def check_orders_topic(
    stack: Stack, views: dict[str, dict[str, Any]], report: Report
) -> dict[str, list[str]]:
    histories = order_histories(stack, set(views))
    changed = 0
    for order_id, view in views.items():
        history = histories.get(order_id, [])
        if not settled_once(history):
            changed += 1
            report.fail(f"order {order_id} settled more than once on the topic: {history}")
        elif view["status"] in SETTLED and (not history or history[-1] != view["status"]):
            report.fail(f"order {order_id}: topic ends {history[-1:]}, API says {view['status']}")
    report.figures["orders_settled_twice"] = changed
    report.figures["order_events_on_topic"] = sum(len(h) for h in histories.values())
    return histories


def stock_holds(stack: Stack, skus: set[str]) -> dict[str, dict[str, int]]:
    """The reservations each sku's latest changelog record holds, by order id (diagnostics)."""
    if not skus:
        return {}
    values = AvroDeserializer(SchemaRegistryClient({"url": stack.registry_url}))
    topic = "momentum-inventory-changelog"
    context = SerializationContext(topic, MessageField.VALUE)
    holds: dict[str, dict[str, int]] = {}
    for key, value, _ in read_to_end(stack.bootstrap, topic):
        sku = (key or b"").decode(errors="replace")
        if sku in skus and value:
            holds[sku] = dict(values(value, context)["reservations"])
    return holds


def check_stock(
    stack: Stack,
    gateway: httpx.Client,
    catalog: Catalog,
    views: dict[str, dict[str, Any]],
    report: Report,
) -> None:
    """On hand + units of confirmed orders = restocked, and nothing held, per sku."""
    confirmed_units: Counter[str] = Counter()
    for view in views.values():
        if view["status"] == "CONFIRMED":
            for line in view["lines"]:
                confirmed_units[line["sku"]] += line["quantity"]
    stock: dict[str, dict[str, Any]] = {}

    def balanced() -> bool:
        for sku in catalog.skus:
            r = gateway.get(f"/v1/inventory/{sku}", headers=ADMIN)
            if r.status_code != 200:
                return False
            stock[sku] = r.json()
        return all(
            s["reserved"] == 0 and s["on_hand"] + confirmed_units[sku] == catalog.restocked[sku]
            for sku, s in stock.items()
        )

    try:
        wait_for(balanced, timeout=60, interval=1)
    except AssertionError:
        held = stock_holds(stack, {sku for sku, s in stock.items() if s["reserved"]})
        for sku, s in stock.items():
            if s["reserved"] or s["on_hand"] + confirmed_units[sku] != catalog.restocked[sku]:
                holders = {
                    oid: (q, views.get(oid, {}).get("status"))
                    for oid, q in held.get(sku, {}).items()
                }
                report.fail(
                    f"stock of {sku}: on hand {s['on_hand']} + confirmed "
                    f"{confirmed_units[sku]} != restocked {catalog.restocked[sku]} "
                    f"(reserved {s['reserved']}; held for {holders})"
                )
    report.figures["units_sold"] = sum(confirmed_units.values())
    report.figures["scarce_units_sold"] = sum(confirmed_units[s] for s in catalog.scarce)
    report.figures["scarce_units_restocked"] = sum(catalog.restocked[s] for s in catalog.scarce)


def check_payments(stack: Stack, views: dict[str, dict[str, Any]], report: Report) -> None:
    with httpx.Client(base_url=stack.provider_url, timeout=30) as provider:
        ledger = provider.get("/v1/ledger").json()
    payments = {p["order_id"]: p for p in ledger["payments"]}
    charged_twice = refunds = 0
    for order_id, view in views.items():
        payment = payments.get(order_id)
        counts = ledger["orders"].get(order_id, {})
        if counts.get("authorizations_created", 0) > 1:
            charged_twice += 1
            report.fail(f"order {order_id}: {counts['authorizations_created']} authorizations")
        if payment is None:
            if view["status"] == "CONFIRMED":
                report.fail(f"order {order_id} confirmed without a payment")
            continue
        operations = [h["operation"] for h in payment["history"]]
        if operations.count("capture") > 1:
            charged_twice += 1
            report.fail(f"order {order_id} captured twice: {operations}")
        if view["status"] == "CONFIRMED" and payment["status"] != "CAPTURED":
            report.fail(f"order {order_id} confirmed, payment {payment['status']}")
        if view["status"] != "CONFIRMED" and payment["status"] in (
            "AUTHORIZED",
            "CAPTURED",
            "PENDING",
        ):
            report.fail(f"order {order_id} {view['status']}, payment left {payment['status']}")
        if "capture" in operations and view["status"] != "CONFIRMED":
            refunds += 1
            if payment["status"] != "REFUNDED":
                report.fail(f"order {order_id} {view['status']}: capture not refunded")
    report.figures["payments"] = dict(
        Counter(payments[o]["status"] for o in views if o in payments)
    )
    report.figures["charged_twice"] = charged_twice
    report.figures["captures_refunded"] = refunds


def check_dead_letters(stack: Stack, malformed: list[Malformed], report: Report) -> None:
    if not malformed:
        return
    found: dict[tuple[str, bytes], set[str]] = defaultdict(set)
    for topic in {m.topic for m in malformed}:
        for key, _value, headers in read_to_end(stack.bootstrap, f"{topic}.dlq"):
            found[(topic, key or b"")].add(headers.get("dlq.error", ""))
    missing = 0
    for m in malformed:
        reasons = found.get((m.topic, m.key), set())
        if m.reason not in reasons:
            missing += 1
            report.fail(
                f"malformed {m.reason} on {m.topic} ({m.key!r}): dead letters say {reasons}"
            )
    report.figures["malformed_sent"] = len(malformed)
    report.figures["malformed_dead_lettered"] = len(malformed) - missing


def check_read_model(
    stack: Stack,
    catalog: Catalog,
    views: dict[str, dict[str, Any]],
    ever_confirmed: set[str],
    report: Report,
) -> None:
    # An order that never settled has no figures to compare; it is reported already.
    expected = {
        oid: (view["status"], Decimal(view["total"]))
        for oid, view in views.items()
        if view["status"] in SETTLED
    }
    revenue = sum(
        (
            Decimal(line["unit_price"]) * line["quantity"]
            for oid in ever_confirmed
            # An order the gateway never answered for has no lines; it is reported already.
            for line in views[oid].get("lines", ())
        ),
        Decimal("0"),
    )
    ids = list(expected)

    def orders_match() -> bool:
        rows = query(
            stack, "select order_id, status, total from orders where order_id = any(%s)", ids
        )
        return {r[0]: (r[1], r[2]) for r in rows} == expected

    def revenue_in_postgres() -> Decimal:
        rows = query(
            stack,
            "select coalesce(sum(revenue), 0) from sales_per_minute where sku = any(%s)",
            catalog.skus,
        )
        return Decimal(rows[0][0]) if rows else Decimal(-1)

    started = time.monotonic()
    try:
        wait_for(orders_match, timeout=READ_MODEL_SECONDS, interval=1)
    except AssertionError:
        rows = query(
            stack, "select order_id, status, total from orders where order_id = any(%s)", ids
        )
        got = {r[0]: (r[1], r[2]) for r in rows}
        wrong = [oid for oid in ids if got.get(oid) != expected[oid]]
        report.fail(f"{len(wrong)} orders differ in Postgres, e.g. {wrong[:3]}")
    try:
        wait_for(lambda: revenue_in_postgres() == revenue, timeout=READ_MODEL_SECONDS, interval=1)
    except AssertionError:
        report.fail(f"sales_per_minute revenue {revenue_in_postgres()} != confirmed {revenue}")
    report.figures["read_model_caught_up_seconds"] = round(time.monotonic() - started, 1)
    report.figures["confirmed_revenue"] = str(revenue)
