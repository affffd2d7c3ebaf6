"""One contract test for every processing block (see hipback.processing.blocks).

For each block: fed its input in chunks whose boundaries hypothesis chooses, everything it returns and every
result attribute after ``finish()`` equal (bit for bit, NaN equal to NaN) what it gives fed the input in
one piece; its parameters round-trip through the constructor; ``update`` after ``finish`` raises.
A new block adds one :class:`Case` to :data:`CASES`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipback.processing import (
    ActivityClassifier,
    AngleSeries,
    Block,
    CalibratedRows,
    CalibrationSearch,
    GridChunk,
    GridMerge,
    HoldDetector,
    PlausibilityGuard,
    Rows,
    SensorChannel,
    SessionSummary,
    SlipMonitor,
    StrideDetector,
)
from hipback.processing import quaternion as qm
from hipback.processing.acc_bias import AccBiasEstimator
from hipback.processing.blocks import params_equal
from hipback.processing.summary import SummaryInput
from hipback.processing.types import SensorStream
from hipback.simulator.session import simulate
from tests.test_acc_bias import poses_stream, spread_poses

PLACEMENTS = ("pelvis", "thigh_left", "thigh_right")


# -- inputs (built once) ------------------------------------------------------------------------------------
@cache
def session():
    return simulate("short", seed=4)


@cache
def truth_angles() -> AngleSeries:
    """The virtual patient's true angles with a few impossible stretches (for the guard and detectors)."""
    a = session().truth.angles()
    hip = a.hip_flexion_left.copy()
    hip[1500:1520] = math.radians(-120.0)  # out of range
    hip[2500] += math.radians(40.0)  # a one-row jump
    lum = np.where(np.isnan(a.lumbar_flexion), 0.0, a.lumbar_flexion)
    lum[3000:3010] = math.radians(100.0)
    return dataclasses.replace(a, hip_flexion_left=hip, lumbar_flexion=lum)


@cache
def poses() -> SensorStream:
    """A raw sensor with an accelerometer offset, still in many postures (for the offset estimator)."""
    return poses_stream(spread_poses(12), still_s=2.5, move_s=1.0)[0]


@cache
def walk_session():
    return simulate("walk", seed=5, calib_s=5.0, walk_s=15.0, stand_s=5.0)


@cache
def grid_chunks() -> dict[str, GridChunk]:
    rec = session().recording
    return {
        p: SensorChannel(p, rec.streams[p].kind, rec.streams[p].rate_hz).update(rec.streams[p])
        for p in PLACEMENTS
    }


@cache
def merged_rows(walk: bool = False) -> Rows:
    rec = (walk_session() if walk else session()).recording
    m = GridMerge(PLACEMENTS)
    out = [
        m.update(SensorChannel(p, rec.streams[p].kind, rec.streams[p].rate_hz).update(rec.streams[p]))
        for p in PLACEMENTS
    ]
    out.append(m.finish())
    return Rows.concat([r for r in out if len(r)])


@cache
def calibrated_rows() -> tuple[CalibratedRows, ...]:
    """Calibrated rows of a walk whose right thigh sensor turns on the leg mid-walk (seen standing later)."""
    rows = merged_rows(walk=True)
    t = rows.k / 100.0
    turn = qm.from_axis_angle([0.0, 1.0, 0.0], math.radians(20.0) * np.clip((t - 12.0) / 0.5, 0, 1))
    rows = dataclasses.replace(rows, q={**rows.q, "thigh_right": qm.multiply(rows.q["thigh_right"], turn)})
    cs = CalibrationSearch(PLACEMENTS)
    return tuple(cs.update(rows) + cs.finish())


