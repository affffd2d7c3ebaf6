"""Stretch holds: kneeling hip-flexor stretch holds per side, posture-correct time, arching, prescription.

Hold definition (start/end)
---------------------------
A hold is the half-kneeling posture *shifted forward*, held still. A sample belongs to a hold of side S (the
leg whose hip is extended, i.e. the kneeling leg) when

* the posture is quasi-static: neither hip's flexion angle changes faster than ``static_speed_rad_s``
  (central difference over +- ``speed_window_s`` of the lightly smoothed angle). The hip angles, not the
  thighs, are tested, so that arching the back (the pelvis, and with it both thighs, rotating while the
  hips stay put) does not end the hold;
* the half-kneeling stretch posture holds: the other (front) hip is flexed at least ``min_front_hip_rad``,
  S's hip is flexed at most ``max_back_hip_rad``, the pelvis is upright (``pelvis_inclination`` below
  ``max_pelvis_inclination_rad``), and the forward shift is there: S's hip extension is at least
  ``min_extension_rad`` *or* the split between the hips (front flexion + back extension) is at least
  ``min_split_rad``. A relaxed half-kneel has the front hip near 80-90 deg and the back hip near neutral
  (split below ~85 deg); shifting the pelvis forward opens both hips. When the other hip is not available,
  a static posture with S's hip extension at least ``fallback_extension_rad`` counts ("other static holds").

A hold starts at the first such sample and ends at the last one; interruptions shorter than ``bridge_s`` are
bridged; a missing sample (NaN, time jump) always ends the hold. A movement into or out of a hold slows down
smoothly, so the speed test passes a little before the posture is reached and after it is left; both edges
are moved inwards by ``edge_correction_s`` (0.15 s: about the reach of the speed test, ``speed_window_s``
plus the smoothing, within which a slowing movement already passes it; measured edge errors are in
``bench/README.md``).
Holds shorter than ``min_duration_s`` are dropped. ``duration_s = t_end - t_start + 1/fs`` (the span of
the hold's samples).

Correct posture (``docs/biomechanics.md``, "Stretch holds")
------------------------------------------------
The reference pelvic tilt (and lumbar flexion, when worn) is the mean over the first ``reference_s`` of the
hold. A sample is *arching* when the pelvis tilted anteriorly by more than ``tolerance_rad`` from that
reference, or the lumbar spine extended by more than ``tolerance_rad``; a sample is *correct* when it is not
arching and the hip extension is at least ``target_extension_rad`` (default 10 deg, the practical target of
``docs/biomechanics.md``). The tolerance is one-sided: tucking the
pelvis (posterior tilt) is what the cue asks for (Gonzalez-de-la-Flor 2024) and never counts against the
patient. ``tolerance_rad`` defaults to 6 deg, above the >= 5 deg floor set by sensor error. A hold is flagged
``arching`` when it has at least ``arch_min_s`` of arching samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hipback.processing.blocks import Block
from hipback.processing.events import (
    Window,
    WindowedStream,
    feature_slice,
    runs,
    smooth,
    triangular_kernel,
)
from hipback.processing.types import AngleSeries

_DEG = math.pi / 180.0
SIDES = ("left", "right")


@dataclass
class Prescription:
    """Prescribed dose per side: ``holds_per_side`` holds of ``hold_s`` seconds each."""

    holds_per_side: int = 3
    hold_s: float = 30.0


@dataclass
class Hold:
    """One static stretch hold (angles in rad relative to standing neutral, times in s).

    ``peak/mean_hip_extension_rad`` are positive for extension. ``pelvic_tilt_drift_rad`` is the largest
    anterior deviation of pelvic tilt from its reference (negative = stayed posterior);
    ``lumbar_extension_drift_rad`` likewise for lumbar extension (NaN without the lumbar sensor).
    """

    side: str
    rep: int
    t_start: float
    t_end: float
    duration_s: float
    correct_s: float
    arching_s: float
    arching: bool
    peak_hip_extension_rad: float
    mean_hip_extension_rad: float
    pelvic_tilt_reference_rad: float
    pelvic_tilt_drift_rad: float
    lumbar_extension_drift_rad: float


@dataclass
class HoldProgress:
    """Live view of the hold in progress (for coaching); times in s, angles in rad.

    ``elapsed_s`` runs from the hold's start to the last sample in the hold posture: while the patient is out
    of it (``in_posture`` False: the hold stays open for up to ``bridge_s``, in case they come back) it
    stands still, as the final hold will end there."""

    side: str
    elapsed_s: float
    correct_s: float
    arching_now: bool
    hip_extension_now: float
    in_posture: bool = True


@dataclass
class _Posture:
    ext: np.ndarray  # hip extension (rad, positive = extension)
    tilt_dev: np.ndarray  # pelvic tilt minus reference (anterior positive)
    lumbar_ext: np.ndarray  # lumbar extension increase from reference (NaN without sensor)
    arching: np.ndarray
    correct: np.ndarray
    ref: tuple[float, float]


@dataclass
class _Open:
    start: int
    last_end: int  # exclusive end of the last hold-posture run
    bad_after_last: bool = False
    # live counters (for current() only; final metrics are recomputed from the buffered samples)
    ref_tilt: float = float("nan")
    ref_lumbar: float = float("nan")
    live_done: int = 0
    live_correct: int = 0
    live_arching_now: bool = False
    live_ext_now: float = float("nan")


@dataclass(repr=False, eq=False)
class HoldDetector(Block[AngleSeries, list["Hold"]]):
    """Streaming detector of stretch holds on both sides (see module doc for the definitions).

    ``update(chunk)`` returns holds that became final; ``finish()`` flushes; ``holds`` has all final holds;
    ``current()`` the hold in progress (delayed by the look-ahead, about ``speed_window_s``, and the stream's
    0.25 s batches).
    """

    target_extension_rad: float = 10 * _DEG
    tolerance_rad: float = 6 * _DEG
    min_duration_s: float = 3.0
    prescription: Prescription = field(default_factory=Prescription)
    min_extension_rad: float = 10 * _DEG
    min_split_rad: float = 88 * _DEG
    fallback_extension_rad: float = 8 * _DEG
    min_front_hip_rad: float = 60 * _DEG
    max_back_hip_rad: float = 20 * _DEG
    max_pelvis_inclination_rad: float = 50 * _DEG
    static_speed_rad_s: float = 3 * _DEG
    speed_window_s: float = 0.1
    edge_correction_s: float = 0.15
    bridge_s: float = 1.0
    reference_s: float = 1.0
    arch_min_s: float = 1.0
    smooth_s: float = 0.03
    holds_: list[Hold] = field(default_factory=list, init=False)

    @property
    def holds(self) -> list[Hold]:
        """Alias of ``holds_`` (every final hold)."""
        return self.holds_

    def __post_init__(self) -> None:
        if self.tolerance_rad < 5 * _DEG - 1e-12:
            raise ValueError("tolerance_rad below 5 deg is inside the sensors' error (docs/biomechanics.md)")
        self._stream = WindowedStream(
            (
                "hip_flexion_left",
                "hip_flexion_right",
                "pelvic_tilt",
                "lumbar_flexion",
                "pelvis_inclination",
            ),
            self._configure,
            self._process,
            self._keep_from,
        )
        self._open: dict[str, _Open | None] = {s: None for s in SIDES}
        self._new: list[Hold] = []
        self._reps = {s: 0 for s in SIDES}

    # -- public API ----------------------------------------------------------------------------
    def update(self, chunk: AngleSeries) -> list[Hold]:
        self._stream.feed(chunk)
        return self._take_new()

    def finish(self) -> list[Hold]:
        self._stream.finish()
        return self._take_new()

    def _take_new(self) -> list[Hold]:
        """Holds final since the last update/finish (also those that a :meth:`current` call finished)."""
        new, self._new = self._new, []
        return new

    def current(self) -> HoldProgress | None:
        """The hold in progress (the longer one if both sides are open), or None.

        As of the samples handed to the detector so far: the stream works in batches of 0.25 s, so the view
        lags the data by up to that plus the look-ahead (cheap enough to ask at every live update).
        """
        best: HoldProgress | None = None
        fs = self._stream.fs
        if fs is None:
            return None
        for side in SIDES:
            o = self._open[side]
            if o is None:
                continue
            p = HoldProgress(
                side=side,
                elapsed_s=(o.last_end - o.start) / fs,
                correct_s=o.live_correct / fs,
                arching_now=o.live_arching_now,
                hip_extension_now=o.live_ext_now,
                in_posture=o.last_end >= self._stream.done,
            )
            if best is None or p.elapsed_s > best.elapsed_s:
                best = p
        return best

    def summary(self) -> dict[str, dict[str, float | int]]:
        """Per side: holds, total and correct time, median peak extension, arching holds."""
        out: dict[str, dict[str, float | int]] = {}
        for side in SIDES:
            hs = [h for h in self.holds_ if h.side == side]
            out[side] = {
                "holds": len(hs),
                "total_s": float(sum(h.duration_s for h in hs)),
                "correct_s": float(sum(h.correct_s for h in hs)),
                "arching_holds": sum(1 for h in hs if h.arching),
                "median_peak_hip_extension_rad": (
                    float(np.median([h.peak_hip_extension_rad for h in hs])) if hs else float("nan")
                ),
            }
        return out

    def compare(self, prescription: Prescription | None = None) -> dict[str, dict[str, float | int | bool]]:
        """Per side against the prescription: holds done, holds lasting ``hold_s`` (in total and in correct
        posture), total correct time vs prescribed time, and whether the dose was met."""
        p = prescription or self.prescription
        out: dict[str, dict[str, float | int | bool]] = {}
        for side in SIDES:
            hs = [h for h in self.holds_ if h.side == side]
            correct = float(sum(h.correct_s for h in hs))
            good = sum(1 for h in hs if h.correct_s >= p.hold_s)
            out[side] = {
                "holds_prescribed": p.holds_per_side,
                "holds_done": len(hs),
                "holds_meeting_duration": sum(1 for h in hs if h.duration_s >= p.hold_s),
                "holds_meeting_correct_duration": good,
                "correct_s": correct,
                "prescribed_s": p.holds_per_side * p.hold_s,
                "met": good >= p.holds_per_side,
            }
        return out

    # -- streaming internals ---------------------------------------------------------------------
    def _configure(self, fs: float) -> tuple[int, int]:
        self._fs = fs
        self._h = max(1, round(self.smooth_s * fs))
        self._k = max(1, round(self.speed_window_s * fs))
        self._kernel = triangular_kernel(self._h)
        self._bridge_n = round(self.bridge_s * fs)
        self._ref_n = max(1, round(self.reference_s * fs))
        self._edge_n = round(self.edge_correction_s * fs)
        m = self._k + self._h + 2
        return m, m

    def _keep_from(self) -> int | None:
        starts = [o.start for o in self._open.values() if o is not None]
        return min(starts) - self._h - 3 if starts else None

    def _smoothed(self, win: Window, name: str, a: int, b: int) -> np.ndarray:
        return smooth(feature_slice(win, name, a, b, self._h + 1)[1:-1], self._kernel)

    def _process(self, win: Window, a: int, b: int) -> None:
        k, h = self._k, self._h
        m = k + h + 1
        hip: dict[str, np.ndarray] = {}
        static = np.ones(b - a, dtype=bool)
        for side in SIDES:
            x = smooth(feature_slice(win, f"hip_flexion_{side}", a, b, m)[1:-1], self._kernel)  # [a-k, b+k)
            hip[side] = x[k:-k]
            with np.errstate(invalid="ignore"):
                speed = np.abs(x[2 * k :] - x[: -2 * k]) * (self._fs / (2 * k))
                static &= (speed <= self.static_speed_rad_s) | np.isnan(hip[side])  # a side not worn: no veto
        pelvis = self._smoothed(win, "pelvis_inclination", a, b)
        with np.errstate(invalid="ignore"):
            upright = pelvis <= self.max_pelvis_inclination_rad
        for side in SIDES:
            other = "right" if side == "left" else "left"
            back, front = hip[side], hip[other]
            ext = -back
            with np.errstate(invalid="ignore"):
                kneel = (front >= self.min_front_hip_rad) & (back <= self.max_back_hip_rad)
                kneel &= (ext >= self.min_extension_rad) | (front + ext >= self.min_split_rad)
                fallback = np.isnan(front) & (ext >= self.fallback_extension_rad)
            bad = np.isnan(back) | np.isnan(pelvis)
            cand = static & upright & (kneel | fallback) & ~bad
            self._advance(win, side, cand, bad, a, b)

    def _advance(self, win: Window, side: str, cand: np.ndarray, bad: np.ndarray, a: int, b: int) -> None:
        starts, stops = runs(cand)
        bad_idx = np.flatnonzero(bad) + a
        for s0, s1 in zip(starts + a, stops + a, strict=True):
            o = self._open[side]
            if o is not None:
                lo = max(o.last_end, a)
                broken = o.bad_after_last or bool(np.any((bad_idx >= lo) & (bad_idx < s0)))
                if not broken and s0 - o.last_end <= self._bridge_n:
                    o.last_end = int(s1)
                    continue
                self._close(win, side)
            self._open[side] = _Open(start=int(s0), last_end=int(s1))
        o = self._open[side]
        if o is None:
            return
        lo = max(o.last_end, a)
        o.bad_after_last = o.bad_after_last or bool(np.any(bad_idx >= lo))
        if o.bad_after_last or b - o.last_end > self._bridge_n:
            self._close(win, side)
        else:
            self._live(win, side, o, b)

    def _posture(
        self, win: Window, side: str, start: int, stop: int, ref: tuple[float, float] | None = None
    ) -> _Posture:
        """Per-sample posture over absolute samples [start, stop) of a hold; the reference (pelvic tilt,
        lumbar flexion) is the mean over the hold's first ``reference_s`` unless given."""
        ext = -self._smoothed(win, f"hip_flexion_{side}", start, stop)
        tilt = self._smoothed(win, "pelvic_tilt", start, stop)
        lumbar = self._smoothed(win, "lumbar_flexion", start, stop)
        if ref is None:
            n_ref = min(self._ref_n, stop - start)
            ref = (float(np.mean(tilt[:n_ref])), float(np.mean(lumbar[:n_ref])))
        tilt_dev = tilt - ref[0]
        lumbar_ext = ref[1] - lumbar  # extension increase, NaN without the sensor
        with np.errstate(invalid="ignore"):
            arching = (tilt_dev > self.tolerance_rad) | (lumbar_ext > self.tolerance_rad)
            correct = (~arching) & (ext >= self.target_extension_rad)
        return _Posture(ext, tilt_dev, lumbar_ext, arching, correct, ref)

    def _live(self, win: Window, side: str, o: _Open, b: int) -> None:
        """Update the live counters of the open hold with the newly final samples (for current() only)."""
        lo = max(o.start, o.live_done)
        if b <= lo:
            return
        if lo == o.start:
            p = self._posture(win, side, lo, b)
            o.ref_tilt, o.ref_lumbar = p.ref
        else:
            p = self._posture(win, side, lo, b, (o.ref_tilt, o.ref_lumbar))
        o.live_correct += int(np.count_nonzero(p.correct))
        o.live_arching_now = bool(p.arching[-1])
        o.live_ext_now = float(p.ext[-1])
        o.live_done = b

    def _close(self, win: Window, side: str) -> None:
        o = self._open[side]
        self._open[side] = None
        if o is None:
            return
        start, stop = o.start + self._edge_n, o.last_end - self._edge_n
        if stop - start < 2:
            return
        t = win.get("t", start, stop)
        duration = float(t[-1] - t[0]) + 1.0 / self._fs
        if duration < self.min_duration_s:
            return
        p = self._posture(win, side, start, stop)
        arching_s = int(np.count_nonzero(p.arching)) / self._fs
        lumbar_ok = bool(np.all(np.isfinite(p.lumbar_ext)))
        self._reps[side] += 1
        hold = Hold(
            side=side,
            rep=self._reps[side],
            t_start=float(t[0]),
            t_end=float(t[-1]),
            duration_s=duration,
            correct_s=int(np.count_nonzero(p.correct)) / self._fs,
            arching_s=arching_s,
            arching=arching_s >= self.arch_min_s,
            peak_hip_extension_rad=float(np.max(p.ext)),
            mean_hip_extension_rad=float(np.mean(p.ext)),
            pelvic_tilt_reference_rad=p.ref[0],
            pelvic_tilt_drift_rad=float(np.max(p.tilt_dev)),
            lumbar_extension_drift_rad=float(np.max(p.lumbar_ext)) if lumbar_ok else math.nan,
        )
        self.holds_.append(hold)
        self._new.append(hold)


def detect_holds(angles: AngleSeries, **params: object) -> HoldDetector:
    """Batch helper: run a :class:`HoldDetector` over a whole series; returns the finished detector."""
    det = HoldDetector(**params)  # type: ignore[arg-type]
    det.update(angles)
    det.finish()
    return det
