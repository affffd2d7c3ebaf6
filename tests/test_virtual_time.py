"""The simulated-time event loop: time advances only when every task waits, so results follow from simulated
time alone; work in threads freezes it; pacing sleeps for real without changing simulated time."""

from __future__ import annotations

import asyncio
import time

import pytest

from hipback.ingest.timesource import LoopClock
from hipback.ingest.virtual_time import VirtualTimeLoop, run_virtual


async def _interleaved() -> list[tuple[float, str]]:
    loop = asyncio.get_running_loop()
    log: list[tuple[float, str]] = []

    async def ticker(label: str, dt: float, n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(dt)
            log.append((loop.time(), label))
            sum(range(2000))  # some work between waits: it must not move simulated time

    await asyncio.gather(ticker("a", 0.0075, 400), ticker("b", 0.01, 300), ticker("c", 0.333, 9))
    return log


def test_time_jumps_to_the_next_timer_and_runs_are_identical() -> None:
    first = run_virtual(_interleaved())
    second = run_virtual(_interleaved())
    assert first == second
    times = [t for t, _ in first]
    assert times == sorted(times)
    assert times[-1] == pytest.approx(3.0, abs=1e-9)
    # each ticker fires exactly on its own period
    a = [t for t, lab in first if lab == "a"]
    assert a[0] == pytest.approx(0.0075, abs=1e-12) and a[-1] == pytest.approx(3.0, abs=1e-9)


def test_timeouts_fire_at_their_simulated_time() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), 30.0)
        return loop.time()

    assert run_virtual(main()) == pytest.approx(30.0, abs=1e-9)


def test_thread_work_freezes_simulated_time() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        sleeper = asyncio.ensure_future(asyncio.sleep(10.0))
        await asyncio.to_thread(time.sleep, 0.05)  # real work in a thread: the 10 s timer must wait for it
        during = loop.time()
        await sleeper
        return during, loop.time()

    during, after = run_virtual(main())
    assert during == 0.0 and after == pytest.approx(10.0, abs=1e-9)


def test_loop_clock_reads_simulated_time_anchored_to_utc() -> None:
    async def main() -> tuple[float, float]:
        clock = LoopClock(start_utc=1_700_000_000.0)
        await asyncio.sleep(12.5)
        return clock.utc(), clock.monotonic()

    utc, mono = run_virtual(main())
    assert utc == pytest.approx(1_700_000_012.5, abs=1e-6) and mono == pytest.approx(12.5, abs=1e-9)


def test_pacing_sleeps_for_real_and_keeps_simulated_time() -> None:
    start = time.monotonic()
    log = run_virtual(_interleaved(), pace=20.0)  # 3 s simulated at 20x: at least 0.15 s of real time
    assert time.monotonic() - start >= 0.15 - 1e-3
    assert log == run_virtual(_interleaved())
    with pytest.raises(ValueError):
        VirtualTimeLoop(pace=0.0)


def test_real_io_is_served_while_callbacks_keep_the_loop_busy() -> None:
    """The loop polls sockets at most every POLL_WHILE_BUSY_S of real time while callbacks are ready: a
    readable socket must still be served while a task keeps yielding without waiting for time, and
    simulated time must not move meanwhile."""
    import socket

    async def main() -> tuple[int, float, float]:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        got = asyncio.Event()
        loop.add_reader(a, lambda: (a.recv(16), got.set()))
        t0 = loop.time()
        b.send(b"x")
        spins, wall0 = 0, time.monotonic()
        while not got.is_set() and time.monotonic() - wall0 < 5.0:
            await asyncio.sleep(0)  # ready again at once: the loop never idles
            spins += 1
        loop.remove_reader(a)
        a.close()
        b.close()
        return spins, loop.time() - t0, time.monotonic() - wall0

    spins, simulated, wall = run_virtual(main())
    assert spins >= 1 and wall < 5.0  # served, not starved until the task gave up
    assert simulated == 0.0


def test_real_io_is_served_while_timers_keep_the_clock_jumping() -> None:
    """Between clock jumps the loop polls sockets at most every POLL_WHILE_BUSY_S of real time too: a
    readable socket must still be served while a task sleeps simulated time in small steps (every step a
    jump), long before its simulated minutes run out."""
    import socket

    async def main() -> bool:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        got = asyncio.Event()
        loop.add_reader(a, lambda: (a.recv(16), got.set()))
        b.send(b"x")
        t0 = loop.time()
        while not got.is_set() and loop.time() - t0 < 600.0:
            await asyncio.sleep(0.001)
        loop.remove_reader(a)
        a.close()
        b.close()
        return got.is_set()

    assert run_virtual(main())
