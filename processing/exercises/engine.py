"""The exercise engine: counts reps and holds of one catalogue exercise and checks its form rules.

:class:`ExerciseCounter` is a streaming block (``update(chunk)`` returns the reps/holds that became final,
``finish()`` flushes; results in ``reps_``, ``cues_``; parameters in the constructor). A chunk is a mapping of
equally long arrays: ``t`` (s, uniform rate) and the body angles of
:func:`hipback.processing.angles3d.body_angles` (rad). Decisions are taken per sample, so the chunking does
not change any result.

Definitions (all angles in rad, times in s)
-------------------------------------------
The *primary* angle ``p`` (the catalogue's ``primary.angle`` for the working side, lightly smoothed by a
centred moving average of ``smooth_s``) drives the segmentation:

* **Movement**: while resting, a movement starts when ``p`` has risen ``on_fraction * target`` (for a
  ``neutral`` primary: ``on_fraction`` of the way from that minimum to the target, at least ``min_rise_rad``)
  above its
  minimum over the last ``onset_window_s``; its *onset* (the start of the rep or hold) is that minimum. It
  ends when ``p`` comes back to within ``end_fraction`` (``hold_end_fraction`` for holds) of its excursion
  above ``base``, or within ``end_target_fraction`` of the target but at most half the excursion (``end``:
  that sample), where ``base`` is the minimum the onset was found from; ``range = peak - base``.
* **Peak**: ``peak = max p`` in the movement; the reported primary angle at the peak is ``peak - base``
  (``primary.reference = "start"``) or ``peak`` (``"neutral"``, relative to the standing calibration).
  For a hold, the reported value is the angle held: the mean of ``p`` over the hold (the static run
  below), not the top of the measurement noise around it. The largest sample, or the largest mean over a
  shorter window, of a noisy signal that is held constant lies above the held value, by more the longer
  the hold and the slower the noise (the inclination error of on-device fusion varies over seconds); the
  mean is not biased by zero-mean noise and does not depend on the hold's length. ``hold_peak_s`` (s) set
  to a number instead takes the highest mean over that window (the deepest part of a hold that creeps
  deeper). ``t_peak`` is the time of the largest sample.
* **Hold** (``kind = "hold"``, and the final hold of ``reps_hold``): the longest run inside the movement
  where ``p`` is within ``(1 - plateau_fraction)`` of the excursion below the peak and changes slower than
  ``static_speed_rad_s``, where a break of at most ``static_gap_s`` with the primary still that near the
  peak does not end the run (a thigh turning in and out during a hold moves the primary a little through
  the calibration's residual axis errors); ``hold_s`` is its duration, ``t_start``/``t_end`` its bounds.
* **Form rules**: for each rule, ``v - v_ref`` (or its absolute value with ``both_directions``) where
  ``v_ref`` is the rule angle at the onset (``reference = "start"``, mean over the ``reference_s`` before
  it) or 0
  (``"neutral"``); the rule is *broken* when that exceeds ``max`` for at least ``min_rule_s`` within the rep
  (the hold, for holds). Rules whose sensors are not worn are *not checked* (listed as such).
* **Correct form time**: samples of the rep (of the hold) with no rule exceeded and, for holds, the primary
  at or beyond its target.
* **Counted**: target reached (hold: correct time at least ``hold_s`` of the dose minus ``hold_tolerance_s``,
  for holds the target must be held) and no rule broken.
* **Cue**: the cue of the rule broken first (earliest sample); otherwise the primary cue when the target was
  not reached; otherwise for a hold shorter than the dose ``"hold it longer, aim for N seconds"``.

These are monitoring measures of how an exercise was done, not diagnoses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hipback.processing.blocks import Block
from hipback.processing.exercises.catalogue import Exercise
from hipback.processing.exercises.signals import CIRCULAR, available, signal, wrap

FloatArray = np.ndarray


@dataclass
class RepResult:
    """One rep or hold (angles rad, times s on the session timeline)."""

    exercise: str
    side: str | None
    kind: str  # "rep" or "hold"
    index: int  # 1-based within this counter
    t_start: float
    t_end: float
    primary_peak_rad: float  # in the primary's reference (change from start, or vs neutral)
    range_rad: float  # peak minus the value at the onset
    hold_s: float  # static time near the peak (holds; 0 for quick reps)
    correct_s: float
    target_met: bool
    rules_broken: tuple[str, ...]
    rules_not_checked: tuple[str, ...]
    counted: bool
    cue: str | None
    too_short: bool = False
    final_hold: bool = False
    rule_excess_rad: dict[str, float] = field(default_factory=dict)
    t_peak: float = math.nan  # time of the primary's peak (s)
    t_onset: float = math.nan  # start of the movement (s; for holds before the plateau)

    @property
    def duration_s(self) -> float:
        return self.t_end - self.t_start


@dataclass
class LiveState:
    """The movement in progress (for the live view)."""

    active: bool
    elapsed_s: float
    primary_rad: float
    cue: str | None


class ExerciseCounter(Block[Mapping[str, FloatArray], list[RepResult]]):
    """Streaming rep/hold counter for one exercise and working side (module docstring for definitions).

    :param exercise: catalogue entry.
    :param side: ``"left"``/``"right"`` for ``sides = "each"``, None for both.
    :param worn: placements worn (``pelvis``, ``thigh_left`` ...); rules needing others are not checked.
    :param hold_s: prescribed hold seconds (default: the catalogue dose).
    """

    def __init__(
        self,
        *,
        exercise: Exercise,
        side: str | None = None,
        worn: frozenset[str] = frozenset({"pelvis", "thigh_left", "thigh_right", "lumbar_upper"}),
        hold_s: float | None = None,
        smooth_s: float = 0.1,
        on_fraction: float = 0.3,
        min_rise_rad: float = math.radians(5.0),
        end_fraction: float = 0.2,
        hold_end_fraction: float = 0.5,
        end_target_fraction: float = 0.25,
        onset_window_s: float = 4.0,
        plateau_fraction: float = 0.6,
        static_speed_rad_s: float = math.radians(3.0),
        static_gap_s: float = 0.6,
        min_rule_s: float = 0.3,
        reference_s: float = 0.2,
        hold_tolerance_s: float = 1.0,
        min_hold_s: float = 2.0,
        hold_peak_s: float | None = None,
        onset_tolerance_rad: float = math.radians(0.5),
        start_level: bool = False,
        level_s: float = 0.3,
        level_tolerance: float = 0.35,
    ) -> None:
        if exercise.sides == "each" and side not in ("left", "right"):
            raise ValueError(f"{exercise.name} is done one side at a time: side must be 'left' or 'right'")
        self.exercise = exercise
        self.side = side
        self.worn = frozenset(worn)
        self.hold_s = hold_s
        if hold_s is not None:
            self._hold_s = float(hold_s)
        elif exercise.kind == "reps_hold":
            self._hold_s = exercise.dose.final_hold_s
        else:
            self._hold_s = exercise.dose.hold_s
        self._side = None if exercise.sides == "both" else side
        self.smooth_s = smooth_s
        self.on_fraction = on_fraction
        self.min_rise_rad = min_rise_rad
        self.end_fraction = end_fraction
        self.hold_end_fraction = hold_end_fraction
        self.end_target_fraction = end_target_fraction
        self.onset_window_s = onset_window_s
        self.plateau_fraction = plateau_fraction
        self.static_speed_rad_s = static_speed_rad_s
        self.static_gap_s = static_gap_s
        self.min_rule_s = min_rule_s
        self.reference_s = reference_s
        self.hold_tolerance_s = hold_tolerance_s
        self.min_hold_s = min_hold_s
        self.hold_peak_s = hold_peak_s
        self.onset_tolerance_rad = onset_tolerance_rad
        self.start_level = start_level
        self.level_s = level_s
        self.level_tolerance = level_tolerance
        self._level = math.nan
        self._level_from = 0
        self._rest_from = 0  # absolute index where the current rest began
        self.rules = [r for r in exercise.rules if self._checkable(r)]
        self.rules_not_checked = tuple(r.angle for r in exercise.rules if not self._checkable(r))
        self.primary_available = available(exercise.primary.angle, self.worn, self._side)
        self.reps_: list[RepResult] = []
        self.cues_: list[tuple[float, str]] = []
        self._fs: float | None = None
        self._t: list[FloatArray] = []
        self._p: list[FloatArray] = []
        self._v: list[list[FloatArray]] = []
        self._n0 = 0  # absolute index of the first buffered sample
        self._n = 0  # samples received
        self._tail = np.zeros(0)  # raw primary samples waiting for the centred smoother
        self._state = "rest"
        self._onset = -1
        self._peak = -math.inf
        self._base = math.nan
        self._new: list[RepResult] = []
        self._done = 0  # smoothed samples processed
        self._live_cue: str | None = None
        self._finished = False
        self._first: list[dict] = []

    # -- public API -----------------------------------------------------------------------------------
    def update(self, chunk: Mapping[str, FloatArray]) -> list[RepResult]:
        """Next samples (equal-length arrays with ``t``); returns the reps/holds that became final."""
        if self._finished:
            raise RuntimeError("update() after finish()")
        self._new = []
        t = np.asarray(chunk["t"], dtype=np.float64)
        if len(t) == 0:
            return []
        if self._fs is None:
            # the sampling rate is taken from the first two samples, whatever the chunking
            self._first.append(dict(chunk))
            n_seen = sum(len(c["t"]) for c in self._first)
            if n_seen < 2:
                return []
            keys = set.intersection(*(set(c) for c in self._first))
            chunk = {
                k: np.concatenate([np.asarray(c[k], dtype=np.float64) for c in self._first]) for k in keys
            }
            self._first = []
            t = chunk["t"]
            self._fs = 1.0 / float(t[1] - t[0])
            self._half = max(0, int(round(self.smooth_s * self._fs / 2)))
        p = (
            signal(chunk, self.exercise.primary.angle, self._side)
            if self.primary_available
            else np.full(len(t), np.nan)
        )
        vals = [signal(chunk, r.angle, self._side) for r in self.rules]
        self._ingest(t, p, vals, final=False)
        return self._new

    def finish(self) -> list[RepResult]:
        """No more samples: close a movement in progress; returns what became final."""
        self._new = []
        if self._finished:
            return []
        self._finished = True
        if self._fs is None and self._first:  # a single sample: nothing to count
            self._first = []
        if self._fs is not None:
            self._ingest(np.zeros(0), np.zeros(0), [np.zeros(0) for _ in self.rules], final=True)
            if self._state == "active":
                self._close(self._n_abs() - 1)
        return self._new

    @property
    def counted_(self) -> int:
        return sum(1 for r in self.reps_ if r.counted)

    def current(self) -> LiveState:
        fs = self._fs or 100.0
        active = self._state == "active"
        elapsed = (self._n_abs() - self._onset) / fs if active else 0.0
        last = self._p[-1][-1] if self._p and len(self._p[-1]) else math.nan
        return LiveState(active, elapsed, float(last), self._live_cue if active else None)

    # -- internals --------------------------------------------------------------------------------------
    def _checkable(self, rule) -> bool:
        if any(
            not ({req} & self.worn if req in ("pelvis", "lumbar_upper") else True) for req in rule.requires
        ):
            return False
        return available(rule.angle, self.worn, self._side)

    def _n_abs(self) -> int:
        """Absolute index one past the last smoothed sample."""
        return self._n0 + sum(len(x) for x in self._p)

    def _ingest(self, t: FloatArray, p: FloatArray, vals: list[FloatArray], final: bool) -> None:
        """Append raw samples; the primary is smoothed by a centred moving average of ``2*half+1`` samples
        (edges padded with the first/last value), so its smoothed values lag the raw ones by ``half``."""
        h = self._half
        if len(t):
            if self._n == 0:
                self._tail = np.repeat(p[:1], h)
            self._n += len(t)
            self._t.append(t)
            self._v.append(list(vals))
        raw = np.concatenate([self._tail, p])
        if final and self._n:
            raw = np.concatenate([raw, np.repeat(raw[-1:], h)])
        w = 2 * h + 1
        if len(raw) < w:
            self._tail = raw
            return
        sm = sliding_window_view(raw, w).mean(axis=1)  # each value from its own window: chunk-invariant
        self._tail = raw[len(raw) - (w - 1) :] if w > 1 else np.zeros(0)
        self._p.append(sm)
        self._run(len(sm))

    def _arrays(self) -> tuple[FloatArray, FloatArray, list[FloatArray]]:
        """Buffered times, smoothed primary and rule angles (the primary may be ``half`` samples shorter)."""
        if len(self._t) > 1:
            self._t = [np.concatenate(self._t)]
            self._v = [[np.concatenate([v[k] for v in self._v]) for k in range(len(self.rules))]]
        if len(self._p) > 1:
            self._p = [np.concatenate(self._p)]
        if not self._t:
            return np.zeros(0), np.zeros(0), [np.zeros(0) for _ in self.rules]
        return self._t[0], (self._p[0] if self._p else np.zeros(0)), self._v[0]

    def _run(self, n_new: int) -> None:
        """Advance the rest/movement state machine over the newly smoothed samples (vectorised per state;
        the decisions are the per-sample ones of the module docstring)."""
        from scipy.ndimage import minimum_filter1d  # (imported when used: a third of a second)

        t, p, _ = self._arrays()
        n = len(p)
        i = n - n_new
        target = self.exercise.primary.target
        fs = self._fs or 100.0
        win = max(1, int(round(self.onset_window_s * fs)))
        while i < n:
            if self._state == "rest":
                lo = max(0, i - win + 1, self._rest_from - self._n0)
                seg = p[lo:n]
                finite = np.where(np.isnan(seg), np.inf, seg)
                run_min = minimum_filter1d(finite, size=win, origin=(win - 1) // 2, mode="nearest")
                # a trailing window must not reach before lo: the filter's edge mode repeats seg[0] there
                if self.exercise.primary.reference == "neutral":  # the rise needed is a share of the way left
                    need = np.maximum(self.on_fraction * (target - run_min), self.min_rise_rad)
                else:
                    need = self.on_fraction * target
                with np.errstate(invalid="ignore"):
                    if self.start_level:
                        # a rep rises from the start posture: from the start level (or from the minimum,
                        # if that is higher) and not from an already raised position
                        level = self._start_level(p)
                        hit = (seg - np.maximum(run_min, level) >= need) & (
                            run_min <= level + self._level_tol()
                        )
                    else:
                        hit = seg - run_min >= need
                hit[: max(0, i - lo)] = False
                idx = np.flatnonzero(hit)
                if len(idx) == 0:
                    break
                j = lo + int(idx[0])
                wa = max(lo, j - win + 1)
                w = p[wa : j + 1]
                m = float(np.nanmin(w))
                eps = max(self.onset_tolerance_rad, 0.05 * target)
                with np.errstate(invalid="ignore"):
                    near = np.flatnonzero(w <= m + eps)
                self._state = "active"
                self._onset = self._n0 + wa + int(near[-1])
                self._base = m
                self._peak = float(p[j])
                i = j + 1
            else:
                seg = p[i:n]
                run_max = np.maximum(np.maximum.accumulate(np.where(np.isnan(seg), -np.inf, seg)), self._peak)
                frac = self.hold_end_fraction if self.exercise.kind == "hold" else self.end_fraction
                exc = run_max - self._base
                back = np.maximum(frac * exc, np.minimum(self.end_target_fraction * target, 0.5 * exc))
                with np.errstate(invalid="ignore"):
                    done = (seg - self._base <= back) | np.isnan(seg)
                idx = np.flatnonzero(done)
                if len(idx) == 0:
                    self._peak = float(run_max[-1]) if len(run_max) else self._peak
                    self._live(n - 1)
                    break
                k = i + int(idx[0])
                self._peak = float(run_max[idx[0]])
                self._close(self._n0 + (k - 1 if np.isnan(p[k]) else k))
                i = k + 1
        self._trim()

    def rebase(self) -> bool:
        """The angles change reference from the next sample on (the caller re-aligned the heading in the start
        posture): when resting, the onset search and the start level begin afresh after the smoothing window
        that mixes old and new samples. Returns whether it was done (False during a movement)."""
        if self._state != "rest" or self._fs is None:
            return False
        self._rest_from = self._n_abs() + 2 * self._half + 1
        self._level_from = self._rest_from
        self._level = math.nan
        return True

    def _start_level(self, p: FloatArray) -> float:
        """The primary at rest in the start posture: mean of the first ``level_s`` of finite smoothed samples
        from the start (or the last :meth:`rebase`); NaN, so no movement starts, until they are there."""
        if math.isnan(self._level):
            n = max(1, int(round(self.level_s * (self._fs or 100.0))))
            a = self._level_from - self._n0
            if a >= 0:
                seg = p[a:]
                finite = seg[np.isfinite(seg)]  # samples without a sensor (NaN) do not set the level
                if len(finite) >= n:
                    self._level = float(np.mean(finite[:n]))
        return self._level

    def _level_tol(self) -> float:
        target = self.exercise.primary.target
        if self.exercise.primary.reference == "neutral":
            span = target - (self._level if math.isfinite(self._level) else 0.0)
        else:
            span = target
        return max(self.level_tolerance * span, self.min_rise_rad)

    def _live(self, i: int) -> None:
        """Live cue: the first rule exceeded so far in the movement in progress (cheap, last sample only)."""
        if self._live_cue is not None:
            return
        _, _, vals = self._arrays()
        a = self._onset - self._n0
        for rule, v in zip(self.rules, vals, strict=True):
            ref = self._ref(rule, v, a)
            ex = self._excess(rule, v[i : i + 1], ref)[0]
            if ex > rule.max_rad:
                self._live_cue = rule.cue
                return

    def _trim(self) -> None:
        """Drop samples no longer needed (before the onset window, or the open movement's onset)."""
        fs = self._fs or 100.0
        t, p, vals = self._arrays()
        keep_from = len(p) - int(round((self.onset_window_s + 1.0) * fs))
        if self._state == "active":
            keep_from = min(keep_from, self._onset - self._n0)
        if self.start_level and math.isnan(self._level):
            keep_from = min(keep_from, self._level_from - self._n0)  # the level is still to be measured
        if keep_from > 10_000:
            self._t = [t[keep_from:]]
            self._p = [p[keep_from:]]
            self._v = [[v[keep_from:] for v in vals]]
            self._n0 += keep_from

    def _ref(self, rule, v: FloatArray, a: int) -> float:
        if rule.reference == "neutral":
            return 0.0
        n_ref = max(1, int(round(self.reference_s * (self._fs or 100.0))))
        seg = v[max(0, a - n_ref + 1) : a + 1]
        if rule.angle in CIRCULAR:
            return float(np.arctan2(np.nanmean(np.sin(seg)), np.nanmean(np.cos(seg))))
        return float(np.nanmean(seg)) if np.isfinite(seg).any() else math.nan

    def _excess(self, rule, v: FloatArray, ref: float) -> FloatArray:
        d = v - ref
        if rule.angle in CIRCULAR:
            d = wrap(d)
        return np.abs(d) if rule.both_directions else d

    def _close(self, end_abs: int) -> None:
        self._state = "rest"
        self._live_cue = None
        self._rest_from = end_abs
        t, p, vals = self._arrays()
        a, b = self._onset - self._n0, end_abs - self._n0 + 1
        if b - a < 2:
            return
        fs = self._fs or 100.0
        ex = self.exercise
        seg = p[a:b]
        base = self._base
        peak = float(np.nanmax(seg))
        k_peak = int(np.nanargmax(seg))
        rng = peak - base
        ref_peak = rng if ex.primary.reference == "start" else peak
        # static plateau near the peak
        speed = np.abs(np.gradient(seg) * fs) if len(seg) > 2 else np.zeros(len(seg))
        near = seg >= base + self.plateau_fraction * rng
        static = _bridge(near & (speed <= self.static_speed_rad_s), near, int(round(self.static_gap_s * fs)))
        hs, he = _longest_run(static, k_peak)
        hold_s = (he - hs) / fs if he > hs else 0.0
        is_hold = ex.kind == "hold" or (ex.kind == "reps_hold" and hold_s >= self.min_hold_s)
        if ex.kind == "hold" and hold_s < self.min_hold_s:
            return  # a movement without a hold: not a hold of this exercise
        w0, w1 = (a + hs, a + he) if is_hold else (a, b)
        if is_hold:
            held = _held_value(seg[hs:he], self.hold_peak_s, fs)
            if held is not None:  # t_peak stays the time of the largest sample
                peak = held
                rng = peak - base
                ref_peak = rng if ex.primary.reference == "start" else peak
        if ex.primary.reference == "start":
            prim_ok = p[w0:w1] - base >= ex.primary.target - 1e-9
        else:
            prim_ok = p[w0:w1] >= ex.primary.target - 1e-9
        bad_any = np.zeros(w1 - w0, dtype=bool)
        broken: list[tuple[int, str, str]] = []
        excess: dict[str, float] = {}
        min_n = max(1, int(round(self.min_rule_s * fs)))
        for rule, v in zip(self.rules, vals, strict=True):
            ref = self._ref(rule, v, a)
            e = self._excess(rule, v[w0:w1], ref)
            with np.errstate(invalid="ignore"):
                over = e > rule.max_rad
            bad_any |= over
            excess[rule.angle] = float(np.nanmax(e)) if np.isfinite(e).any() else math.nan
            if over.sum() >= min_n:
                broken.append((int(np.argmax(over)), rule.angle, rule.cue))
        broken.sort(key=lambda x: x[0])
        target_met = bool(ref_peak >= ex.primary.target - 1e-9)
        if is_hold:
            correct_s = float(np.count_nonzero(~bad_any & prim_ok)) / fs
        else:
            correct_s = float(np.count_nonzero(~bad_any)) / fs
        too_short = bool(is_hold and self._hold_s > 0 and hold_s < self._hold_s - self.hold_tolerance_s)
        cue = None
        if broken:
            cue = broken[0][2]
        elif not target_met:
            cue = ex.primary.cue
        elif too_short:
            cue = f"hold it longer, aim for {self._hold_s:.0f} seconds"
        if is_hold:
            counted = target_met and not broken and correct_s >= self._hold_s - self.hold_tolerance_s
        else:
            counted = target_met and not broken
        tt = t[a:b]
        r = RepResult(
            exercise=ex.name,
            side=self._side,
            kind="hold" if ex.kind == "hold" else "rep",
            index=len(self.reps_) + 1,
            t_start=float(t[w0]) if is_hold else float(tt[0]),
            t_end=float(t[w1 - 1]) if is_hold else float(tt[-1]),
            primary_peak_rad=float(ref_peak),
            range_rad=float(rng),
            hold_s=float(hold_s),
            correct_s=correct_s,
            target_met=target_met,
            rules_broken=tuple(x[1] for x in broken),
            rules_not_checked=self.rules_not_checked,
            counted=bool(counted),
            cue=cue,
            too_short=too_short,
            final_hold=bool(ex.kind == "reps_hold" and is_hold),
            rule_excess_rad=excess,
            t_peak=float(t[a + k_peak]),
            t_onset=float(tt[0]),
        )
        self.reps_.append(r)
        self._new.append(r)
        if cue is not None:
            self.cues_.append((r.t_end, cue))


def _bridge(mask: np.ndarray, allowed: np.ndarray, max_gap: int) -> np.ndarray:
    """``mask`` with each False run of at most ``max_gap`` samples between two True samples set True where
    every sample of the run is ``allowed``."""
    if max_gap <= 0 or not mask.any():
        return mask
    out = mask.copy()
    d = np.diff(np.concatenate([[1], mask.astype(np.int8), [1]]))
    starts, stops = np.flatnonzero(d == -1), np.flatnonzero(d == 1)  # False runs [start, stop)
    for a, b in zip(starts, stops, strict=True):
        if 0 < a and b < len(mask) and b - a <= max_gap and allowed[a:b].all():
            out[a:b] = True
    return out


def _held_value(p: FloatArray, window_s: float | None, fs: float) -> float | None:
    """The angle held over the samples ``p`` of a hold (rad): their mean (NaN skipped) when ``window_s`` is
    None, else :func:`_held_peak` over ``window_s`` (s) at ``fs`` (Hz); None when no sample is finite."""
    if window_s is None:
        ok = np.isfinite(p)
        return float(p[ok].mean()) if ok.any() else None
    return _held_peak(p, max(1, int(round(window_s * fs))))


def _held_peak(p: FloatArray, n: int) -> float | None:
    """Highest mean of ``p`` over ``n`` consecutive samples (all of ``p`` when shorter); windows with a NaN
    are skipped; None when there is none."""
    n = min(n, len(p))
    if n < 1:
        return None
    means = sliding_window_view(p, n).mean(axis=1)
    if not np.isfinite(means).any():
        return None
    return float(np.nanmax(means))


def _longest_run(mask: np.ndarray, around: int) -> tuple[int, int]:
    """[start, stop) of the longest True run (ties: the one containing ``around``)."""
    if not mask.any():
        return 0, 0
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    lens = stops - starts
    longest = np.flatnonzero(lens == lens.max())
    inside = [i for i in longest if starts[i] <= around < stops[i]]
    best = int(inside[0] if inside else longest[0])
    return int(starts[best]), int(stops[best])


def count_batch(
    exercise: Exercise, frame: Mapping[str, FloatArray], side: str | None = None, **params
) -> ExerciseCounter:
    """Batch helper: one counter fed the whole frame; returns the finished counter."""
    c = ExerciseCounter(exercise=exercise, side=side, **params)
    c.update(frame)
    c.finish()
    return c
