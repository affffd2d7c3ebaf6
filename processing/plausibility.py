"""Plausibility guard: joint angles no human joint can reach are flagged, not reported (a streaming block).

Input and output: :class:`~hipback.processing.types.AngleSeries` (same rows). A joint angle sample is
*implausible* when

* it lies outside the joint's range: hip flexion outside ``hip_range_rad`` (default -40..150 deg; the hip's
  passive range is about 30 deg of extension and 120-140 deg of flexion, so a value outside the default has no
  anatomical reading), lumbar flexion outside ``lumbar_range_rad`` (default -45..90 deg; lumbar extension
  about 30 deg, flexion 50-60 deg, plus margin for the sensor and calibration error); or
* it changes faster than ``max_rate_rad_s`` from the previous row (default 1000 deg/s, several times the
  hip's angular velocity in walking and above that of fast voluntary leg movements; a glitch, a quaternion
  jump or a sensor that came loose moves faster).

An implausible sample is set to NaN and its reason recorded in ``AngleSeries.implausible`` (a per-row
bit mask, see :data:`FLAGS`); a hip sample takes the same side's thigh inclination with it (either sensor
may be at fault, and the stride detector falls back to the thigh inclination where the hip is missing).
Since every event detector treats NaN as missing data, an implausible sample is never part of a stride, a
hold or a repetition. Segment inclinations (pelvic tilt, pelvis inclination) are not guarded: lying down
legitimately tilts the pelvis by 90 deg. ``counts_`` holds the number of flagged samples per angle and
reason, ``n_rows_`` the number of rows seen; :meth:`summary` turns them into the session summary's
``implausible`` field.

The rate test compares each row with the previous row of the stream (kept across chunks), so the result does
not depend on the chunking.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from hipback.processing.blocks import SMALL_CHUNK, Block
from hipback.processing.types import AngleSeries

#: Bit of ``AngleSeries.implausible`` per (angle, reason).
FLAGS: dict[tuple[str, str], int] = {
    ("hip_flexion_left", "range"): 1,
    ("hip_flexion_left", "rate"): 2,
    ("hip_flexion_right", "range"): 4,
    ("hip_flexion_right", "rate"): 8,
    ("lumbar_flexion", "range"): 16,
    ("lumbar_flexion", "rate"): 32,
}
GUARDED = ("hip_flexion_left", "hip_flexion_right", "lumbar_flexion")
_COMPANION = {"hip_flexion_left": "thigh_inclination_left", "hip_flexion_right": "thigh_inclination_right"}


class PlausibilityGuard(Block[AngleSeries, AngleSeries]):
    """Flag and remove joint angles outside what a joint can do (see the module docstring).

    :param hip_range_rad: plausible hip flexion (min, max) in rad, flexion positive.
    :param lumbar_range_rad: plausible lumbar flexion (min, max) in rad, flexion positive.
    :param max_rate_rad_s: fastest plausible change of a joint angle between rows (rad/s).
    """

    def __init__(
        self,
        *,
        hip_range_rad: tuple[float, float] = (math.radians(-40.0), math.radians(150.0)),
        lumbar_range_rad: tuple[float, float] = (math.radians(-45.0), math.radians(90.0)),
        max_rate_rad_s: float = math.radians(1000.0),
    ) -> None:
        self.hip_range_rad = tuple(hip_range_rad)
        self.lumbar_range_rad = tuple(lumbar_range_rad)
        self.max_rate_rad_s = max_rate_rad_s
        self._prev: dict[str, float] = {name: math.nan for name in GUARDED}
        ranges = [self.lumbar_range_rad if n == "lumbar_flexion" else self.hip_range_rad for n in GUARDED]
        self._lo = np.array([[r[0]] for r in ranges], dtype=np.float64)  # (angle, 1): per guarded angle
        self._hi = np.array([[r[1]] for r in ranges], dtype=np.float64)
        self._prev_t = math.nan
        self._finished = False
        self.counts_: dict[str, dict[str, int]] = {name: {"range": 0, "rate": 0} for name in GUARDED}
        self.n_rows_ = 0

    def update(self, chunk: AngleSeries) -> AngleSeries:
        if self._finished:
            raise RuntimeError("update() after finish()")
        n = len(chunk)
        if n == 0:
            return chunk
        flags = np.zeros(n, dtype=np.uint8) if chunk.implausible is None else chunk.implausible.copy()
        t = chunk.t
        # the common case first: nothing flagged, nothing to replace
        clean = self._clean_small(chunk) if n <= SMALL_CHUNK else self._clean(chunk)
        if clean:
            for name in GUARDED:
                self._prev[name] = float(getattr(chunk, name)[-1])
            self._prev_t = float(t[-1])
            self.n_rows_ += n
            return replace(chunk, implausible=flags)
        dt = np.diff(t, prepend=self._prev_t)
        out: dict[str, np.ndarray] = {}
        for name in GUARDED:
            x = getattr(chunk, name)
            lo, hi = self.lumbar_range_rad if name == "lumbar_flexion" else self.hip_range_rad
            with np.errstate(invalid="ignore"):
                bad_range = (x < lo) | (x > hi)
                dx = np.diff(x, prepend=self._prev[name])
                bad_rate = np.abs(dx) > self.max_rate_rad_s * dt
            self._prev[name] = float(x[-1])
            if not (bad_range.any() or bad_rate.any()):
                continue
            self.counts_[name]["range"] += int(bad_range.sum())
            self.counts_[name]["rate"] += int((bad_rate & ~bad_range).sum())
            flags[bad_range] |= FLAGS[(name, "range")]
            flags[bad_rate] |= FLAGS[(name, "rate")]
            bad = bad_range | bad_rate
            out[name] = np.where(bad, np.nan, x)
            comp = _COMPANION.get(name)
            if comp is not None:
                out[comp] = np.where(bad, np.nan, out.get(comp, getattr(chunk, comp)))
        self._prev_t = float(t[-1])
        self.n_rows_ += n
        return replace(chunk, implausible=flags, **out)

    def _clean(self, chunk: AngleSeries) -> bool:
        """True when no guarded angle of ``chunk`` is out of range or too fast: the three angles checked at
        once, each row against its predecessor (the values ``np.diff(..., prepend=previous)`` gives)."""
        n = len(chunk)
        x3 = np.empty((len(GUARDED), n + 1))
        x3[:, 0] = [self._prev[name] for name in GUARDED]
        for i, name in enumerate(GUARDED):
            x3[i, 1:] = getattr(chunk, name)
        t1 = np.empty(n + 1)
        t1[0] = self._prev_t
        t1[1:] = chunk.t
        with np.errstate(invalid="ignore"):
            x = x3[:, 1:]
            dx = x - x3[:, :-1]
            dt = t1[1:] - t1[:-1]
            return not (
                ((x < self._lo) | (x > self._hi)).any() or (np.abs(dx) > self.max_rate_rad_s * dt).any()
            )

    def _clean_small(self, chunk: AngleSeries) -> bool:
        """:meth:`_clean` for the few rows of a live step, on Python floats: the same differences, products
        and comparisons (NaN fails every comparison, as there)."""
        tl = chunk.t.tolist()
        rate = self.max_rate_rad_s
        limits = [rate * (b - a) for a, b in zip([self._prev_t, *tl[:-1]], tl, strict=True)]
        for name in GUARDED:
            lo, hi = self.lumbar_range_rad if name == "lumbar_flexion" else self.hip_range_rad
            prev = self._prev[name]
            for x, limit in zip(getattr(chunk, name).tolist(), limits, strict=True):
                if x < lo or x > hi or abs(x - prev) > limit:
                    return False
                prev = x
        return True

    def finish(self) -> AngleSeries:
        self._finished = True
        return AngleSeries.empty()

    def summary(self) -> dict[str, dict[str, float | int]]:
        """Per guarded angle: flagged rows by reason (``range``, ``rate``) and their share of all rows."""
        out: dict[str, dict[str, float | int]] = {}
        for name, c in self.counts_.items():
            total = c["range"] + c["rate"]
            share = total / self.n_rows_ if self.n_rows_ else 0.0
            out[name] = {"range": c["range"], "rate": c["rate"], "share": round(share, 4)}
        return out
