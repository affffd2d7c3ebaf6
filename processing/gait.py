"""Gait: strides per side from the hip's sagittal swing, per-stride hip/pelvis metrics, walking bouts.

Event definition (BIOMECHANICS.md section 4.5)
----------------------------------------------
The hip flexes and extends once per stride: peak flexion in late swing just before initial contact (IC), peak
extension in terminal stance before toe-off. The event signal is the hip flexion angle (the thigh inclination
where the hip angle is missing, e.g. no pelvis sample); we find its peak of each cycle (maximum of the lightly
smoothed signal within +- ``peak_window_s``, refined to sub-sample time with a parabola) and estimate

    IC = t(peak flexion) + ``ic_phase`` * (duration of the cycle that follows the peak)

A stride runs from one IC estimate to the next on the same side. In healthy gait the hip reaches peak flexion
at ~85-90 % of the cycle and has started to extend at IC (Perry; Winter), so ``ic_phase`` (default
:data:`DEFAULT_IC_PHASE` = 0.125 of a cycle, ~0.13-0.16 s) is the share of the cycle from peak flexion to IC.
It matches the virtual patient's curve (peak flexion at 87.5 % of the cycle), where the IC estimates are
unbiased to a few ms. On real gait the bias depends on where the person's late-swing peak sits (85-90 % of
the cycle gives -0.03 .. +0.03 s at 1.1 s strides). A share of the cycle, rather than a fixed delay, keeps
the estimate unbiased across cadences. The hip is preferred over the thigh inclination because the pelvic
tilt oscillation (twice per stride) shifts the thigh's peak by ~15 ms.

A candidate stride (two consecutive peaks) is kept only if
* its duration is within ``[min_stride_s, max_stride_s]`` (default 0.7-2.0 s),
* the hip swings at least ``min_range_rad`` (both peaks above the trough between them by that much),
  the peak flexion stays below ``max_peak_flexion_rad`` and the trough below ``max_trough_rad`` (so
  sit-to-stand, kneeling and standing sway do not pass),
* its two flexion peaks differ by at most ``max_peak_change_rad`` (8 deg): in the first stride of gait
  initiation the swing amplitude is still growing, which delays the peak and would bias IC by ~0.2 s,
* no sample in it is missing (NaN, time jump): strides never span a gap,
* it is *consistent* with an adjacent stride (previous or next, sharing the peak): duration ratio within
  ``consistency_ratio`` and swing-range ratio within ``range_ratio``. An isolated cycle is not gait.

Per-stride metrics (rad, s; angles relative to the standing-neutral calibration; peaks from the lightly
smoothed signal, triangular kernel of +- ``smooth_s``):
* ``peak_hip_extension_rad`` = -min(hip flexion) over the stride (positive = extension),
  at ``t_peak_extension``;
* ``hip_range_rad`` = max - min hip flexion over the stride;
* ``pelvic_tilt_at_peak_extension_rad`` (anterior positive) and ``pelvic_tilt_excursion_rad`` (max - min);
* ``lumbar_compensation_index`` (BIOMECHANICS section 5.1): over terminal stance, taken from the midpoint
  between IC and peak thigh extension to peak thigh extension, the share of the thigh's extension from the
  vertical that came from anterior pelvic tilt: ``delta pelvic tilt / delta thigh extension``. Since
  thigh extension = hip extension + anterior pelvic tilt, 0 means the hip did all the work, 1 means the
  pelvis did; negative means the pelvis tilted posteriorly. NaN when the thigh extended less than 2 deg;
* ``lumbar_excursion_rad``: range of lumbar flexion over the stride (NaN without the upper-lumbar sensor);
* ``cadence_spm`` = 120 / stride time (steps per minute, assuming symmetric steps).

Walking bouts (:class:`WalkingBout`, per leg): runs of accepted strides that share their ICs; a bout ends at a
rejected stride, a gap, or when no flexion peak follows within ``max_stride_s``. A stride becomes final once
the next peak has arrived (or cannot arrive any more), i.e. about one to two strides after its end.

Figures on the virtual patient's truth angles (15 random patients, ``clinic_visit``; 6 each of ``walk``,
``day``): every steady stride found within 50 ms, no false stride; IC error 1.8 +- 1.8 ms (max 14 ms);
peak hip extension error median 0.17 deg, p95 0.25 deg.
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
    smooth,
    triangular_kernel,
    window_max,
)
from hipback.processing.types import AngleSeries

#: Share of the gait cycle from peak thigh flexion (late swing) to initial contact.
DEFAULT_IC_PHASE = 0.125

_DEG = math.pi / 180.0


@dataclass
class Stride:
    """One stride of one leg, IC to next IC. Angles in rad (relative to standing neutral), times in s."""

    side: str
    t_start: float
    t_end: float
    stride_time_s: float
    cadence_spm: float
    peak_hip_extension_rad: float
    t_peak_extension: float
    hip_range_rad: float
    peak_thigh_flexion_rad: float
    peak_thigh_extension_rad: float
    pelvic_tilt_at_peak_extension_rad: float
    pelvic_tilt_excursion_rad: float
    lumbar_compensation_index: float
    lumbar_excursion_rad: float
    bout: int = 0


@dataclass
class WalkingBout:
    """Consecutive strides of one leg with no break (times in s)."""

    side: str
    t_start: float
    t_end: float
    n_strides: int
    cadence_spm: float

    @property
    def duration_s(self) -> float:
        return self.t_end - self.t_start


@dataclass
class _Peak:
    idx: int  # absolute sample index of the peak (hip) flexion
    t: float  # sub-sample time of the peak
    value: float  # smoothed event signal (hip flexion) at the peak (rad)


@dataclass
class _Candidate:
    p0: _Peak
    p1: _Peak
    valid: bool
    range_rad: float
    stride: Stride | None = None


@dataclass(repr=False, eq=False)
class StrideDetector(Block[AngleSeries, list[Stride]]):
    """Streaming stride detector for one leg (see module doc for the event definition).

    ``update(chunk)`` returns the strides that became final with that chunk; ``finish()`` flushes the rest.
    ``strides`` and ``bouts`` hold everything final so far. Chunks are consecutive slices of one
    uniform-rate :class:`AngleSeries`; results do not depend on the chunking.
    """

    side: str
    min_stride_s: float = 0.7
    max_stride_s: float = 2.0
    min_range_rad: float = 15 * _DEG
    max_peak_flexion_rad: float = 75 * _DEG
    max_trough_rad: float = 15 * _DEG
    peak_window_s: float = 0.3
    smooth_s: float = 0.03
    ic_phase: float = DEFAULT_IC_PHASE
    consistency_ratio: float = 1.5
    max_peak_change_rad: float = 8 * _DEG
    range_ratio: float = 2.0
    strides_: list[Stride] = field(default_factory=list, init=False)
    bouts_: list[WalkingBout] = field(default_factory=list, init=False)

    @property
    def strides(self) -> list[Stride]:
        """Alias of ``strides_`` (every final stride)."""
        return self.strides_

    @property
    def bouts(self) -> list[WalkingBout]:
        """Alias of ``bouts_`` (every final walking bout)."""
        return self.bouts_

    def __post_init__(self) -> None:
        if self.side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', not {self.side!r}")
        self._thigh = f"thigh_inclination_{self.side}"
        self._hip = f"hip_flexion_{self.side}"
        self._stream = WindowedStream(
            (self._thigh, self._hip, "pelvic_tilt", "lumbar_flexion"),
            self._configure,
            self._process,
            self._keep_from,
        )
        self._last_peak: _Peak | None = None
        self._pending: list[_Candidate] = []
        self._prev: _Candidate | None = None
        self._prev_accepted = False
        self._new: list[Stride] = []
        self._bout_strides: list[Stride] = []

    # -- public API ----------------------------------------------------------------------------
    def update(self, chunk: AngleSeries) -> list[Stride]:
        self._new = []
        self._stream.feed(chunk)
        return self._new

    def finish(self) -> list[Stride]:
        self._new = []
        self._stream.finish()
        while self._pending:
            self._decide(self._pending.pop(0), None)
        self._close_bout()
        return self._new

    # -- streaming internals ---------------------------------------------------------------------
    def _configure(self, fs: float) -> tuple[int, int]:
        self._fs = fs
        self._h = max(1, round(self.smooth_s * fs))
        self._w = max(1, round(self.peak_window_s * fs))
        self._kernel = triangular_kernel(self._h)
        self._max_n = math.ceil(self.max_stride_s * fs)
        lookback = self._w + self._h + 2
        lookahead = max(self._w + self._h + 2, math.ceil(self.ic_phase * self._max_n) + self._h + 3)
        return lookback, lookahead

    def _keep_from(self) -> int | None:
        idx = [self._last_peak.idx] if self._last_peak else []
        idx += [c.p0.idx for c in self._pending]
        if not idx:
            return None
        return min(idx) - self._h - 3

    def _process(self, win: Window, start: int, stop: int) -> None:
        w, h = self._w, self._h
        m = w + h + 2
        x = self._event_signal(win, start, stop, m)
        s = smooth(x, self._kernel)  # s[j] is centred on x[j + h]: covers [start - w - 2, stop + w + 2)
        mx = window_max(s, w)  # centred on s[j + w]: covers [start - 2, stop + 2)
        centre = s[w : w + len(mx)]
        left, right = s[w - 1 : w - 1 + len(mx)], s[w + 1 : w + 1 + len(mx)]
        is_peak = (centre == mx) & (centre > left)
        is_peak[:2] = False
        is_peak[len(mx) - 2 :] = False
        t = win.get("t", start - 2, stop + 2)
        for j in np.flatnonzero(is_peak):
            y0, y1, y2 = left[j], centre[j], right[j]
            den = y0 - 2 * y1 + y2
            off = 0.5 * (y0 - y2) / den if den < 0 else 0.0
            off = min(max(off, -0.5), 0.5)
            peak = _Peak(idx=start - 2 + int(j), t=float(t[j] + off / self._fs), value=float(y1))
            self._on_peak(win, peak)
        # a stride whose end peak is older than the longest stride can no longer get a successor
        while self._pending and (len(self._pending) >= 2 or stop - self._pending[0].p1.idx > self._max_n + 1):
            c = self._pending.pop(0)
            self._decide(c, self._pending[0] if self._pending else None)
        # the last peak can no longer start a valid stride: forget it (bounds the buffer) and end the bout
        if self._last_peak is not None and not self._pending and stop - self._last_peak.idx > self._max_n + 1:
            self._last_peak = None
            self._close_bout()

    def _event_signal(self, win: Window, start: int, stop: int, margin: int) -> np.ndarray:
        """Hip flexion over [start - margin, stop + margin), thigh inclination where the hip is missing."""
        hip = feature_slice(win, self._hip, start, stop, margin)
        thigh = feature_slice(win, self._thigh, start, stop, margin)
        return np.where(np.isnan(hip), thigh, hip)

    def _on_peak(self, win: Window, peak: _Peak) -> None:
        if self._last_peak is not None:
            self._pending.append(self._candidate(win, self._last_peak, peak))
            while len(self._pending) >= 2:
                c = self._pending.pop(0)
                self._decide(c, self._pending[0])
        self._last_peak = peak

    def _candidate(self, win: Window, p0: _Peak, p1: _Peak) -> _Candidate:
        n = p1.idx - p0.idx
        dur = p1.t - p0.t
        if n > self._max_n + 1 or not (self.min_stride_s <= dur <= self.max_stride_s):
            return _Candidate(p0, p1, False, float("nan"))
        h, d = self._h, round(self.ic_phase * dur * self._fs)
        a, b = p0.idx + d, p1.idx + d  # stride samples [a, b)
        sig = smooth(self._event_signal(win, a, b, h), self._kernel)
        thigh = smooth(feature_slice(win, self._thigh, a, b, h), self._kernel)
        if not np.all(np.isfinite(sig)):
            return _Candidate(p0, p1, False, float("nan"))
        trough = float(sig.min())
        rng = min(p0.value, p1.value) - trough
        ok = (
            rng >= self.min_range_rad
            and abs(p1.value - p0.value) <= self.max_peak_change_rad
            and max(p0.value, p1.value) <= self.max_peak_flexion_rad
            and trough <= self.max_trough_rad
        )
        if not ok:
            return _Candidate(p0, p1, False, rng)
        tt = win.get("t", a, b)
        hip = smooth(feature_slice(win, self._hip, a, b, h), self._kernel)
        tilt = smooth(feature_slice(win, "pelvic_tilt", a, b, h), self._kernel)
        lumbar = smooth(feature_slice(win, "lumbar_flexion", a, b, h), self._kernel)
        nan = float("nan")
        if np.all(np.isfinite(hip)):
            k = int(np.argmin(hip))
            peak_ext, t_pe, hip_range = -float(hip[k]), float(tt[k]), float(hip.max() - hip[k])
            tilt_at = float(tilt[k])
        else:
            peak_ext = t_pe = hip_range = tilt_at = nan
        tilt_exc = float(tilt.max() - tilt.min()) if np.all(np.isfinite(tilt)) else nan
        lumbar_exc = float(lumbar.max() - lumbar.min()) if np.all(np.isfinite(lumbar)) else nan
        pe = int(np.argmin(thigh)) if np.all(np.isfinite(thigh)) else int(np.argmin(sig))
        ts = pe // 2  # midpoint between IC and peak thigh extension: start of terminal stance
        d_thigh = float(thigh[ts] - thigh[pe])
        d_tilt = float(tilt[pe] - tilt[ts])
        comp = d_tilt / d_thigh if d_thigh > 2 * _DEG and math.isfinite(d_tilt) else nan
        stride = Stride(
            side=self.side,
            t_start=p0.t + self.ic_phase * dur,
            t_end=p1.t + self.ic_phase * dur,  # replaced by the next stride's start when there is one
            stride_time_s=dur,
            cadence_spm=120.0 / dur,
            peak_hip_extension_rad=peak_ext,
            t_peak_extension=t_pe,
            hip_range_rad=hip_range,
            peak_thigh_flexion_rad=float(np.max(thigh)),
            peak_thigh_extension_rad=-float(thigh[pe]),
            pelvic_tilt_at_peak_extension_rad=tilt_at,
            pelvic_tilt_excursion_rad=tilt_exc,
            lumbar_compensation_index=comp,
            lumbar_excursion_rad=lumbar_exc,
        )
        return _Candidate(p0, p1, True, rng, stride)

    def _similar(self, a: _Candidate | None, b: _Candidate | None) -> bool:
        if a is None or b is None or not (a.valid and b.valid) or a.p1.idx != b.p0.idx:
            return False
        ra = (a.p1.t - a.p0.t) / (b.p1.t - b.p0.t)
        rr = a.range_rad / b.range_rad
        c, r = self.consistency_ratio, self.range_ratio
        return 1 / c <= ra <= c and 1 / r <= rr <= r

    def _decide(self, c: _Candidate, nxt: _Candidate | None) -> None:
        accept = c.valid and (self._similar(self._prev, c) or self._similar(c, nxt))
        if accept:
            assert c.stride is not None
            if nxt is not None and nxt.stride is not None and nxt.p0.idx == c.p1.idx:
                c.stride.t_end = nxt.stride.t_start
                c.stride.stride_time_s = c.stride.t_end - c.stride.t_start
                c.stride.cadence_spm = 120.0 / c.stride.stride_time_s
            if not (self._prev_accepted and self._prev is not None and self._prev.p1.idx == c.p0.idx):
                self._close_bout()
            c.stride.bout = len(self.bouts_)
            self._bout_strides.append(c.stride)
            self.strides_.append(c.stride)
            self._new.append(c.stride)
        else:
            self._close_bout()
        self._prev = c
        self._prev_accepted = accept

    def _close_bout(self) -> None:
        if not self._bout_strides:
            return
        s = self._bout_strides
        times = np.array([x.stride_time_s for x in s])
        self.bouts_.append(
            WalkingBout(self.side, s[0].t_start, s[-1].t_end, len(s), float(120.0 / np.median(times)))
        )
        self._bout_strides = []


def detect_strides(angles: AngleSeries, side: str, **params: float) -> StrideDetector:
    """Batch helper: run a :class:`StrideDetector` over a whole series; returns the finished detector."""
    det = StrideDetector(side, **params)
    det.update(angles)
    det.finish()
    return det


def gait_summary(strides_left: list[Stride], strides_right: list[Stride]) -> dict[str, float | int]:
    """Summary over the strides of both legs (either list may be empty; rad, s, steps/min).

    ``peak_hip_extension_asymmetry_rad`` = median left - median right peak hip extension;
    ``asymmetry_index_pct`` = 100 * |L - R| / mean(L, R) (NaN when the mean extension is under 2 deg,
    where the ratio is meaningless); ``cadence_spm`` = median over all strides of both legs.
    """
    nan = float("nan")

    def med(values: list[float]) -> float:
        arr = np.array([v for v in values if math.isfinite(v)])
        return float(np.median(arr)) if len(arr) else nan

    out: dict[str, float | int] = {}
    for name, ss in (("left", strides_left), ("right", strides_right)):
        out[f"n_strides_{name}"] = len(ss)
        out[f"peak_hip_extension_{name}_rad"] = med([s.peak_hip_extension_rad for s in ss])
        out[f"stride_time_{name}_s"] = med([s.stride_time_s for s in ss])
        out[f"pelvic_tilt_excursion_{name}_rad"] = med([s.pelvic_tilt_excursion_rad for s in ss])
        out[f"lumbar_compensation_index_{name}"] = med([s.lumbar_compensation_index for s in ss])
    left, right = out["peak_hip_extension_left_rad"], out["peak_hip_extension_right_rad"]
    out["peak_hip_extension_asymmetry_rad"] = left - right
    mean = 0.5 * (left + right)
    out["asymmetry_index_pct"] = 100.0 * abs(left - right) / mean if mean > 2 * _DEG else nan
    out["cadence_spm"] = med([s.cadence_spm for s in strides_left + strides_right])
    return out
