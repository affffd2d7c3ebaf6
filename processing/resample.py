"""Streaming resampling of one sensor's orientation onto the common uniform timeline.

The common timeline is ``t_k = k / rate_hz`` for integer k (anchored at t = 0 of the recording), so every
sensor maps onto the same grid whatever its own rate, start time or chunking. A grid point between two
consecutive samples is interpolated from those two samples only: quaternions by normalised linear
interpolation (nlerp: between consecutive samples the rotation is small, and nlerp stays within 0.001 deg
of slerp up to 0.15 rad between samples, i.e. 15 rad/s at 100 Hz, at a fraction of its cost), scalars and
vectors linearly.
Interpolation never bridges a gap: when the two neighbours are more than ``gap_s`` apart, or either is
invalid (NaN), the grid point is NaN. Each output value depends only on its two neighbours, so feeding the
samples in any chunking gives the same grid values.
"""

from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np

from hipback.processing.quaternion import FloatArray


def first_grid_index(t: float, rate_hz: float) -> int:
    """Smallest k with ``k / rate_hz >= t``."""
    k = math.ceil(t * rate_hz)
    while k / rate_hz < t:
        k += 1
    while (k - 1) / rate_hz >= t:
        k -= 1
    return k


def last_grid_index(t: float, rate_hz: float) -> int:
    """Largest k with ``k / rate_hz <= t``."""
    k = math.floor(t * rate_hz)
    while k / rate_hz > t:
        k -= 1
    while (k + 1) / rate_hz <= t:
        k += 1
    return k


#: most grid points one push may produce (48 h at 100 Hz). More means corrupt sample times (a last sample at
#: t = 1e9 s would ask for 10^11 points); refused with a ValueError before anything is allocated.
MAX_POINTS_PER_PUSH = 17_280_000


def _empty(s: FloatArray | None) -> tuple[np.ndarray, FloatArray, FloatArray | None]:
    return (
        np.zeros(0, dtype=np.int64),
        np.zeros((0, 4)),
        None if s is None else np.zeros((0,) + np.shape(s)[1:]),
    )


#: pushes of at most this many samples (the few of a live chunk) take :meth:`GridResampler._push_small`
SMALL_PUSH = 12


