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

Sessions that share one store and one event loop (several patients on one gateway) share their rounds:
the writers of a store on a loop form one group with one timer, and a round writes the pending items of
every writer of the group in one transaction (each writer's items in its own queue order, each
placement's samples under its own savepoint). The commit (an fsync of the WAL, about 0.15 ms of CPU in the
kernel) is then paid once per ``interval_s`` for all of them instead of once per session; nothing waits
longer than ``interval_s`` to become durable, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
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
    t: np.ndarray  # UTC, or UTC once ``t_offset`` is added
    arrays: dict[str, np.ndarray | None]
    perfs: list[float]  # notification arrival (perf_counter) of each packet in the chunk
    t_offset: float | None = None

    def t_utc(self) -> np.ndarray:
        """The chunk's times in UTC (a numpy sum: the bits of the store's own addition)."""
        return self.t if self.t_offset is None else self.t + self.t_offset


@dataclass
class _Call:
    fn: Callable[[], Any]
    what: str


class _Group:
    """The writers of one store on one event loop (see the module docstring): one timer, one transaction per
    round for all of them."""

    def __init__(self, store: LocalStore, loop: asyncio.AbstractEventLoop, interval_s: float) -> None:
        self.store = store
        self.loop = loop
        self.interval_s = interval_s
        self._waiting: dict[StoreWriter, None] = {}  # writers with pending items, in the order they queued
        self._timer: asyncio.TimerHandle | None = None

    def schedule(self, writer: StoreWriter) -> None:
        self._waiting[writer] = None
        if self._timer is None:
            self._timer = self.loop.call_later(self.interval_s, self.write_now)

    def write_now(self) -> None:
        """Write everything pending of every writer of the group, in one transaction."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        writers, self._waiting = list(self._waiting), {}
        batches = []
        for w in writers:
            items, w._items = w._items, []
            if items:
                w.rounds += 1
                batches.append((w, items))
        if batches:
            _write_round(self.store, batches)


#: the groups of each event loop (forgotten with the loop), by store and interval
_GROUPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[int, float], _Group]] = (
    weakref.WeakKeyDictionary()
)


def _group(store: LocalStore, loop: asyncio.AbstractEventLoop, interval_s: float) -> _Group:
    groups = _GROUPS.setdefault(loop, {})
    key = (id(store), float(interval_s))  # the group holds the store: its id is not reused meanwhile
    group = groups.get(key)
    if group is None or group.store is not store:
        group = groups[key] = _Group(store, loop, interval_s)
    return group


def _write_round(store: LocalStore, batches: list[tuple[StoreWriter, list[_Samples | _Call]]]) -> None:
    """One round: every writer's items in one transaction (one fsync); then each writer's ``on_written``.

    A placement's failed write rolls back to its savepoint and is reported to its writer; a failed commit
    (a full disk, say) stores nothing of the round and is reported to every writer for each placement it
    wrote."""
    written: list[tuple[StoreWriter, list[tuple[str, int, int, list[float]]]]] = []
    transaction = getattr(store, "transaction", contextlib.nullcontext)
    try:
        with transaction():
            for writer, items in batches:
                written.append((writer, writer._write_items(items)))
    except Exception as exc:  # the commit failed: nothing of this round is stored
        for writer, done in written:
            for placement in dict.fromkeys(w[0] for w in done):
                writer.on_error("samples", placement, exc)
        return
    at = time.perf_counter()
    for writer, done in written:
        for placement, stored, offered, perfs in done:
            writer.on_written(placement, stored, offered, perfs, at)


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
        self._items: list[_Samples | _Call] = []
        self._group = _group(store, loop, interval_s)
        self.rounds = 0

    def samples(
        self,
        placement: str,
        t: np.ndarray,
        arrays: dict[str, np.ndarray | None],
        perfs: list[float],
        t_offset: float | None = None,
    ) -> None:
        """Hand over a chunk of samples: times ``t`` (UTC, or UTC once ``t_offset`` is added: the store adds
        it as it binds the rows, without a numpy call per chunk), the columns and the chunk's packets'
        arrival times (``time.perf_counter()``)."""
        self._items.append(_Samples(placement, t, arrays, perfs, t_offset))
        self._group.schedule(self)

    def call(self, fn: Callable[[], Any], what: str) -> None:
        """Run ``fn`` (a gap or event write) after the samples handed over before it."""
        self._items.append(_Call(fn, what))
        self._group.schedule(self)

    def write_now(self) -> None:
        """Write everything pending (also what the other writers of the group have pending)."""
        self._group.write_now()

    async def flush(self) -> None:
        self.write_now()

    async def close(self) -> None:
        self.write_now()

    def _write_items(self, items: list[_Samples | _Call]) -> list[tuple[str, int, int, list[float]]]:
        """Write this writer's items inside the round's transaction; returns what each placement stored."""
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
        written: list[tuple[str, int, int, list[float]]] = []
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
        return written

    def _write_samples(
        self, placement: str, chunks: list[_Samples]
    ) -> tuple[str, int, int, list[float]] | None:
        arrays: dict[str, np.ndarray | None]
        t_offset = None
        if len(chunks) == 1:  # (one chunk: its arrays as they are)
            t, perfs, t_offset = chunks[0].t, chunks[0].perfs, chunks[0].t_offset
            arrays = {name: chunks[0].arrays.get(name) for name in COLUMNS}
        else:
            t = np.concatenate([c.t_utc() for c in chunks])
            arrays = {}
            for name in COLUMNS:
                parts = [c.arrays.get(name) for c in chunks]
                arrays[name] = None if any(p is None for p in parts) else np.concatenate(parts)  # type: ignore[arg-type]
            perfs = [p for c in chunks for p in c.perfs]
        try:
            stored = self.store.add_samples(self.session_id, placement, t, t_offset=t_offset, **arrays)
        except Exception as exc:
            self.on_error("samples", placement, exc)
            return None
        return placement, int(stored), len(t), perfs
