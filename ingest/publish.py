"""From processing results to InfluxDB points, through the local store's durable outbox.

This is the edge where processing results (SI units, radians, times in seconds on the *session
timeline*) become the schema's rows and points (degrees, UTC; :mod:`hipback.ingest.influx.schema`):

- ``strides``: one point per :class:`hipback.processing.gait.Stride` (time = stride start, ``stride_no`` per
  side from 0 in time order);
- ``holds``: one point per :class:`hipback.processing.holds.Hold` (time = hold start, exercise
  ``kneeling_hip_flexor``, ``completed`` = correct-posture time reached the prescribed ``target_s``);
- ``exercise_reps`` / ``exercise_holds``: one point per rep or hold of the session's exercise block
  (``SessionResults.exercise_events``; rows of :class:`hipback.ingest.programme.ExerciseRows`, time = the
  rep's movement onset or the hold's start, ``rep`` numbered per exercise and side over the session);
- ``activity``: one point per activity bout (time = bout start; processing's ``kneeling`` is the
  schema's ``stretching``, ``upright`` -- still, but no thigh sensor to tell sitting from standing --
  is ``unknown``);
- ``sessions``: one point per session at its start: ``kind`` is ``walk`` (strides or walking, no
  stretch), ``stretch`` (holds or kneeling, no walking) or ``mixed`` (both, or neither recognised);
  ``holds_prescribed`` only for sessions with stretching;
- ``posture_time``: one point per session at its start: time sitting, bent forward and in lumbar
  extension (:func:`hipback.processing.exercises.posture.posture_time`; per day in the exercise dashboard);
- ``angles``: hip flexion left/right, pelvic tilt and lumbar flexion averaged into bins of
  1/:data:`ANGLES_RATE_HZ` s aligned to UTC multiples of the bin width (the schema's dashboard rate);
- ``device_status``: per sensor from the session runner's :class:`~hipback.ingest.session.stats.SensorStats`
  (battery, packet loss = missing / (samples + missing) in %, measured rate, reconnects, decoder
  rejects); the live publisher reports every ``status_interval_s`` of session time (loss since the
  previous report) and at the end;
- ``patient_status``: :class:`hipback.processing.progress.PatientProgress` over every session of the patient
  in the local store, as of ``now_s``.

Time: ``start_utc`` (Unix s) is the UTC time of session time 0. For the session runner that is
``SessionOutcome.start_utc`` = the stored session's ``start_utc`` (samples are stored at
``start_utc + t``); for ``hipback process --store`` it is the recording's ``start_utc``.

Everything goes into the outbox (:meth:`hipback.ingest.store.LocalStore.outbox_add`) with explicit timestamps,
so a replay overwrites the same points instead of adding new ones; :class:`hipback.ingest.sync.SyncWorker`
sends it. The result rows are also stored (:meth:`LocalStore.put_results`, the session runner's row
format plus ``t_s`` in UTC) so that reports and the patient's progress can be computed later.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hipback.ingest.influx import schema
from hipback.ingest.influx.lineprotocol import Point
from hipback.ingest.programme import ExerciseRows, exercise_rows
from hipback.ingest.results import (
    ANGLE_FIELDS,
    DEFAULT_HOLD_S,
    DEFAULT_HOLDS_PER_SIDE,
    activity_row,
    angle_columns,
    device_status_row,
    hold_row,
    prescription_of,
    session_row,
    store_rows,
    stored_angles,
    stride_row,
    stride_rows,
)
from hipback.ingest.session.stats import SessionIdentity
from hipback.processing.exercises.posture import PostureCounter, posture_time
from hipback.processing.progress import PatientProgress

if TYPE_CHECKING:
    from hipback.ingest.session.stats import SensorStats, SessionOutcome
    from hipback.ingest.store import LocalStore
    from hipback.processing.activity import ActivityBout
    from hipback.processing.gait import Stride
    from hipback.processing.holds import Hold
    from hipback.processing.pipeline import ExerciseEvent, ProcessorUpdate, SessionResults
    from hipback.processing.types import AngleSeries

#: Rate of the ``angles`` measurement (Hz): the dashboards' resolution, see docs/schema.md.
ANGLES_RATE_HZ = 10.0
#: Days per week the stretch is prescribed (for ``holds_prescribed_7d`` and adherence).
STRETCH_DAYS_PER_WEEK = 7


def angle_points_of(angles: AngleSeries, start_utc: float, patient_id: str, session_id: str,
                    rate_hz: float = ANGLES_RATE_HZ) -> list[Point]:
    """``angles`` points of a whole :class:`AngleSeries` (bins of ``1/rate_hz`` s, UTC-aligned)."""
    t = np.asarray(angles.t, dtype=float)
    cols = angle_columns(angles)
    if t.size == 0 or not cols:
        return []
    return schema.angle_points(start_utc + t, cols, patient_id, session_id, rate_hz)


# --- patient progress from the local store -------------------------------------------------------


def _row_time(row: Mapping[str, Any], start_utc: float) -> float | None:
    if row.get("t_s") is not None:
        return float(row["t_s"])
    t = row.get("t_start", row.get("t_start_s"))
    return None if t is None else start_utc + float(t)


@dataclass
class PatientHistory:
    """A patient's strides, holds and sessions gathered from the local store (UTC s, degrees)."""

    stride_t: list[float]
    stride_side: list[str]
    stride_ext: list[float]
    stride_comp: list[float]
    hold_t: list[float]
    hold_done: list[bool]
    session_t: list[float]
    session_sitting: list[float]
    holds_per_side: int
    sessions: int


