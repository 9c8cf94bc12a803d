"""Waiting for an order to change, inside the worker that owns it.

The saga tells `order_changes` each time it stores an order's new state; the
orders view holds a `GET ?wait` request on `next_change` until the order
settles, so the answer leaves when the order settles, not on a poll's next tick.
The saga and the view run in the one worker that owns the order's partition
(table routing forwards a read to it), so the news needs no broker.
"""

from __future__ import annotations

import asyncio


class OrderChanges:
    """Futures waiting for a change of an order, by order id; set when the saga stores one."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}

    def changed(self, order_id: str) -> None:
        for waiter in self._waiting.pop(order_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    async def next_change(self, order_id: str, within: float) -> bool:
        """Whether `order_id` changed within `within` seconds."""
        waiter = asyncio.get_running_loop().create_future()
        waiters = self._waiting.setdefault(order_id, [])
        waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, within)
            return True
        except TimeoutError:
            return False
        finally:
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters and self._waiting.get(order_id) is waiters:
                del self._waiting[order_id]


order_changes = OrderChanges()
