"""A sustained mixed load through the gateway, as shop front-ends send it.

Each scenario gets its own catalog (scarce and plentiful skus, so some orders
race for the last units) and a plan of orders: one to three lines, every card
token of the embedded provider, some placed through carts, some cancelled. The
driver behaves like a well-mannered client: it retries 429 and 503 after the
`Retry-After` it is given, with the same Idempotency-Key, and records every
answer so the checker can tell what was accepted and how the gateway behaved.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from tests.integration.conftest import auth, wait_for

SELLER = "chaos-seller"
CUSTOMERS = [f"chaos-customer-{n}" for n in range(24)]
# Every token of the embedded provider, weighted as a day of real traffic might be.
TOKENS = {"tok_ok": 70, "tok_decline": 10, "tok_flaky": 10, "tok_slow": 5, "tok_pending": 5}
SCARCE_STOCK = 8
PLENTIFUL_STOCK = 5000
RETRYABLE = {429, 503}
# A client gives up on one request after this long (answers, retries included).
REQUEST_DEADLINE_SECONDS = 90.0


@dataclass(frozen=True)
class Catalog:
    prices: dict[str, str]
    restocked: dict[str, int]

    @property
    def skus(self) -> list[str]:
        return list(self.prices)

    @property
    def scarce(self) -> list[str]:
        return [s for s, q in self.restocked.items() if q == SCARCE_STOCK]

    @property
    def plentiful(self) -> list[str]:
        return [s for s, q in self.restocked.items() if q != SCARCE_STOCK]


@dataclass(frozen=True)
class OrderPlan:
    key: str
    customer: str
    lines: tuple[tuple[str, int], ...]
    token: str
    via_cart: bool
    cancel: bool


@dataclass(frozen=True)
class Placed:
    plan: OrderPlan
    order_id: str


@dataclass
class Answers:
    """Every answer the gateway gave, by (what was asked, status)."""

    counts: Counter[tuple[str, int]] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, what: str, status: int) -> None:
        with self.lock:
            self.counts[(what, status)] += 1

    def failed(self, what: str, error: Exception) -> None:
        with self.lock:
            self.transport_errors[f"{what}: {type(error).__name__}"] += 1

    def statuses(self, what: str | None = None) -> Counter[int]:
        found: Counter[int] = Counter()
        for (asked, status), n in self.counts.items():
            if what is None or asked == what:
                found[status] += n
        return found


def scenario_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def plan_catalog(scenario: str, scarce: int = 3, plentiful: int = 5) -> Catalog:
    prices, restocked = {}, {}
    for n in range(scarce + plentiful):
        sku = f"{scenario}-{'s' if n < scarce else 'p'}{n}"
        prices[sku] = f"{3 + n}.{(n * 37) % 100:02d}"
        restocked[sku] = SCARCE_STOCK if n < scarce else PLENTIFUL_STOCK
    return Catalog(prices, restocked)


def plan_orders(scenario: str, catalog: Catalog, count: int, seed: int) -> list[OrderPlan]:
    rng = random.Random(seed)
    tokens, weights = list(TOKENS), list(TOKENS.values())
    plans = []
    for n in range(count):
        skus = rng.sample(catalog.plentiful, rng.randint(1, 2))
        if rng.random() < 0.5:
            skus[0] = rng.choice(catalog.scarce)
        lines = tuple((sku, rng.randint(1, 3)) for sku in dict.fromkeys(skus))
        plans.append(
            OrderPlan(
                key=f"{scenario}-o{n}",
                customer=rng.choice(CUSTOMERS),
                lines=lines,
                token=rng.choices(tokens, weights)[0],
                via_cart=rng.random() < 0.1,
                cancel=rng.random() < 0.05,
            )
        )
    return plans


class Client:
    """Gateway calls with a polite retry on 429/503; one httpx client per thread."""

    def __init__(self, base_url: str, answers: Answers, *, duplicate: bool = False) -> None:
        self.base_url = base_url
        self.answers = answers
        # Send every command twice, as a client whose first answer was lost would.
        self.duplicate = duplicate
        self._local = threading.local()

    def http(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.base_url, timeout=30.0)
            self._local.client = client
        return client

    def call(self, what: str, method: str, url: str, **kwargs: object) -> httpx.Response:
        deadline = time.monotonic() + REQUEST_DEADLINE_SECONDS
        while True:
            try:
                response = self.http().request(method, url, **kwargs)  # type: ignore[arg-type]
            except httpx.HTTPError as exc:
                self.answers.failed(what, exc)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
                continue
            self.answers.record(what, response.status_code)
            if response.status_code not in RETRYABLE or time.monotonic() > deadline:
                return response
            time.sleep(min(float(response.headers.get("Retry-After", "0.5") or 0.5), 2.0))

    def command(self, what: str, method: str, url: str, **kwargs: object) -> httpx.Response:
        response = self.call(what, method, url, **kwargs)
        if self.duplicate:
            again = self.call(what, method, url, **kwargs)
            # A second cancel may find the order already cancelled (409): also fine.
            if response.status_code == 202 and what != "cancel":
                assert again.status_code == 202, (what, again.status_code, again.text)
                first, second = response.json(), again.json()
                assert first.get("order_id") == second.get("order_id"), (what, first, second)
        return response


def seed(client: Client, catalog: Catalog) -> None:
    """Create every product and restock it once; wait until the workers show the stock."""
    seller = auth(SELLER, "seller")
    for sku, price in catalog.prices.items():
        body = {"name": f"Chaos {sku}", "price": price, "currency": "BRL"}
        r = client.call("upsert", "PUT", f"/v1/products/{sku}", json=body, headers=seller)
        assert r.status_code == 202, r.text
        r = client.call(
            "restock",
            "POST",
            f"/v1/inventory/{sku}/restock",
            json={"quantity": catalog.restocked[sku]},
            headers=seller,
        )
        assert r.status_code == 202, r.text

    def stocked() -> bool:
        for sku, quantity in catalog.restocked.items():
            r = client.http().get(f"/v1/inventory/{sku}", headers=seller)
            if r.status_code != 200 or r.json()["on_hand"] != quantity:
                return False
        return True

    wait_for(stocked, timeout=120, interval=0.5)


def place(client: Client, plan: OrderPlan) -> Placed | None:
    """Place one order as planned; None when the gateway refused it for good."""
    headers = auth(plan.customer, "customer")
    payment = {"method": "card", "token": plan.token}
    if plan.via_cart:
        cart = f"cart-{plan.key}"
        for sku, quantity in plan.lines:
            r = client.command(
                "cart-line",
                "PUT",
                f"/v1/carts/{cart}/items/{sku}",
                json={"quantity": quantity},
                headers=headers,
            )
            if r.status_code != 202:
                return None
        r = client.command(
            "checkout",
            "POST",
            f"/v1/carts/{cart}/checkout",
            json={"payment": payment},
            headers={**headers, "Idempotency-Key": plan.key},
        )
    else:
        body = {"items": [{"sku": s, "quantity": q} for s, q in plan.lines], "payment": payment}
        r = client.command(
            "place",
            "POST",
            "/v1/orders",
            json=body,
            headers={**headers, "Idempotency-Key": plan.key},
        )
    if r.status_code != 202:
        return None
    placed = Placed(plan, str(r.json()["order_id"]))
    if plan.cancel:
        client.command("cancel", "POST", f"/v1/orders/{placed.order_id}/cancel", headers=headers)
    return placed


def run_load(
    client: Client, plans: list[OrderPlan], rate: float, concurrency: int = 16
) -> list[Placed]:
    """Place the plans at `rate` orders per second (open loop), so faults land mid-flow."""
    started = time.monotonic()

    def paced(indexed: tuple[int, OrderPlan]) -> Placed | None:
        n, plan = indexed
        time.sleep(max(0.0, started + n / rate - time.monotonic()))
        return place(client, plan)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return [p for p in pool.map(paced, enumerate(plans)) if p is not None]