def patient_history(store: LocalStore, patient_id: str) -> PatientHistory:
    """Every session of ``patient_id`` in ``store`` that has stored results (rows of this module or of
    the session runner: times from ``t_s`` or from the session's ``start_utc`` + ``t_start``)."""
    h = PatientHistory([], [], [], [], [], [], [], [], DEFAULT_HOLDS_PER_SIDE, 0)
    latest_start = -math.inf
    for sess in store.sessions(patient_id):
        summary_rows = store.get_results(sess["id"], "summary")
        if not summary_rows:
            continue
        summary = summary_rows[0]
        start = float(summary.get("start_utc", sess["start_utc"]))
        per_side, hold_s = prescription_of(summary)
        if start > latest_start:
            latest_start, h.holds_per_side = start, per_side
        h.sessions += 1
        for r in store.get_results(sess["id"], "strides"):
            t = _row_time(r, start)
            ext = r.get("peak_hip_extension_deg")
            if t is None or ext is None or r.get("side") not in schema.SIDES:
                continue
            comp = r.get("compensation_index", r.get("lumbar_compensation_index"))
            h.stride_t.append(t)
            h.stride_side.append(r["side"])
            h.stride_ext.append(float(ext))
            h.stride_comp.append(float("nan") if comp is None else float(comp))
        for r in store.get_results(sess["id"], "holds"):
            t = _row_time(r, start)
            if t is None:
                continue
            done = r.get("completed")
            if done is None:
                done = float(r.get("correct_s") or 0.0) >= float(r.get("target_s") or hold_s)
            h.hold_t.append(t)
            h.hold_done.append(bool(done))
        sitting = summary.get("sitting_s")
        if sitting is None:
            sitting = (summary.get("activity_s") or {}).get("sitting", 0.0)
        h.session_t.append(start)
        h.session_sitting.append(float(sitting or 0.0))
    return h


def patient_progress(store: LocalStore, patient_id: str, now_s: float, *,
                     holds_prescribed_per_week: float | None = None,
                     progress: PatientProgress | None = None) -> PatientProgress:
    """:class:`PatientProgress` of ``patient_id`` as of ``now_s`` over all their sessions in the store.

    ``holds_prescribed_per_week`` defaults to the latest session's prescription: holds per side x 2
    sides x :data:`STRETCH_DAYS_PER_WEEK`.
    """
    h = patient_history(store, patient_id)
    if holds_prescribed_per_week is None:
        holds_prescribed_per_week = 2 * h.holds_per_side * STRETCH_DAYS_PER_WEEK
    return (progress or PatientProgress()).compute(
        now_s=now_s,
        stride_t_s=h.stride_t,
        stride_side=h.stride_side,
        stride_peak_ext_deg=h.stride_ext,
        stride_compensation=h.stride_comp,
        hold_t_s=h.hold_t,
        hold_completed=h.hold_done,
        session_t_s=h.session_t,
        session_sitting_s=h.session_sitting,
        holds_prescribed_per_window=float(holds_prescribed_per_week),
    )


def patient_status_points(store: LocalStore, patient_id: str, now_s: float | None = None,
                          **kwargs: Any) -> list[Point]:
    """The ``patient_status`` point of ``patient_id`` at ``now_s`` (default: now), or none without data."""
    now = time.time() if now_s is None else float(now_s)
    prog = patient_progress(store, patient_id, now, **kwargs)
    if math.isnan(prog.baseline_start_s_) and math.isnan(prog.days_since_last_session_):
        return []  # no stride and no session: nothing to report yet
    return [schema.patient_status_point(patient_id, now, prog.status_fields())]


