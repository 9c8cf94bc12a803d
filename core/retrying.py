"""Trying a failed call again: the one retry helper, on tenacity.

The workers' handlers, the gateway's state reads, the sink and the registry
stand-in retry through `retry` (blocking) or `retry_async`. It imports nothing
of Momentum, so any process may use it without building a Faust app.

Whatever the policy, a call that is given up on raises its own last error,
never tenacity's RetryError, so callers catch what the call raises.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_exponential,
    wait_fixed,
    wait_incrementing,
)
from tenacity.wait import wait_base

T = TypeVar("T")

# Which failures are worth another attempt: exception types, or a test of the error
# (asked of Exceptions only).
RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
# Told of each failure that will be retried, and of the seconds until the next attempt.
OnRetry = Callable[[BaseException, float], None]


def fixed_wait(seconds: float) -> wait_base:
    """The same wait before every retry."""
    return wait_fixed(seconds)


def linear_backoff(step: float) -> wait_base:
    """`step`, 2 x `step`, 3 x `step`, ... seconds."""
    return wait_incrementing(start=step, increment=step)


def exponential_backoff(first: float, cap: float) -> wait_base:
    """`first`, 2 x `first`, 4 x `first`, ... seconds, never more than `cap`."""
    return wait_exponential(multiplier=first, max=cap)


def retry(
    call: Callable[[], T],
    *,
    retry_on: RetryOn,
    wait: wait_base,
    attempts: int | None = None,
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """`call()`, tried again after failures `retry_on` accepts, at most `attempts` times in all
    (None: until it works). `sleep` does the waiting, e.g. an Event's `wait` to cut it short."""

    def pause(seconds: float) -> None:
        sleep(seconds)

    return Retrying(sleep=pause, **_policy(retry_on, wait, attempts, on_retry))(call)


async def retry_async(
    call: Callable[[], Awaitable[T]],
    *,
    retry_on: RetryOn,
    wait: wait_base,
    attempts: int | None = None,
    on_retry: OnRetry | None = None,
) -> T:
    """`retry` for a coroutine; it waits with asyncio.sleep."""
    # The first attempt runs without a retrier: nearly every call works at once, and
    # building and driving one cost the workers about 4% of their CPU per message.
    try:
        return await call()
    except Exception as exc:
        first_error: Exception | None = exc

    # A coroutine function, whatever `call` is: tenacity awaits only what it sees is one
    # (a lambda returning a coroutine would come back unawaited). Its first attempt is
    # the one that failed above, so the policy sees every attempt.
    async def attempt() -> T:
        nonlocal first_error
        if first_error is not None:
            error, first_error = first_error, None
            raise error
        return await call()

    return await AsyncRetrying(**_policy(retry_on, wait, attempts, on_retry))(attempt)


def _policy(
    retry_on: RetryOn, wait: wait_base, attempts: int | None, on_retry: OnRetry | None
) -> dict[str, Any]:
    """Arguments for a tenacity retrier. Callers make a new retrier per call: tenacity
    keeps a call's state on the retrier, which concurrent calls would otherwise share."""

    def before_sleep(state: RetryCallState) -> None:
        # Only failed attempts are retried, so there is an error and a next action.
        assert on_retry is not None and state.outcome is not None and state.next_action
        error = state.outcome.exception()
        assert error is not None
        on_retry(error, state.next_action.sleep)

    if isinstance(retry_on, type | tuple):
        retry_if: Any = retry_if_exception_type(retry_on)
    else:
        test = retry_on
        # Never a BaseException: a cancelled task or an interrupt ends the call at once.
        retry_if = retry_if_exception(lambda exc: isinstance(exc, Exception) and test(exc))
    policy: dict[str, Any] = {
        "retry": retry_if,
        "stop": stop_never if attempts is None else stop_after_attempt(attempts),
        "wait": wait,
        "reraise": True,
    }
    if on_retry is not None:
        policy["before_sleep"] = before_sleep
    return policy
