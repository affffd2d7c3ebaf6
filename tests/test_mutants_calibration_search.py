"""The calibration search on synthetic merged rows, where every decision row follows from the definitions in
``processing/calibration_search.py``: the standing window (3-5 s of still rows), the wait for the thighs'
movement (300 fast rows each at 100 Hz, or 20 s), the timeout release, the marked window, the short
standing window at the end, the initial calibration, the thigh swap and the messages and warnings.

Rows are built directly (``Rows``): still flags as given, orientations of a pelvis and two thighs standing
(sensors mounted as the placement guide says) or moving. A "turn" moves a thigh back and forth in flexion at
0.01 rad per row (1 rad/s at 100 Hz), so every one of its rows is fast: a thigh that starts turning at row
``k`` has its 300th fast row at ``k + 299`` and reaches the movement needed at row ``k + 300``.

Written for the survivors of ``python bench/mutation.py --group calibration_search``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.calibration import CalibrationSettings, SensorCalibration, angular_velocity
from hipback.processing.calibration_search import (
    CALIBRATED,
    CALIBRATING,
    SEARCHING,
    WAITING,
    CalibratedRows,
    CalibrationSearch,
)
from hipback.processing.merge import Rows
from tests.synth_processing import base, gait_hip, nominal_mounting

R = 100.0
PL3 = ("pelvis", "thigh_left", "thigh_right")
EX, EY, EZ = np.eye(3)


def turn(n: int) -> np.ndarray:
    """Hip flexion (rad) moving back and forth at 0.01 rad per row, starting at 0.01."""
    k = np.arange(1, n + 1)
    return 0.25 - np.abs((k + 25) % 100 - 50) * 0.01 if n else np.zeros(0)


def walk(n: int, shift: float = 0.0) -> np.ndarray:
    """Hip flexion (rad) of walking at 1.1 s strides (slow extension, fast flexion: the flexion side is
    clear)."""
    return gait_hip(np.arange(n) / R / 1.1 + shift, math.radians(30.0), math.radians(15.0))


def make_rows(still: str | np.ndarray, hips: dict[str, np.ndarray] | None = None,
              placements: tuple[str, ...] = PL3, mounts: dict[str, np.ndarray] | None = None,
              k0: int = 0) -> Rows:
    """Rows ``k0..k0 + n``: ``still`` per row ("1" still), each thigh's hip flexion from ``hips`` (zeros:
    standing), the pelvis standing; NaN orientation where a hip is NaN."""
    flags = np.array([c == "1" for c in still], dtype=bool) if isinstance(still, str) else np.asarray(still)
    n = len(flags)
    hips = hips or {}
    mounts = mounts or {}
    q, omega = {}, {}
    for p in placements:
        angle = hips.get(p, np.zeros(n))
        m = mounts.get(p, nominal_mounting(p))
        q[p] = qm.multiply(qm.multiply(base(0.3), qm.from_axis_angle(EZ, np.nan_to_num(angle))), m)
        q[p][np.isnan(angle)] = np.nan
        omega[p] = angular_velocity(q[p], R)
    return Rows(np.arange(k0, k0 + n), q, np.zeros((n, 2)), np.zeros(n), flags, omega)


def hip_series(n: int, segments: list[tuple[int, str]]) -> np.ndarray:
    """Piecewise hip flexion over ``n`` rows: (start row, "turn" | "walk" | "nan" | "stand") from that row
    on."""
    out = np.zeros(n)
    bounds = [s for s, _ in segments] + [n]
    for (a, kind), b in zip(segments, bounds[1:], strict=True):
        if kind == "turn":
            out[a:b] = turn(b - a)
        elif kind == "walk":
            out[a:b] = walk(b - a)
        elif kind == "nan":
            out[a:b] = np.nan
    return out


def feed(cs: CalibrationSearch, rows: Rows, sizes: list[int] | int | None = None,
         finish: bool = True) -> list[CalibratedRows]:
    """Feed ``rows`` in chunks (``sizes`` repeated), then finish."""
    out: list[CalibratedRows] = []
    if sizes is None:
        sizes = [len(rows)]
    elif isinstance(sizes, int):
        sizes = [sizes]
    a, i = 0, 0
    while a < len(rows):
        b = min(len(rows), a + sizes[i % len(sizes)])
        out += cs.update(rows.slice(a, b))
        a, i = b, i + 1
    if finish:
        out += cs.finish()
    return out


def spans(out: list[CalibratedRows]) -> list[tuple[int, int, bool, bool, bool]]:
    """Consecutive outputs merged: (first row, end row, calibrated, swap, checked); no output is empty."""
    res: list[tuple[int, int, bool, bool, bool]] = []
    for cr in out:
        assert len(cr.rows) > 0
        key = (cr.calibration is not None, cr.swap, cr.checked)
        a, b = int(cr.rows.k[0]), int(cr.rows.k[-1]) + 1
        assert np.array_equal(cr.rows.k, np.arange(a, b))
        if res and res[-1][1] == a and res[-1][2:] == key:
            res[-1] = (res[-1][0], b, *key)
        else:
            res.append((a, b, *key))
    return res


STILL = "1"
MOVING = "0"


def still_string(*parts: tuple[int, str]) -> str:
    return "".join(c * n for n, c in parts)


# -- constructor and contract -------------------------------------------------------------------------------
def test_parameters_and_initial_state() -> None:
    cs = CalibrationSearch(list(PL3), rate_hz=50)
    assert cs.placements == PL3 and cs.rate_hz == 50.0 and isinstance(cs.rate_hz, float)
    assert cs.settings == CalibrationSettings() and cs.timeout_s == 60.0 and cs.min_short_standing_s == 1.0
    assert cs.initial_calibration is None and cs.swap_wrong_side is True
    assert (cs.state_, cs.swap_, cs.calibration_) == (SEARCHING, False, {})
    assert cs.warnings_ == [] and cs.messages_ == []
    params = cs.get_params()
    assert params["rate_hz"] == 50.0 and params["timeout_s"] == 60.0
    s = CalibrationSettings(min_standing_s=1.0)
    cs2 = CalibrationSearch(PL3, settings=s, timeout_s=7.0, min_short_standing_s=0.5, swap_wrong_side=False)
    assert cs2.settings is s and cs2.timeout_s == 7.0 and cs2.min_short_standing_s == 0.5
    assert cs2.swap_wrong_side is False
    assert [SEARCHING, WAITING, CALIBRATING, CALIBRATED] == [
        "searching_standing", "waiting_for_movement", "calibrating", "calibrated"]


def test_update_after_finish_raises_and_finish_twice_is_empty() -> None:
    cs = CalibrationSearch(("pelvis",))
    assert cs.update(make_rows("")) == []
    assert cs.state_ == SEARCHING and cs.messages_ == []
    out = cs.finish()
    assert spans(out) == [] and cs.warnings_ == ["no standing calibration: angles not available"]
    n_msg = len(cs.messages_)
    assert cs.finish() == [] and len(cs.messages_) == n_msg
    with pytest.raises(RuntimeError) as err:
        cs.update(make_rows("1", placements=("pelvis",)))
    assert str(err.value) == "update() after finish()"


def _cal(p: str) -> SensorCalibration:
    return SensorCalibration(p, qm.canonical(qm.conjugate(nominal_mounting(p))), 0.9, ["given"])


def test_initial_calibration_is_used_from_the_first_row() -> None:
    given = {p: _cal(p) for p in (*PL3, "lumbar_upper")}
    cs = CalibrationSearch(PL3, initial_calibration=given)
    assert cs.state_ == CALIBRATED and set(cs.calibration_) == set(PL3)
    assert cs.initial_calibration is given and cs.get_params()["initial_calibration"].keys() == given.keys()
    assert cs.messages_ == ["using the calibration given with the session (from an earlier recording)"]
    given["pelvis"].reasons.append("changed later")
    assert cs.calibration_["pelvis"].reasons == ["given"]  # a copy
    rows = make_rows("0" * 30)
    out = cs.update(rows.slice(0, 10)) + cs.update(rows.slice(10, 30))
    assert spans(out) == [(0, 30, True, False, True)] and all(o.calibration is cs.calibration_ for o in out)
    assert cs.finish() == [] and cs.warnings_ == []
    cs.mark(0.0, 1.0)
    assert cs.messages_[-1] == "calibration window marked after calibration was done: ignored"
    with pytest.raises(ValueError, match="the given calibration has no entry for thigh_left"):
        CalibrationSearch(PL3, initial_calibration={"pelvis": _cal("pelvis")})
    with pytest.raises(ValueError, match="no entry for thigh_right"):
        CalibrationSearch(PL3, initial_calibration={p: _cal(p) for p in ("pelvis", "thigh_left")})
    assert CalibrationSearch(PL3, initial_calibration={}).state_ == SEARCHING


# -- standing window, pelvis only ----------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [None, 1, 37, 500])
def test_standing_window_ended_by_movement(chunk: int | None) -> None:
    """100 moving rows, 400 still, 200 moving: the window is rows 100-500, found at row 500."""
    rows = make_rows(still_string((100, MOVING), (400, STILL), (200, MOVING)), placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",))
    out = feed(cs, rows, chunk, finish=False)
    assert spans(out) == [(0, 500, True, False, False), (500, 700, True, False, True)]
    assert cs.state_ == CALIBRATED and cs.calibration_["pelvis"].window == (1.0, 4.99)
    assert cs.messages_ == ["standing window found at 1.00-5.00 s", "calibrated: pelvis 1.00"]
    assert cs.calibration_["pelvis"].method == "standing+prior" and cs.warnings_ == []
    assert cs.finish() == []


def test_standing_window_is_at_most_five_seconds() -> None:
    rows = make_rows(still_string((50, MOVING), (700, STILL)), placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",))
    out = cs.update(rows.slice(0, 549))
    assert out == [] and cs.state_ == SEARCHING
    out = cs.update(rows.slice(549, 550))
    assert spans(out) == [(0, 550, True, False, False)]
    assert cs.calibration_["pelvis"].window == (0.5, 5.49)
    assert cs.messages_[0] == "standing window found at 0.50-5.50 s"


@pytest.mark.parametrize("n_still,found", [(299, False), (300, True)])
def test_standing_window_is_at_least_three_seconds(n_still: int, found: bool) -> None:
    rows = make_rows(still_string((10, MOVING), (n_still, STILL), (100, MOVING)), placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",), min_short_standing_s=5.0)
    out = feed(cs, rows, finish=False)
    if found:
        assert spans(out) == [(0, 310, True, False, False), (310, len(rows), True, False, True)]
    else:
        assert out == [] and cs.state_ == SEARCHING


def test_standing_settings_are_in_seconds_at_the_grid_rate() -> None:
    s = CalibrationSettings(min_standing_s=1.0, max_standing_s=2.0)
    rows = make_rows(still_string((10, MOVING), (60, STILL), (30, MOVING)), placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",), rate_hz=50.0, settings=s)
    out = feed(cs, rows, finish=False)
    assert spans(out) == [(0, 70, True, False, False), (70, 100, True, False, True)]  # ended after 60 rows
    assert cs.calibration_["pelvis"].window == (10 / 50, 69 / 50)
    rows = make_rows(still_string((10, MOVING), (49, STILL), (30, MOVING)), placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",), rate_hz=50.0, settings=s)
    assert feed(cs, rows, finish=False) == []
    rows = make_rows(still_string((10, MOVING), (120, STILL)), placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",), rate_hz=50.0, settings=s)
    out = feed(cs, rows, finish=False)
    assert spans(out) == [(0, 110, True, False, False), (110, 130, True, False, True)]


# -- waiting for the thighs' movement ------------------------------------------------------------------------
def _thigh_session(n: int, left_from: int | None, right_from: int | None, stand: tuple[int, int] = (50, 450),
                   kind: str = "turn", k0: int = 0) -> Rows:
    still = np.zeros(n, dtype=bool)
    still[stand[0]:stand[1]] = True
    hips = {}
    for p, start in (("thigh_left", left_from), ("thigh_right", right_from)):
        hips[p] = hip_series(n, [(0, "stand")] + ([(start, kind)] if start is not None else []))
    return make_rows(still, hips, k0=k0)


@pytest.mark.parametrize("chunk", [None, 1, 64, 333])
def test_thighs_calibrate_once_both_moved_enough(chunk: int | None) -> None:
    """Standing 50-450 (found at 450); the left thigh turns from 450, the right from 520: the search ends at
    the right's 300th fast row, 820."""
    rows = _thigh_session(1200, 450, 520)
    cs = CalibrationSearch(PL3)
    out = feed(cs, rows, chunk, finish=False)
    assert spans(out) == [(0, 820, True, False, False), (820, 1200, True, False, True)]
    assert cs.messages_[0] == "standing window found at 0.50-4.50 s"
    assert cs.calibration_["thigh_left"].method == "standing+functional"
    assert cs.calibration_["thigh_right"].method == "standing+functional"
    assert cs.state_ == CALIBRATED