class GridResampler:
    """Resample (t, quat, scalar) samples of one sensor onto ``k / rate_hz`` (see module docstring).

    :meth:`push` takes the next samples (strictly increasing times, continuing the previous push) and returns
    ``(k, quat, scalar)`` for every grid point up to the newest sample time not produced before.
    """

    def __init__(self, rate_hz: float, gap_s: float) -> None:
        self.rate_hz = float(rate_hz)
        self.gap_s = float(gap_s)
        self.next_k: int | None = None
        self._first_k: int | None = None
        # the previous push's last sample: time (s), quaternion ((1, 4) array, or a list of 4 floats after a
        # small push) and the other input's row ((1, M) or (1,) array, or a list of M floats after a small
        # push; None without it)
        self._last: tuple[float, FloatArray | list[float], FloatArray | list[float] | None] | None = None

    @property
    def first_k(self) -> int | None:
        return self._first_k

    def push(
        self, t: FloatArray, q: FloatArray, s: FloatArray | None
    ) -> tuple[np.ndarray, FloatArray, FloatArray | None]:
        """Resample the next samples; ``s`` is ``(N,)`` scalars or ``(N, M)`` vectors (linear, per column), or
        None when there is nothing but the orientation to resample (the third output is then None too; give
        None in every push or in none)."""
        if len(t) == 0:
            return _empty(s)
        if self._last is not None and len(t) <= SMALL_PUSH and (s is None or np.ndim(s) == 2):
            out = self._push_small(np.asarray(t).tolist(), q, None if s is None else np.asarray(s).tolist())
            if out is not None:
                return out
        return self._push_arrays(t, q, s)

    def push_lists(
        self, t: FloatArray, tl: list[float], q: FloatArray, s_rows: list[list[float]] | None
    ) -> tuple[np.ndarray, FloatArray, FloatArray | None]:
        """:meth:`push` for a live chunk given also as Python lists: ``tl`` the times of ``t``, ``s_rows``
        the rows of the ``(N, M)`` vectors (or None); the same output as :meth:`push` of the arrays."""
        if len(tl) == 0:
            return _empty(None if s_rows is None else np.zeros((0, 1)))
        if self._last is not None and len(tl) <= SMALL_PUSH:
            out = self._push_small(tl, q, s_rows)
            if out is not None:
                return out
        s = None if s_rows is None else np.array(s_rows, dtype=np.float64).reshape(len(tl), len(s_rows[0]))
        return self._push_arrays(t, q, s)

    def _push_arrays(
        self, t: FloatArray, q: FloatArray, s: FloatArray | None
    ) -> tuple[np.ndarray, FloatArray, FloatArray | None]:
        """:meth:`push` on arrays (every case)."""
        if self._last is not None:
            lt, lq, ls = self._last
            tt = np.concatenate(([lt], t))
            qq = np.concatenate((np.array([lq], dtype=np.float64) if isinstance(lq, list) else lq, q))
            if s is None:
                ss = None
            else:
                ls_a = np.array([ls], dtype=np.float64) if isinstance(ls, list) else ls
                ss = np.concatenate((ls_a, s))
        else:
            tt, qq, ss = t, q, s
            self.next_k = first_grid_index(float(t[0]), self.rate_hz)
            self._first_k = self.next_k
        t_last = float(tt[-1])
        if tt is t:  # the caller's arrays: keep copies of the last sample
            self._last = (
                t_last,
                np.array(qq[-1:], dtype=np.float64),
                None if ss is None else np.array(ss[-1:], dtype=np.float64),
            )
        else:  # our own concatenations (never modified): views of their last row
            self._last = (t_last, qq[-1:], None if ss is None else ss[-1:])
        assert self.next_k is not None
        k_end = last_grid_index(t_last, self.rate_hz)
        if k_end < self.next_k:
            return _empty(s)
        if k_end - self.next_k >= MAX_POINTS_PER_PUSH:
            raise ValueError(f"samples {float(t_last - tt[0]):.6g} s apart would need more than "
                             f"{MAX_POINTS_PER_PUSH} grid points; the sample times are corrupt")
        ks = np.arange(self.next_k, k_end + 1, dtype=np.int64)
        self.next_k = k_end + 1
        tk = ks / self.rate_hz
        if len(tt) == 1:
            qo = np.repeat(qq[:1], len(ks), axis=0)
            return ks, qo, None if ss is None else np.repeat(ss[:1], len(ks), axis=0)
        # (take and 1-D reductions: several times cheaper than fancy 2-D indexing and axis-1 reductions on the
        # few rows of a live chunk; same values)
        # i: the last sample at or before each grid time, at most the second to last sample (the pair
        # (i, i + 1) brackets it). Every grid time is at or after tt[0] (the first push starts at
        # first_grid_index(t[0]); later pushes after the previous last sample), so searching tt[:-1] gives
        # min(index, len(tt) - 1) at once and i is never negative.
        j = np.searchsorted(tt[:-1], tk, side="right")
        i = j - 1
        t0 = tt.take(i)
        t1 = tt.take(j)
        dt = t1 - t0
        frac = (tk - t0) / dt
        q0 = qq.take(i, axis=0)
        q1 = qq.take(j, axis=0)
        dot = np.einsum("ij,ij->i", q0, q1)
        fq = frac[:, None]
        so = None
        if ss is not None:
            s0 = ss.take(i, axis=0)
            s1 = ss.take(j, axis=0)
            with np.errstate(invalid="ignore"):  # (an infinite value next to another: NaN, silently)
                so = s0 + (s1 - s0) * (frac if ss.ndim == 1 else fq)
        if 0.0 < np.minimum.reduce(dot) and np.maximum.reduce(dot) < math.inf and (
            np.maximum.reduce(dt) <= self.gap_s
        ):
            # the common case, three reductions: consecutive samples in the same hemisphere (no sign flip),
            # all finite (NaN fails the comparisons), no gap; a positive dot also keeps every nlerp norm above
            # 0, so the normalisation has nothing to silence. The same operations as the general path below.
            qo = q0 + (q1 - q0) * fq
            qo /= np.sqrt(np.einsum("ij,ij->i", qo, qo))[:, None]
            return ks, qo, so
        flip = dot < 0
        if flip.any():  # (the multiplication by +1 elsewhere changes nothing: skipped when no row flips)
            q1 = q1 * np.where(flip, -1.0, 1.0)[:, None]
        qo = q0 + (q1 - q0) * fq  # nlerp (see the module docstring), normalised below
        with np.errstate(invalid="ignore", divide="ignore"):
            qo /= np.sqrt(np.einsum("ij,ij->i", qo, qo))[:, None]
        # (no gap and no NaN: nothing to mask; dot is NaN where either quaternion is, and a NaN step counts as
        # no gap, as the comparison below gives)
        if dt.max() <= self.gap_s and np.isfinite(dot).all():
            return ks, qo, so
        bad = (dt > self.gap_s) | ~np.isfinite(dot)
        if bad.any():
            fin0 = np.isfinite(q0).all(axis=1)
            fin1 = np.isfinite(q1).all(axis=1)
            qo[bad] = np.nan
            # a grid point exactly on a sample next to a gap keeps that sample's value
            exact0 = bad & (tk == t0) & fin0
            exact1 = bad & (tk == t1) & fin1
            qo[exact0] = q0[exact0]
            qo[exact1] = qq[j][exact1]
            if so is not None and ss is not None:
                so[bad] = np.nan
                so[exact0] = ss[i][exact0]
                so[exact1] = ss[j][exact1]
        return ks, qo, so

    def _push_small(
        self, t_new: list[float], q: FloatArray, s_rows: list[list[float]] | None
    ) -> tuple[np.ndarray, FloatArray, FloatArray | None] | None:
        """The common case of a live push (after the first; times finite and increasing; every grid point
        between two finite samples of one hemisphere, no gap), with the few grid points' elementwise
        arithmetic on Python floats: the very operations of :meth:`push` in the same order (IEEE, so the same
        values), the two sums of products still by the same numpy call. ``t_new``: the times as a list,
        ``s_rows``: the ``(N, M)`` vectors as a list of rows (or None). Returns None, having changed nothing,
        when anything is not the common case (:meth:`push` then does everything)."""
        assert self._last is not None and self.next_k is not None
        lt, lq, ls = self._last
        tl = [lt, *t_new]
        t_last = tl[-1]
        # finite and strictly increasing (NaN fails every comparison)
        if not (-math.inf < tl[0] and t_last < math.inf):
            return None
        prev = tl[0]
        for x in t_new:
            if not prev < x:
                return None
            prev = x
        k_end = last_grid_index(t_last, self.rate_hz)
        if k_end < self.next_k or k_end - self.next_k >= MAX_POINTS_PER_PUSH:
            return None
        ql = [lq if isinstance(lq, list) else lq.tolist()[0], *q.tolist()]
        rate, gap_s, hi = self.rate_hz, self.gap_s, len(tl) - 1
        ks = range(self.next_k, k_end + 1)
        grid: list[tuple[int, float]] = []
        for k in ks:
            tk = k / rate  # (ks / rate_hz in numpy: the int converted, then divided)
            i = bisect_right(tl, tk, 0, hi) - 1  # np.searchsorted(tt[:-1], tk, side="right") - 1
            t0 = tl[i]
            dt = tl[i + 1] - t0
            # the two neighbours in one hemisphere (dot product positive) and finite: push takes the dot
            # product's sign from numpy's sum, whose order may differ from this one in the last bits, so only
            # a dot product clearly above those rounding errors (relative 1e-12) is taken here as positive
            a, b = ql[i], ql[i + 1]
            p0, p1, p2, p3 = a[0] * b[0], a[1] * b[1], a[2] * b[2], a[3] * b[3]
            d = p0 + p1 + p2 + p3
            if not (1e-12 * (abs(p0) + abs(p1) + abs(p2) + abs(p3)) < d < math.inf and dt <= gap_s):
                return None
            grid.append((i, (tk - t0) / dt))
        qo_rows = []
        for i, f in grid:
            a, b = ql[i], ql[i + 1]
            qo_rows.append([a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f,
                            a[3] + (b[3] - a[3]) * f])
        qo = np.array(qo_rows, dtype=np.float64)
        qo /= np.sqrt(np.einsum("ij,ij->i", qo, qo))[:, None]
        so = None
        s_last = None
        if s_rows is not None:
            sl = [ls if isinstance(ls, list) else np.asarray(ls).tolist()[0], *s_rows]
            if len(sl[0]) == 2:  # (the channel's two acceleration features)
                so_rows = []
                for i, f in grid:
                    a, b = sl[i], sl[i + 1]
                    so_rows.append([a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f])
            else:
                so_rows = [[x + (y - x) * f for x, y in zip(sl[i], sl[i + 1], strict=True)] for i, f in grid]
            so = np.array(so_rows, dtype=np.float64).reshape(len(grid), len(sl[0]))
            s_last = sl[-1]
        self._last = (t_last, ql[-1], s_last)
        self.next_k = k_end + 1
        return np.arange(ks.start, ks.stop, dtype=np.int64), qo, so
