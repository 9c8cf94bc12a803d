"""The read model's lag behind the saga: how long after the bench saw an order CONFIRMED
on Kafka its row says CONFIRMED in Postgres, and the records the sink reports behind."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import psycopg


class SinkWatch:
    """Samples, every `interval` s in a thread, the CONFIRMED rows of a run in Postgres and
    the sink's own lag (records behind the high watermark, summed over its topics)."""

    def __init__(self, database_url: str, sink_url: str, run_prefix: str, interval: float = 0.1):
        self.database_url, self.sink_url = database_url, sink_url
        self.pattern = run_prefix + "%"
        self.interval = interval
        self.rows: list[tuple[float, int]] = []
        self.records_behind: list[tuple[float, int]] = []
        self.began = time.perf_counter()
        self.errors: list[str] = []
        self._db: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> SinkWatch:
        self.began = time.perf_counter()
        self._thread.start()
        return self

    def _watch(self) -> None:
        with httpx.Client() as http:
            while not self._stop.is_set():
                try:
                    self._sample(http)
                except (psycopg.Error, httpx.HTTPError, ValueError) as exc:
                    self.errors.append(repr(exc))
                self._stop.wait(self.interval)

    def _sample(self, http: httpx.Client) -> None:
        if self._db is None:
            self._db = psycopg.connect(self.database_url, autocommit=True)
        now = time.perf_counter() - self.began
        row = self._db.execute(
            'select count(*) from "orders" where "order_id" like %s and "status" = %s',
            (self.pattern, "CONFIRMED"),
        ).fetchone()
        self.rows.append((now, int(row[0]) if row else 0))
        connectors = http.get(f"{self.sink_url}/status", timeout=2).json().get("connectors", {})
        behind = sum(int(n) for c in connectors.values() for n in (c.get("lag") or {}).values())
        self.records_behind.append((now, behind))

    def wait_for(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (not self.rows or self.rows[-1][1] < n):
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self._db is not None:
            self._db.close()

    def figures(self, confirmed_at: list[float], started: float) -> dict[str, Any]:
        """Lag of the k-th confirmation: when Postgres first held k CONFIRMED rows of the run,
        minus when the bench read the k-th CONFIRMED record on Kafka (`confirmed_at`: seconds
        since the perf_counter `started`)."""
        shift = started - self.began
        lags: list[float] = []
        samples = iter(self.rows)
        at, rows = next(samples, (float("inf"), 0))
        for k, seen in enumerate(sorted(confirmed_at), start=1):
            while rows < k:
                at, rows = next(samples, (float("inf"), 10**12))
            if at != float("inf"):
                lags.append(max(0.0, at - (seen + shift)))
        behind = [n for _, n in self.records_behind]
        return {
            "rows_seen": self.rows[-1][1] if self.rows else 0,
            "lag_p50_s": sorted(lags)[len(lags) // 2] if lags else None,
            "lag_max_s": max(lags) if lags else None,
            "records_behind_max": max(behind) if behind else None,
            "sample_interval_s": self.interval,
            "sample_errors": sorted(set(self.errors))[:5],
        }