def publish_patient_status(store: LocalStore, patient_id: str, now_s: float | None = None,
                           session_id: str | None = None, **kwargs: Any) -> int:
    """Queue the ``patient_status`` point of ``patient_id`` (see :func:`patient_status_points`)."""
    points = patient_status_points(store, patient_id, now_s, **kwargs)
    return store.outbox_add(session_id, points) if points else 0


# --- whole sessions ------------------------------------------------------------------------------


def session_points(results: SessionResults, patient_id: str, session_id: str, start_utc: float,
                   stats: Mapping[str, SensorStats] | None = None, *, end_utc: float | None = None,
                   angles_rate_hz: float = ANGLES_RATE_HZ) -> list[Point]:
    """Every point of one processed session (strides, holds, activity, session, angles, device status).

    ``results``: :class:`hipback.processing.pipeline.SessionResults` (times on the session timeline);
    ``start_utc``: UTC of session time 0; ``stats``: placement -> :class:`SensorStats` of the session
    runner (device status at ``end_utc``, default: the session's last angle sample or start + duration).
    ``patient_status`` is not included (it needs the patient's other sessions: see
    :func:`publish_session`).
    """
    _, hold_s = prescription_of(results.summary)
    pts: list[Point] = []
    pts += schema.stride_points(stride_rows(results.strides, start_utc), patient_id, session_id)
    pts += schema.hold_points([hold_row(h, start_utc, hold_s) for h in results.holds], patient_id, session_id)
    pts += schema.activity_points([activity_row(b, start_utc) for b in results.activity], patient_id,
                                  session_id)
    pts += schema.exercise_points(exercise_rows(results.exercise_events, start_utc),
                                  patient_id, session_id)
    pts.append(schema.session_point(session_row(results, start_utc), patient_id, session_id))
    pts.append(posture_time_point(results, start_utc, patient_id, session_id))
    pts += angle_points_of(results.angles, start_utc, patient_id, session_id, angles_rate_hz)
    if stats:
        end = end_utc if end_utc is not None else _session_end(results, start_utc)
        pts += schema.device_status_points([device_status_row(s, end) for s in stats.values()],
                                           patient_id, session_id)
    return pts


def posture_time_point(results: SessionResults, start_utc: float, patient_id: str, session_id: str) -> Point:
    """The session's ``posture_time`` point (time: the session start): sitting, bent forward and in lumbar
    extension (:func:`hipback.processing.exercises.posture.posture_time`)."""
    row = posture_time(results.angles, results.activity).as_row()
    return schema.posture_time_point({**row, "t_s": float(start_utc)}, patient_id, session_id)


def _session_end(results: SessionResults, start_utc: float) -> float:
    t = np.asarray(results.angles.t, dtype=float)
    if t.size:
        return start_utc + float(t[-1])
    return start_utc + float((results.summary or {}).get("duration_s") or 0.0)


def publish_session(store: LocalStore, session_id: str, results: SessionResults, patient_id: str,
                    start_utc: float,
                    stats: Mapping[str, SensorStats] | None = None, *, now_s: float | None = None,
                    holds_prescribed_per_week: float | None = None) -> int:
    """Store the session's result rows and queue all its points (plus ``patient_status`` as of
    ``now_s``, default now) in the outbox; returns the number of lines queued.

    The session must already be in the store (``open_session``). Tags are checked first, so a bad
    patient id raises :class:`ValueError` before anything is written. Results without an angle series (a live
    session's: it went to the store as it came) are published with the series the store holds for the
    session, which therefore stays as it is.
    """
    schema.check_tag("patient", patient_id)
    schema.check_tag("session", session_id)
    if len(results.angles) == 0:
        with contextlib.suppress(ValueError):  # (none stored: there is no series to publish)
            results = dataclasses.replace(results, angles=stored_angles(store, session_id))
    pts = session_points(results, patient_id, session_id, start_utc, stats)
    for rkind, rows in store_rows(results, start_utc).items():
        store.put_results(session_id, rkind, rows)
    pts += patient_status_points(store, patient_id, now_s,
                                 holds_prescribed_per_week=holds_prescribed_per_week)
    return store.outbox_add(session_id, pts)


# --- live sessions -------------------------------------------------------------------------------