def test_state_while_waiting_for_movement() -> None:
    rows = _thigh_session(1200, 450, 520)
    cs = CalibrationSearch(PL3)
    assert cs.update(rows.slice(0, 450)) == [] and cs.state_ == SEARCHING
    assert cs.update(rows.slice(450, 451)) == [] and cs.state_ == WAITING
    assert cs.update(rows.slice(451, 819)) == [] and cs.state_ == WAITING
    assert spans(cs.update(rows.slice(819, 820))) == [(0, 820, True, False, False)]
    assert cs.state_ == CALIBRATED


def test_pelvis_only_is_calibrating_not_waiting() -> None:
    rows = make_rows(still_string((400, STILL), (10, MOVING)), placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",), settings=CalibrationSettings(max_standing_s=9.0))
    cs.mark(0.0, 3.5)  # the window's rows are not in yet
    assert cs.state_ == SEARCHING
    assert spans(cs.update(rows.slice(0, 351))) == [(0, 351, True, False, False)]


def test_movement_in_the_chunk_that_ends_the_window_counts() -> None:
    """Standing found mid-chunk: the rows after the window already buffered are counted at once."""
    rows = _thigh_session(1200, 450, 450)
    cs = CalibrationSearch(PL3)
    out = cs.update(rows.slice(0, 760))
    assert spans(out) == [(0, 750, True, False, False), (750, 760, True, False, True)]


@pytest.mark.parametrize("wait_s,end,chunk", [(20.0, 2450, 200), (5.0, 950, 200), (5.0, 950, 1)])
def test_thighs_that_do_not_move_wait_for_ml_wait_s(wait_s: float, end: int, chunk: int) -> None:
    rows = _thigh_session(2600, None, 450)
    cs = CalibrationSearch(PL3, settings=CalibrationSettings(ml_wait_s=wait_s))
    assert cs.update(rows.slice(0, end - 1)) == []
    assert spans(cs.update(rows.slice(end - 1, end))) == [(0, end, True, False, False)]  # decided on its row
    cs = CalibrationSearch(PL3, settings=CalibrationSettings(ml_wait_s=wait_s))
    out = feed(cs, rows, chunk, finish=False)
    assert spans(out) == [(0, end, True, False, False), (end, 2600, True, False, True)]
    assert cs.calibration_["thigh_left"].method == "standing+prior"
    assert cs.calibration_["thigh_right"].method == "standing+functional"


def test_wait_ends_at_ml_wait_s_when_the_last_thigh_moves_enough_later() -> None:
    rows = _thigh_session(1300, 450, 700)
    cs = CalibrationSearch(PL3, settings=CalibrationSettings(ml_wait_s=5.0))  # wait until 950
    out = feed(cs, rows, 100, finish=False)
    assert spans(out) == [(0, 950, True, False, False), (950, 1300, True, False, True)]
    # with all of it in one chunk: the same
    cs = CalibrationSearch(PL3, settings=CalibrationSettings(ml_wait_s=5.0))
    assert spans(feed(cs, rows, finish=False)) == spans(out)


def test_movement_need_is_one_and_a_half_min_motion() -> None:
    rows = _thigh_session(1200, 450, 450)
    cs = CalibrationSearch(PL3, settings=CalibrationSettings(min_motion_s=1.0))  # 150 fast rows
    assert spans(feed(cs, rows, 50, finish=False))[0] == (0, 600, True, False, False)
    cs = CalibrationSearch(PL3, rate_hz=50.0)  # 150 fast rows at 50 Hz (the rows are the same)
    assert spans(feed(cs, rows, 50, finish=False))[0][:2] == (0, 600)


def test_movement_faster_than_the_setting_only_counts() -> None:
    rows = _thigh_session(1200, 450, 450)
    cs = CalibrationSearch(PL3, settings=CalibrationSettings(motion_gyr_rad_s=1.5, ml_wait_s=6.0))
    assert spans(feed(cs, rows, finish=False))[0] == (0, 1050, True, False, False)  # none fast: the wait
    cs = CalibrationSearch(PL3, settings=CalibrationSettings(motion_gyr_rad_s=0.99, ml_wait_s=6.0))
    assert spans(feed(cs, rows, finish=False))[0] == (0, 750, True, False, False)


def test_rotation_about_the_vertical_does_not_count() -> None:
    """A thigh turning about the standing vertical (internal rotation) is not functional movement."""
    n = 1200
    still = np.zeros(n, dtype=bool)
    still[50:450] = True
    rows = make_rows(still, {"thigh_right": hip_series(n, [(0, "stand"), (450, "turn")])})
    spin = qm.from_axis_angle(EY, hip_series(n, [(0, "stand"), (450, "turn")]) * 2)
    seg = qm.multiply(base(0.3), spin)
    rows.q["thigh_left"] = qm.multiply(seg, nominal_mounting("thigh_left"))
    rows.omega["thigh_left"] = angular_velocity(rows.q["thigh_left"], R)
    cs = CalibrationSearch(PL3, settings=CalibrationSettings(ml_wait_s=6.0))
    assert spans(feed(cs, rows, finish=False))[0] == (0, 1050, True, False, False)


@pytest.mark.parametrize("k0", [0, 1000])
def test_thigh_without_data_while_standing_is_not_waited_for(k0: int) -> None:
    n = 1200
    still = np.zeros(n, dtype=bool)
    still[50:450] = True
    left = hip_series(n, [(0, "nan"), (460, "turn")])
    hips = {"thigh_left": left, "thigh_right": hip_series(n, [(0, "stand"), (450, "turn")])}
    cs = CalibrationSearch(PL3)
    out = feed(cs, make_rows(still, hips, k0=k0), finish=False)
    assert spans(out) == [(k0, k0 + 750, True, False, False), (k0 + 750, k0 + 1200, True, False, True)]
    assert "thigh_left" not in cs.calibration_
    assert "thigh_left: no valid samples in the calibration window; its angles are empty" in cs.messages_
    assert cs.warnings_ == ["thigh_left: not calibrated"]
    # one valid row in the window is not enough either
    left[300] = 0.0
    rows = make_rows(still, {"thigh_left": left, "thigh_right": hip_series(n, [(0, "stand"), (450, "turn")])})
    cs = CalibrationSearch(PL3)
    assert spans(feed(cs, rows, finish=False))[0] == (0, 750, True, False, False)
    assert "thigh_left" not in cs.calibration_
    # two are: then the left thigh is waited for (its first turning row follows a missing one: not counted)
    left[301] = 0.0
    rows = make_rows(still, {"thigh_left": left, "thigh_right": hip_series(n, [(0, "stand"), (450, "turn")])})
    cs = CalibrationSearch(PL3)
    assert spans(feed(cs, rows, finish=False))[0] == (0, 761, True, False, False)
    assert "thigh_left" in cs.calibration_


def test_no_thigh_with_data_calibrates_at_the_window_end() -> None:
    n = 700
    still = np.zeros(n, dtype=bool)
    still[50:450] = True
    nan = np.full(n, np.nan)
    rows = make_rows(still, {"thigh_left": nan, "thigh_right": nan})
    cs = CalibrationSearch(PL3)
    assert cs.update(rows.slice(0, 450)) == []
    out = cs.update(rows.slice(450, 451))
    assert cs.state_ == CALIBRATED and set(cs.calibration_) == {"pelvis"}
    assert spans(out) == [(0, 450, True, False, False), (450, 451, True, False, True)]
    assert cs.warnings_ == ["thigh_left: not calibrated", "thigh_right: not calibrated"]


# -- timeout ------------------------------------------------------------------------------------------------
TIMEOUT_MSG = ("no standing-still period in the first 2 s: angles withheld (empty) until the patient stands "
               "still for 3 s")
TIMEOUT_WARN = "calibration delayed: no standing period at the session start"


@pytest.mark.parametrize("chunk", [None, 50, 7, 1])
def test_rows_older_than_the_timeout_are_released_uncalibrated(chunk: int | None) -> None:
    """Moving for 10 s, then standing 4 s: with a 2 s timeout, rows are released uncalibrated as they get 2 s
    old, except the rows of a still run that may become the standing window; whatever the chunking."""
    rows = make_rows("0" * 1000 + "1" * 400 + "0" * 50, placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",), timeout_s=2.0)
    first = feed(cs, rows.slice(0, 1000), chunk, finish=False)
    assert spans(first) == [(0, 800, False, False, False)]
    assert all(o.calibration is None and o.swap is False and o.checked is False for o in first)
    assert cs.messages_ == [TIMEOUT_MSG] and cs.warnings_ == [TIMEOUT_WARN] and cs.state_ == SEARCHING
    out = first + feed(cs, rows.slice(1000, len(rows)), chunk, finish=False)
    assert spans(out) == [(0, 1000, False, False, False), (1000, 1400, True, False, False),
                          (1400, 1450, True, False, True)]
    assert cs.calibration_["pelvis"].window == (10.0, 13.99)
    assert cs.messages_ == [TIMEOUT_MSG, "standing window found at 10.00-14.00 s", "calibrated: pelvis 1.00"]
    assert cs.warnings_ == [TIMEOUT_WARN]


@pytest.mark.parametrize("chunk", [None, 9, 1])
def test_timeout_before_a_standing_window_of_five_seconds(chunk: int | None) -> None:
    """Standing found when the run reaches 5 s (at its last row): the rows before it are released by the
    timeout as they stood on the row before."""
    rows = make_rows("0" * 300 + "1" * 600, placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",), timeout_s=2.0)
    out = feed(cs, rows, chunk, finish=False)
    assert spans(out) == [(0, 300, False, False, False), (300, 800, True, False, False),
                          (800, 900, True, False, True)]
    cs = CalibrationSearch(("pelvis",), timeout_s=2.0)
    out = feed(cs, make_rows("0" * 300 + "1" * 100 + "0" * 50 + "1" * 600, placements=("pelvis",)), chunk,
               finish=False)
    assert spans(out) == [(0, 450, False, False, False), (450, 950, True, False, False),
                          (950, 1050, True, False, True)]


def test_timeout_keeps_an_open_still_run() -> None:
    """Moving 150 rows, then still: with a 2 s timeout the rows of the open still run are kept."""
    rows = make_rows("0" * 150 + "1" * 250 + "0" * 100, placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",), timeout_s=2.0)
    assert spans(cs.update(rows.slice(0, 400))) == [(0, 150, False, False, False)]
    assert spans(cs.update(rows.slice(400, 500))) == [(150, 300, False, False, False)]


def test_timeout_with_nothing_to_release_says_nothing() -> None:
    """A still run from the first row, longer than the timeout but shorter than a standing window: nothing is
    released and nothing reported yet."""
    rows = make_rows("1" * 250 + "0" * 100, placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",), timeout_s=2.0)
    assert cs.update(rows.slice(0, 250)) == []
    assert cs.messages_ == [] and cs.warnings_ == []
    assert spans(cs.update(rows.slice(250, 350))) == [(0, 150, False, False, False)]
    assert cs.messages_ == [TIMEOUT_MSG]


def test_no_timeout_once_standing_was_found() -> None:
    """A 3 s window found 4 s into the recording (within the 5 s timeout), then the 20 s wait for movement:
    every row withheld, none released by the timeout."""
    rows = _thigh_session(2500, None, None, stand=(100, 400))
    cs = CalibrationSearch(PL3, timeout_s=5.0)
    out = feed(cs, rows, 100, finish=False)
    assert spans(out) == [(0, 2400, True, False, False), (2400, 2500, True, False, True)]
    assert cs.messages_[0] == "standing window found at 1.00-4.00 s" and cs.warnings_ == []


def test_timeout_limit_is_in_seconds_at_the_grid_rate() -> None:
    rows = make_rows("0" * 300, placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",), rate_hz=50.0, timeout_s=2.0)  # 100 rows
    assert spans(cs.update(rows)) == [(0, 200, False, False, False)]
    cs = CalibrationSearch(("pelvis",), timeout_s=3.0)
    assert cs.update(rows) == []
    assert spans(cs.update(make_rows("0", placements=("pelvis",), k0=300))) == [(0, 1, False, False, False)]


# -- finish -------------------------------------------------------------------------------------------------
def test_finish_while_waiting_calibrates_with_all_rows() -> None:
    rows = _thigh_session(800, 450, None)
    cs = CalibrationSearch(PL3)
    assert cs.update(rows) == [] and cs.state_ == WAITING
    out = cs.finish()
    assert spans(out) == [(0, 800, True, False, False)] and cs.state_ == CALIBRATED
    assert cs.calibration_["thigh_left"].method == "standing+functional"  # its 350 turning rows are used


SHORT = ("no 3 s standing period; calibrated from a shorter still standing period "
         "({:.2f}-{:.2f} s, {:.1f} s): lower confidence")


def test_finish_without_a_standing_window_uses_the_longest_still_run() -> None:
    rows = make_rows(still_string((50, MOVING), (150, STILL), (100, MOVING), (120, STILL), (30, MOVING)),
                     placements=("pelvis",))
    for chunk in (None, 13):
        cs = CalibrationSearch(("pelvis",))
        out = feed(cs, rows, chunk)
        assert spans(out) == [(0, 450, True, False, False)]
        msg = SHORT.format(0.5, 2.0, 1.5)
        assert cs.messages_ == [msg, "calibrated: pelvis 0.80"] and cs.warnings_ == [msg]
        cal = cs.calibration_["pelvis"]
        assert cal.quality == pytest.approx(0.8, abs=1e-12) and cal.window == (0.5, 1.99)
        assert cal.reasons == ["standing window shorter than 3 s"]


def test_short_standing_ties_keep_the_first_and_the_last_run_counts() -> None:
    rows = make_rows(still_string((50, MOVING), (120, STILL), (100, MOVING), (120, STILL)),
                     placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",))
    feed(cs, rows)
    assert cs.calibration_["pelvis"].window == (0.5, 1.69)
    rows = make_rows(still_string((50, MOVING), (120, STILL), (100, MOVING), (121, STILL)),
                     placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",))
    feed(cs, rows)
    assert cs.calibration_["pelvis"].window == (2.7, 3.9)  # a run still open at the end counts
    assert cs.messages_[0] == SHORT.format(2.7, 3.91, 1.2)


@pytest.mark.parametrize("n_still,found", [(99, False), (100, True)])
def test_short_standing_is_at_least_min_short_standing_s(n_still: int, found: bool) -> None:
    rows = make_rows(still_string((20, MOVING), (n_still, STILL), (20, MOVING)), placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",))
    out = feed(cs, rows)
    if found:
        assert spans(out) == [(0, len(rows), True, False, False)]
    else:
        assert spans(out) == [(0, len(rows), False, False, False)]
        assert cs.calibration_ == {} and cs.state_ == SEARCHING
    cs = CalibrationSearch(("pelvis",), min_short_standing_s=n_still / 100 - 0.005, rate_hz=100.0)
    assert spans(feed(cs, rows))[0][2] is True
    cs = CalibrationSearch(("pelvis",), min_short_standing_s=0.5, rate_hz=50.0)  # 25 rows
    assert spans(feed(cs, rows))[0][2] is True


NO_STANDING = ("no standing-still period found: angles could not be calibrated and are empty (stand still "
               "for 3 s at the start, or mark a calibration window)")


def test_finish_without_any_still_run_releases_everything_uncalibrated() -> None:
    rows = make_rows("0" * 40 + "1" * 30 + "0" * 40, placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",))
    out = feed(cs, rows, 25)
    assert spans(out) == [(0, 110, False, False, False)]
    assert cs.messages_ == [NO_STANDING] and cs.warnings_ == ["no standing calibration: angles not available"]
    assert cs.calibration_ == {} and cs.state_ == SEARCHING
    cs = CalibrationSearch(("pelvis",))
    assert cs.finish() == [] and cs.messages_ == [NO_STANDING]


def test_short_window_at_the_end_takes_the_movement_before_it() -> None:
    """Walking first, then 1.5 s still at the end: the thighs' movement is the part before the window."""
    n = 900
    still = np.zeros(n, dtype=bool)
    still[750:] = True
    hips = {"thigh_left": hip_series(n, [(0, "walk"), (750, "stand")]),
            "thigh_right": hip_series(n, [(0, "walk"), (750, "stand")])}
    hips = {p: np.where(np.arange(n) < 750, h - h[749], 0.0) for p, h in hips.items()}  # stands at 0 after
    cs = CalibrationSearch(PL3)
    out = feed(cs, make_rows(still, hips))
    assert spans(out) == [(0, 900, True, False, False)]
    for p in ("thigh_left", "thigh_right"):
        assert cs.calibration_[p].method == "standing+functional", p
        assert cs.calibration_[p].window == (7.5, 8.99)
    # still period in the middle, longer movement after it: the movement after
    still = np.zeros(n, dtype=bool)
    still[100:250] = True
    hips = {p: hip_series(n, [(0, "stand"), (250, "turn")]) for p in ("thigh_left", "thigh_right")}
    cs = CalibrationSearch(PL3)
    feed(cs, make_rows(still, hips))
    assert cs.calibration_["thigh_left"].method == "standing+functional"


# -- marked window ------------------------------------------------------------------------------------------
def test_mark_needs_half_a_second() -> None:
    cs = CalibrationSearch(("pelvis",))
    for t0, t1 in ((1.0, 1.49), (2.0, 1.0), (math.nan, 3.0), (1.0, math.nan)):
        with pytest.raises(ValueError) as err:
            cs.mark(t0, t1)
        assert str(err.value) == "a calibration window must be at least 0.5 s long"
    cs.mark(1.0, 1.5)
    assert cs.messages_ == []


@pytest.mark.parametrize("chunk", [None, 1, 77])
def test_marked_window_is_used_once_its_rows_are_in(chunk: int | None) -> None:
    """Marked 1-4 s: rows 100-400 (k1 = floor(4 * 100) + 1 = 401), applied when row 400 arrived; the still
    flags are not read."""
    rows = make_rows("0" * 100 + "1" * 700, placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",))
    cs.mark(1, 4)
    assert cs._marked == (1.0, 4.0) and all(type(v) is float for v in cs._marked)
    out = feed(cs, rows, chunk, finish=False)
    assert spans(out) == [(0, 401, True, False, False), (401, 800, True, False, True)]
    assert cs.messages_[:2] == ["using the marked calibration window 1.00-4.00 s", "calibrated: pelvis 1.00"]
    assert cs.calibration_["pelvis"].window == (1.0, 4.0)


def test_marked_window_rows_are_rounded_inwards() -> None:
    rows = make_rows("0" * 600, placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",))
    cs.mark(1.004, 3.996)  # rows 101..399
    assert cs.update(rows.slice(0, 399)) == []
    out = cs.update(rows.slice(399, 600))
    assert spans(out) == [(0, 400, True, False, False), (400, 600, True, False, True)]
    assert cs.calibration_["pelvis"].window == (1.01, 3.99)


def test_mark_given_after_the_rows_applies_at_once_and_starts_at_the_buffer() -> None:
    rows = make_rows("0" * 600, placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",))
    assert cs.update(rows) == []
    cs.mark(-2.0, 3.0)
    assert cs.messages_ == ["using the marked calibration window -2.00-3.00 s"] and cs.state_ == CALIBRATING
    out = cs.update(make_rows("0" * 5, placements=("pelvis",), k0=600))
    assert spans(out) == [(0, 301, True, False, False), (301, 605, True, False, True)]
    assert cs.calibration_["pelvis"].window == (0.0, 3.0)


def test_marked_window_while_waiting_for_the_thighs() -> None:
    rows = _thigh_session(1200, 450, 450)
    cs = CalibrationSearch(PL3)
    cs.mark(0.5, 4.0)
    assert cs.update(rows.slice(0, 401)) == [] and cs.state_ == WAITING
    out = cs.update(rows.slice(401, 1200))
    assert spans(out) == [(0, 750, True, False, False), (750, 1200, True, False, True)]


def test_marked_window_with_too_few_rows_is_reported() -> None:
    """After the timeout released rows 0-600, a window marked at 0-6 s holds row 600 only."""
    rows = make_rows("0" * 800, placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",), timeout_s=2.0)
    assert spans(cs.update(rows)) == [(0, 600, False, False, False)]
    cs.mark(0.0, 6.0)
    assert cs.messages_[-1] == "marked calibration window holds no usable samples"
    assert cs.state_ == SEARCHING
    cs.mark(0.0, 6.01)  # rows 600 and 601: enough
    assert cs.messages_[-1] == "using the marked calibration window 0.00-6.01 s"


def test_mark_not_reached_at_finish_falls_back() -> None:
    rows = make_rows("0" * 100 + "1" * 200, placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",))
    cs.mark(1.0, 4.0)
    out = feed(cs, rows)
    assert spans(out) == [(0, 300, True, False, False)]
    assert cs.messages_[0] == SHORT.format(1.0, 3.0, 2.0)
    # reached at finish: used
    cs = CalibrationSearch(("pelvis",))
    cs.update(make_rows("0" * 401, placements=("pelvis",)))
    cs._marked = (1.0, 4.0)  # set without applying
    out = cs.finish()
    assert spans(out) == [(0, 401, True, False, False)]
    assert cs.messages_[0] == "using the marked calibration window 1.00-4.00 s"


# -- calibrating: swap, warnings, messages ------------------------------------------------------------------
def _walking_session(mounts: dict[str, np.ndarray] | None = None, n: int = 1500) -> Rows:
    still = np.zeros(n, dtype=bool)
    still[50:450] = True
    hips = {"thigh_left": hip_series(n, [(0, "stand"), (450, "walk")]),
            "thigh_right": hip_series(n, [(0, "stand"), (450, "walk")])}
    return make_rows(still, hips, mounts=mounts)


SWAP_WARN = ("thigh_left and thigh_right appear to be swapped (each faces medially for its label): their "
             "data were exchanged so that each side's angles come from that side's leg")


def test_both_thighs_on_the_other_leg_are_swapped() -> None:
    mounts = {"thigh_left": nominal_mounting("thigh_right"), "thigh_right": nominal_mounting("thigh_left")}
    rows = _walking_session(mounts)
    cs = CalibrationSearch(PL3)
    out = feed(cs, rows, finish=False)
    assert cs.swap_ is True and all(o.swap for o in out)
    assert [s[3] for s in spans(out)] == [True, True]
    assert SWAP_WARN in cs.warnings_
    left, right = cs.calibration_["thigh_left"], cs.calibration_["thigh_right"]
    assert (left.placement, right.placement) == ("thigh_left", "thigh_right")
    assert left.flags == ["swapped"] and right.flags == ["swapped"]
    # the left calibration is the one made from the data labelled right (a left-thigh sensor's frame)
    z_left = qm.rotate(left.q_segment_in_sensor, EZ)
    np.testing.assert_allclose(z_left, qm.rotate(qm.conjugate(nominal_mounting("thigh_left")), EZ), atol=1e-6)
    assert cs.messages_[-1] == "calibrated: pelvis 1.00, thigh_left 0.70, thigh_right 0.70"
    later = cs.update(make_rows("0" * 3, placements=PL3, k0=1500))
    assert [o.swap for o in later] == [True] and later[0].checked


def test_swap_can_be_switched_off() -> None:
    mounts = {"thigh_left": nominal_mounting("thigh_right"), "thigh_right": nominal_mounting("thigh_left")}
    cs = CalibrationSearch(PL3, swap_wrong_side=False)
    out = feed(cs, _walking_session(mounts), finish=False)
    assert cs.swap_ is False and not any(o.swap for o in out)
    assert cs.warnings_ == [
        "thigh_left: the sensor appears to be on the other leg (check the placement)",
        "thigh_right: the sensor appears to be on the other leg (check the placement)"]
    assert cs.calibration_["thigh_left"].flags == ["wrong_side"]
    assert cs.calibration_["thigh_left"].placement == "thigh_left"


def test_one_thigh_on_the_other_leg_is_only_reported() -> None:
    cs = CalibrationSearch(PL3)
    feed(cs, _walking_session({"thigh_left": nominal_mounting("thigh_right")}), finish=False)
    assert cs.swap_ is False
    assert cs.warnings_ == ["thigh_left: the sensor appears to be on the other leg (check the placement)"]
    assert cs.calibration_["thigh_right"].flags == []


def test_upside_down_and_low_quality_warnings() -> None:
    flip = qm.from_axis_angle(EZ, math.pi)
    m = qm.multiply(nominal_mounting("thigh_left"), flip)
    still = _thigh_session(2600, None, 450).still
    hips = {"thigh_left": np.zeros(2600), "thigh_right": hip_series(2600, [(0, "stand"), (450, "turn")])}
    mounts = {"thigh_left": m, "pelvis": qm.multiply(nominal_mounting("pelvis"), flip)}
    rows = make_rows(still, hips, mounts=mounts)
    cs = CalibrationSearch(PL3)
    feed(cs, rows, finish=False)
    left = cs.calibration_["thigh_left"]
    assert left.quality == pytest.approx(0.6, abs=1e-12)  # upside down, no movement: no warning of quality
    assert cs.warnings_ == ["pelvis: sensor worn upside down (angles corrected)",
                            "thigh_left: sensor worn upside down (angles corrected)"]
    # the same in a short window: 0.4, with the reasons
    still = np.zeros(400, dtype=bool)
    still[50:250] = True
    rows = make_rows(still, {"thigh_left": np.zeros(400)}, mounts={"thigh_left": m})
    cs = CalibrationSearch(PL3)
    feed(cs, rows)
    left = cs.calibration_["thigh_left"]
    assert left.quality == pytest.approx(0.4, abs=1e-12)
    assert f"thigh_left: low calibration quality 0.40: {'; '.join(left.reasons)}" in cs.warnings_
    assert left.reasons[-1] == "standing window shorter than 3 s"
    assert not any(w.startswith("pelvis: low") for w in cs.warnings_)


def test_only_thighs_and_pelvis_get_the_movement() -> None:
    """An upper lumbar sensor is calibrated from standing alone (the placement prior)."""
    placements = ("pelvis", "lumbar_upper", "thigh_left")
    n = 1000
    still = np.zeros(n, dtype=bool)
    still[50:450] = True
    moving = hip_series(n, [(0, "stand"), (450, "turn")])
    rows = make_rows(still, {"thigh_left": moving, "lumbar_upper": moving}, placements=placements)
    cs = CalibrationSearch(placements)
    assert spans(feed(cs, rows, finish=False))[0] == (0, 750, True, False, False)
    assert cs.calibration_["lumbar_upper"].method == "standing+prior"
    assert cs.calibration_["thigh_left"].method == "standing+functional"
    assert cs.messages_[-1] == "calibrated: pelvis 1.00, lumbar_upper 1.00, thigh_left 0.80"


def test_calibrated_rows_defaults() -> None:
    rows = make_rows("1", placements=("pelvis",))
    cr = CalibratedRows(rows, None)
    assert cr.swap is False and cr.checked is True


@pytest.mark.parametrize("k0", [0, 1000])
def test_short_standing_runs_one_row_apart(k0: int) -> None:
    """Two still runs separated by a single moving row: the second (one row longer) is the longest."""
    rows = make_rows(still_string((150, STILL), (1, MOVING), (151, STILL), (5, MOVING)),
                     placements=("pelvis",), k0=k0)
    cs = CalibrationSearch(("pelvis",))
    feed(cs, rows)
    assert cs.calibration_["pelvis"].window == ((k0 + 151) / R, (k0 + 301) / R)


def test_short_standing_of_the_whole_recording() -> None:
    rows = make_rows("1" * 150, placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",))
    assert spans(feed(cs, rows)) == [(0, 150, True, False, False)]
    assert cs.calibration_["pelvis"].window == (0.0, 1.49)


def test_short_standing_runs_of_one_row() -> None:
    """With a 0.01 s minimum every still row is a run: the longest is taken, the search ends."""
    rows = make_rows("0101100", placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",), min_short_standing_s=0.01)
    assert spans(feed(cs, rows)) == [(0, 7, True, False, False)]
    assert cs.calibration_["pelvis"].window == (0.03, 0.04)


def test_timeout_zero_releases_every_row_at_once() -> None:
    rows = make_rows("0" * 30, placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",), timeout_s=0.0)
    assert spans(cs.update(rows)) == [(0, 30, False, False, False)]
    assert cs.finish() == [] and cs.messages_ == [
        "no standing-still period in the first 0 s: angles withheld (empty) until the patient stands still "
        "for 3 s", NO_STANDING]


@pytest.mark.parametrize("chunk", [None, 7, 1])
def test_timeout_longer_than_the_standing_window(chunk: int | None) -> None:
    """A 4 s timeout and a 3 s window ended by movement at row 1300: on row 1299, rows before 900 were 4 s
    old; those are released uncalibrated, the window's calibration applies from row 900."""
    rows = make_rows("0" * 1000 + "1" * 300 + "0" * 200, placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",), timeout_s=4.0)
    assert spans(feed(cs, rows, chunk, finish=False)) == [
        (0, 900, False, False, False), (900, 1300, True, False, False), (1300, 1500, True, False, True)]
    # a 6 s timeout and a 5 s window (found on its last row, 1499): released up to 1499 - 600
    rows = make_rows("0" * 1000 + "1" * 600, placements=("pelvis",))
    cs = CalibrationSearch(("pelvis",), timeout_s=6.0)
    assert spans(feed(cs, rows, chunk, finish=False)) == [
        (0, 899, False, False, False), (899, 1500, True, False, False), (1500, 1600, True, False, True)]


@pytest.mark.parametrize("chunk", [None, 1])
def test_rows_numbered_from_far_into_the_session(chunk: int | None) -> None:
    """Rows 1000-2200 (the session started earlier): the same decisions, shifted; the functional movement is
    the one between the window and the search's end (a symmetric swing), not the walking after it."""
    n = 1200
    still = np.zeros(n, dtype=bool)
    still[50:450] = True
    hip = hip_series(n, [(0, "stand"), (450, "turn"), (750, "walk")])
    rows = make_rows(still, {"thigh_left": hip, "thigh_right": hip}, k0=1000)
    cs = CalibrationSearch(PL3)
    assert spans(feed(cs, rows, chunk, finish=False)) == [(1000, 1750, True, False, False),
                                                          (1750, 2200, True, False, True)]
    for p in ("thigh_left", "thigh_right"):
        cal = cs.calibration_[p]
        assert cal.method == "standing+functional" and cal.window == (10.5, 14.49)
        assert cal.reasons == ["flexion direction not confirmed by the movement; placement prior used"]


def test_mark_given_late_counts_the_movement_already_buffered() -> None:
    rows = _thigh_session(1200, 450, 450, stand=(0, 0))  # no still flags at all
    cs = CalibrationSearch(PL3)
    assert cs.update(rows.slice(0, 900)) == []
    cs.mark(0.5, 4.49)  # rows 50-450; both thighs turned 450 rows since
    assert cs.state_ == WAITING
    out = cs.update(rows.slice(900, 901))
    assert spans(out) == [(0, 750, True, False, False), (750, 901, True, False, True)]


def test_pelvis_walking_axis_through_the_search() -> None:
    """The pelvis gets the rows after the window up to the end of the thighs' search as its movement
    (walking: the axis from walking); an upper lumbar sensor does not."""
    placements = ("pelvis", "lumbar_upper", "thigh_left")
    n = 2900
    t = np.arange(n - 500) / R
    ph = 2 * np.pi * t / 1.1
    walk_q = qm.multiply(qm.from_axis_angle(EY, 4 * np.pi / 180 * np.cos(ph)),
                         qm.from_axis_angle(EX, 4 * np.pi / 180 * np.sin(ph)))
    walk_q = qm.multiply(walk_q, qm.from_axis_angle(EZ, 2 * np.pi / 180 * np.sin(2 * ph)))
    yaw = qm.from_axis_angle(EY, 20 * np.pi / 180)
    q = {}
    for p in placements:
        m = qm.multiply(yaw, nominal_mounting(p))
        seg = np.vstack([np.tile(base(0.3), (500, 1)), qm.multiply(base(0.3), walk_q)])
        q[p] = qm.multiply(seg, m)
    still = np.zeros(n, dtype=bool)
    still[100:500] = True
    rows = Rows(np.arange(n), q, np.zeros((n, 2)), np.zeros(n), still,
                {p: angular_velocity(q[p], R) for p in placements})
    cs = CalibrationSearch(placements)
    feed(cs, rows)
    assert cs.calibration_["pelvis"].method == "standing+walking"
    assert cs.calibration_["lumbar_upper"].method == "standing+prior"


def test_settings_reach_the_sensor_calibration() -> None:
    rows = _walking_session()
    cs = CalibrationSearch(PL3)
    feed(cs, rows, finish=False)
    assert cs.calibration_["thigh_left"].quality == 1.0
    cs = CalibrationSearch(PL3, settings=CalibrationSettings(sign_margin=50.0))
    feed(cs, rows, finish=False)
    assert cs.calibration_["thigh_left"].quality == 0.8
    assert cs.calibration_["thigh_left"].reasons == [
        "flexion direction not confirmed by the movement; placement prior used"]


@pytest.mark.parametrize("before,after,functional", [(250, 250, True), (251, 250, False), (249, 250, True)])
def test_short_window_takes_the_longer_side_as_movement(before: int, after: int, functional: bool) -> None:
    """Standing still (not flagged) before, a 1.5 s still window, turning after: the movement is the side with
    more rows, after on a tie."""
    n = before + 150 + after
    still = np.zeros(n, dtype=bool)
    still[before:before + 150] = True
    hip = hip_series(n, [(0, "stand"), (before + 150, "turn")])
    cs = CalibrationSearch(PL3)
    feed(cs, make_rows(still, {"thigh_left": hip, "thigh_right": hip}))
    method = "standing+functional" if functional else "standing+prior"
    assert cs.calibration_["thigh_left"].method == method


def test_quality_of_exactly_one_half_is_not_low() -> None:
    """An unsteady standing window (-0.2) and no movement (-0.3): 0.5, not below it."""
    n = 2600
    still = np.zeros(n, dtype=bool)
    still[50:450] = True
    sway = np.zeros(n)
    sway[50:450] = np.tile([3.0, -3.0], 200) * np.pi / 180
    rows = make_rows(still, {"thigh_left": sway, "thigh_right": hip_series(n, [(0, "stand"), (450, "turn")])})
    cs = CalibrationSearch(PL3)
    feed(cs, rows, finish=False)
    assert cs.calibration_["thigh_left"].quality == 0.5
    assert not any("low calibration quality" in w for w in cs.warnings_)


def test_window_of_one_row_is_released_with_its_calibration() -> None:
    s = CalibrationSettings(min_standing_s=0.01, max_standing_s=0.01)
    cs = CalibrationSearch(("pelvis",), settings=s)
    out = cs.update(make_rows("1", placements=("pelvis",)))
    assert spans(out) == [(0, 1, True, False, False)]


def test_marked_window_is_applied_once() -> None:
    rows = _thigh_session(1200, 450, 450)
    cs = CalibrationSearch(PL3)
    cs.mark(0.5, 4.0)
    for a in range(0, 700, 100):
        assert cs.update(rows.slice(a, a + 100)) == []
    assert cs.messages_ == ["using the marked calibration window 0.50-4.00 s"]


def test_no_sensor_calibrated_still_ends_the_search() -> None:
    """A marked window in which no sensor has data: nothing is calibrated, but the search is over; the rows
    after it flow out at once (with the empty calibration) instead of being held back."""
    rows = make_rows("0" * 600, placements=("pelvis",))
    rows.q["pelvis"][:] = np.nan
    cs = CalibrationSearch(("pelvis",))
    cs.mark(1.0, 4.0)
    out = cs.update(rows.slice(0, 450))
    assert spans(out) == [(0, 401, True, False, False), (401, 450, True, False, True)]
    assert cs.calibration_ == {} and cs.state_ == CALIBRATED
    assert cs.warnings_ == ["pelvis: not calibrated"]
    out = cs.update(rows.slice(450, 600))
    assert spans(out) == [(450, 600, True, False, True)] and out[0].calibration == {}
    n_msg = len(cs.messages_)
    assert cs.finish() == [] and len(cs.messages_) == n_msg
    cs.mark(2.0, 5.0)
    assert cs.messages_[-1] == "calibration window marked after calibration was done: ignored"
