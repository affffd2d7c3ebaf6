"""Where a session reads the time: one :class:`Clock` handed to everything that needs "now".

A clock gives two readings, both in seconds:

- ``utc()``: Unix time (UTC), used at the edges only (the session's start in the store, event times,
  InfluxDB timestamps);
- ``monotonic()``: a steadily increasing time for everything inside a session (arrival times of
  notifications, timeouts, rate limits). Session seconds are ``monotonic() - monotonic_at_start``.

:class:`SystemClock` reads the operating system (real sessions). :class:`LoopClock` reads the running asyncio
loop's own time: on an ordinary loop that is the system's monotonic clock; on a
:class:`hipback.ingest.virtual_time.VirtualTimeLoop` it is simulated time, so a virtual session's results do
not depend on how fast or how loaded the machine is.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """A source of "now" (see the module docstring)."""

    def utc(self) -> float:
        """Unix time in s."""
        ...

    def monotonic(self) -> float:
        """Monotonic time in s (arbitrary origin)."""
        ...


class SystemClock:
    """The operating system's clocks (``time.time``, ``time.monotonic``)."""

    def utc(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class LoopClock:
    """The time of an asyncio loop, anchored to a UTC instant.

    Args:
        loop: the loop whose ``time()`` is read (default: the running loop).
        start_utc: Unix time (s) that the loop's current time corresponds to (default: the system's now).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, start_utc: float | None = None) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self._mono0 = self.loop.time()
        self._utc0 = time.time() if start_utc is None else float(start_utc)

    def utc(self) -> float:
        return self._utc0 + (self.loop.time() - self._mono0)

    def monotonic(self) -> float:
        return self.loop.time()


SYSTEM_CLOCK = SystemClock()