class LivePublisher:
    """Queues a live session's results in the outbox as they become final (session runner ``on_update``).

    The session is given by the runner (:meth:`bind`, the runner's ``on_session``) or, for a session
    published from elsewhere, by ``session_id`` and ``start_utc`` (UTC of session time 0); ``target_s``:
    the prescribed hold time. Every stride, hold and bout arrives once through ``on_update`` (the runner
    delivers what became final at the end through a last update), so nothing is de-duplicated here.
    ``wake``: called after lines were queued (e.g. ``SyncWorker.wake``). Lines are queued at most every
    ``flush_interval_s`` seconds of session data (one fsync'd transaction each) and at :meth:`finish`;
    angles are held back until their 1/``angles_rate_hz`` bin is complete, so a bin is never written twice.
    ``status_interval_s``: session seconds between device-status reports (None: only at the end).

    What is queued here survives a database outage (it is in the store); what is still in memory when
    the process dies is not lost either: the samples are stored, and reprocessing the session with
    :func:`publish_session` rewrites the same points.
    """

    def __init__(self, store: LocalStore, patient_id: str, session_id: str | None = None,
                 start_utc: float | None = None, *, target_s: float = DEFAULT_HOLD_S,
                 angles_rate_hz: float = ANGLES_RATE_HZ, flush_interval_s: float = 1.0,
                 status_interval_s: float | None = 60.0, wake: Callable[[], None] | None = None,
                 holds_prescribed_per_week: float | None = None) -> None:
        schema.check_tag("patient", patient_id)
        if session_id is not None:
            schema.check_tag("session", session_id)
        self.store = store
        self.patient_id = patient_id
        self.session_id = session_id
        self.start_utc = start_utc
        self.target_s = float(target_s)
        self.rate = float(angles_rate_hz)
        self.flush_interval_s = flush_interval_s
        self.status_interval_s = status_interval_s
        self.wake = wake
        self.holds_prescribed_per_week = holds_prescribed_per_week
        self.queued = 0  # lines put into the outbox so far
        self.finished = False
        self._pending: list[Point] = []
        self._last_flush_t = -math.inf  # session time of the data at the last flush
        self._stride_no = {"left": 0, "right": 0}
        self._angle_carry: np.ndarray | None = None  # samples of the last, incomplete bin (see _take_angles)
        self._angle_t_end = -math.inf  # session time of the last angle sample taken in
        self._last_report_t: float | None = None  # session time of the last device-status report
        self._report_base: dict[str, dict[str, float]] = {}
        self._exercise_rows: ExerciseRows | None = None  # numbering of reps/holds per exercise and side
        self._exercise_events = 0  # exercise events taken so far (the session's are in this order)
        # the session's posture time, counted from the angles as they come (a live session's results carry
        # no angle series: it went to the store as it came)
        self._posture = PostureCounter()

    def bind(self, identity: SessionIdentity) -> None:
        """The session this publisher publishes (the runner's ``on_session``)."""
        if identity.patient_id != self.patient_id:
            raise ValueError("the session belongs to another patient")
        schema.check_tag("session", identity.session_id)
        self.session_id = identity.session_id
        self.start_utc = float(identity.start_utc)
        self.target_s = float(identity.hold_s)

    def _bound(self) -> bool:
        return self.session_id is not None and self.start_utc is not None

    # -- live updates -------------------------------------------------------------------------------
    def on_update(self, update: ProcessorUpdate, stats: Mapping[str, SensorStats] | None = None) -> None:
        """Take a :class:`hipback.processing.pipeline.ProcessorUpdate` (and the sensors' stats) from the
        runner."""
        if self.finished or not self._bound():
            return
        self._take_strides(update.strides)
        self._take_holds(update.holds)
        self._take_bouts(update.activity)
        self._take_exercises(update.exercise_events)
        self._take_angles(update.angles, final=False)
        self._posture.update(update.angles)
        t_now = self._stats_time(stats) if stats else None
        if t_now is not None and self.status_interval_s is not None and (
                self._last_report_t is None or t_now - self._last_report_t >= self.status_interval_s):
            self._report(stats, t_now)  # type: ignore[arg-type]
        t_data = max(self._angle_t_end, t_now if t_now is not None else -math.inf)
        if self._last_flush_t == -math.inf:
            self._last_flush_t = t_data
        elif t_data - self._last_flush_t >= self.flush_interval_s:
            self._last_flush_t = t_data
            self.flush()

    def _take_strides(self, strides: Iterable[Stride]) -> None:
        assert self.start_utc is not None
        rows = []
        for s in sorted(strides, key=lambda s: (s.t_start, s.side)):
            no = self._stride_no.get(s.side, 0)
            self._stride_no[s.side] = no + 1
            rows.append(stride_row(s, self.start_utc, no))
        self._pending += schema.stride_points(rows, self.patient_id, self.session_id or "")

    def _take_holds(self, holds: Iterable[Hold]) -> None:
        assert self.start_utc is not None
        rows = [hold_row(h, self.start_utc, self.target_s) for h in holds]
        self._pending += schema.hold_points(rows, self.patient_id, self.session_id or "")

    def _take_bouts(self, bouts: Iterable[ActivityBout]) -> None:
        assert self.start_utc is not None
        rows = [activity_row(b, self.start_utc) for b in bouts]
        self._pending += schema.activity_points(rows, self.patient_id, self.session_id or "")

    def _take_exercises(self, events: list[ExerciseEvent]) -> None:
        """Reps and holds of the session's exercise block (``exercise_events``) as they become final."""
        assert self.start_utc is not None
        if self._exercise_rows is None:
            self._exercise_rows = ExerciseRows(self.start_utc)
        self._exercise_events += len(events)
        rows = self._exercise_rows.take(events)
        self._pending += schema.exercise_points(rows, self.patient_id, self.session_id or "")

    def _take_angles(self, angles: AngleSeries | None, final: bool) -> None:
        """Queue the angle points of every complete 1/``rate`` bin (all of them when ``final``); the
        samples of the last, incomplete bin wait for the next update.

        The samples travel as one block, row 0 the UTC times and then one row per ``ANGLE_FIELDS`` entry in
        degrees, so that each step is one numpy call for all of them (an update holds a few samples)."""
        assert self.start_utc is not None
        t = np.asarray(angles.t, dtype=float) if angles is not None else np.zeros(0)
        block = np.empty((1 + len(ANGLE_FIELDS), t.size))
        if t.size:
            assert angles is not None
            block[0] = self.start_utc + t
            block[1:] = [np.asarray(getattr(angles, name), dtype=float) for name, _ in ANGLE_FIELDS]
            np.degrees(block[1:], out=block[1:])
            keep = t > self._angle_t_end
            if not keep.all():
                block = block[:, keep]
                t = t[keep]
            if t.size:
                self._angle_t_end = float(t[-1])
        if self._angle_carry is not None:
            block = np.concatenate([self._angle_carry, block], axis=1)
            self._angle_carry = None
        tu = block[0]
        if tu.size == 0:
            return
        if final:
            emit = np.ones(tu.size, dtype=bool)
        else:
            bins = np.floor(tu * self.rate + 1e-9).astype(np.int64)
            emit = bins < bins[-1]
            self._angle_carry = block[:, ~emit]
        if not emit.any():
            return
        out = block[:, emit]
        finite = np.isfinite(out[1:]).any(axis=1)
        cols = {f: out[1 + i] for i, (_, f) in enumerate(ANGLE_FIELDS) if finite[i]}
        if cols:
            self._pending += schema.angle_points(out[0], cols, self.patient_id, self.session_id or "",
                                                 self.rate)

    @staticmethod
    def _stats_time(stats: Mapping[str, SensorStats]) -> float | None:
        lasts = [t for s in stats.values() if (t := getattr(s, "last_t", None)) is not None]
        return max(lasts) if lasts else None

    def _report(self, stats: Mapping[str, SensorStats], t_session: float) -> None:
        assert self.start_utc is not None
        if self._last_report_t is not None and t_session <= self._last_report_t:
            t_session = self._last_report_t + 0.001  # never two reports at one time (a point overwritten)
        rows = []
        for p, s in stats.items():
            rows.append(device_status_row(s, self.start_utc + t_session, since=self._report_base.get(p)))
            self._report_base[p] = {"samples": float(s.samples), "missing": float(s.missing)}
        self._last_report_t = t_session
        self._pending += schema.device_status_points(rows, self.patient_id, self.session_id or "")

    def flush(self) -> int:
        """Queue what is pending in the outbox now (one transaction); returns the lines queued."""
        if not self._pending or self.session_id is None:
            return 0
        pts, self._pending = self._pending, []
        n = self.store.outbox_add(self.session_id, pts)
        self.queued += n
        if self.wake is not None:
            self.wake()
        return n

    def finish(self, results: SessionResults | None = None, stats: Mapping[str, SensorStats] | None = None, *,
               now_s: float | None = None) -> int:
        """End of the session: the last angles, the ``sessions`` point, the final device status and
        ``patient_status`` (the strides, holds and bouts came through ``on_update``; the session runner
        stores the result rows).

        ``results``: the session's :class:`SessionResults` (``SessionOutcome.results``; None when
        processing failed: then only what is pending and the device status are queued). Returns the
        lines queued by this call.
        """
        if self.finished or not self._bound():
            return 0
        assert self.start_utc is not None and self.session_id is not None
        before = self.queued
        self._take_angles(None, final=True)
        if results is not None:
            # exercise events that became final at the very end can reach the runner's last poll without an
            # update being delivered: the session's list holds every event in order, so take the rest here
            events = list(results.exercise_events)
            self._take_exercises(events[self._exercise_events:])
            self._pending.append(schema.session_point(session_row(results, self.start_utc),
                                                      self.patient_id, self.session_id))
            if self._posture.rows_:  # the angles came through on_update
                row = self._posture.result(results.activity).as_row()
                self._pending.append(schema.posture_time_point({**row, "t_s": float(self.start_utc)},
                                                               self.patient_id, self.session_id))
            else:  # results published from elsewhere, with their angle series
                self._pending.append(
                    posture_time_point(results, self.start_utc, self.patient_id, self.session_id)
                )
        if stats:
            t_end = self._stats_time(stats)
            if t_end is None and math.isfinite(self._angle_t_end):
                t_end = self._angle_t_end
            if t_end is None and results is not None:
                t_end = _session_end(results, self.start_utc) - self.start_utc
            if t_end is not None:
                self._report(stats, t_end)
        self._pending += patient_status_points(self.store, self.patient_id, now_s,
                                               holds_prescribed_per_week=self.holds_prescribed_per_week)
        self.flush()
        self.finished = True
        return self.queued - before


