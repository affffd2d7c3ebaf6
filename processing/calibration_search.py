"""Calibration search: when and from which rows the sensors are calibrated (a streaming block).

Input: merged grid :class:`~hipback.processing.merge.Rows`. Output: :class:`CalibratedRows`, the same rows
released once the calibration that applies to them is known (or released uncalibrated, see below).

* Rows are buffered until the first standing-still window (``Rows.still`` for ``settings.min_standing_s``,
  found by :class:`~hipback.processing.calibration.StandingFinder`) or the window marked with :meth:`mark`,
  and, when thighs are worn, until the thighs moved enough (walking, leg swings: 1.5 x
  ``settings.min_motion_s`` of rows faster than ``settings.motion_gyr_rad_s`` about an axis across the
  vertical) to find their medio-lateral axis, or ``settings.ml_wait_s`` passed. Then every sensor is
  calibrated (:func:`~hipback.processing.calibration.calibrate_sensor`) and all buffered rows are released
  with that calibration.
* Without standing for ``timeout_s`` the oldest rows are released uncalibrated (``calibration`` None: their
  angles are NaN) and the search goes on.
* At :meth:`finish`, a recording without a full standing window is calibrated from its longest still
  standing run of at least ``min_short_standing_s`` (quality lowered, warning), or its rows are released
  uncalibrated (warning).
* ``initial_calibration`` (from an earlier recording of the same session, sensors not re-strapped) is used
  from the first row on. With ``refine_axes`` a given thigh or pelvis calibration whose medio-lateral axis
  came from the placement prior alone (a static calibration trial: no walking or leg swing in it) gets its
  axis from this recording's own movement (:func:`~hipback.processing.calibration.refine_axis`, the
  vertical kept): the rows wait until every thigh moved enough (as after a standing window), at most
  ``timeout_s``, and are then released with the refined calibration.
* Both thighs flagged ``wrong_side`` are swapped when ``swap_wrong_side`` (reported): ``swap`` in the
  output says the thighs' data are exchanged.

Every decision is taken at a data-defined row (absolute grid index), so the chunking changes nothing.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from hipback.processing.blocks import Block
from hipback.processing.calibration import (
    CalibrationSettings,
    SensorCalibration,
    StandingFinder,
    acc_offset_tilt,
    calibrate_sensor,
    mean_direction,
    needs_axis,
    refine_axis,
    up_in_sensor,
)
from hipback.processing.merge import Rows
from hipback.processing.quaternion import multiply as quat_multiply
from hipback.processing.quaternion import rotate as quat_rotate

_E_Y = np.array([0.0, 1.0, 0.0])
SEARCHING = "searching_standing"
WAITING = "waiting_for_movement"
CALIBRATING = "calibrating"
CALIBRATED = "calibrated"


@dataclass
class CalibratedRows:
    """Rows with the calibration that applies to them.

    ``calibration`` None: not calibrated (angles NaN). ``swap``: the thighs' data are to be exchanged.
    ``checked``: False for rows released from the calibration buffer up to the end of the functional-movement
    search (the slip monitor starts after them).
    """

    rows: Rows
    calibration: dict[str, SensorCalibration] | None
    swap: bool = False
    checked: bool = True


class CalibrationSearch(Block[Rows, list[CalibratedRows]]):
    """Find the calibration window and calibrate (see the module docstring).

    :param placements: the session's sensors.
    :param rate_hz: grid rate (Hz).
    :param settings: thresholds of the calibration (:class:`CalibrationSettings`).
    :param timeout_s: rows older than this without a standing window are released uncalibrated (s).
    :param min_short_standing_s: shortest still standing run used at the end of a recording without a
        full standing window (s).
    :param initial_calibration: a calibration to use from the start (placement -> calibration), or None.
    :param swap_wrong_side: exchange the thighs when both appear to be on the other leg.
    :param refine_axes: take the medio-lateral axis of given thigh and pelvis calibrations that have
        none from this recording's movement (see the module docstring).
    """

    def __init__(
        self,
        placements: tuple[str, ...],
        *,
        rate_hz: float = 100.0,
        settings: CalibrationSettings | None = None,
        timeout_s: float = 60.0,
        min_short_standing_s: float = 1.0,
        initial_calibration: dict[str, SensorCalibration] | None = None,
        swap_wrong_side: bool = True,
        refine_axes: bool = False,
    ) -> None:
        self.placements = tuple(placements)
        self.rate_hz = float(rate_hz)
        self.settings = settings or CalibrationSettings()
        self.timeout_s = timeout_s
        self.min_short_standing_s = min_short_standing_s
        self.initial_calibration = initial_calibration
        self.swap_wrong_side = swap_wrong_side
        self.refine_axes = refine_axes
        cs = self.settings
        r = self.rate_hz
        self._finder = StandingFinder(int(cs.min_standing_s * r), int(cs.max_standing_s * r))
        self._buffer: list[Rows] = []
        self._buffer_n = 0
        self._buffer_k0: int | None = None
        self._stand: tuple[int, int] | None = None
        self._motion_count = {p: 0 for p in self.placements if p.startswith("thigh")}
        self._motion_reach: dict[str, int] = {}
        self._motion_counted_to: int | None = None
        self._motion_need = int(cs.min_motion_s * r * 1.5)
        self._motion_up: dict[str, np.ndarray] = {}
        self._marked: tuple[float, float] | None = None
        self._refine: list[str] = []
        self._given: dict[str, SensorCalibration] = {}
        self._marked_applied = False
        self._timeout_reported = False
        self._finished = False
        self._out: list[CalibratedRows] = []
        self.calibration_: dict[str, SensorCalibration] = {}
        self.state_ = SEARCHING
        self.swap_ = False
        self.warnings_: list[str] = []
        self.messages_: list[str] = []
        if initial_calibration:
            given = {p: copy.deepcopy(c) for p, c in initial_calibration.items() if p in self.placements}
            missing = [p for p in self.placements if p not in given]
            if missing:
                raise ValueError(f"the given calibration has no entry for {missing[0]}")
            self.calibration_ = given
            self.state_ = CALIBRATED
            self.messages_.append("using the calibration given with the session (from an earlier recording)")
            self._refine = [p for p, c in given.items() if refine_axes and needs_axis(c)]
            if self._refine:
                self._given = given
                self.calibration_ = {}
                self.state_ = WAITING
                thighs = [p for p in given if p.startswith("thigh")]  # (their movement ends the wait)
                self._motion_up = {p: quat_rotate(given[p].q_segment_in_sensor, _E_Y) for p in thighs}
                self._motion_count = dict.fromkeys(thighs, 0)
                self.messages_.append(
                    "the medio-lateral axis of " + " and ".join(self._refine)
                    + " from this recording's movement (the given calibration had none)"
                )

    # -- contract ---------------------------------------------------------------------------------------
    def update(self, chunk: Rows) -> list[CalibratedRows]:
        if self._finished:
            raise RuntimeError("update() after finish()")
        self._out = []
        if len(chunk):
            self._rows(chunk)
        return self._out

    def finish(self) -> list[CalibratedRows]:
        self._out = []
        if self._finished:
            return self._out
        self._finished = True
        if self.state_ == CALIBRATED:
            return self._out
        if self._refine:
            self._calibrate_refined((self._buffer_k0 or 0) + self._buffer_n)
            return self._out
        self._try_marked()
        r = self.rate_hz
        if self._stand is not None:
            self._calibrate()
        elif (short := self._short_standing()) is not None:
            self._stand = short
            dur = (short[1] - short[0]) / r
            msg = (
                "no 3 s standing period; calibrated from a shorter still standing period "
                f"({short[0] / r:.2f}-{short[1] / r:.2f} s, {dur:.1f} s): lower confidence"
            )
            self.messages_.append(msg)
            self.warnings_.append(msg)
            self._calibrate(short_window=True)
        else:
            self.messages_.append(
                "no standing-still period found: angles could not be calibrated and are empty "
                "(stand still for 3 s at the start, or mark a calibration window)"
            )
            self.warnings_.append("no standing calibration: angles not available")
            self._release_uncalibrated(self._buffer_n)
        return self._out

    def mark(self, t0: float, t1: float) -> None:
        """Use ``[t0, t1]`` (s) as the standing-neutral window instead of searching for one.

        Effective when given before calibration completed (it applies from the next :meth:`update` once the
        window's rows are in); later it is reported and ignored.
        """
        if self.state_ == CALIBRATED or self._refine:
            self.messages_.append("calibration window marked after calibration was done: ignored")
            return
        if not t1 - t0 >= 0.5:
            raise ValueError("a calibration window must be at least 0.5 s long")
        self._marked = (float(t0), float(t1))
        self._try_marked()

    # -- internals ----------------------------------------------------------------------------------------
    def _rows(self, rows: Rows) -> None:
        if self.state_ == CALIBRATED:  # (also when no sensor could be calibrated)
            self._out.append(CalibratedRows(rows, self.calibration_, self.swap_, True))
            return
        if self._refine:
            self._refine_rows(rows)
            return
        self._buffer.append(rows)
        if self._buffer_k0 is None:
            self._buffer_k0 = int(rows.k[0])
        self._buffer_n += len(rows)
        if self._stand is None and self._marked is None:
            found = self._finder.update(int(rows.k[0]), rows.still)
            if found is not None:
                # the timeout as it stood on the row before the decision row (as if fed row by row)
                decided = found[1] - 1 if found[1] - found[0] >= self._finder.max_rows else found[1]
                self._check_timeout(decided)
                self._stand = found
                self.state_ = WAITING if self._motion_count else CALIBRATING
                self.messages_.append(
                    f"standing window found at {found[0] / self.rate_hz:.2f}-{found[1] / self.rate_hz:.2f} s"
                )
                self._init_motion_search()
        elif self._marked is not None and not self._marked_applied:
            self._try_marked()
        if self._stand is not None:
            self._count_motion(rows)
            end = self._motion_end_row()
            if end is not None:
                self._calibrate(end)
                return
        self._check_timeout()

    def _refine_rows(self, rows: Rows) -> None:
        """Refining given axes: buffer, count each thigh's fast rows from the first row on, and calibrate
        once every one reached the movement needed, or ``timeout_s`` after the first row."""
        if self._buffer_k0 is None:
            self._buffer_k0 = self._motion_counted_to = int(rows.k[0])
        self._buffer.append(rows)
        self._buffer_n += len(rows)
        self._count_motion(rows)
        thighs = list(self._motion_up)
        if thighs and all(p in self._motion_reach for p in thighs):
            self._calibrate_refined(max(self._motion_reach[p] for p in thighs))
            return
        wait_end = self._buffer_k0 + int(self.timeout_s * self.rate_hz)
        if self._buffer_k0 + self._buffer_n >= wait_end:
            self._calibrate_refined(wait_end)

    def _calibrate_refined(self, motion_end: int) -> None:
        """Take the given calibration with the refined axes (from the rows before ``motion_end``)."""
        cals = {p: copy.deepcopy(c) for p, c in self._given.items()}
        if not self._buffer:
            self._refine = []
            self.calibration_, self.state_ = cals, CALIBRATED
            return
        allrows = Rows.concat(self._buffer)
        e = max(0, min(len(allrows), motion_end - int(allrows.k[0])))
        for p in self._refine:
            cals[p] = refine_axis(cals[p], allrows.q[p][:e], self.rate_hz, self.settings)
            if needs_axis(cals[p]):
                self.messages_.append(f"{p}: no walking or leg swing in this recording either; the given "
                                      "axis (placement prior) is kept")
        self._refine = []
        self._finish_calibration(cals, allrows, motion_end)

    def _try_marked(self) -> bool:
        if self._marked is None or self._marked_applied or self._buffer_k0 is None or self.calibration_:
            return False
        t0, t1 = self._marked
        k0 = max(int(math.ceil(t0 * self.rate_hz)), self._buffer_k0)
        k1 = int(math.floor(t1 * self.rate_hz)) + 1
        last = self._buffer_k0 + self._buffer_n
        if k1 > last:
            return False
        if k1 - k0 < 2:
            self.messages_.append("marked calibration window holds no usable samples")
            return False
        self._stand = (k0, k1)
        self.messages_.append(f"using the marked calibration window {t0:.2f}-{t1:.2f} s")
        self.state_ = WAITING if self._motion_count else CALIBRATING
        self._marked_applied = True
        self._init_motion_search()
        return True

    def _init_motion_search(self) -> None:
        assert self._stand is not None and self._buffer_k0 is not None
        allrows = Rows.concat(self._buffer)
        self._buffer = [allrows]
        a, b = self._stand[0] - self._buffer_k0, self._stand[1] - self._buffer_k0
        for p in self._motion_count:
            qs = allrows.q[p][a:b]
            if np.isfinite(qs).all(axis=1).sum() >= 2:
                self._motion_up[p], _ = mean_direction(up_in_sensor(qs))
        self._motion_counted_to = self._stand[1]
        self._motion_count = {p: 0 for p in self._motion_count}
        self._motion_reach = {}
        if self._stand[1] < self._buffer_k0 + self._buffer_n:
            # rows already buffered after the window (standing found mid-chunk)
            self._count_motion(allrows.slice(b, len(allrows)))

    def _count_motion(self, rows: Rows) -> None:
        start = self._motion_counted_to
        if start is None or len(rows) == 0:
            return
        sel = rows.k >= start
        if not sel.any():
            return
        for p in self._motion_count:
            up = self._motion_up.get(p)
            if up is None:
                continue
            w = rows.omega[p][sel]
            with np.errstate(invalid="ignore"):
                perp = w - np.outer(w @ up, up)
                fast = np.linalg.norm(perp, axis=1) > self.settings.motion_gyr_rad_s
            if p not in self._motion_reach:
                cum = self._motion_count[p] + np.cumsum(fast)
                hit = np.flatnonzero(cum >= self._motion_need)
                if len(hit):
                    self._motion_reach[p] = int(rows.k[sel][hit[0]]) + 1
            self._motion_count[p] += int(fast.sum())
        self._motion_counted_to = int(rows.k[-1]) + 1

    def _motion_end_row(self) -> int | None:
        """Row (exclusive) where the functional-movement search ends, once the data decide it."""
        assert self._stand is not None
        last = (self._buffer_k0 or 0) + self._buffer_n
        wait_end = self._stand[1] + int(self.settings.ml_wait_s * self.rate_hz)
        thighs = list(self._motion_up)  # thighs with data in the standing window
        if not thighs:
            return self._stand[1] if last >= self._stand[1] else None
        if all(p in self._motion_reach for p in thighs):
            end = max(self._motion_reach[p] for p in thighs)
            return min(end, wait_end) if last >= min(end, wait_end) else None
        return wait_end if last >= wait_end else None

    def _check_timeout(self, end: int | None = None) -> None:
        """Release the rows older than the timeout, judged at row ``end`` (exclusive; default: every row
        buffered)."""
        limit = int(self.timeout_s * self.rate_hz)
        n = self._buffer_n if end is None else end - (self._buffer_k0 or 0)
        if self._stand is not None or n <= limit:
            return
        run = self._finder._run_start
        keep_from = (self._buffer_k0 or 0) + n - limit
        if run is not None:
            keep_from = min(keep_from, run)
        n_release = keep_from - (self._buffer_k0 or 0)
        if n_release <= 0:
            return
        if not self._timeout_reported:
            self._timeout_reported = True
            self.messages_.append(
                f"no standing-still period in the first {self.timeout_s:.0f} s: "
                "angles withheld (empty) until the patient stands still for 3 s"
            )
            self.warnings_.append("calibration delayed: no standing period at the session start")
        self._release_uncalibrated(n_release)

    def _release_uncalibrated(self, n: int) -> None:
        if n <= 0 or not self._buffer:
            return
        allrows = Rows.concat(self._buffer)
        out, rest = allrows.slice(0, n), allrows.slice(n, len(allrows))
        self._buffer = [rest] if len(rest) else []
        self._buffer_k0 = int(rest.k[0]) if len(rest) else None
        self._buffer_n = len(rest)
        self._out.append(CalibratedRows(out, None, False, False))

    def _short_standing(self) -> tuple[int, int] | None:
        """At the end of a short recording: the longest still standing run (>= ``min_short_standing_s``)."""
        if not self._buffer:
            return None
        allrows = Rows.concat(self._buffer)
        finder = StandingFinder(int(self.min_short_standing_s * self.rate_hz), len(allrows) + 1)
        best: tuple[int, int] | None = None
        k0 = int(allrows.k[0])
        pos = 0
        flags = np.concatenate([allrows.still, [False]])
        while pos < len(flags):
            found = finder.update(k0 + pos, flags[pos:])
            if found is None:
                break
            if best is None or found[1] - found[0] > best[1] - best[0]:
                best = found
            pos = found[1] - k0 + 1
            finder.reset()
        return best

    def _calibrate(self, motion_end: int | None = None, short_window: bool = False) -> None:
        assert self._stand is not None and self._buffer
        allrows = Rows.concat(self._buffer)
        r = self.rate_hz
        k0 = int(allrows.k[0])
        a, b = self._stand[0] - k0, self._stand[1] - k0
        window = (self._stand[0] / r, (self._stand[1] - 1) / r)
        cals: dict[str, SensorCalibration] = {}
        for p in self.placements:
            qs = allrows.q[p][a:b]
            qs = qs[np.isfinite(qs).all(axis=1)]
            if len(qs) < 2:
                self.messages_.append(
                    f"{p}: no valid samples in the calibration window; its angles are empty"
                )
                self.warnings_.append(f"{p}: not calibrated")
                continue
            e = len(allrows) if motion_end is None else motion_end - k0
            motion = allrows.q[p][b:e] if p.startswith("thigh") or p == "pelvis" else None
            if short_window and motion is not None and a > e - b:
                motion = allrows.q[p][:a]  # the still period is at the end: movement before it
            cals[p] = calibrate_sensor(p, qs, motion, r, window, self.settings)
            if short_window:
                cals[p].quality = max(0.0, cals[p].quality - 0.2)
                cals[p].reasons.append("standing window shorter than 3 s")
        self._finish_calibration(cals, allrows, motion_end)

    def _finish_calibration(
        self, cals: dict[str, SensorCalibration], allrows: Rows, motion_end: int | None
    ) -> None:
        """Take ``cals`` (thighs swapped when both are on the other leg, warnings) and release the buffered
        ``allrows`` with it: those before ``motion_end`` (row, exclusive; None: all) unchecked by the slip
        monitor, the rest checked."""
        k0 = int(allrows.k[0])
        swapped = [p for p in ("thigh_left", "thigh_right") if p in cals and "wrong_side" in cals[p].flags]
        if self.swap_wrong_side and len(swapped) == 2:
            self.swap_ = True
            self.warnings_.append(
                "thigh_left and thigh_right appear to be swapped (each faces medially for its label): "
                "their data were exchanged so that each side's angles come from that side's leg"
            )
            left, right = cals["thigh_left"], cals["thigh_right"]
            cals = dict(cals)
            cals["thigh_left"], cals["thigh_right"] = right, left
            for c, newp in ((cals["thigh_left"], "thigh_left"), (cals["thigh_right"], "thigh_right")):
                c.placement = newp
                c.flags = [f for f in c.flags if f != "wrong_side"] + ["swapped"]
        else:
            for p in swapped:
                self.warnings_.append(f"{p}: the sensor appears to be on the other leg (check the placement)")
        for c in cals.values():
            if c.quality < 0.5:
                self.warnings_.append(
                    f"{c.placement}: low calibration quality {c.quality:.2f}: {'; '.join(c.reasons)}"
                )
            if "upside_down" in c.flags:
                self.warnings_.append(f"{c.placement}: sensor worn upside down (angles corrected)")
        self.calibration_ = cals
        self.state_ = CALIBRATED
        self.messages_.append("calibrated: " + ", ".join(f"{p} {c.quality:.2f}" for p, c in cals.items()))
        self._buffer = []
        self._buffer_n = 0
        e = len(allrows) if motion_end is None else max(0, min(len(allrows), motion_end - k0))
        if e > 0:
            self._out.append(CalibratedRows(allrows.slice(0, e), cals, self.swap_, False))
        if e < len(allrows):
            self._out.append(CalibratedRows(allrows.slice(e, len(allrows)), cals, self.swap_, True))




class AccOffsetFrame:
    """Keeps each calibration valid while the raw sensors' accelerometer offset estimate changes.

    A raw sensor's channel subtracts the offset it estimated in use before its orientation filter
    (:class:`~hipback.processing.acc_bias.AccBiasEstimator`, going forward from a sample-determined time).
    That changes the inclination of every posture by a different small tilt; a calibration absorbed the
    tilt of its own posture with the offset subtracted while it was measured. :meth:`apply` turns each
    calibrated sensor's rows, in the sensor frame, by
    :func:`~hipback.processing.calibration.acc_offset_tilt` of the offset subtracted at the row against the
    one subtracted at the calibration window's last row (a given calibration with no window: the offset the
    stream started with), so the calibration posture keeps the vertical the calibration measured and every
    other posture is corrected relative to it. The reference is the calibration's own posture, wherever the
    sensor lay before (a table, a charging case).

    Only data decide: the row times, the offset history (each update applies after a sample time), and the
    calibration; the chunking changes nothing. Rows whose offset equals the calibration's are returned as
    they are (no arithmetic), so a sensor whose estimate is never trusted is untouched.

    :param offsets: sensor placement -> its channel's offset estimator (an
        :class:`~hipback.processing.acc_bias.AccBiasEstimator`, or any object with its ``updates_`` list and
        ``applied_at(t)``: the offset subtracted from the samples at times ``t``, s, (N,) -> (N, 3), m/s^2,
        sensor frame).
    :param rate_hz: grid rate (Hz): row ``k`` is at ``k / rate_hz`` s.
    """

    def __init__(self, offsets: Mapping[str, Any], rate_hz: float) -> None:
        self.offsets = dict(offsets)
        self.rate_hz = float(rate_hz)
        self._cache: dict[tuple, np.ndarray] = {}

    def apply(self, cr: CalibratedRows) -> CalibratedRows:
        """The rows of ``cr`` with each calibrated raw sensor's orientation turned (see the class
        docstring); ``cr`` itself when nothing turns."""
        rows = cr.rows
        if cr.calibration is None or len(rows) == 0 or not self.offsets:
            return cr
        new_q: dict[str, np.ndarray] | None = None
        t: np.ndarray | None = None
        for p, cal in cr.calibration.items():
            src = p
            if cr.swap and p in ("thigh_left", "thigh_right"):
                src = "thigh_right" if p == "thigh_left" else "thigh_left"
            est = self.offsets.get(src)
            if est is None or not est.updates_ or src not in rows.q:
                continue  # (no update: the offset is the initial one throughout, the calibration's too)
            if t is None:
                t = rows.k / self.rate_hz
            b = est.applied_at(t)
            b_cal = est.applied_at(np.array([cal.window[1]], dtype=np.float64))[0]
            if np.array_equal(b, np.broadcast_to(b_cal, b.shape)):
                continue
            change = np.flatnonzero(np.any(b[1:] != b[:-1], axis=1)) + 1
            q = rows.q[src].copy()
            start = 0
            for end in [*change.tolist(), len(b)]:
                if np.array_equal(b[start], b_cal):  # rows with the calibration's offset stay as they are
                    start = end
                    continue
                key = (src, tuple(np.asarray(cal.q_segment_in_sensor).tolist()), tuple(b_cal.tolist()),
                       tuple(b[start].tolist()))
                tilt = self._cache.get(key)
                if tilt is None:
                    tilt = self._cache[key] = acc_offset_tilt(cal.q_segment_in_sensor, b_cal, b[start])
                q[start:end] = quat_multiply(q[start:end], tilt)
                start = end
            if new_q is None:
                new_q = dict(rows.q)
            new_q[src] = q
        if new_q is None:
            return cr
        return replace(cr, rows=replace(rows, q=new_q))
