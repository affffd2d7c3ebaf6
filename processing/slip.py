"""Slip monitor: a sensor that moved on its segment after calibration (a streaming block).

Input and output: :class:`~hipback.processing.calibration_search.CalibratedRows`. Rows without a
calibration, and rows the calibration search marks as not to be checked, pass through unchanged.

* **Standing check.** In each standing-still window after calibration (``Rows.still`` for
  ``min_standing_s``) with the pelvis within ``slip_reference_rad`` of its calibrated neutral, a sensor whose
  segment inclination is more than ``slip_threshold_rad`` from neutral while every other segment agrees
  with neutral (at least three sensors) has slipped: flag ``slipped``, a warning, and (``recalibrate``) its
  vertical is re-measured from that window for the rows that follow (its quality drops by 0.3). The output
  is split at the end of that window: the rows after it carry the new calibration.
  Only *quiet standing after walking* is such a reference: the still period must begin within
  ``gait_window_s`` of at least ``gait_min_s`` of rows in which every worn thigh turns faster than
  ``motion_gyr_rad_s`` (stepping legs). A still split or wide stance held in an exercise (a standing lunge:
  the front thigh 30 deg forward, the pelvis upright, the back thigh near neutral) reads exactly like one
  slipped thigh sensor, so still periods reached without walking are not checked (a slip then shows at the
  next stop after walking, or in the moving check).
* **Moving check** (thighs). The fast rotation samples (faster than ``motion_gyr_rad_s``) are collected per
  thigh; every ``walk_check_s`` seconds' worth of them, their principal axis (3D, not projected: a sensor
  that tilts on the leg moves the axis out of the calibrated horizontal plane) is compared with the mean
  axis of the first three windows after (re)calibration. More than ``walk_axis_slip_rad`` apart in three
  consecutive clearly planar windows (largest eigenvalue at least 4 x the second) means the sensor turned on
  the leg: a warning and the flag ``slipped`` (the angles are recalibrated at the next standing-still
  period). A turn about the thigh's own medio-lateral axis does not move this axis; only the standing check
  sees it. The windows are fixed counts of samples, so the result does not depend on the chunking.
  ``walk_offsets_`` keeps every window's deviation (placement, time s, rad) for benchmarks.
"""

from __future__ import annotations

import copy
import math
from bisect import bisect_right

import numpy as np

from hipback.processing import quaternion as quat
from hipback.processing.angles import long_axis_inclination
from hipback.processing.blocks import SMALL_CHUNK, Block
from hipback.processing.calibration import (
    SensorCalibration,
    StandingFinder,
    frame_from_axes,
    mean_direction,
    up_in_sensor,
)
from hipback.processing.calibration_search import CalibratedRows
from hipback.processing.merge import Rows


def source_placement(p: str, swap: bool) -> str:
    """The sensor whose data a placement's angles come from (thighs exchanged when ``swap``)."""
    if swap and p in ("thigh_left", "thigh_right"):
        return "thigh_right" if p == "thigh_left" else "thigh_left"
    return p


