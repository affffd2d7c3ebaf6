"""hipback.processing.progress: baseline, 7-day values, change, MDC flag, adherence, days since last
session."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from hipback.processing.progress import DAY_S, PatientProgress, week_start

NOW = datetime(2026, 11, 21, 18, 0, tzinfo=UTC).timestamp()  # a Saturday


def _strides(days: np.ndarray, values: np.ndarray, side: str = "left") -> dict[str, np.ndarray]:
    return {"t": NOW - days * DAY_S, "side": np.full(days.size, side), "ext": values}


def _compute(prog: PatientProgress, st: dict[str, np.ndarray], **kw) -> PatientProgress:
    return prog.compute(
        now_s=kw.pop("now_s", NOW),
        stride_t_s=st["t"],
        stride_side=st["side"],
        stride_peak_ext_deg=st["ext"],
        **kw,
    )


def _two_phase(early: float, late: float, n: int = 40) -> dict[str, np.ndarray]:
    """n strides a day: days 27.5..14.5 ago at ``early`` deg, then 6.5..0.5 days ago at ``late`` deg."""
    rng = np.random.default_rng(3)
    early_days = np.repeat(np.arange(27.5, 14, -1.0), n)
    late_days = np.repeat(np.arange(6.5, 0, -1.0), n)
    days = np.concatenate([early_days, late_days])
    vals = np.concatenate(
        [early + rng.normal(0, 1.5, early_days.size), late + rng.normal(0, 1.5, late_days.size)]
    )
    return _strides(days, vals)


def test_baseline_seven_day_change_and_decline_flag():
    st = _two_phase(12.0, 5.0)
    p = _compute(PatientProgress(), st)
    first = st["t"].min()
    base_mask = st["t"] < first + 14 * DAY_S
    win_mask = st["t"] > NOW - 7 * DAY_S
    assert p.baseline_start_s_ == first
    assert p.baseline_peak_ext_deg_["left"] == pytest.approx(np.median(st["ext"][base_mask]))
    assert p.peak_ext_7d_deg_["left"] == pytest.approx(np.median(st["ext"][win_mask]))
    assert p.change_from_baseline_deg_["left"] == pytest.approx(
        p.peak_ext_7d_deg_["left"] - p.baseline_peak_ext_deg_["left"]
    )
    assert p.change_from_baseline_deg_["left"] < -5.0 and p.flag_decline_
    assert math.isnan(p.peak_ext_7d_deg_["right"]) and math.isnan(p.change_from_baseline_deg_["right"])
    assert p.worst_change_from_baseline_deg_ == pytest.approx(p.change_from_baseline_deg_["left"])
    # a larger MDC (e.g. the upper end of MDC90, 15 deg) does not flag the same 7 deg drop
    assert not _compute(PatientProgress(mdc_deg=15.0), st).flag_decline_
    # an improvement never raises the decline flag
    assert not _compute(PatientProgress(), _two_phase(5.0, 12.0)).flag_decline_


def test_change_within_mdc_is_not_flagged():
    p = _compute(PatientProgress(mdc_deg=5.0), _two_phase(12.0, 9.0))
    assert -5.0 < p.change_from_baseline_deg_["left"] < 0 and not p.flag_decline_


def test_too_few_baseline_strides_leaves_baseline_undefined():
    st = _strides(np.array([20.0, 19.0, 2.0, 1.0]), np.array([10.0, 11.0, 3.0, 4.0]))
    p = _compute(PatientProgress(min_strides=20), st)
    assert math.isnan(p.baseline_peak_ext_deg_["left"]) and math.isnan(p.change_from_baseline_deg_["left"])
    assert not p.flag_decline_
    assert p.peak_ext_7d_deg_["left"] == pytest.approx(3.5)
    fields = p.status_fields()
    assert math.isnan(fields["baseline_peak_ext_left_deg"]) and fields[
        "peak_ext_7d_left_deg"
    ] == pytest.approx(3.5)


def test_window_edges_and_future_data():
    days = np.array([7.0, 6.999, 0.0, -0.5])  # exactly 7 d ago (out), just inside, now (in), future (ignored)
    st = _strides(days, np.array([100.0, 2.0, 4.0, 1000.0]))
    p = _compute(PatientProgress(min_strides=1), st)
    assert p.peak_ext_7d_deg_["left"] == pytest.approx(3.0)
    assert p.baseline_peak_ext_deg_["left"] == pytest.approx(np.median([100.0, 2.0, 4.0]))


def test_adherence_days_since_and_flags():
    st = _strides(np.array([1.0]), np.array([5.0]))
    hold_days = np.array([9.0, 6.0, 5.0, 4.0, 3.0, 2.0])
    done = np.array([True, True, True, False, True, False])
    kw = dict(
        hold_t_s=NOW - hold_days * DAY_S,
        hold_completed=done,
        session_t_s=NOW - np.array([9.0, 4.5, 2.25]) * DAY_S,
        session_sitting_s=np.array([3600.0, 1800.0, 5400.0]),
    )
    p = _compute(PatientProgress(min_adherence_pct=50), st, holds_prescribed_per_window=6, **kw)
    assert p.holds_done_7d_ == 3  # the hold 9 days ago is outside the window
    assert p.adherence_pct_ == pytest.approx(50.0) and not p.flag_low_adherence_
    assert p.days_since_last_session_ == pytest.approx(2.25)
    assert p.sitting_h_7d_ == pytest.approx(2.0)  # 1800 + 5400 s
    assert not p.flag_no_session_
    p = _compute(
        PatientProgress(min_adherence_pct=60, no_session_days=2), st, holds_prescribed_per_window=6, **kw
    )
    assert p.flag_low_adherence_ and p.flag_no_session_
    # capped at 100 %, undefined without a prescription
    p = _compute(PatientProgress(), st, holds_prescribed_per_window=2, **kw)
    assert p.adherence_pct_ == 100.0
    p = _compute(PatientProgress(), st, holds_prescribed_per_window=0, **kw)
    assert math.isnan(p.adherence_pct_) and not p.flag_low_adherence_
    # no session at all: days since is undefined and the no-session flag is raised
    p = _compute(PatientProgress(), st)
    assert math.isnan(p.days_since_last_session_) and p.flag_no_session_


def test_weekly_medians_use_monday_weeks():
    monday = datetime(2026, 11, 16, tzinfo=UTC).timestamp()
    assert week_start(datetime(2026, 11, 21, 12, tzinfo=UTC).timestamp()) == monday
    assert week_start(monday) == monday and week_start(monday - 1) == monday - 7 * DAY_S
    t = np.array([monday - 3600, monday - 7200, monday + 3600, monday + 2 * DAY_S, monday + 3 * DAY_S])
    st = {"t": t, "side": np.array(["right"] * 5), "ext": np.array([1.0, 3.0, 10.0, 20.0, 60.0])}
    p = _compute(PatientProgress(), st, now_s=monday + 6 * DAY_S)
    weeks, med, n = p.weekly_peak_ext_deg_["right"]
    assert list(weeks) == [monday - 7 * DAY_S, monday]
    assert list(med) == [2.0, 20.0] and list(n) == [2, 3]
    assert p.weekly_peak_ext_deg_["left"][0].size == 0


def test_status_fields_cover_the_schema():
    from hipback.ingest.influx.schema import MEASUREMENTS

    p = _compute(PatientProgress(), _two_phase(10.0, 11.0), holds_prescribed_per_window=42)
    assert set(p.status_fields()) == set(MEASUREMENTS["patient_status"].field_names)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="same length"):
        PatientProgress().compute(
            now_s=NOW, stride_t_s=[1.0, 2.0], stride_side=["left"], stride_peak_ext_deg=[1.0]
        )
    with pytest.raises(ValueError, match="hold arrays"):
        PatientProgress().compute(
            now_s=NOW,
            stride_t_s=[],
            stride_side=[],
            stride_peak_ext_deg=[],
            hold_t_s=[1.0],
            hold_completed=[],
        )
    with pytest.raises(ValueError):
        PatientProgress(window_days=0)
