"""The retry helper: attempts, waits, which failures are retried, what is raised at the end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from core.retrying import (
    exponential_backoff,
    fixed_wait,
    linear_backoff,
    retry,
    retry_async,
)


def failing(times: int, error: Callable[[int], BaseException]) -> Callable[[], int]:
    """A call that raises `error(n)` on its first `times` calls, then returns the call count."""
    calls = 0

    def call() -> int:
        nonlocal calls
        calls += 1
        if calls <= times:
            raise error(calls)
        return calls

    return call


def test_a_call_is_tried_until_it_works_and_returns_its_result() -> None:
    slept: list[float] = []
    result = retry(
        failing(7, lambda n: ConnectionError(n)),
        retry_on=ConnectionError,
        wait=exponential_backoff(first=0.2, cap=5.0),
        sleep=slept.append,
    )
    assert result == 8
    assert slept == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_the_last_error_itself_is_raised_after_the_last_attempt() -> None:
    slept: list[float] = []
    with pytest.raises(ConnectionError) as caught:
        retry(
            failing(5, lambda n: ConnectionError(n)),
            retry_on=ConnectionError,
            attempts=3,
            wait=linear_backoff(0.2),
            sleep=slept.append,
        )
    assert caught.value.args == (3,)
    assert slept == [0.2, 0.4]


def test_an_error_not_retried_is_raised_at_once() -> None:
    call = failing(1, lambda n: ValueError(n))
    with pytest.raises(ValueError):
        retry(call, retry_on=ConnectionError, wait=fixed_wait(0), sleep=lambda _: None)
    assert call() == 2  # it was called once


def test_retry_on_may_test_the_error_and_on_retry_hears_each_retried_failure() -> None:
    heard: list[tuple[int, float]] = []
    with pytest.raises(OSError) as caught:
        retry(
            failing(5, lambda n: OSError(n)),
            retry_on=lambda exc: isinstance(exc, OSError) and exc.args[0] < 3,
            wait=fixed_wait(0.05),
            on_retry=lambda exc, delay: heard.append((exc.args[0], delay)),
            sleep=lambda _: None,
        )
    assert caught.value.args == (3,)
    assert heard == [(1, 0.05), (2, 0.05)]


async def test_a_coroutine_is_retried_the_same_way() -> None:
    call = failing(2, lambda n: ConnectionError(n))

    async def attempt() -> int:
        return call()

    assert await retry_async(attempt, retry_on=ConnectionError, attempts=3, wait=fixed_wait(0)) == 3
    call = failing(3, lambda n: ConnectionError(n))
    with pytest.raises(ConnectionError):
        await retry_async(attempt, retry_on=ConnectionError, attempts=3, wait=fixed_wait(0))


async def test_a_lambda_returning_a_coroutine_is_awaited() -> None:
    async def answer() -> int:
        return 42

    assert await retry_async(lambda: answer(), retry_on=ValueError, wait=fixed_wait(0)) == 42


async def test_a_cancelled_call_is_never_retried() -> None:
    call = failing(1, lambda n: asyncio.CancelledError())

    async def attempt() -> int:
        return call()

    with pytest.raises(asyncio.CancelledError):
        await retry_async(attempt, retry_on=lambda exc: True, attempts=3, wait=fixed_wait(0))
    assert call() == 2  # it was called once


async def test_a_coroutine_s_first_failure_counts_as_its_first_attempt() -> None:
    # The first attempt runs before any retrier exists; the policy must still see it.
    heard: list[tuple[int, float]] = []
    call = failing(5, lambda n: OSError(n))

    async def attempt() -> int:
        return call()

    with pytest.raises(OSError) as caught:
        await retry_async(
            attempt,
            retry_on=OSError,
            attempts=3,
            wait=linear_backoff(0.001),
            on_retry=lambda exc, delay: heard.append((exc.args[0], delay)),
        )
    assert caught.value.args == (3,)
    assert heard == [(1, 0.001), (2, 0.002)]

    not_retried = failing(1, lambda n: ValueError(n))

    async def refused() -> int:
        return not_retried()

    with pytest.raises(ValueError):
        await retry_async(refused, retry_on=OSError, attempts=3, wait=fixed_wait(0))
    assert not_retried() == 2  # it was called once
