"""Patient progress with exact expectations at every window edge: the baseline window (first stride + 14
days, end excluded), the 7-day window (start excluded, ``now`` included, the future ignored), the minimum
stride count, the change, the MDC flag, adherence (capped), days since the last session, sitting hours,
weekly buckets on Monday 00:00 UTC, and the messages of the input checks.

Written for the survivors of ``python bench/mutation.py --group progress``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing.progress import DAY_S, WEEK_S, PatientProgress, week_start

T0 = 2800 * WEEK_S + 4 * DAY_S  # a Monday, 00:00 UTC
NOW = T0 + 30 * DAY_S
LO = NOW - 7 * DAY_S  # excluded edge of the 7-day window


def strides() -> dict[str, list]:
    t, side, ext, comp = [], [], [], []
    for i in range(20):  # left baseline: 10.0 .. 11.9 deg, median 10.95
        t.append(T0 + i * 3600.0)
        side.append("left")
        ext.append(10.0 + 0.1 * i)
        comp.append(0.2 + 0.01 * i)
    for i in range(19):  # right: one stride short of a baseline
        t.append(T0 + i * 3600.0)
        side.append("right")
        ext.append(20.0)
        comp.append(0.5)
    rows = [
        (T0 + 14 * DAY_S, "left", 100.0, 9.0),  # at the baseline window's end: not in it
        (LO, "left", 100.0, 9.0),  # at the 7-day window's start: not in it
        (LO + 1.0, "left", 4.0, 0.1),
        (NOW, "left", 6.0, 0.3),
        (NOW + 1.0, "left", 100.0, 9.0),  # the future
        (LO + 5.0, "left", math.nan, 9.0),  # no peak: ignored for the angle and the compensation
        (NOW - 10.0, "right", 17.0, math.nan),
    ]
    for row in rows:
        for lst, v in zip((t, side, ext, comp), row, strict=True):
            lst.append(v)
    return {"stride_t_s": t, "stride_side": side, "stride_peak_ext_deg": ext, "stride_compensation": comp}


def compute(**kw: object) -> PatientProgress:
    args = dict(now_s=NOW, **strides(),
                hold_t_s=[LO, LO + 1.0, NOW - 1.0, NOW, NOW + 1.0],
                hold_completed=[True, True, False, True, True],
                session_t_s=[LO, NOW - 3 * DAY_S, NOW + 1.0], session_sitting_s=[3600.0, 1800.0, 7200.0],
                holds_prescribed_per_window=4.0)
    args.update(kw)
    return PatientProgress().compute(**args)  # type: ignore[arg-type]


def test_baseline_window_and_change() -> None:
    p = compute()
    assert p.baseline_start_s_ == T0 and p.now_s_ == NOW
    assert p.baseline_peak_ext_deg_["left"] == pytest.approx(10.95, abs=1e-12)
    assert math.isnan(p.baseline_peak_ext_deg_["right"])  # 19 strides < 20
    assert p.peak_ext_7d_deg_ == {"left": 5.0, "right": 17.0}
    assert p.change_from_baseline_deg_["left"] == pytest.approx(5.0 - 10.95, abs=1e-12)
    assert math.isnan(p.change_from_baseline_deg_["right"])
    assert p.worst_change_from_baseline_deg_ == pytest.approx(-5.95, abs=1e-12)
    assert p.baseline_compensation_["left"] == pytest.approx(0.295, abs=1e-12)
    assert math.isnan(p.baseline_compensation_["right"])
    assert p.compensation_7d_["left"] == pytest.approx(0.2, abs=1e-12)
    assert math.isnan(p.compensation_7d_["right"])  # its only recent stride has no index


def test_min_strides_and_mdc_flag() -> None:
    p = PatientProgress(min_strides=19).compute(now_s=NOW, **strides())
    assert p.baseline_peak_ext_deg_["right"] == 20.0 and p.change_from_baseline_deg_["right"] == -3.0
    assert p.flag_decline_  # left: -5.95 < -5
    assert not PatientProgress(mdc_deg=5.95 + 1e-9).compute(now_s=NOW, **strides()).flag_decline_
    assert PatientProgress(mdc_deg=5.9).compute(now_s=NOW, **strides()).flag_decline_


def test_adherence_sessions_and_flags() -> None:
    p = compute()
    assert p.holds_done_7d_ == 2 and p.holds_prescribed_7d_ == 4.0  # LO+1 and NOW (LO and the future not)
    assert p.adherence_pct_ == 50.0 and not p.flag_low_adherence_  # 50 is not below 50
    assert compute(holds_prescribed_per_window=5.0).adherence_pct_ == 40.0
    assert compute(holds_prescribed_per_window=5.0).flag_low_adherence_
    assert compute(holds_prescribed_per_window=1.0).adherence_pct_ == 100.0  # capped
    q = compute(holds_prescribed_per_window=0.0)
    assert math.isnan(q.adherence_pct_) and not q.flag_low_adherence_
    assert p.days_since_last_session_ == 3.0 and p.flag_no_session_  # 3 days is "3 or more"
    assert p.sitting_h_7d_ == 0.5
    r = compute(session_t_s=[NOW - 2.5 * DAY_S], session_sitting_s=None)
    assert r.days_since_last_session_ == 2.5 and not r.flag_no_session_ and r.sitting_h_7d_ == 0.0
    s = compute(session_t_s=[NOW + 5.0], session_sitting_s=[10.0])
    assert math.isnan(s.days_since_last_session_) and s.flag_no_session_


def test_weekly_buckets_start_on_monday() -> None:
    assert week_start(T0) == T0 and week_start(T0 + WEEK_S - 1.0) == T0
    assert week_start(T0 - 1.0) == T0 - WEEK_S
    p = compute()
    weeks, med, n = p.weekly_peak_ext_deg_["left"]
    assert weeks.tolist() == [T0, T0 + 2 * WEEK_S, T0 + 3 * WEEK_S, T0 + 4 * WEEK_S]
    np.testing.assert_allclose(med, [10.95, 100.0, 52.0, 6.0], rtol=0, atol=1e-12)
    assert n.tolist() == [20, 1, 2, 1]
    cw, cm, cn = p.weekly_compensation_["right"]
    assert cw.tolist() == [T0] and cm.tolist() == [0.5] and cn.tolist() == [19]
    e = PatientProgress().compute(now_s=NOW, stride_t_s=[], stride_side=[], stride_peak_ext_deg=[])
    assert [len(x) for x in e.weekly_peak_ext_deg_["left"]] == [0, 0, 0]
    assert math.isnan(e.baseline_start_s_) and math.isnan(e.worst_change_from_baseline_deg_)


def test_status_fields() -> None:
    f = compute().status_fields()
    assert f["baseline_peak_ext_left_deg"] == pytest.approx(10.95) and f["peak_ext_7d_left_deg"] == 5.0
    assert f["change_from_baseline_left_deg"] == pytest.approx(-5.95)
    assert f["baseline_compensation_left"] == pytest.approx(0.295) and f["compensation_7d_left"] == 0.2
    assert f["worst_change_from_baseline_deg"] == pytest.approx(-5.95) and f["mdc_deg"] == 5.0
    assert (f["adherence_pct"], f["holds_done_7d"], f["holds_prescribed_7d"]) == (50.0, 2, 4.0)
    assert (f["days_since_last_session"], f["sitting_h_7d"]) == (3.0, 0.5)
    assert (f["flag_no_session"], f["flag_decline"], f["flag_low_adherence"]) == (True, True, False)
    assert len(f) == 2 * 5 + 10


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(stride_side=["left"]), "stride arrays must all have the same length"),
        (dict(hold_completed=[True]), "hold arrays must have the same length"),
        (dict(session_sitting_s=[1.0]), "session arrays must have the same length"),
    ],
)
def test_input_checks(kw: dict, msg: str) -> None:
    with pytest.raises(ValueError, match="^" + msg + "$"):
        compute(**kw)


@pytest.mark.parametrize("kw", [dict(baseline_days=0.0), dict(window_days=0.0), dict(window_days=-1.0)])
def test_windows_must_be_positive(kw: dict) -> None:
    with pytest.raises(ValueError, match="^baseline_days and window_days must be positive$"):
        PatientProgress(**kw)


def test_defaults_ties_and_single_values() -> None:
    p = PatientProgress(baseline_days=0.5, window_days=0.5).compute(
        now_s=NOW, stride_t_s=[NOW - 1.0], stride_side=["left"], stride_peak_ext_deg=[7.0], session_t_s=[NOW])
    assert math.isnan(p.adherence_pct_) and p.holds_prescribed_7d_ == 0.0  # nothing prescribed by default
    assert p.days_since_last_session_ == 0.0 and not p.flag_no_session_  # a session starting now counts
    weeks, med, n = p.weekly_peak_ext_deg_["left"]
    assert weeks.tolist() == [week_start(NOW - 1.0)] and med.tolist() == [7.0] and n.tolist() == [1]
    # a change of exactly -MDC is not a decline
    q = compute()
    mdc = q.baseline_peak_ext_deg_["left"] - q.peak_ext_7d_deg_["left"]
    assert not PatientProgress(mdc_deg=mdc).compute(now_s=NOW, **strides()).flag_decline_