# -- splitting and comparing -------------------------------------------------------------------------------
def cut_points(n: int, cuts: list[int]) -> list[tuple[int, int]]:
    idx = sorted({c * n // 1000 for c in cuts} | {0, n})
    return [(a, b) for a, b in zip(idx[:-1], idx[1:], strict=True) if b > a]


def slice_rows(r: Rows, cuts: list[int]) -> list[Rows]:
    return [r.slice(a, b) for a, b in cut_points(len(r), cuts)]


def split_merge_input(whole: dict[str, GridChunk], cuts: list[int]) -> list[GridChunk]:
    """Each sensor's rows cut at the same fractions; the pieces interleaved in an order the cuts define."""
    queues = {}
    for p, c in whole.items():
        queues[p] = [GridChunk(p, c.k[a:b], c.quat[a:b], c.acc[a:b]) for a, b in cut_points(len(c), cuts)]
    out, i = [], 0
    while any(queues.values()):
        names = [k for k, v in queues.items() if v]
        out.append(queues[names[(cuts[i % len(cuts)] if cuts else 0) % len(names)]].pop(0))
        i += 1
    return out


def split_calibrated(whole: tuple[CalibratedRows, ...], cuts: list[int]) -> list[CalibratedRows]:
    return [dataclasses.replace(cr, rows=piece) for cr in whole for piece in slice_rows(cr.rows, cuts)]


def assert_same(a: Any, b: Any, path: str = "") -> None:
    """Recursive equality with NaN == NaN for arrays, floats, dataclasses, dicts and sequences."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=path)
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), path
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{path}: {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def rows_digest(parts: list[Rows]) -> dict[str, Any]:
    parts = [p for p in parts if len(p)]
    r = Rows.concat(parts) if parts else Rows.empty(PLACEMENTS)
    return {"k": r.k, "q": r.q, "acc": r.acc, "motion": r.motion, "still": r.still, "omega": r.omega}


def calibrated_digest(parts: list[CalibratedRows]) -> dict[str, Any]:
    parts = [p for p in parts if len(p.rows)]
    per_row = []
    for p in parts:
        cal = p.calibration or {}
        qs = np.array([cal[x].q_segment_in_sensor if x in cal else [np.nan] * 4 for x in PLACEMENTS])
        per_row.append(np.repeat(qs.reshape(1, -1), len(p.rows), axis=0))
        per_row.append(np.full((len(p.rows), 1), 2.0 * p.checked + p.swap))
    return {
        "k": np.concatenate([p.rows.k for p in parts]),
        "cal": np.concatenate(per_row[0::2]),
        "flags": np.concatenate(per_row[1::2]),
    }


def angles_digest(parts: list[AngleSeries]) -> AngleSeries:
    return AngleSeries.concat([p for p in parts if len(p)])


# -- the blocks ----------------------------------------------------------------------------------------------
@dataclass
class Case:
    name: str
    make: Callable[[], Block]
    whole: Callable[[], Any]
    split: Callable[[Any, list[int]], list[Any]]
    digest: Callable[[list[Any]], Any]
    results: tuple[str, ...]


def _flat(outs: list[Any]) -> list[Any]:
    return [x for o in outs for x in o]


def _stream_split(s: SensorStream, cuts: list[int]) -> list[SensorStream]:
    return [s.slice(a, b) for a, b in cut_points(len(s), cuts)]


def _grid_digest(outs: list[GridChunk]) -> dict[str, Any]:
    return {
        "k": np.concatenate([o.k for o in outs]),
        "quat": np.concatenate([o.quat for o in outs]),
        "acc": np.concatenate([o.acc for o in outs]),
    }


def _summary_split(a: AngleSeries, cuts: list[int]) -> list[SummaryInput]:
    det = StrideDetector("left")
    out = []
    for x, y in cut_points(len(a), cuts):
        piece = a.slice(x, y)
        out.append(SummaryInput(piece, strides=det.update(piece)))
    out.append(SummaryInput(AngleSeries.empty(), strides=det.finish(), calibration={}))
    return out


CASES = [
    Case(
        "SensorChannel",
        lambda: SensorChannel("pelvis", "raw", session().recording.streams["pelvis"].rate_hz),
        lambda: session().recording.streams["pelvis"],
        _stream_split,
        _grid_digest,
        ("gaps_", "invalid_", "non_unit_", "dropped_backwards_", "messages_"),
    ),
    Case(
        "SensorChannel lagged",
        lambda: SensorChannel(
            "thigh_left", "raw", session().recording.streams["thigh_left"].rate_hz, orientation="lagged"
        ),
        lambda: session().recording.streams["thigh_left"],
        _stream_split,
        _grid_digest,
        ("gaps_", "invalid_", "non_unit_", "dropped_backwards_", "messages_"),
    ),
    Case(
        "AccBiasEstimator",
        lambda: AccBiasEstimator(100.0, initial=(0.01, 0.0, -0.01)),
        poses,
        _stream_split,
        lambda outs: np.concatenate(outs),
        (
            "estimate_",
            "sigma_",
            "gravity_",
            "condition_",
            "n_directions_",
            "trusted_",
            "applied_",
            "updates_",
        ),
    ),
    Case(
        "SensorChannel acc bias",
        lambda: SensorChannel(
            "thigh_left", "raw", 100.0, acc_bias=True, acc_bias_params={"min_directions": 5}
        ),
        poses,
        _stream_split,
        _grid_digest,
        ("gaps_", "invalid_", "acc_bias_"),
    ),
    Case(
        "GridMerge",
        lambda: GridMerge(PLACEMENTS),
        grid_chunks,
        split_merge_input,
        rows_digest,
        ("n_rows_",),
    ),
    Case(
        "CalibrationSearch",
        lambda: CalibrationSearch(PLACEMENTS),
        merged_rows,
        slice_rows,
        lambda outs: calibrated_digest(_flat(outs)),
        ("calibration_", "state_", "swap_", "warnings_", "messages_"),
    ),
    Case(
        "SlipMonitor",
        lambda: SlipMonitor(),
        calibrated_rows,
        split_calibrated,
        lambda outs: calibrated_digest(_flat(outs)),
        ("calibration_", "walk_offsets_", "slips_", "warnings_", "messages_"),
    ),
    Case(
        "PlausibilityGuard",
        lambda: PlausibilityGuard(),
        truth_angles,
        lambda a, cuts: [a.slice(x, y) for x, y in cut_points(len(a), cuts)],
        angles_digest,
        ("counts_", "n_rows_"),
    ),
    Case(
        "StrideDetector",
        lambda: StrideDetector("right"),
        truth_angles,
        lambda a, cuts: [a.slice(x, y) for x, y in cut_points(len(a), cuts)],
        _flat,
        ("strides_", "bouts_"),
    ),
    Case(
        "HoldDetector",
        lambda: HoldDetector(),
        truth_angles,
        lambda a, cuts: [a.slice(x, y) for x, y in cut_points(len(a), cuts)],
        _flat,
        ("holds_",),
    ),
    Case(
        "ActivityClassifier",
        lambda: ActivityClassifier(),
        truth_angles,
        lambda a, cuts: [a.slice(x, y) for x, y in cut_points(len(a), cuts)],
        _flat,
        ("bouts_",),
    ),
    Case(
        "SessionSummary",
        lambda: SessionSummary(),
        truth_angles,
        _summary_split,
        lambda outs: None,
        ("summary_",),
    ),
]
IDS = [c.name for c in CASES]


def run(case: Case, cuts: list[int]) -> tuple[Any, dict[str, Any]]:
    block = case.make()
    outs = [block.update(chunk) for chunk in case.split(case.whole(), cuts)]
    outs.append(block.finish())
    return case.digest(outs), {name: getattr(block, name) for name in case.results}


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def case(request) -> Case:
    return request.param


@cache
def reference(name: str) -> tuple[Any, dict[str, Any]]:
    return run(next(c for c in CASES if c.name == name), [])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, 999), min_size=1, max_size=40))
def test_chunking_never_changes_a_result(case: Case, cuts: list[int]):
    out, attrs = run(case, cuts)
    ref_out, ref_attrs = reference(case.name)
    assert_same(out, ref_out, case.name)
    assert_same(attrs, ref_attrs, case.name)


def test_one_sample_chunks_give_the_same_result(case: Case):
    n = {"GridMerge": 1000, "SlipMonitor": 1000}.get(case.name, 1000)
    out, attrs = run(case, list(range(1, n)))  # cut at every 1/1000 (single rows for short inputs)
    ref_out, ref_attrs = reference(case.name)
    assert_same(out, ref_out, case.name)
    assert_same(attrs, ref_attrs, case.name)


def test_the_inputs_exercise_the_blocks():
    """The contract is only worth checking on inputs where the blocks have something to find."""
    _, guard = reference("PlausibilityGuard")
    counts = guard["counts_"]
    assert counts["hip_flexion_left"]["range"] == 20 and counts["lumbar_flexion"]["range"] == 10
    assert guard["counts_"]["hip_flexion_left"]["rate"] >= 1
    assert len(reference("StrideDetector")[1]["strides_"]) >= 5
    assert len(reference("HoldDetector")[1]["holds_"]) >= 1
    assert {b.label for b in reference("ActivityClassifier")[1]["bouts_"]} >= {"walking", "standing"}
    assert reference("CalibrationSearch")[1]["state_"] == "calibrated"
    assert any(s[0] == "thigh_right" for s in reference("SlipMonitor")[1]["slips_"])
    assert reference("SessionSummary")[1]["summary_"]["n_strides_left"] >= 5
    assert len(reference("AccBiasEstimator")[1]["updates_"]) >= 2
    assert reference("AccBiasEstimator")[1]["trusted_"]
    assert np.any(reference("SensorChannel acc bias")[1]["acc_bias_"] != 0.0)


def test_parameters_round_trip(case: Case):
    block = case.make()
    params = block.get_params()
    again = type(block)(**params)
    assert params_equal(again.get_params(), params)
    assert params_equal(block.clone().get_params(), params)
    assert repr(block).startswith(type(block).__name__ + "(")


def test_update_after_finish_raises(case: Case):
    block = case.make()
    block.finish()
    chunk = case.split(case.whole(), [500])[0]
    with pytest.raises(RuntimeError):
        block.update(chunk)
