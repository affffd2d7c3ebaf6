"""The outbox sync worker: sends what the local store owes InfluxDB, durably and idempotently.

Everything bound for InfluxDB is first put in the local store's outbox (:meth:`LocalStore.outbox_add`);
:class:`SyncWorker` sends pending lines in batches through an :class:`InfluxWriter` and marks them
delivered only after the server answered 2xx. Lines the server refuses as bad data are set aside with
its reason (never retried forever); everything else stays pending while the database is down, and the
worker backs off (exponential, with jitter) and tries again.

Why a replay is harmless: every point carries an explicit timestamp and its full tag set, so sending a
line twice (a kill between the server's 2xx and :meth:`outbox_mark_delivered`, or a half-delivered batch
resent) overwrites the same point in InfluxDB instead of adding one.

Use :meth:`SyncWorker.sync_once` to send everything now (the ``hipback sync`` command), or
:meth:`SyncWorker.start` / :meth:`SyncWorker.stop` for a background thread during a live session
(:meth:`SyncWorker.wake` after adding lines makes it send at once instead of at its next poll).
"""

from __future__ import annotations

import logging
import random
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from hipback.ingest.errors import DatabaseError
from hipback.ingest.influx.writer import InfluxWriter
from hipback.ingest.store import LocalStore

log = logging.getLogger("hipback.sync")


@dataclass
class SyncReport:
    """What one :meth:`SyncWorker.sync_once` did."""

    delivered: int = 0
    set_aside: int = 0
    batches: int = 0
    pending: int = 0  # still pending afterwards


class SyncWorker:
    """Sends the outbox of ``store`` through ``writer`` (see the module docstring)."""

    def __init__(self, store: LocalStore, writer: InfluxWriter, *, batch_size: int | None = None,
                 session_id: str | None = None, poll_s: float = 1.0, backoff_initial_s: float = 1.0,
                 backoff_max_s: float = 60.0, owns_writer: bool = False) -> None:
        self.store = store
        self.writer = writer
        self.batch_size = int(batch_size or writer.batch_size)
        self.session_id = session_id
        self.poll_s = poll_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.last_error: DatabaseError | None = None
        self.totals = SyncReport()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._owns_writer = owns_writer
        self._ensured = False

    @classmethod
    def from_env(cls, store: LocalStore, **kwargs) -> SyncWorker | None:
        """A worker writing where ``HIPBACK_INFLUX_*`` says, or None when ``HIPBACK_INFLUX_URL`` is unset.

        For live sessions (``hipback demo`` / ``record``): ``worker = SyncWorker.from_env(store)``, then
        ``worker.start()``, ``store.outbox_add(...)`` + ``worker.wake()`` as results come, and
        ``worker.stop()`` at the end (one last attempt; what is not delivered stays queued for
        ``hipback sync``). Raises :class:`ConfigError` for bad settings.
        """
        from hipback.ingest.influx.settings import InfluxSettings

        settings = InfluxSettings.from_env()
        if settings is None:
            return None
        writer = InfluxWriter.from_settings(settings, max_retries=2)
        return cls(store, writer, owns_writer=True, **kwargs)

    def sync_once(self, progress: Callable[[SyncReport], None] | None = None) -> SyncReport:
        """Send every pending line now. Raises :class:`DatabaseError` when the server cannot take them
        (what was not delivered stays pending). ``progress`` is called after each batch."""
        report = SyncReport()
        while not self._stop.is_set():
            batch = self.store.outbox_pending(self.batch_size, self.session_id)
            if not batch:
                break
            ids = [i for i, _ in batch]
            result = self.writer.send_lines([line for _, line in batch], precision="ns")
            rejected = set(result.rejected_indices)
            reasons: dict[str, list[int]] = defaultdict(list)
            for r in result.rejected:
                for idx in r.indices or []:
                    reasons[f"HTTP {r.status}: {r.message}"].append(ids[idx])
            delivered = [i for k, i in enumerate(ids) if k not in rejected]
            self.store.outbox_mark_delivered(delivered)
            for reason, bad_ids in reasons.items():
                self.store.outbox_set_aside(bad_ids, reason)
            report.delivered += len(delivered)
            report.set_aside += len(rejected)
            report.batches += 1
            self.totals.delivered += len(delivered)
            self.totals.set_aside += len(rejected)
            self.totals.batches += 1
            if progress is not None:
                progress(report)
        report.pending = self.pending()
        self.totals.pending = report.pending
        return report

    def pending(self) -> int:
        stats = self.store.outbox_stats(self.session_id)
        return int(stats["pending"])

    # -- background thread ---------------------------------------------------------------------------

    def start(self) -> None:
        """Run :meth:`run` in a daemon thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="hipback-sync", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Send now rather than at the next poll (e.g. right after adding lines)."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0, *, final_sync: bool = True) -> None:
        """Stop the thread; with ``final_sync`` try once more to send what is pending (errors logged)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if final_sync:
            self._stop.clear()
            try:
                self.sync_once()
            except DatabaseError as exc:
                self.last_error = exc
                log.warning("%s; %d line(s) stay queued in %s", exc, self.pending(), self.store.path)
            finally:
                self._stop.set()
        if self._owns_writer:
            self.writer.close()

    def run(self) -> None:
        """Loop until :meth:`stop`: send pending lines; when the database is down, back off and retry."""
        delay = self.backoff_initial_s
        while not self._stop.is_set():
            try:
                if not self._ensured and self._owns_writer:
                    self.writer.ensure_database()
                    self._ensured = True
                self.sync_once()
            except DatabaseError as exc:
                if self.last_error is None or str(exc) != str(self.last_error):
                    log.warning("%s", exc)
                self.last_error = exc
                wait = delay / 2 + random.uniform(0, delay / 2)
                delay = min(self.backoff_max_s, delay * 2)
            except Exception:  # noqa: BLE001 - keep the worker alive; the lines stay pending
                log.exception("unexpected error in the sync worker; retrying")
                wait = delay
                delay = min(self.backoff_max_s, delay * 2)
            else:
                if self.last_error is not None:
                    log.info("InfluxDB is reachable again; the outbox is being delivered")
                self.last_error = None
                delay = self.backoff_initial_s
                wait = self.poll_s
            self._wake.wait(wait)
            self._wake.clear()