class LivePublishing:
    """Live publishing for a recording command: a :class:`LivePublisher` on the store's outbox, plus a
    :class:`hipback.ingest.sync.SyncWorker` sending it when ``HIPBACK_INFLUX_URL`` is set.

    Use as ``with LivePublishing(store_path, patient_id) as pub:`` and pass ``pub.on_session`` and
    ``pub.on_update`` to the session runner (``on_update`` can be chained with a UI callback), then call
    ``pub.finish(outcome)``. Without
    ``HIPBACK_INFLUX_URL`` everything still goes to the outbox, and ``hipback sync`` sends it later.
    """

    def __init__(self, store_path: str | Path, patient_id: str) -> None:
        from hipback.ingest.store import LocalStore
        from hipback.ingest.sync import SyncWorker

        self.store = LocalStore(store_path)
        self.worker = SyncWorker.from_env(self.store)
        self.publisher = LivePublisher(self.store, patient_id, None,
                                       wake=self.worker.wake if self.worker is not None else None)
        self.queued = 0
        self.final_status: str | None = None

    def __enter__(self) -> LivePublishing:
        if self.worker is not None:
            self.worker.start()
        return self

    def on_session(self, identity: SessionIdentity) -> None:
        self.publisher.bind(identity)

    def on_update(self, update: ProcessorUpdate, stats: Mapping[str, SensorStats] | None = None) -> None:
        self.publisher.on_update(update, stats)

    def finish(self, outcome: SessionOutcome) -> int:
        """Queue the end-of-session points; returns the lines this session put into the outbox. The
        ``patient_status`` point is taken at the session's end on the session's own clock (on simulated
        time, the virtual session's end, not the wall clock of the machine, which lags it)."""
        self.publisher.finish(outcome.results, outcome.stats, now_s=outcome.end_utc)
        self.queued = self.publisher.queued
        return self.queued

    def status(self) -> str:
        """One sentence on where the session's points are (after the ``with`` block: its final state)."""
        if self.final_status is not None:
            return self.final_status
        pending = self.store.outbox_stats()["pending"]
        if self.worker is None:
            return (f"{self.queued} points queued for InfluxDB in the local store; set HIPBACK_INFLUX_URL "
                    f"and run `hipback sync` to send them.")
        if pending:
            return f"{pending} points still queued for InfluxDB (unreachable?); `hipback sync` sends them."
        return f"{self.queued} points sent to InfluxDB."

    def __exit__(self, *exc: object) -> None:
        try:
            if self.worker is not None:
                self.worker.stop()
            self.final_status = self.status()
        finally:
            self.store.close()
