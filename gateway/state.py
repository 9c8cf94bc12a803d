"""Live state, read from the Faust workers' web views; and the recent-orders LRU.

The workers own every table; the gateway asks them over HTTP (any worker
answers any key, table routing forwards to the owner) and keeps no copy of
business state. Only read routes ask: commands go to Kafka without a worker in
the loop, so they are accepted while workers restart. The one exception is
`RecentOrders`, a small bounded memory of orders this process just accepted,
so a reused Idempotency-Key with another body gets its 409 at once; past that
memory the saga refuses the second request and records the rejection.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from core.retrying import fixed_wait, retry_async
from gateway.models import OrderView

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


class WorkerUnavailable(RuntimeError):
    """No worker answered (in time, or sanely); the message says which."""

    def __init__(self, detail: str, *, malformed: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        # True when a worker answered, but not per the contract (a 502, not a 503).
        self.malformed = malformed


class StoredOrder(OrderView):
    """An order as the worker returns it; `request_hash` stays inside the gateway."""

    request_hash: str = ""


class StateReads(Protocol):
    """What the routes read: one key of one worker view, as the route's model."""

    async def read(
        self, view: str, key: str, model: type[M], *, query: str | None = None, wait: float = 0
    ) -> M | None: ...
    async def aclose(self) -> None: ...


class StateReader:
    """Reads one key from a worker view: the parsed body, None on 404."""

    def __init__(
        self,
        worker_url: str,
        *,
        timeout: float = 2.0,
        retries: int = 1,
        retry_delay: float = 0.05,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=worker_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            # Faust may answer a key owned elsewhere with a redirect.
            follow_redirects=True,
        )
        self._timeout = timeout
        self._retries = retries
        self._retry_delay = retry_delay

    async def aclose(self) -> None:
        await self._http.aclose()

    async def read(
        self, view: str, key: str, model: type[M], *, query: str | None = None, wait: float = 0
    ) -> M | None:
        """The worker view `/<view>/<key>/` as `model`, None on 404.

        With `query`, the key goes as that query parameter of `/<view>/` instead:
        for keys that are free text (token subjects), which must not become path
        segments. With `wait`, the view may hold the request that many seconds
        (the orders view does, until the order settles).
        """
        params = {query: key} if query is not None else {}
        if wait > 0:
            params["wait"] = f"{wait:.3f}"
        path = f"/{view}/" if query is not None else f"/{view}/{quote(key, safe='')}/"
        # A held request gets its wait on top of the usual timeout.
        request = self._http.build_request(
            "GET", path, params=params or None, timeout=self._timeout + wait
        )
        body = await self._get(request)
        if body is None:
            return None
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise WorkerUnavailable(
                f"worker answered {path} with an unexpected body: {exc.errors()[0]['msg']}",
                malformed=True,
            ) from exc

    async def _get(self, request: httpx.Request) -> Any | None:
        try:
            return await retry_async(
                lambda: self._get_once(request),
                # Rebalancing workers answer 5xx or drop connections for a moment: worth
                # another try. An answer against the contract would only come again.
                retry_on=lambda exc: isinstance(exc, WorkerUnavailable) and not exc.malformed,
                attempts=self._retries + 1,
                wait=fixed_wait(self._retry_delay),
            )
        except WorkerUnavailable as exc:
            if not exc.malformed:
                log.warning("state read failed: %s", exc.detail)
            raise

    async def _get_once(self, request: httpx.Request) -> Any | None:
        path = request.url.path
        try:
            response = await self._http.send(request)
        except httpx.HTTPError as exc:
            raise WorkerUnavailable(
                f"worker unreachable at {self._http.base_url}: {type(exc).__name__}"
            ) from exc
        if response.status_code == 404:
            return None
        if response.status_code >= 500:
            raise WorkerUnavailable(f"worker answered {response.status_code} for {path}")
        if response.status_code != 200:
            raise WorkerUnavailable(
                f"worker answered {response.status_code} for {path}", malformed=True
            )
        try:
            return response.json()
        except ValueError as exc:
            raise WorkerUnavailable(
                f"worker answered {path} with invalid JSON", malformed=True
            ) from exc


@dataclass(frozen=True)
class RecentOrder:
    customer_id: str
    request_hash: str


class RecentOrders:
    """Bounded LRU of order id -> who placed it with which request, in this process."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self._maxsize = maxsize
        self._entries: OrderedDict[str, RecentOrder] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, order_id: str) -> RecentOrder | None:
        entry = self._entries.get(order_id)
        if entry is not None:
            self._entries.move_to_end(order_id)
        return entry

    def claim(self, order_id: str, entry: RecentOrder) -> RecentOrder:
        """Record `entry` unless the order id is already known; return what is recorded.

        Synchronous on purpose: with no await between check and set, two
        concurrent requests for one order id cannot both claim it.
        """
        existing = self.get(order_id)
        if existing is not None:
            return existing
        self._entries[order_id] = entry
        if len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)
        return entry
