"""Session summary: the numbers a session is reported by (a streaming block).

Input: :class:`SummaryInput` pieces (new angles and events, plus the latest calibration and plausibility
counts); :meth:`SessionSummary.finish` returns the summary (also ``summary_``). Degrees and seconds at this
edge, ``None`` where a value is not available; see :func:`build_summary` for every field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hipback.processing.acc_bias import AccBiasEstimator
from hipback.processing.activity import ActivityBout
from hipback.processing.blocks import Block
from hipback.processing.calibration import SensorCalibration
from hipback.processing.gait import Stride, gait_summary
from hipback.processing.holds import Hold
from hipback.processing.percentiles import BinnedPercentiles
from hipback.processing.types import AngleSeries

_RANGE_ANGLES = ("pelvic_tilt", "hip_flexion_left", "hip_flexion_right", "lumbar_flexion")


@dataclass
class SummaryInput:
    """What became final (angles, strides, holds, activity bouts) and the current calibration and
    plausibility counts (:meth:`hipback.processing.plausibility.PlausibilityGuard.summary`)."""

    angles: AngleSeries
    strides: list[Stride] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    activity: list[ActivityBout] = field(default_factory=list)
    calibration: dict[str, SensorCalibration] | None = None
    implausible: dict[str, dict[str, float | int]] | None = None
    #: per raw sensor, its accelerometer offset estimate (:func:`acc_offset_info`); None: not given
    acc_offset: dict[str, dict[str, Any]] | None = None


class SessionSummary(Block[SummaryInput, dict[str, Any]]):
    """Accumulate a session's results and summarise them at :meth:`finish` (see :func:`build_summary`).

    :param rate_hz: grid rate (Hz), reported as is.
    :param holds_per_side: prescribed holds per side.
    :param hold_s: prescribed correct-posture time per hold (s).
    """

    def __init__(self, *, rate_hz: float = 100.0, holds_per_side: int = 3, hold_s: float = 30.0) -> None:
        self.rate_hz = rate_hz
        self.holds_per_side = holds_per_side
        self.hold_s = hold_s
        self._t_first = math.nan
        self._t_last = math.nan
        # the angles' ranges from counts in bins of 0.01 deg: memory that does not grow with the session
        self._ranges = {n: BinnedPercentiles() for n in _RANGE_ANGLES}
        self._strides: list[Stride] = []
        self._holds: list[Hold] = []
        self._activity: list[ActivityBout] = []
        self._calibration: dict[str, SensorCalibration] = {}
        self._implausible: dict[str, dict[str, float | int]] | None = None
        self._acc_offset: dict[str, dict[str, Any]] | None = None
        self.summary_: dict[str, Any] | None = None

    def update(self, chunk: SummaryInput) -> dict[str, Any]:
        """Take new results; the summary comes at :meth:`finish` (returns an empty dict)."""
        if self.summary_ is not None:
            raise RuntimeError("update() after finish()")
        a = chunk.angles
        if len(a):
            if not self._t_first <= a.t[0]:  # also NaN: the first rows
                self._t_first = float(a.t[0])
            if not self._t_last >= a.t[-1]:
                self._t_last = float(a.t[-1])
            for n in _RANGE_ANGLES:
                self._ranges[n].update(getattr(a, n))
        self._strides.extend(chunk.strides)
        self._holds.extend(chunk.holds)
        self._activity.extend(chunk.activity)
        if chunk.calibration is not None:
            self._calibration = chunk.calibration
        if chunk.implausible is not None:
            self._implausible = chunk.implausible
        if chunk.acc_offset is not None:
            self._acc_offset = chunk.acc_offset
        return {}

    def finish(self) -> dict[str, Any]:
        t = np.array([self._t_first, self._t_last]) if math.isfinite(self._t_first) else np.zeros(0)
        self.summary_ = build_summary(
            t,
            self._ranges,
            self._strides,
            self._holds,
            self._activity,
            self._calibration,
            rate_hz=self.rate_hz,
            holds_per_side=self.holds_per_side,
            hold_s=self.hold_s,
            implausible=self._implausible,
            acc_offset=self._acc_offset,
        )
        return self.summary_


def is_straight(stride: Stride) -> bool:
    """A stride walked straight: its heading change is known and it is not flagged ``turning``."""
    heading = getattr(stride, "heading_change_rad", math.nan)
    return not getattr(stride, "turning", False) and math.isfinite(heading)


def _deg(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(math.degrees(x), 2)


def build_summary(
    t: np.ndarray,
    angles: Mapping[str, np.ndarray | BinnedPercentiles],
    strides: Sequence[Stride],
    holds: Sequence[Hold],
    activity: Sequence[ActivityBout],
    calibration: dict[str, SensorCalibration],
    *,
    rate_hz: float,
    holds_per_side: int,
    hold_s: float,
    implausible: dict[str, dict[str, float | int]] | None = None,
    acc_offset: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Session summary for files, the store and the CLI (degrees, seconds; None where not available).

    ``peak_hip_extension_<side>_deg``: median over that side's strides of the per-stride peak hip extension
    (positive = extension; doubtful strides have none); ``doubtful_strides_<side>``: strides whose contacts
    were doubtful; ``calibration_ml_uncertainty_deg``: per sensor whose medio-lateral axis was estimated
    (the thighs, and the pelvis when its axis was found from walking), the uncertainty of that axis (deg);
    ``cadence_spm``: median over strides; ``turning_strides_<side>``: strides walked on a turn (the pelvis'
    heading changed by more than the stride detector's ``turn_threshold_rad`` between their contacts);
    ``peak_hip_extension_straight_<side>_deg``: the median peak hip extension over the straight strides only
    (heading change known and under that threshold: the figure to compare over weeks without the turns; None
    without the pelvis' yaw rate); ``compensation_index_<side>``: median
    lumbar compensation index (share of thigh extension from anterior pelvic tilt over terminal stance);
    holds per side vs the prescription (count, correct-posture time, completed = correct time >= hold_s);
    ``activity_s``: seconds per activity label; ``<angle>_range_deg``: 2nd and 98th percentile of the
    reported values (``angles``: the values, or their counts as the streaming block keeps them; either way
    read off counts in bins of 0.01 deg, :class:`~hipback.processing.percentiles.BinnedPercentiles`, so
    within 0.01 deg of the exact percentile); ``implausible``: per joint angle the rows removed by the
    plausibility guard (``range``, ``rate``, ``share`` of all rows) and ``implausible_warning``: the angles
    with any, as a sensor or calibration problem (None when there are none). ``t`` holds (at least) the first
    and last row time.
    ``accelerometer_offset`` (only when ``acc_offset`` is given: the session processor gives it for sessions
    with raw sensors): per raw sensor its accelerometer offset estimated in use (:func:`acc_offset_info`).
    """
    out: dict[str, Any] = {}
    out["duration_s"] = round(float(t.max() - t.min()), 2) if len(t) > 1 else 0.0
    out["rate_hz"] = rate_hz
    out["calibration_quality"] = {p: round(c.quality, 3) for p, c in calibration.items()}
    out["calibration_ml_uncertainty_deg"] = {
        p: round(c.ml_uncertainty_deg, 1)
        for p, c in calibration.items()
        if math.isfinite(c.ml_uncertainty_deg)
    }
    left = [s for s in strides if s.side == "left"]
    right = [s for s in strides if s.side == "right"]
    g = gait_summary(left, right)
    # the straight strides alone: heading change known and not turning (Stride.turning)
    straight = gait_summary(*([s for s in ss if is_straight(s)] for ss in (left, right)))
    for side in ("left", "right"):
        out[f"n_strides_{side}"] = g[f"n_strides_{side}"]
        out[f"doubtful_strides_{side}"] = sum(1 for st in strides if st.side == side and st.doubtful)
        out[f"peak_hip_extension_{side}_deg"] = _deg(g[f"peak_hip_extension_{side}_rad"])
        out[f"compensation_index_{side}"] = (
            None
            if not math.isfinite(g[f"lumbar_compensation_index_{side}"])
            else round(float(g[f"lumbar_compensation_index_{side}"]), 3)
        )
        out[f"pelvic_tilt_excursion_{side}_deg"] = _deg(g[f"pelvic_tilt_excursion_{side}_rad"])
        out[f"turning_strides_{side}"] = sum(
            1 for st in strides if st.side == side and getattr(st, "turning", False)
        )
        out[f"peak_hip_extension_straight_{side}_deg"] = _deg(straight[f"peak_hip_extension_{side}_rad"])
    out["peak_hip_extension_asymmetry_deg"] = _deg(g["peak_hip_extension_asymmetry_rad"])
    out["cadence_spm"] = None if not math.isfinite(g["cadence_spm"]) else round(float(g["cadence_spm"]), 1)
    holds_out: dict[str, Any] = {"prescribed_per_side": holds_per_side, "prescribed_hold_s": hold_s}
    for side in ("left", "right"):
        hs = [h for h in holds if h.side == side]
        holds_out[side] = {
            "count": len(hs),
            "completed": sum(1 for h in hs if h.correct_s >= hold_s),
            "correct_s": [round(h.correct_s, 1) for h in hs],
            "arching": sum(1 for h in hs if h.arching),
            "peak_hip_extension_deg": _deg(max((h.peak_hip_extension_rad for h in hs), default=math.nan)),
        }
    out["holds"] = holds_out
    act: dict[str, float] = {}
    for b in activity:
        label = getattr(b, "label", getattr(b, "activity", "unknown"))
        dur = getattr(b, "duration_s", None)
        if dur is None:
            dur = float(getattr(b, "t_end", 0.0) - getattr(b, "t_start", 0.0))
        act[label] = round(act.get(label, 0.0) + float(dur), 2)
    out["activity_s"] = act
    for name in _RANGE_ANGLES:
        a = angles[name]
        counts = a if isinstance(a, BinnedPercentiles) else BinnedPercentiles.of(a)
        lo, hi = counts.percentile(2), counts.percentile(98)
        out[f"{name}_range_deg"] = None if math.isnan(lo) else [_deg(lo), _deg(hi)]
    out["implausible"] = implausible or {}
    flagged = [n for n, c in (implausible or {}).items() if c.get("range", 0) or c.get("rate", 0)]
    out["implausible_warning"] = (
        None
        if not flagged
        else "values no joint can reach were removed from "
        + ", ".join(flagged)
        + " (sensor or calibration problem)"
    )
    if acc_offset is not None:
        out["accelerometer_offset"] = {p: dict(v) for p, v in acc_offset.items()}
    return out


