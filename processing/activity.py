"""Activity: lying, sitting, standing, walking and half-kneeling time from pelvis and thigh angles.

Per sample (features from centred windows, so each decision is delayed by about ``posture_window_s``):

* ``lying``     pelvis inclination (pelvis long axis from vertical) >= ``lying_rad`` (60 deg);
* ``walking``   upright, and the legs scissor: with both thighs worn, the range of (left - right thigh
  inclination) within +- ``swing_window_s`` is between ``walk_split_range_rad`` (25 deg) and
  ``max_walk_split_range_rad`` (150 deg; switching the kneeling leg sweeps ~200 deg, a sit-to-stand moves
  both thighs together and hardly changes it), and each thigh's own range within the window is at least
  ``walk_each_range_rad`` (10 deg: in gait both thighs swing, each through about 25-50 deg; standing on
  one leg and swinging or cycling the other, the standing thigh moves a few degrees, real Movella DOT
  trials 1-4 deg, ``bench/activity_bench.py``); with one thigh worn, its range is between ``walk_range_rad``
  (20 deg) and ``max_walk_range_rad`` (75 deg; a sit-to-stand sweeps ~90 deg); and that signal goes back
  and forth within the window (at least ``min_swing_share`` of the time each way faster than
  ``swing_speed_rad_s``), which a posture transition does not;
  without thigh sensors the smoothed ``pelvis_motion`` >= ``walk_motion`` (m/s^2) is used instead;
* ``sitting``   upright, every worn thigh inclined >= ``sitting_rad`` (60 deg, ~90 deg when seated);
* ``kneeling``  upright, one thigh <= ``vertical_rad`` (30 deg) and the other >= ``sitting_rad``
  (half-kneeling; needs both thighs);
* ``standing``  upright, every worn thigh <= ``vertical_rad``;
* ``upright``   upright, still, but no thigh sensor to tell sitting from standing;
* otherwise the previous label is kept (hysteresis band, e.g. pelvis between ``lying_exit_rad`` and
  ``lying_rad`` or a thigh between 30 and 60 deg).

A missing sample (NaN pelvis inclination, time jump) is *unknown*: it ends the current bout and is not
counted. A new label must persist for ``min_bout_s`` to start a new bout (then the bout starts where that
label began); shorter episodes are absorbed into the running bout. A bout spans its samples' time:
``t_end - t_start = n_samples / fs``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hipback.processing.blocks import Block
from hipback.processing.events import (
    Window,
    WindowedStream,
    feature_slice,
    smooth,
    triangular_kernel,
    window_max,
    window_min,
)
from hipback.processing.types import AngleSeries

_DEG = math.pi / 180.0
LABELS = ("unknown", "lying", "sitting", "standing", "walking", "kneeling", "upright")
_UNKNOWN, _LYING, _SITTING, _STANDING, _WALKING, _KNEELING, _UPRIGHT = range(7)
_KEEP = -1


@dataclass
class ActivityBout:
    """A stretch of one activity (times in s; ``t_end`` is the end of its last sample)."""

    label: str
    t_start: float
    t_end: float

    @property
    def duration_s(self) -> float:
        return self.t_end - self.t_start


@dataclass(repr=False, eq=False)
class ActivityClassifier(Block[AngleSeries, list[ActivityBout]]):
    """Streaming activity classifier (see module doc). ``update``/``finish`` return bouts that became final;
    ``bouts`` holds all of them; ``time_per_activity()`` sums their durations per label (s).

    ``batch_s``: the labels are computed once at least this much (s) of new final samples came (see
    :class:`~hipback.processing.events.WindowedStream`; any value gives the same bouts). A bout is final
    only once the next label held ``min_bout_s``, so a batch shorter than that adds little to that delay,
    while the fixed cost of a labelling round, which dominates on a live step's few rows, is spread over
    the batch's samples.
    """

    lying_rad: float = 60 * _DEG
    lying_exit_rad: float = 45 * _DEG
    sitting_rad: float = 60 * _DEG
    vertical_rad: float = 30 * _DEG
    walk_range_rad: float = 20 * _DEG
    walk_range_exit_rad: float = 12 * _DEG
    max_walk_range_rad: float = 75 * _DEG
    walk_split_range_rad: float = 25 * _DEG
    walk_each_range_rad: float = 10 * _DEG
    max_walk_split_range_rad: float = 150 * _DEG
    swing_speed_rad_s: float = 20 * _DEG
    min_swing_share: float = 0.2
    walk_motion: float = 0.8
    posture_window_s: float = 0.1
    swing_window_s: float = 0.75
    min_bout_s: float = 2.0
    batch_s: float = 1.0
    bouts_: list[ActivityBout] = field(default_factory=list, init=False)

    @property
    def bouts(self) -> list[ActivityBout]:
        """Alias of ``bouts_`` (every final activity bout)."""
        return self.bouts_

    def __post_init__(self) -> None:
        self._stream = WindowedStream(
            ("pelvis_inclination", "thigh_inclination_left", "thigh_inclination_right", "pelvis_motion"),
            self._configure,
            self._process,
            self._keep_from,
            batch_s=self.batch_s,
        )
        self._last_label = _UNKNOWN
        self._bout: tuple[int, float] | None = None  # (label, start time)
        self._pend: tuple[int, int, int] | None = None  # (label, start, end) not yet confirmed
        self._new: list[ActivityBout] = []

    # -- public API ----------------------------------------------------------------------------
    def update(self, chunk: AngleSeries) -> list[ActivityBout]:
        self._new = []
        self._stream.feed(chunk)
        return self._new

    def finish(self) -> list[ActivityBout]:
        self._new = []
        n = self._stream.n
        self._stream.finish()
        if self._bout is not None and self._stream.fs is not None:
            self._close(self._stream.window(), n)
        return self._new

    def time_per_activity(self) -> dict[str, float]:
        """Seconds per label over the final bouts (every label present, 0 when absent; no 'unknown')."""
        out = {lab: 0.0 for lab in LABELS if lab != "unknown"}
        for b in self.bouts_:
            out[b.label] += b.duration_s
        return out

    # -- streaming internals ---------------------------------------------------------------------
    def _configure(self, fs: float) -> tuple[int, int]:
        self._fs = fs
        self._hp = max(1, round(self.posture_window_s * fs))
        self._hl = max(1, round(0.05 * fs))
        self._wo = max(1, round(self.swing_window_s * fs))
        self._kp = triangular_kernel(self._hp)
        self._kl = triangular_kernel(self._hl)
        self._min_n = max(1, round(self.min_bout_s * fs))
        m = max(self._hp, self._wo + self._hl) + 2
        return m, m

    def _keep_from(self) -> int | None:
        return self._pend[1] - 1 if self._pend is not None else None

    def _time(self, win: Window, i: int) -> float:
        return float(win.get("t", i, i + 1)[0])

    def _posture(self, win: Window, name: str, a: int, b: int) -> np.ndarray:
        return smooth(feature_slice(win, name, a, b, self._hp + 1)[1:-1], self._kp)

    def _back_and_forth(self, x: np.ndarray) -> np.ndarray:
        """Per centre sample: within +- ``swing_window_s`` the signal moved both up and down faster than
        ``swing_speed_rad_s`` for at least ``min_swing_share`` of the time each (gait oscillates; a posture
        transition moves one way). ``x`` covers [a - w, b + w); integer counts keep it chunking-exact."""
        n = 2 * self._wo
        with np.errstate(invalid="ignore"):
            du = np.diff(x) * self._fs
            up = sliding_window_view((du > self.swing_speed_rad_s).astype(np.int64), n).sum(axis=1)
            down = sliding_window_view((du < -self.swing_speed_rad_s).astype(np.int64), n).sum(axis=1)
        return np.minimum(up, down) >= self.min_swing_share * n

    def _labels(self, win: Window, a: int, b: int) -> np.ndarray:
        pel = self._posture(win, "pelvis_inclination", a, b)
        motion = self._posture(win, "pelvis_motion", a, b)
        thighs, swings, lights = [], [], []
        for side in ("left", "right"):
            raw = feature_slice(win, f"thigh_inclination_{side}", a, b, self._wo + self._hl + 1)
            x = smooth(raw[1:-1], self._kl)
            swings.append(window_max(x, self._wo) - window_min(x, self._wo))
            lights.append(x)
            thighs.append(self._posture(win, f"thigh_inclination_{side}", a, b))
        th = np.array(thighs)
        sw = np.array(swings)
        split = lights[0] - lights[1]  # left minus right thigh: oscillates in gait, ~constant in sit-stand
        split_swing = window_max(split, self._wo) - window_min(split, self._wo)
        worn = np.isfinite(th)
        n_worn = worn.sum(axis=0)
        with np.errstate(invalid="ignore"):
            hi = np.where(worn, th, -np.inf).max(axis=0)  # most flexed worn thigh
            lo = np.where(worn, th, np.inf).min(axis=0)  # least flexed worn thigh
            swing = np.where(np.isfinite(sw), sw, -np.inf).max(axis=0)
            one = n_worn == 1
            single = np.where(np.isfinite(lights[0]), lights[0], lights[1])
            swinging = np.where(
                one,
                (swing >= self.walk_range_rad)
                & (swing <= self.max_walk_range_rad)
                & self._back_and_forth(single),
                (split_swing >= self.walk_split_range_rad)
                & (split_swing <= self.max_walk_split_range_rad)
                & (np.fmin(sw[0], sw[1]) >= self.walk_each_range_rad)  # (NaN: one thigh unknown, no)
                & self._back_and_forth(split),
            )
            still = swing < self.walk_range_exit_rad
            moving_pelvis = motion >= self.walk_motion
            lab = np.full(b - a, _KEEP, dtype=np.int64)
            upright = pel < self.lying_exit_rad
            has_thigh = n_worn > 0
            lab[upright & has_thigh & still & (lo >= self.sitting_rad)] = _SITTING
            lab[upright & has_thigh & still & (hi <= self.vertical_rad)] = _STANDING
            kneel = (n_worn == 2) & (lo <= self.vertical_rad) & (hi >= self.sitting_rad)
            lab[upright & still & kneel] = _KNEELING
            lab[upright & has_thigh & swinging] = _WALKING
            lab[upright & ~has_thigh & moving_pelvis] = _WALKING
            lab[upright & ~has_thigh & ~moving_pelvis & np.isfinite(motion)] = _UPRIGHT
            lab[pel >= self.lying_rad] = _LYING
        lab[np.isnan(pel)] = _UNKNOWN
        # hysteresis: an ambiguous sample keeps the previous label
        keep = lab == _KEEP
        if keep.any():
            idx = np.where(keep, 0, np.arange(1, len(lab) + 1))
            np.maximum.accumulate(idx, out=idx)
            filled = np.concatenate([[self._last_label], lab])[idx]
            lab = filled
        if len(lab):
            self._last_label = int(lab[-1])
        return lab

    def _process(self, win: Window, a: int, b: int) -> None:
        lab = self._labels(win, a, b)
        change = np.flatnonzero(np.diff(lab)) + 1
        starts = np.concatenate([[0], change])
        stops = np.concatenate([change, [len(lab)]])
        for s0, s1 in zip(starts, stops, strict=True):
            self._fragment(win, int(lab[s0]), a + int(s0), a + int(s1))

    def _fragment(self, win: Window, lab: int, s0: int, s1: int) -> None:
        if lab == _UNKNOWN:
            if self._bout is not None:
                self._close(win, s0)
            self._pend = None
            return
        if self._bout is None:
            self._bout = (lab, self._time(win, s0))
            self._pend = None
            return
        if lab == self._bout[0]:
            self._pend = None
            return
        if self._pend is not None and self._pend[0] == lab and self._pend[2] == s0:
            self._pend = (lab, self._pend[1], s1)
        else:
            self._pend = (lab, s0, s1)
        if self._pend[2] - self._pend[1] >= self._min_n:
            start = self._pend[1]
            self._close(win, start)
            self._bout = (lab, self._time(win, start))
            self._pend = None

    def _close(self, win: Window, stop: int) -> None:
        assert self._bout is not None
        label, t0 = self._bout
        self._bout = None
        t1 = self._time(win, stop - 1) + 1.0 / self._fs
        bout = ActivityBout(LABELS[label], t0, t1)
        self.bouts_.append(bout)
        self._new.append(bout)


def classify_activity(angles: AngleSeries, **params: float) -> ActivityClassifier:
    """Batch helper: run an :class:`ActivityClassifier` over a whole series; returns it finished."""
    det = ActivityClassifier(**params)
    det.update(angles)
    det.finish()
    return det