class SlipMonitor(Block[CalibratedRows, list[CalibratedRows]]):
    """Watch calibrated rows for sensors that slipped (see the module docstring).

    :param rate_hz: grid rate (Hz).
    :param min_standing_s: length of a standing-still window for the standing check (s).
    :param slip_threshold_rad: a segment this far from neutral while the others agree has slipped (rad).
    :param slip_reference_rad: the pelvis (and the agreeing segments) must be within this of neutral (rad).
    :param recalibrate: re-measure a slipped sensor's vertical from the standing window.
    :param walk_check_s: seconds of fast-rotation samples per moving-check window (s).
    :param walk_axis_slip_rad: rotation-axis change that counts as a turn on the leg (rad).
    :param motion_gyr_rad_s: rows faster than this enter the moving check (rad/s).
    :param gait_window_s: a still period is checked only if it begins within this long after walking (s).
    :param gait_min_s: rows with every worn thigh turning faster than ``motion_gyr_rad_s`` needed in that
        window to count as walking (s).
    """

    def __init__(
        self,
        *,
        rate_hz: float = 100.0,
        min_standing_s: float = 3.0,
        slip_threshold_rad: float = math.radians(10.0),
        slip_reference_rad: float = math.radians(5.0),
        recalibrate: bool = True,
        walk_check_s: float = 3.0,
        walk_axis_slip_rad: float = math.radians(9.0),
        motion_gyr_rad_s: float = 0.8,
        gait_window_s: float = 5.0,
        gait_min_s: float = 1.0,
    ) -> None:
        self.rate_hz = float(rate_hz)
        self.min_standing_s = min_standing_s
        self.slip_threshold_rad = slip_threshold_rad
        self.slip_reference_rad = slip_reference_rad
        self.recalibrate = recalibrate
        self.walk_check_s = walk_check_s
        self.walk_axis_slip_rad = walk_axis_slip_rad
        self.motion_gyr_rad_s = motion_gyr_rad_s
        self.gait_window_s = gait_window_s
        self.gait_min_s = gait_min_s
        self._gait_k: list[int] = []  # rows with every thigh turning fast, last gait_window_s (increasing)
        self._still_prev = False
        self._runs: list[tuple[int, bool]] = []  # (first row of a still period, it began after walking)
        n = int(min_standing_s * self.rate_hz)
        self._finder = StandingFinder(n, n)
        self._hist: list[Rows] = []
        self._hist_run: int | None = None  # the standing run start _hist was last trimmed to
        self._swap = False
        # per thigh: pieces of fast-rotation rows (time s, angular velocity rad/s), arrays or lists of rows
        self._walk_buf: dict[str, list[np.ndarray | list[list[float]]]] = {}
        self._walk_buf_n: dict[str, int] = {}
        self._walk_warned: set[str] = set()
        self._walk_base: dict[str, list[np.ndarray]] = {}
        self._walk_count: dict[str, int] = {}
        self._out: list[CalibratedRows] = []
        self._finished = False
        self.calibration_: dict[str, SensorCalibration] | None = None
        self.walk_offsets_: list[tuple[str, float, float]] = []
        self.slips_: list[tuple[str, float, str]] = []
        self.warnings_: list[str] = []
        self.messages_: list[str] = []

    def update(self, chunk: CalibratedRows) -> list[CalibratedRows]:
        if self._finished:
            raise RuntimeError("update() after finish()")
        self._out = []
        if chunk.calibration is None or len(chunk.rows) == 0:
            self._out.append(chunk)
            return self._out
        if self.calibration_ is None:
            self.calibration_ = dict(chunk.calibration)
            self._swap = chunk.swap
        if not chunk.checked:
            self._out.append(CalibratedRows(chunk.rows, self.calibration_, self._swap, False))
            return self._out
        fast = self._thigh_fast(chunk.rows)
        self._track_still_periods(chunk.rows, fast)
        self._check(chunk.rows, fast)
        del self._runs[:-64]  # only now: this chunk's standing windows may have needed older starts
        return self._out

    def finish(self) -> list[CalibratedRows]:
        self._finished = True
        return []

    # -- standing check -----------------------------------------------------------------------------------
    def _thigh_fast(self, rows: Rows) -> dict[str, np.ndarray | list[bool]]:
        """Per calibrated thigh (by placement): whether each row's sensor turns faster than
        ``motion_gyr_rad_s`` (``sqrt(|w|^2) > limit``; NaN: not fast), computed once per chunk for both
        checks. Larger chunks give a bool array. A live step's few rows give a list of bools, decided from
        the Python sum of squares where it is clearly on one side of ``limit^2`` (relative 1e-9, far beyond
        the last-bit differences between summation orders), else from numpy's sum as for larger chunks."""
        assert self.calibration_ is not None
        out: dict[str, np.ndarray | list[bool]] = {}
        small = len(rows) <= SMALL_CHUNK
        thr = self.motion_gyr_rad_s
        thr2 = thr * thr
        for p in ("thigh_left", "thigh_right"):
            if p not in self.calibration_:
                continue
            w = rows.omega[source_placement(p, self._swap)]
            if small:
                flags: list[bool] = []
                for x, y, z in w.tolist():
                    sq = x * x + y * y + z * z
                    d = sq - thr2
                    if abs(d) > 1e-9 * (sq + thr2):
                        flags.append(d > 0)
                    elif sq != sq:  # NaN: a NaN component, so numpy's sum is NaN too: not fast
                        flags.append(False)
                    else:  # too close to call, or infinite: numpy's sum decides
                        flags = [math.sqrt(v) > thr for v in np.einsum("ij,ij->i", w, w).tolist()]
                        break
                out[p] = flags
            else:
                with np.errstate(invalid="ignore"):
                    out[p] = np.sqrt(np.einsum("ij,ij->i", w, w)) > thr
        return out

    def _track_still_periods(self, rows: Rows, fast: dict[str, np.ndarray | list[bool]]) -> None:
        """Record where each still period begins and whether walking came just before it (class docstring);
        row by row in effect, so independent of the chunking. ``fast``: :meth:`_thigh_fast` of ``rows``."""
        window = int(round(self.gait_window_s * self.rate_hz))
        need = int(round(self.gait_min_s * self.rate_hz))
        gait_k = self._gait_k
        if len(rows) <= SMALL_CHUNK:  # a live step: the same decisions on Python lists
            kl = rows.k.tolist()
            if fast:
                flags = list(fast.values())
                every = flags[0] if len(flags) == 1 else [a and b for a, b in zip(*flags, strict=True)]
                new = [k for k, f in zip(kl, every, strict=True) if f]
                if new:
                    gait_k = gait_k + new
            still = rows.still.tolist()
            prev = self._still_prev
            for k0, s in zip(kl, still, strict=True):
                if s and not prev:
                    n = bisect_right(gait_k, k0) - bisect_right(gait_k, k0 - window)
                    self._runs.append((k0, n >= need))
                prev = s
            if kl:
                self._still_prev = bool(still[-1])
                self._gait_k = gait_k[bisect_right(gait_k, kl[-1] - window) :]
            return
        k = np.asarray(rows.k, dtype=np.int64)
        if fast:
            every_a = np.ones(len(k), dtype=bool)
            for f in fast.values():
                every_a &= f
            gait_k = gait_k + k[every_a].tolist()
        still_a = np.asarray(rows.still, dtype=bool)
        prev_a = np.concatenate([[self._still_prev], still_a[:-1]])
        for i in np.flatnonzero(still_a & ~prev_a):
            k0 = int(k[i])
            n = bisect_right(gait_k, k0) - bisect_right(gait_k, k0 - window)
            self._runs.append((k0, n >= need))
        if len(k):
            self._still_prev = bool(still_a[-1])
            self._gait_k = gait_k[bisect_right(gait_k, int(k[-1]) - window) :]

    def _after_walking(self, k: int) -> bool:
        """Whether the still period holding row ``k`` began just after walking."""
        starts = [after for k0, after in self._runs if k0 <= k]
        return bool(starts) and starts[-1]

    def _emit(self, rows: Rows) -> None:
        if len(rows):
            assert self.calibration_ is not None
            self._out.append(CalibratedRows(rows, self.calibration_, self._swap, True))

    def _check(self, rows: Rows, fast: dict[str, np.ndarray | list[bool]]) -> None:
        """Emit calibrated rows, splitting them where a later standing window triggers a recalibration.
        ``fast``: :meth:`_thigh_fast` of ``rows``."""
        pos, n, k0 = 0, len(rows), int(rows.k[0])
        fin = self._finder
        while pos < n:
            sub = rows.slice(pos, n) if pos else rows
            found = fin.update(int(sub.k[0]), sub.still)
            if found is None:
                self._emit(sub)
                self._walk_axis_check(sub, fast, pos, n)
                run = fin._run_start
                if run is None:
                    self._hist = []
                elif run == self._hist_run:
                    # the rows held so far were trimmed to this run already (trimming again keeps them as
                    # they are): only the new rows
                    if int(sub.k[-1]) >= run:
                        self._hist.append(sub.slice(max(0, run - int(sub.k[0])), len(sub)))
                else:
                    hist = [r for r in [*self._hist, sub] if r.k[-1] >= run]
                    self._hist = [r.slice(max(0, run - int(r.k[0])), len(r)) for r in hist]
                self._hist_run = run
                return
            split = max(pos, found[1] - k0)
            piece = rows.slice(pos, split)
            self._hist.append(piece)
            self._emit(piece)
            self._walk_axis_check(piece, fast, pos, split)
            self._slip_window(found)
            fin.reset()
            self._hist = []
            self._hist_run = None
            pos = split

    def _segment_quats(self, rows: Rows) -> dict[str, np.ndarray]:
        assert self.calibration_ is not None
        return {
            p: c.segment_quat(rows.q[source_placement(p, self._swap)]) for p, c in self.calibration_.items()
        }

    def _slip_window(self, found: tuple[int, int]) -> None:
        hist = [r for r in self._hist if len(r)]
        if not hist or self.calibration_ is None:
            return
        if not self._after_walking(found[0]):
            return  # an exercise stance, not quiet standing: no reference for the segments (class docstring)
        allrows = Rows.concat(hist)
        a = found[0] - int(allrows.k[0])
        b = found[1] - int(allrows.k[0])
        if a < 0 or b > len(allrows):
            return
        seg = self._segment_quats(allrows.slice(a, b))
        incl = {p: float(np.nanmedian(long_axis_inclination(v))) for p, v in seg.items()}
        if "pelvis" not in incl or not incl["pelvis"] <= self.slip_reference_rad:
            return
        off = [p for p, v in incl.items() if v > self.slip_threshold_rad]
        ok = [p for p, v in incl.items() if v <= self.slip_reference_rad]
        if len(off) != 1 or len(ok) < len(incl) - 1 or len(incl) < 3:
            return
        p = off[0]
        t0 = found[0] / self.rate_hz
        msg = (
            f"{p}: sensor seems to have slipped (standing at {t0:.1f} s reads "
            f"{math.degrees(incl[p]):.0f} deg from the calibrated neutral while the other segments "
            "are neutral)"
        )
        cal = self.calibration_[p]
        if "slipped" not in cal.flags:
            cal.flags.append("slipped")
        self.slips_.append((p, t0, "standing"))
        if self.recalibrate:
            qs = allrows.q[source_placement(p, self._swap)][a:b]
            up, _ = mean_direction(up_in_sensor(qs[np.isfinite(qs).all(axis=1)]))
            z_old = quat.rotate(cal.q_segment_in_sensor, np.array([0.0, 0.0, 1.0]))
            new = copy.deepcopy(cal)
            new.q_segment_in_sensor = frame_from_axes(up, z_old)
            new.reasons.append(f"slipped; vertical re-measured at {t0:.1f} s")
            new.quality = max(0.0, new.quality - 0.3)
            self.calibration_ = {**self.calibration_, p: new}
            self._walk_warned.discard(p)
            for d in (self._walk_buf, self._walk_buf_n, self._walk_base, self._walk_count):
                d.pop(p, None)
            msg += "; recalibrated from this standing period on"
        self.warnings_.append(msg)
        self.messages_.append(msg)

    # -- moving check -------------------------------------------------------------------------------------
    def _walk_axis_check(self, rows: Rows, fast: dict[str, np.ndarray | list[bool]], a: int, b: int) -> None:
        """Collect the fast-rotation rows of ``rows`` (rows ``[a, b)`` of the chunk ``fast`` was computed on,
        :meth:`_thigh_fast`) per thigh and check each full window."""
        if len(rows) == 0 or self.calibration_ is None:
            return
        need = int(self.walk_check_s * self.rate_hz)
        done: list[tuple[float, int, str, np.ndarray]] = []  # full windows: (end s, side, placement, axis)
        for side, p in enumerate(("thigh_left", "thigh_right")):
            if p not in self.calibration_:
                continue
            f = fast[p][a:b]
            w = rows.omega[source_placement(p, self._swap)]
            buf = self._walk_buf.setdefault(p, [])
            if isinstance(f, list):  # a live step: the rows as lists (time k / rate_hz as numpy divides)
                idx = [i for i, x in enumerate(f) if x]
                if not idx:
                    continue
                kl, wl, rate = rows.k.tolist(), w.tolist(), self.rate_hz
                buf.append([[kl[i] / rate, *wl[i]] for i in idx])
                n_fast = len(idx)
            else:
                if not f.any():
                    continue
                buf.append(np.column_stack([rows.k[f] / self.rate_hz, w[f]]))
                n_fast = int(f.sum())
            total = self._walk_buf_n.get(p, 0) + n_fast
            self._walk_buf_n[p] = total
            while total >= need:
                allw = np.concatenate([np.asarray(x, dtype=np.float64).reshape(-1, 4) for x in buf])
                win, rest = allw[:need], allw[need:]
                self._walk_buf[p] = buf = [rest] if len(rest) else []
                self._walk_buf_n[p] = total = len(rest)
                ww = win[:, 1:]
                vals, vecs = np.linalg.eigh(ww.T @ ww / len(ww))
                if vals[2] < 4.0 * vals[1]:
                    continue  # not a clearly planar movement
                done.append((float(win[-1, 0]), side, p, vecs[:, 2]))
        # in time order over both thighs (left first at equal times), as fed row by row: the order of
        # walk_offsets_, slips_ and the messages does not depend on where the chunks end
        for t, _, p, axis in sorted(done, key=lambda w: w[:2]):
            self._walk_window(p, axis, t)

    def _walk_window(self, p: str, axis: np.ndarray, t: float) -> None:
        base = self._walk_base.setdefault(p, [])
        if len(base) < 3:  # reference: the first three windows after (re)calibration
            if base and float(axis @ base[0]) < 0:
                axis = -axis
            base.append(axis)
            return
        ref = np.mean(base, axis=0)
        ref /= np.linalg.norm(ref)
        dev = math.acos(min(1.0, abs(float(axis @ ref))))
        self.walk_offsets_.append((p, t, dev))
        n = self._walk_count.get(p, 0) + 1 if dev > self.walk_axis_slip_rad else 0
        self._walk_count[p] = n
        assert self.calibration_ is not None
        cal = self.calibration_[p]
        if n >= 3 and p not in self._walk_warned:
            self._walk_warned.add(p)
            if "slipped" not in cal.flags:
                cal.flags.append("slipped")
            self.slips_.append((p, t, "moving"))
            msg = (
                f"{p}: sensor seems to have turned on the leg (its rotation axis while moving changed by "
                f"{math.degrees(dev):.0f} deg, by {t:.1f} s); angles are unreliable until the next "
                "standing-still period recalibrates it"
            )
            self.warnings_.append(msg)
            self.messages_.append(msg)
