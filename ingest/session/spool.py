"""A live session's angle series, stored as it comes instead of kept in memory until the session ends.

The session processor's angle rows (:class:`hipback.processing.types.AngleSeries`, session seconds, rad) reach
the runner with every poll. :class:`AngleSpool` joins them into rows of
:data:`hipback.ingest.results.ANGLES_CHUNK` samples (60 s at 100 Hz) and stores each full one as it fills
(result kind ``angles``, row ``1 + i0 / ANGLES_CHUNK``, :func:`hipback.ingest.results.angles_chunk_row`); at
the session's end the rest and the header (row 0, :func:`hipback.ingest.results.angles_header`) follow. The
stored rows are those :func:`hipback.ingest.results.angles_rows` makes of the whole series, so readers
(:func:`hipback.ingest.results.angles_from_rows`: report, export) see no difference; a session's memory no
longer grows with its angle rows (about 64 MB per hour of session at 100 Hz, bench/README.md). The session's
results (``SessionOutcome.results``) therefore carry no angle series (``angles`` is empty): read it back from
the store.

The header comes last and only when every row was stored: a session that stopped before its end, or whose
rows could not all be written, has no readable angle series (readers process its raw samples again and say
so), never a series with a hole that claims to be whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hipback.ingest.results import ANGLES_CHUNK, angles_chunk_row, angles_header
from hipback.processing.types import AngleSeries

if TYPE_CHECKING:
    from hipback.ingest.store import LocalStore
    from hipback.processing.pipeline import SessionResults

logger = logging.getLogger(__name__)

KIND = "angles"
#: pieces waiting for their row are joined into one when there are this many (a 20 ms step's two rows are a
#: set of small arrays: held apart, the 3,000 steps of a row took twice the memory)
JOIN_PARTS = 100


class AngleSpool:
    """Stores one session's angle rows as they come (module docstring).

    :param store: the session's local store. :param session_id: the session (already in the store).
    :param defer: runs a store write later, in order with the session's other writes (the runner's
        :meth:`hipback.ingest.session.writer.StoreWriter.call`); None: at once.
    :param chunk: samples per stored row (None: :data:`~hipback.ingest.results.ANGLES_CHUNK`).

    Angle rows this session stored before (a session continued after a restart) are dropped first.
    """

    def __init__(
        self,
        store: LocalStore,
        session_id: str,
        *,
        defer: Callable[[Callable[[], Any], str], None] | None = None,
        chunk: int | None = None,
    ) -> None:
        chunk = ANGLES_CHUNK if chunk is None else chunk
        if chunk < 1:
            raise ValueError("chunk must be at least 1")
        self.store = store
        self.session_id = session_id
        self.defer = defer
        self.chunk = int(chunk)
        self.rows_ = 0  # angle rows received
        self.failed_: BaseException | None = None  # the first write that failed
        self._handed = 0  # rows handed to the store (full rows of the series)
        self._parts: list[AngleSeries] = []
        self._waiting = 0  # rows in _parts
        # a session continued under its id (after a restart) is processed from the new samples on: the rows
        # an earlier run of it stored go, as the results stored at its end replace the earlier ones
        self._run(lambda: self.store.put_results(self.session_id, KIND, []), "earlier angle rows")

    def add(self, angles: AngleSeries) -> None:
        """The next angle rows of the session (in time order, as the processor gives them)."""
        n = len(angles)
        if n == 0:
            return
        self._parts.append(angles)
        self._waiting += n
        self.rows_ += n
        if len(self._parts) >= JOIN_PARTS and self._waiting < self.chunk:
            # a live step's few rows are a set of small arrays each: joined now and then, not kept apart
            self._parts = [AngleSeries.concat(self._parts)]
        if self._waiting >= self.chunk:
            joined = AngleSeries.concat(self._parts)
            start = 0
            while self._waiting - start >= self.chunk:
                self._write(joined.slice(start, start + self.chunk))
                start += self.chunk
            rest = joined.slice(start, len(joined))
            self._parts = [rest] if len(rest) else []
            self._waiting = len(rest)

    def finish(self, results: SessionResults, start_utc: float) -> bool:
        """Store the rows not stored yet, then the header (the results' placements, calibration state,
        processing log and gaps; ``start_utc``: UTC of session time 0). Writes at once (after the deferred
        writes, which the caller has run). Returns whether the whole series is stored; False (no header)
        when a row could not be written."""
        self.defer = None
        if self._parts:
            self._write(AngleSeries.concat(self._parts))
            self._parts, self._waiting = [], 0
        if self.failed_ is not None:
            return False
        try:
            self.store.put_result_rows(self.session_id, KIND, 0,
                                       [angles_header(results, start_utc, self.rows_)])
        except Exception as exc:
            self.failed_ = exc
            return False
        return True

    def _write(self, part: AngleSeries) -> None:
        idx = 1 + self._handed // self.chunk
        row = angles_chunk_row(part, self._handed)
        self._handed += len(part)
        self._run(lambda: self.store.put_result_rows(self.session_id, KIND, idx, [row]), "angle rows")

    def _run(self, write: Callable[[], Any], what: str) -> None:
        """Run a store write (deferred when :attr:`defer` is set); the first failure is kept in
        :attr:`failed_` (and reported by the deferring writer, or logged)."""

        def job() -> None:
            try:
                write()
            except Exception as exc:
                if self.failed_ is None:
                    self.failed_ = exc
                raise

        if self.defer is not None:
            self.defer(job, what)
            return
        try:
            job()
        except Exception as exc:
            logger.error("store: %s not written: %s", what, exc)
