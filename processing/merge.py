"""Grid merge: the sensors' grid rows combined into session rows (a streaming block).

Input: :class:`~hipback.processing.channel.GridChunk` pieces of any of the session's sensors, in any order.
Output: :class:`Rows`, the grid rows ``k`` (time ``k / rate_hz`` s) that became final, with every sensor's
orientation (NaN where a sensor has no value), the acceleration features (``acc``, m/s^2, gravity removed,
see :mod:`hipback.processing.channel`; columns: the pelvis' world-vertical acceleration and magnitude, then
the magnitude of the left and of the right thigh sensor's acceleration, NaN where not available), the
pelvis' smoothed magnitude (``motion``), a per-row "everybody stands still" flag, each sensor's angular
velocity and, for the placements named in ``gyroscope`` (quaternion devices that deliver their gyroscope, for
the exercise blocks), the sensor's gyroscope (``gyr``, rad/s, sensor frame, NaN where not available).

A row is final once every sensor delivered a sample at or after it: a silent sensor holds the output back,
unless ``max_sensor_lag_s`` is set, in which case a sensor more than that far behind the newest data is
treated as missing for those rows (convenient live, but then results depend on arrival timing).

Per-row features (all from the row and its predecessor, so independent of the chunking):

* ``omega[p]``: sensor-frame angular velocity (rad/s) from consecutive orientations
  (:func:`hipback.processing.calibration.angular_velocity`);
* ``still``: every worn sensor turns slower than ``still_gyr_rad_s`` with its x axis within
  ``max_x_tilt_rad`` of the vertical (the placement guide: sensor x up); a sensor without data does not veto,
  the pelvis must be there;
* ``motion``: the pelvis' acceleration magnitude (m/s^2, gravity removed) averaged causally over
  ``motion_window_s``
  (:class:`hipback.processing.angles.MotionSmoother`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hipback.processing.angles import MotionSmoother
from hipback.processing.blocks import SMALL_CHUNK, Block
from hipback.processing.calibration import angular_velocity
from hipback.processing.channel import GridChunk

#: columns of :attr:`Rows.acc`: pelvis vertical, pelvis magnitude, left thigh magnitude, right thigh magnitude
ACC_COLUMNS = 4
_THIGH_ACC = {"thigh_left": 2, "thigh_right": 3}


@dataclass
class Rows:
    """A block of merged grid rows (see the module docstring); all arrays share the first dimension.

    ``gyr``: per placement whose gyroscope is carried, the sensor's gyroscope ``(N, 3)`` (rad/s, sensor frame;
    NaN where not available); empty without any."""

    k: np.ndarray
    q: dict[str, np.ndarray]
    acc: np.ndarray
    motion: np.ndarray
    still: np.ndarray
    omega: dict[str, np.ndarray]
    gyr: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.k)

    @staticmethod
    def empty(placements: tuple[str, ...] | list[str], gyroscope: tuple[str, ...] | list[str] = ()) -> Rows:
        return Rows(
            np.zeros(0, dtype=np.int64),
            {p: np.zeros((0, 4)) for p in placements},
            np.zeros((0, ACC_COLUMNS)),
            np.zeros(0),
            np.zeros(0, dtype=bool),
            {p: np.zeros((0, 3)) for p in placements},
            {p: np.zeros((0, 3)) for p in gyroscope},
        )

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        if len(parts) == 1:
            return parts[0]
        placements = list(parts[0].q)
        # every gyroscope any part carries (NaN in a part without it: never misaligned, never dropped)
        gkeys = list(dict.fromkeys(pl for p in parts for pl in p.gyr))
        return Rows(
            np.concatenate([p.k for p in parts]),
            {pl: np.concatenate([p.q[pl] for p in parts]) for pl in placements},
            np.concatenate([p.acc for p in parts]),
            np.concatenate([p.motion for p in parts]),
            np.concatenate([p.still for p in parts]),
            {pl: np.concatenate([p.omega[pl] for p in parts]) for pl in placements},
            {
                pl: np.concatenate([p.gyr.get(pl, np.full((len(p), 3), np.nan)) for p in parts])
                for pl in gkeys
            },
        )

    def slice(self, a: int, b: int) -> Rows:
        """Rows ``[a, b)`` (views). Rows are never modified once released, so a slice of everything is the
        object itself (the common case on the live path: a step's rows kept whole)."""
        if a == 0 and b >= len(self.k):
            return self
        return Rows(
            self.k[a:b],
            {pl: v[a:b] for pl, v in self.q.items()},
            self.acc[a:b],
            self.motion[a:b],
            self.still[a:b],
            {pl: v[a:b] for pl, v in self.omega.items()},
            {pl: v[a:b] for pl, v in self.gyr.items()},
        )


class GridMerge(Block[GridChunk, Rows]):
    """Merge the sensors' grid rows (see the module docstring).

    :param placements: the session's sensors (the pelvis is required).
    :param rate_hz: grid rate (Hz).
    :param max_sensor_lag_s: release rows without a sensor that is this far behind (s); None: wait.
    :param motion_window_s: averaging window of the pelvis motion (s).
    :param still_gyr_rad_s: below this angular speed a sensor is still (rad/s).
    :param max_x_tilt_rad: standing needs each sensor's x axis within this of the vertical (rad).
    :param gyroscope: placements whose gyroscope (``GridChunk.gyr``) the rows carry (``Rows.gyr``, NaN where
        a sensor delivered none); the others' is ignored.
    """

    def __init__(
        self,
        placements: tuple[str, ...],
        *,
        rate_hz: float = 100.0,
        max_sensor_lag_s: float | None = None,
        motion_window_s: float = 0.5,
        still_gyr_rad_s: float = 0.2,
        max_x_tilt_rad: float = math.radians(45.0),
        gyroscope: tuple[str, ...] = (),
    ) -> None:
        self.placements = tuple(placements)
        self.rate_hz = float(rate_hz)
        self.max_sensor_lag_s = max_sensor_lag_s
        self.motion_window_s = motion_window_s
        self.still_gyr_rad_s = still_gyr_rad_s
        self.max_x_tilt_rad = max_x_tilt_rad
        self.gyroscope = tuple(p for p in self.placements if p in gyroscope)
        self._first: dict[str, int | None] = {p: None for p in self.placements}
        self._next: dict[str, int | None] = {p: None for p in self.placements}
        self._pending: dict[str, list[GridChunk]] = {p: [] for p in self.placements}
        self._next_row: int | None = None
        self._smoother = MotionSmoother(int(round(motion_window_s * self.rate_hz)))
        # every sensor's last released orientation (the predecessor of the next rows), one row per placement
        self._prev_q = np.full((len(self.placements), 4), np.nan)
        # placements whose missing data (NaN) does not veto ``still``: all but the pelvis
        self._may_miss = np.array([[p != "pelvis"] for p in self.placements], dtype=bool)
        self._cos_tilt = math.cos(max_x_tilt_rad)
        self._finished = False
        self._empty = Rows.empty(self.placements, self.gyroscope)
        self.n_rows_ = 0

    def update(self, chunk: GridChunk) -> Rows:
        """Grid rows of one sensor; returns the session rows that became final."""
        self.add(chunk)
        return self._merge(final=False)

    def add(self, chunk: GridChunk) -> None:
        """Queue grid rows of one sensor without merging yet: the next :meth:`update` (or :meth:`finish`)
        releases what became final. Several sensors' chunks arriving together are then merged once, which
        gives the same rows as merging after each (the rows' features do not depend on the chunking)."""
        if self._finished:
            raise RuntimeError("add() after finish()")
        p = chunk.placement
        if p not in self._pending:
            raise ValueError(f"{p} is not part of this session")
        if chunk.first_k is not None:
            self._first[p] = chunk.first_k
            self._next[p] = chunk.next_k
        elif len(chunk):
            self._first[p] = self._first[p] if self._first[p] is not None else int(chunk.k[0])
            self._next[p] = int(chunk.k[-1]) + 1
        if len(chunk):
            self._pending[p].append(chunk)

    def finish(self) -> Rows:
        """Release every row any sensor reached (missing sensors NaN)."""
        if self._finished:
            return Rows.empty(self.placements, self.gyroscope)
        self._finished = True
        return self._merge(final=True)

    def _merge(self, final: bool) -> Rows:
        firsts = [self._first[p] for p in self.placements]
        present = [f for f in firsts if f is not None]
        if not present:
            return self._empty
        lag = None if self.max_sensor_lag_s is None else int(self.max_sensor_lag_s * self.rate_hz)
        ends_list = [e for e in self._next.values() if e is not None]
        if len(present) < len(firsts) and not final:
            # a sensor has sent nothing yet: wait for it (or, with a lag limit, not longer than that)
            if lag is None or max(ends_list) - min(present) <= lag:
                return self._empty
        if self._next_row is None:
            self._next_row = min(present)
        if final:
            end = max(ends_list)
        else:
            end = min(ends_list) if len(present) == len(firsts) else max(ends_list) - lag  # type: ignore[operator]
            if lag is not None:
                end = max(end, max(ends_list) - lag)
        a = self._next_row
        if end <= a:
            return self._empty
        n = end - a
        q: dict[str, np.ndarray] = {}
        acc = np.full((n, ACC_COLUMNS), np.nan)
        # every sensor's rows in one buffer, each block preceded by that sensor's previous row, so that the
        # per-row features are computed once for all sensors (see _features)
        buf = np.full((len(self.placements), n + 1, 4), np.nan)
        buf[:, 0] = self._prev_q
        gyr = {p: np.full((n, 3), np.nan) for p in self.gyroscope}
        for ip, p in enumerate(self.placements):
            arr = buf[ip, 1:]
            g = gyr.get(p)
            rest: list[GridChunk] = []
            for c in self._pending[p]:
                ks = c.k
                k_first, k_last = int(ks[0]), int(ks[-1])
                if k_last < a:
                    continue
                cg = c.gyr if g is not None else None
                if k_first >= a and k_last < end and k_last - k_first + 1 == len(ks):  # the usual case
                    lo = k_first - a
                    arr[lo : lo + len(ks)] = c.quat
                    if p == "pelvis":
                        acc[lo : lo + len(ks), :2] = c.acc
                    elif p in _THIGH_ACC:
                        acc[lo : lo + len(ks), _THIGH_ACC[p]] = c.acc[:, 1]
                    if cg is not None:
                        g[lo : lo + len(ks)] = cg  # type: ignore[index]
                    continue
                sel = (ks >= a) & (ks < end)
                if sel.any():
                    arr[ks[sel] - a] = c.quat[sel]
                    if p == "pelvis":
                        acc[ks[sel] - a, :2] = c.acc[sel]
                    elif p in _THIGH_ACC:
                        acc[ks[sel] - a, _THIGH_ACC[p]] = c.acc[sel, 1]
                    if cg is not None:
                        g[ks[sel] - a] = cg[sel]  # type: ignore[index]
                if k_last >= end:
                    keep = ks >= end
                    kept = None if c.gyr is None else c.gyr[keep]
                    rest.append(GridChunk(p, ks[keep], c.quat[keep], c.acc[keep], gyr=kept))
            self._pending[p] = rest
            q[p] = arr
        self._next_row = end
        with np.errstate(invalid="ignore"):
            motion = self._smoother.update(acc[:, 1])
        rows = Rows(np.arange(a, end, dtype=np.int64), q, acc, motion, np.zeros(0, dtype=bool), {}, gyr)
        self._features(rows, buf)
        self.n_rows_ += n
        return rows

    def _features(self, rows: Rows, buf: np.ndarray) -> None:
        """``rows.omega`` and ``rows.still`` from ``buf`` (placements, 1 + rows, 4): each placement's previous
        row, then its rows (``rows.q``).

        Every feature is elementwise along the rows, so it is computed once on all placements' blocks laid
        end to end (a block's first row, computed against the block before it, is dropped): the same values
        as per placement, with a fraction of the numpy calls on the few rows of a live step.
        """
        n_p, m, _ = buf.shape
        self._prev_q = buf[:, -1].copy()
        if m - 1 <= SMALL_CHUNK and self._features_small(rows, buf):
            return
        flat = buf.reshape(n_p * m, 4)
        w = angular_velocity(flat, self.rate_hz)
        w3 = w.reshape(n_p, m, 3)
        for ip, p in enumerate(self.placements):
            rows.omega[p] = w3[ip, 1:]
        with np.errstate(invalid="ignore"):
            speed = np.sqrt(np.einsum("ij,ij->i", w, w))
            # x component of world up in the sensor frame (third row of the rotation matrix, first column)
            up_x = 2.0 * (flat[:, 1] * flat[:, 3] - flat[:, 0] * flat[:, 2])
            still = ((speed < self.still_gyr_rad_s) & (np.abs(up_x) > self._cos_tilt)).reshape(n_p, m)[:, 1:]
        # a sensor without data (gap, not connected) does not veto; the pelvis must be there
        still = still | (self._may_miss & ~np.isfinite(buf[:, 1:, 0]))
        rows.still = still.all(axis=0)

    def _features_small(self, rows: Rows, buf: np.ndarray) -> bool:
        """:meth:`_features` for a live step's few rows on Python floats, written by hand because numpy's
        per-call cost dominates on so few rows: the angular velocity by the operations of
        :func:`hipback.processing.calibration.angular_velocity` in the same order (so the same values), the
        tilt and the comparisons as :meth:`_features` makes them. The speed test ``sqrt(|w|^2) < limit`` is
        taken from the Python sum of squares when it is clearly on one side of ``limit^2`` (relative 1e-9,
        far beyond the last-bit differences between summation orders). Returns False, having set nothing,
        when a speed is too close to the limit, infinite or NaN (a row without data: the numpy path then
        decides, and its NaN bits are numpy's)."""
        n_p, m, _ = buf.shape
        ql = buf.reshape(n_p * m, 4).tolist()
        rate, thr, cos_tilt = self.rate_hz, self.still_gyr_rad_s, self._cos_tilt
        thr2 = thr * thr
        w_rows: list[list[float]] = []
        still_l = [True] * (m - 1)
        for ip, p in enumerate(self.placements):
            may_miss = p != "pelvis"
            base = ip * m
            for r in range(1, m):
                w0, px, py, pz = ql[base + r - 1]
                w1, x1, y1, z1 = ql[base + r]
                x0, y0, z0 = -px, -py, -pz  # conj(previous)
                dw = w0 * w1 - x0 * x1 - y0 * y1 - z0 * z1
                scale = (-2.0 if dw < 0 else 2.0) * rate
                wx = (w0 * x1 + x0 * w1 + y0 * z1 - z0 * y1) * scale
                wy = (w0 * y1 - x0 * z1 + y0 * w1 + z0 * x1) * scale
                wz = (w0 * z1 + x0 * y1 - y0 * x1 + z0 * w1) * scale
                w_rows.append([wx, wy, wz])
                sq = wx * wx + wy * wy + wz * wz
                d = sq - thr2
                if not abs(d) > 1e-9 * (sq + thr2):  # (NaN and infinity fail this test)
                    return False
                slow = d < 0
                if not still_l[r - 1]:
                    continue
                # x component of world up in the sensor frame (as in _features)
                if slow and abs(2.0 * (x1 * z1 - w1 * y1)) > cos_tilt:
                    continue
                if may_miss and not math.isfinite(w1):  # a sensor without data does not veto
                    continue
                still_l[r - 1] = False
        w3 = np.array(w_rows, dtype=np.float64).reshape(n_p, m - 1, 3)
        for ip, p in enumerate(self.placements):
            rows.omega[p] = w3[ip]
        rows.still = np.array(still_l, dtype=bool)
        return True
