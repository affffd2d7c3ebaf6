"""Walking seen at the pelvis, so that an exercise's reps are never counted from the steps of a walk.

A patient walks to the mat, to a chair, across the room, between the exercises of a programme, and a step
moves the thigh as some exercises do (a standing hip extension is the thigh swinging back by 10-15 deg, as in
every stride). What walking has and an exercise done in place has not is the step rhythm at the pelvis:
each step's loading and push-off move the body's centre of mass up and down once, so the pelvis' vertical
acceleration oscillates at the step frequency, 1.2-2.2 Hz at 70-130 steps/min (Perry & Burnfield 2010),
with an RMS of about 1-3 m/s^2 at the lower trunk at 0.6-1.6 m/s (Moe-Nilssen & Helbostad 2004, J Biomech
37:121; Menz, Lord & Fitzpatrick 2003, Gait Posture 18:35); slow, frail walkers lie near its lower end.
Exercises done in place move the pelvis slowly: a squat of 2-4 s lifts and lowers it at 0.25-0.5 Hz (peak
acceleration under 1-2 m/s^2 for 0.2 m of travel), which a band-pass from 1 Hz attenuates by 12 dB or more
per octave; leg lifts while standing or lying move it by a few tenths of m/s^2. The default threshold,
0.6 m/s^2, lies below the slow end of walking; what is left of a brisk squat after the band-pass (its turning
points have harmonics in the band) can reach it for a moment at the bottom, which a rep's rule in
:class:`~hipback.processing.exercises.stream.ExerciseBlock` (most of the rep, or its onset) does not take
for walking. bench/README.md gives both as measured.

:class:`SteppingDetector` marks each sample as *stepping* when the RMS of the pelvis' vertical acceleration,
band-passed to ``band_hz`` (a second-order Butterworth band-pass, causal), over the last ``window_s`` reaches
``rms_m_s2``. Per sample, from samples up to it only, with the filter's state carried from chunk to chunk, so
that the chunking never changes a mark. A sample without an acceleration value (NaN: no pelvis
accelerometer, a gap) is never stepping, and the filter starts afresh after it; after a jump in the sample
times the RMS window starts empty too (the first ``window_s`` of every stretch is never stepping).
"""

from __future__ import annotations

import math

import numpy as np

from hipback.processing.angles import MotionSmoother

FloatArray = np.ndarray


class SteppingDetector:
    """Per-sample walking marks from the pelvis' vertical acceleration (module docstring).

    :param rms_m_s2: RMS (m/s^2) of the band-passed vertical acceleration over ``window_s`` from which a
        sample is stepping.
    :param band_hz: pass band (Hz) around the step frequency.
    :param window_s: trailing window (s) of the RMS.

    :meth:`update` takes sample times ``t`` (s, uniform apart from gaps) and the pelvis' world-vertical
    acceleration ``a`` (m/s^2, gravity removed, NaN where unknown) and returns a boolean array, True where
    stepping. The sample rate is taken from the first two samples' spacing.
    """

    def __init__(self, *, rms_m_s2: float = 0.6, band_hz: tuple[float, float] = (1.0, 3.0),
                 window_s: float = 2.0) -> None:
        if not (rms_m_s2 > 0 and 0 < band_hz[0] < band_hz[1] and window_s > 0):
            raise ValueError("rms_m_s2 and window_s must be positive and band_hz increasing from above 0")
        self.rms_m_s2 = float(rms_m_s2)
        self.band_hz = (float(band_hz[0]), float(band_hz[1]))
        self.window_s = float(window_s)
        self._dt: float | None = None
        self._pending: list[tuple[float, float]] = []  # samples before the rate is known
        self._ba: tuple[FloatArray, FloatArray] | None = None
        self._zi0: FloatArray | None = None
        self._z: FloatArray | None = None  # filter state (None: start afresh at the next finite sample)
        self._ms: MotionSmoother | None = None
        self._t_last = math.nan

    def update(self, t: FloatArray, a: FloatArray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        a = np.asarray(a, dtype=np.float64)
        if self._dt is None:
            self._pending += zip(t.tolist(), a.tolist(), strict=True)
            if len(self._pending) < 2:
                return np.zeros(len(t), dtype=bool)
            dt = self._pending[1][0] - self._pending[0][0]
            if not (dt > 0 and math.isfinite(dt)):
                self._pending = self._pending[1:]
                return np.zeros(len(t), dtype=bool)
            self._start(dt)
            held = len(self._pending) - len(t)  # samples of earlier chunks, answered "not stepping" then
            tt = np.array([p[0] for p in self._pending])
            aa = np.array([p[1] for p in self._pending])
            self._pending = []
            marks = self._marks(tt, aa)
            return marks[held:] if held >= 0 else marks[-len(t):]
        return self._marks(t, a)

    def _start(self, dt: float) -> None:
        from scipy.signal import butter, lfilter_zi  # (when a stream starts: scipy.signal takes a second)

        fs = 1.0 / dt
        hi = min(self.band_hz[1], 0.45 * fs)
        b, a = butter(2, [self.band_hz[0], hi], btype="bandpass", fs=fs)
        self._ba = (np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64))
        self._zi0 = lfilter_zi(b, a)
        self._dt = dt
        self._ms = MotionSmoother(max(1, round(self.window_s / dt)))

    def _marks(self, t: FloatArray, a: FloatArray) -> np.ndarray:
        """Filter ``a`` (restarting after NaN values and jumps in ``t``) and mark the samples whose trailing
        mean square reaches the threshold."""
        from scipy.signal import lfilter

        assert self._ba is not None and self._ms is not None and self._dt is not None
        n = len(t)
        y = np.full(n, np.nan)
        # pieces of consecutive finite samples without a jump in time: each filtered on from the state of
        # the piece before it, or from rest at its first value (no step response to a constant offset)
        prev = np.concatenate(([self._t_last], t[:-1]))
        jump = ~(np.abs(t - prev - self._dt) <= 0.5 * self._dt)
        ok = np.isfinite(a)
        start = 0
        while start < n:
            if not ok[start]:
                self._z = None
                start += 1
                continue
            stop = start + 1
            while stop < n and ok[stop] and not jump[stop]:
                stop += 1
            if jump[start]:
                self._z = None
            z = self._z if self._z is not None else self._zi0 * a[start]
            y[start:stop], self._z = lfilter(self._ba[0], self._ba[1], a[start:stop], zi=z)
            start = stop
        if n:
            self._t_last = float(t[-1])
        # the trailing mean square, its window emptied at a jump in time as by a missing value (NaN where
        # unknown: a window holding one gives NaN, which is not stepping)
        ms = np.empty(n)
        cuts = [0, *np.flatnonzero(jump).tolist(), n]
        for a0, b0 in zip(cuts[:-1], cuts[1:], strict=True):
            if a0 == b0:
                continue
            if jump[a0]:
                self._ms = MotionSmoother(self._ms.window)
            ms[a0:b0] = self._ms.update(y[a0:b0] * y[a0:b0])
        with np.errstate(invalid="ignore"):
            return ms >= self.rms_m_s2 * self.rms_m_s2
