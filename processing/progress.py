"""Patient-level progress measures over weeks: baseline, 7-day values, change, adherence, flags.

Pure computation (numpy in, numbers out; no I/O). Runs at the edge (the patient's gateway) once a day
or after each sync; :func:`hipback.ingest.influx.schema.patient_status_point` turns the result into the
``patient_status`` point that the clinician dashboards and alert rules read.

Definitions (all times are Unix seconds, UTC; angles in degrees because these are reporting values):

- **Peak hip extension** per stride is positive degrees of extension relative to the standing
  calibration of that session (``docs/biomechanics.md``, "Angle conventions").
- **Baseline** per side: median of the peak hip extension of all strides in the first
  ``baseline_days`` (default 14) after the patient's first stride on any side. Undefined (NaN) while
  fewer than ``min_strides`` strides of that side fall in that window. The baseline compensation
  index is defined the same way.
- **7-day value** per side: median over strides with ``now - window_days*86400 < t <= now``.
  Same window (``time > now() - 7d``) as the dashboard queries.
- **Weekly medians**: weeks start on Monday 00:00 UTC, i.e. epoch-aligned 7-day buckets shifted by
  4 days, exactly InfluxQL's ``GROUP BY time(7d, 4d)``, so the dashboard's weekly points equal these.
- **Change from baseline** = 7-day value - baseline (negative = less hip extension than at baseline).
- **Minimal detectable change** (``mdc_deg``, default 5 deg): ``docs/biomechanics.md`` ("Reference
  values") gives an MDC90 of 5-15 deg for lumbar range of motion (Laird 2016) and names >= 5 deg as the
  smallest defensible deviation given sagittal IMU errors of 3-9 deg. A 7-day median over hundreds of
  strides removes most random stride-to-stride scatter, but not the per-session calibration offset, so we
  take the lower end of that range, 5 deg, for gait peak hip extension. A clinician can raise it.
- **Adherence** (7 days): completed holds in the window / holds prescribed per 7 days, in percent,
  capped at 100 (extra holds do not make up for other weeks). A hold is *completed* when its
  correct-posture time reached its target (the hold timer only counts correct posture). NaN when
  nothing is prescribed.
- **Days since last session**: ``(now - start of the latest session) / 86400`` (float days); NaN
  when the patient has no session yet.
- **Sitting hours (7 days)**: sum of the sessions' ``sitting_s`` in the window / 3600.
- **Flags** (monitoring prompts, not diagnoses): ``flag_no_session`` when days since the last
  session >= ``no_session_days`` (or there is none); ``flag_decline`` when the change from baseline
  of either side is below ``-mdc_deg``; ``flag_low_adherence`` when adherence < ``min_adherence_pct``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DAY_S = 86400.0
WEEK_S = 7 * DAY_S
#: InfluxQL ``GROUP BY time(7d, 4d)``: the Unix epoch was a Thursday; +4 days gives Monday weeks.
WEEK_OFFSET_S = 4 * DAY_S
SIDES = ("left", "right")


def week_start(t_s: np.ndarray | float) -> np.ndarray:
    """Start (Unix s) of the Monday-aligned UTC week holding each time (InfluxQL ``time(7d, 4d)``)."""
    t = np.asarray(t_s, dtype=float)
    return np.floor((t - WEEK_OFFSET_S) / WEEK_S) * WEEK_S + WEEK_OFFSET_S


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if values.size else float("nan")


class PatientProgress:
    """Progress of one patient against their own baseline (parameters in the constructor).

    Call :meth:`compute` with the patient's per-stride, per-hold and per-session arrays; results are
    set as attributes ending in ``_`` (mobgap style) and ``self`` is returned.

    Results:
        ``baseline_peak_ext_deg_``, ``peak_ext_7d_deg_``, ``change_from_baseline_deg_``,
        ``baseline_compensation_`` , ``compensation_7d_``: dict side -> float (NaN when undefined);
        ``weekly_peak_ext_deg_`` / ``weekly_compensation_``: dict side -> (week_start_s, median, n)
        arrays; ``holds_done_7d_`` (int), ``holds_prescribed_7d_`` (float), ``adherence_pct_``,
        ``days_since_last_session_``, ``sitting_h_7d_`` (floats), ``flag_no_session_``,
        ``flag_decline_``, ``flag_low_adherence_`` (bool), ``baseline_start_s_`` (float),
        ``now_s_`` (float), and :meth:`status_fields` for the ``patient_status`` point.
    """

    def __init__(
        self,
        *,
        baseline_days: float = 14.0,
        window_days: float = 7.0,
        min_strides: int = 20,
        mdc_deg: float = 5.0,
        no_session_days: float = 3.0,
        min_adherence_pct: float = 50.0,
    ) -> None:
        if baseline_days <= 0 or window_days <= 0:
            raise ValueError("baseline_days and window_days must be positive")
        self.baseline_days = baseline_days
        self.window_days = window_days
        self.min_strides = min_strides
        self.mdc_deg = mdc_deg
        self.no_session_days = no_session_days
        self.min_adherence_pct = min_adherence_pct

    # ------------------------------------------------------------------------------------------
    def compute(
        self,
        *,
        now_s: float,
        stride_t_s: Sequence[float] | np.ndarray,
        stride_side: Sequence[str] | np.ndarray,
        stride_peak_ext_deg: Sequence[float] | np.ndarray,
        stride_compensation: Sequence[float] | np.ndarray | None = None,
        hold_t_s: Sequence[float] | np.ndarray = (),
        hold_completed: Sequence[bool] | np.ndarray = (),
        session_t_s: Sequence[float] | np.ndarray = (),
        session_sitting_s: Sequence[float] | np.ndarray | None = None,
        holds_prescribed_per_window: float = 0.0,
    ) -> PatientProgress:
        """Compute every measure as of ``now_s`` (data after ``now_s`` are ignored).

        ``stride_*``: one entry per stride (time of the stride start, side ``"left"``/``"right"``,
        peak hip extension in positive degrees, compensation index, dimensionless).
        ``hold_*``: one entry per stretch hold (start time, completed = correct time reached target).
        ``session_*``: one entry per session (start time, sitting seconds in it).
        ``holds_prescribed_per_window``: holds the prescription asks for per ``window_days``.
        """
        t = np.asarray(stride_t_s, dtype=float)
        side = np.asarray(stride_side, dtype=str)
        ext = np.asarray(stride_peak_ext_deg, dtype=float)
        comp = (
            np.full(t.shape, np.nan)
            if stride_compensation is None
            else np.asarray(stride_compensation, dtype=float)
        )
        if not (t.shape == side.shape == ext.shape == comp.shape):
            raise ValueError("stride arrays must all have the same length")
        ht = np.asarray(hold_t_s, dtype=float)
        hdone = np.asarray(hold_completed, dtype=bool)
        if ht.shape != hdone.shape:
            raise ValueError("hold arrays must have the same length")
        st = np.asarray(session_t_s, dtype=float)
        sit = np.zeros(st.shape) if session_sitting_s is None else np.asarray(session_sitting_s, dtype=float)
        if st.shape != sit.shape:
            raise ValueError("session arrays must have the same length")

        now = float(now_s)
        self.now_s_ = now
        win_lo = now - self.window_days * DAY_S

        keep = t <= now
        t, side, ext, comp = t[keep], side[keep], ext[keep], comp[keep]
        finite = np.isfinite(ext)
        self.baseline_start_s_ = float(t.min()) if t.size else float("nan")
        base_hi = self.baseline_start_s_ + self.baseline_days * DAY_S

        self.baseline_peak_ext_deg_: dict[str, float] = {}
        self.peak_ext_7d_deg_: dict[str, float] = {}
        self.change_from_baseline_deg_: dict[str, float] = {}
        self.baseline_compensation_: dict[str, float] = {}
        self.compensation_7d_: dict[str, float] = {}
        self.weekly_peak_ext_deg_: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.weekly_compensation_: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for s in SIDES:
            on = (side == s) & finite
            in_base = on & (t < base_hi)
            in_win = on & (t > win_lo)
            base = _median(ext[in_base]) if in_base.sum() >= self.min_strides else float("nan")
            recent = _median(ext[in_win])
            self.baseline_peak_ext_deg_[s] = base
            self.peak_ext_7d_deg_[s] = recent
            self.change_from_baseline_deg_[s] = recent - base
            cb = comp[in_base & np.isfinite(comp)]
            self.baseline_compensation_[s] = _median(cb) if cb.size >= self.min_strides else float("nan")
            self.compensation_7d_[s] = _median(comp[in_win & np.isfinite(comp)])
            self.weekly_peak_ext_deg_[s] = self._weekly(t[on], ext[on])
            c_ok = on & np.isfinite(comp)
            self.weekly_compensation_[s] = self._weekly(t[c_ok], comp[c_ok])

        hold_win = (ht > win_lo) & (ht <= now)
        self.holds_done_7d_ = int(np.count_nonzero(hdone[hold_win]))
        self.holds_prescribed_7d_ = float(holds_prescribed_per_window)
        if holds_prescribed_per_window > 0:
            self.adherence_pct_ = (
                100.0
                * min(self.holds_done_7d_, holds_prescribed_per_window)
                / float(holds_prescribed_per_window)
            )
        else:
            self.adherence_pct_ = float("nan")

        past = st <= now
        self.days_since_last_session_ = float((now - st[past].max()) / DAY_S) if past.any() else float("nan")
        sess_win = (st > win_lo) & past
        self.sitting_h_7d_ = float(sit[sess_win].sum() / 3600.0)

        self.flag_no_session_ = bool(
            not np.isfinite(self.days_since_last_session_)
            or self.days_since_last_session_ >= self.no_session_days
        )
        changes = np.array([self.change_from_baseline_deg_[s] for s in SIDES])
        self.flag_decline_ = bool(np.any(changes[np.isfinite(changes)] < -self.mdc_deg))
        self.flag_low_adherence_ = bool(
            np.isfinite(self.adherence_pct_) and self.adherence_pct_ < self.min_adherence_pct
        )
        return self

    @staticmethod
    def _weekly(t: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(week_start_s, median, count) per Monday-aligned week that holds data, sorted by week."""
        if t.size == 0:
            empty = np.zeros(0)
            return empty, empty, np.zeros(0, dtype=int)
        weeks = week_start(t)
        starts = np.unique(weeks)
        medians = np.array([np.median(values[weeks == w]) for w in starts])
        counts = np.array([np.count_nonzero(weeks == w) for w in starts])
        return starts, medians, counts

    @property
    def worst_change_from_baseline_deg_(self) -> float:
        """The lower change from baseline of the two sides (NaN when neither is defined)."""
        vals = [v for v in self.change_from_baseline_deg_.values() if np.isfinite(v)]
        return float(min(vals)) if vals else float("nan")

    def status_fields(self) -> dict[str, float | int | bool]:
        """Field -> value of the ``patient_status`` point (NaN where undefined; the schema drops those)."""
        f: dict[str, float | int | bool] = {}
        for s in SIDES:
            f[f"baseline_peak_ext_{s}_deg"] = self.baseline_peak_ext_deg_[s]
            f[f"peak_ext_7d_{s}_deg"] = self.peak_ext_7d_deg_[s]
            f[f"change_from_baseline_{s}_deg"] = self.change_from_baseline_deg_[s]
            f[f"baseline_compensation_{s}"] = self.baseline_compensation_[s]
            f[f"compensation_7d_{s}"] = self.compensation_7d_[s]
        f["worst_change_from_baseline_deg"] = self.worst_change_from_baseline_deg_
        f["mdc_deg"] = float(self.mdc_deg)
        f["adherence_pct"] = self.adherence_pct_
        f["holds_done_7d"] = self.holds_done_7d_
        f["holds_prescribed_7d"] = self.holds_prescribed_7d_
        f["days_since_last_session"] = self.days_since_last_session_
        f["sitting_h_7d"] = self.sitting_h_7d_
        f["flag_no_session"] = self.flag_no_session_
        f["flag_decline"] = self.flag_decline_
        f["flag_low_adherence"] = self.flag_low_adherence_
        return f
