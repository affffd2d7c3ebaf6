"""Simulated time for virtual sessions: an asyncio loop whose clock advances only when every task waits.

:class:`VirtualTimeLoop` is an ordinary selector event loop with two changes:

- ``loop.time()`` returns simulated seconds (starting at 0);
- when nothing is ready to run and the next thing to happen is a timer (``asyncio.sleep``, ``wait_for``
  timeouts, Bumble's timers), the loop jumps its clock to that timer instead of waiting for it. Sockets and
  pipes are still polled (without blocking) at least every millisecond of real time, and before every jump
  to a time when nothing at all is scheduled (the loop then waits for real), so real I/O keeps working.

So a virtual session runs as fast as the CPU allows, and everything it computes (arrival times, timeouts,
which packet lands before which) follows from simulated time alone: two runs give the same results on a fast
or a slow or a busy machine. This is the idea of the ``looptime`` package (a pytest plugin); it is written
here because the product's ``hipback demo`` and ``record`` need it outside pytest and it is small.

Work handed to threads with ``loop.run_in_executor`` (or ``asyncio.to_thread``) freezes simulated time until
it completes: the loop then waits for real, as a thread's duration is not part of the simulation.

``pace``: when set, the loop also sleeps ``gap / pace`` real seconds for each jump of ``gap`` simulated
seconds, to watch a virtual session in scaled real time (``--speed``). Simulated time, and therefore every
result, is the same with or without pacing; a machine too slow for the pace simply runs behind it.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

T = TypeVar("T")

#: while callbacks are ready, sockets and pipes are polled at most this often (real seconds)
POLL_WHILE_BUSY_S = 0.001


class _JumpingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """The platform selector, with ``select(timeout)`` turned into a clock jump (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None
        self._next_poll = 0.0  # real time (time.monotonic) of the next poll while callbacks are ready

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self.loop
        if loop is None:
            return super().select(timeout)
        if timeout is not None and timeout <= 0:
            # callbacks are ready: the loop only looks for I/O, once per iteration. On simulated time that is
            # tens of thousands of polls per real second, most of them finding nothing; poll at most every
            # POLL_WHILE_BUSY_S of real time (and always before a clock jump, below)
            now = time.monotonic()
            if now < self._next_poll:
                return []
            self._next_poll = now + POLL_WHILE_BUSY_S
            return super().select(timeout)
        if timeout is not None and not loop.threads_busy and loop.pace is None:
            # the next thing to happen is a timer: jump to it. The sockets and pipes are polled first at most
            # every POLL_WHILE_BUSY_S of real time, as above: a streaming session jumps tens of thousands of
            # times per real second, from one connection event or store round to the next
            now = time.monotonic()
            if now < self._next_poll:
                loop.advance(timeout)
                return []
            self._next_poll = now + POLL_WHILE_BUSY_S
        events = super().select(0)
        if events:
            return events
        if timeout is None or loop.threads_busy:
            # nothing scheduled, or a thread is working for the loop: wait for real (a thread's result or
            # real I/O wakes the loop)
            return super().select(None)
        if loop.pace is not None:
            # sleep only while simulated time would run ahead of the paced real clock (so that timers a
            # fraction of a millisecond apart do not each cost the selector's millisecond resolution)
            wait = loop.real_origin + (loop.time() + timeout) / loop.pace - time.monotonic()
            if wait > 0:
                events = super().select(wait)
                if events:
                    paced_now = (time.monotonic() - loop.real_origin) * loop.pace
                    loop.advance(min(timeout, paced_now - loop.time()))
                    return events
        loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on simulated time (see the module docstring).

    Args:
        pace: None for as fast as possible, else simulated seconds per real second.
    """

    def __init__(self, pace: float | None = None) -> None:
        self._now = 0.0
        self.pace = pace
        self.real_origin = time.monotonic()  # real time at simulated time 0 (for pacing)
        self.threads_busy = 0
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        if pace is not None and not pace > 0:
            self.close()
            raise ValueError("pace must be positive")

    def time(self) -> float:
        """Simulated seconds since the loop was made."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move simulated time forward (called by the selector when every task waits)."""
        if seconds > 0:
            self._now += seconds

    def run_in_executor(  # type: ignore[override]  # same call, written without the variadic generics
        self, executor: Executor | None, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        fut = super().run_in_executor(executor, func, *args)
        self._thread_started(fut)
        return fut

    async def shutdown_default_executor(self, *args: Any, **kwargs: Any) -> None:
        self.threads_busy += 1
        try:
            await super().shutdown_default_executor(*args, **kwargs)
        finally:
            self.threads_busy -= 1

    def _thread_started(self, fut: asyncio.Future[Any]) -> None:
        self.threads_busy += 1

        def done(_f: asyncio.Future[Any]) -> None:
            self.threads_busy -= 1

        fut.add_done_callback(done)


def run_virtual(main: Awaitable[T], pace: float | None = None) -> T:
    """Run a coroutine to completion on a fresh :class:`VirtualTimeLoop` (as :func:`asyncio.run` does)."""
    return run_loop(main, lambda: VirtualTimeLoop(pace))


def run_loop(main: Awaitable[T], loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None) -> T:
    """:func:`asyncio.run` with the coroutine's result kept out of the main task.

    At the end, ``asyncio.Runner`` (3.11) formats the repr of its SIGINT handler, which holds the main task;
    a task whose result is a whole session (arrays of every sample) takes seconds to format. Here the task
    returns nothing and the result is handed over beside it.
    """
    box: list[T] = []

    async def wrapper() -> None:
        box.append(await main)

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(wrapper())
    return box[0]