def acc_offset_info(estimator: AccBiasEstimator) -> dict[str, Any]:
    """A raw sensor's accelerometer offset estimate for the summary, from its
    :class:`~hipback.processing.acc_bias.AccBiasEstimator` (m/s^2, sensor frame; s in session time).

    ``offset_m_s2``: the offset subtracted at the end (per axis; None when no estimate was ever trusted and
    none was given), ``magnitude_m_s2`` its length, ``uncertainty_m_s2`` its standard uncertainty per axis
    (None for a given one), ``first_corrected_s``: from when the first trusted estimate was subtracted (None:
    never), ``updates``: how many estimates were applied, ``still_postures``: the distinct still directions
    the last fit used, ``last_fit_trusted``: whether the last fit (also one at the end) passed its checks.
    """
    ups = list(estimator.updates_)
    applied = np.asarray(estimator.applied_, dtype=np.float64)
    given = getattr(estimator, "initial", None) is not None
    has = bool(ups) or given
    return {
        "offset_m_s2": [round(float(v), 3) for v in applied] if has else None,
        "magnitude_m_s2": round(float(np.linalg.norm(applied)), 3) if has else None,
        "uncertainty_m_s2": [round(float(v), 3) for v in ups[-1][2]] if ups else None,
        "first_corrected_s": round(float(ups[0][0]), 2) if ups else None,
        "updates": len(ups),
        "still_postures": int(estimator.n_directions_),
        "last_fit_trusted": bool(estimator.trusted_),
    }
