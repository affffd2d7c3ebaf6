"""The store writer: makes samples durable in batches of at most ``interval_s`` (20 ms) per placement.

The session's consumer hands over decoded chunks (:meth:`StoreWriter.samples`), gaps and events; every
``interval_s`` the writer writes everything pending in one transaction (durable when it commits: WAL +
fsync): the samples of each placement in one ``add_samples`` call, the gaps and events in queue order; then
it reports the stored count, duplicates and completion time through ``on_written``. Under load, writes
batch up instead of costing one transaction per packet.

It runs on the event loop on purpose: the sqlite3 module releases the GIL around every inserted row, so a
writer thread competing with a busy event loop waits up to the interpreter's switch interval (5 ms) per
row and falls seconds behind (``bench/ingest_load.py``); one fsync'd transaction every 20 ms on the loop is
far cheaper.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from hipback.ingest.store import LocalStore

logger = logging.getLogger(__name__)

COLUMNS = ("seq", "quat", "acc", "gyr", "mag", "device_time")


@dataclass
class _Samples:
    placement: str
    t_utc: np.ndarray
    arrays: dict[str, np.ndarray | None]
    perfs: list[float]  # notification arrival (perf_counter) of each packet in the chunk


@dataclass
class _Call:
    fn: Callable[[], Any]
    what: str


class StoreWriter:
    """Writes one session's samples, gaps and events in batches (see the module docstring).

    ``on_written(placement, stored, offered, perfs, done_perf)`` runs after each durable ``add_samples``;
    ``on_error(what, placement, exc)`` after a failed write (the session goes on).
    """

    def __init__(
        self,
        store: LocalStore,
        session_id: str,
        loop: asyncio.AbstractEventLoop,
        on_written: Callable[[str, int, int, list[float], float], None],
        on_error: Callable[[str, str | None, BaseException], None],
        interval_s: float = 0.02,
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.loop = loop
        self.on_written = on_written
        self.on_error = on_error
        self.interval_s = interval_s
        self._items: list[Any] = []
        self._timer: asyncio.TimerHandle | None = None
        self.rounds = 0

    def samples(
        self, placement: str, t_utc: np.ndarray, arrays: dict[str, np.ndarray | None], perfs: list[float]
    ) -> None:
        self._items.append(_Samples(placement, t_utc, arrays, perfs))
        self._schedule()

    def call(self, fn: Callable[[], Any], what: str) -> None:
        """Run ``fn`` (a gap or event write) after the samples handed over before it."""
        self._items.append(_Call(fn, what))
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is None:
            self._timer = self.loop.call_later(self.interval_s, self.write_now)

    def write_now(self) -> None:
        """Write everything pending."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, self._items = self._items, []
        if items:
            self.rounds += 1
            self._process(items)

    async def flush(self) -> None:
        self.write_now()

    async def close(self) -> None:
        self.write_now()

    def _process(self, items: list[Any]) -> None:
        pending: dict[str, list[_Samples]] = {}
        order: list[Any] = []  # placements (first appearance) and calls in queue order
        for it in items:
            if isinstance(it, _Samples):
                if it.placement not in pending:
                    pending[it.placement] = []
                    order.append(it.placement)
                pending[it.placement].append(it)
            else:
                order.append(it)
        # one transaction (one fsync) per round; a placement's failed write rolls back to its savepoint
        written: list[tuple[str, int, int, list[float]]] = []
        transaction = getattr(self.store, "transaction", contextlib.nullcontext)
        try:
            with transaction():
                for entry in order:
                    if isinstance(entry, str):
                        done = self._write_samples(entry, pending[entry])
                        if done is not None:
                            written.append(done)
                    else:
                        try:
                            entry.fn()
                        except Exception as exc:
                            self.on_error(entry.what, None, exc)
        except Exception as exc:  # the commit failed (a full disk, say): nothing of this round is stored
            for placement in {w[0] for w in written}:
                self.on_error("samples", placement, exc)
            return
        at = time.perf_counter()
        for placement, stored, offered, perfs in written:
            self.on_written(placement, stored, offered, perfs, at)

    def _write_samples(
        self, placement: str, chunks: list[_Samples]
    ) -> tuple[str, int, int, list[float]] | None:
        t = np.concatenate([c.t_utc for c in chunks])
        arrays: dict[str, np.ndarray | None] = {}
        for name in COLUMNS:
            parts = [c.arrays.get(name) for c in chunks]
            arrays[name] = None if any(p is None for p in parts) else np.concatenate(parts)  # type: ignore[arg-type]
        perfs = [p for c in chunks for p in c.perfs]
        try:
            stored = self.store.add_samples(self.session_id, placement, t, **arrays)
        except Exception as exc:
            self.on_error("samples", placement, exc)
            return None
        return placement, int(stored), len(t), perfs
