"""The live session processor carries the gyroscope of on-device fusion sensors into the exercise blocks'
segment frames, as the benchmark's :func:`~hipback.processing.exercises.stream.recording_frame` does."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.blocks import Block
from hipback.processing.calibration import SensorCalibration
from hipback.processing.calibration_search import CalibratedRows, CalibrationSearch
from hipback.processing.channel import SensorChannel, take
from hipback.processing.exercises.stream import (
    ExerciseBlock,
    SegmentFrame,
    _grid_gyro,
)
from hipback.processing.merge import GridMerge, Rows
from hipback.processing.pipeline import ProcessorConfig, SessionProcessor
from hipback.processing.types import SensorStream
from tests.test_exercises_gyro_heading import CAT, PROGRAMME, session


class _Sets(Block):
    """Keeps the segment frames it is given and runs one exercise block per set on them."""

    def __init__(self, *, blocks: tuple[ExerciseBlock, ...] = ()) -> None:
        self.blocks = blocks
        self.frames: list[SegmentFrame] = []

    def update(self, chunk: SegmentFrame) -> list:
        self.frames.append(chunk)
        return [r for b in self.blocks for r in b.update(chunk)]

    def finish(self) -> list:
        return [r for b in self.blocks for r in b.finish()]


def _blocks(offsets: dict[str, float], worn: frozenset[str]) -> tuple[ExerciseBlock, ...]:
    """One exercise block per set of the session (each over the whole session)."""
    s = session()[0]
    out = []
    for i, ts in enumerate(s.truth.sets):
        ex = CAT[ts.exercise]
        out.append(
            ExerciseBlock(
                exercise=ex,
                side=ts.side,
                posture=CAT.postures[ex.start_posture],
                worn=worn,
                hold_s=PROGRAMME[i].hold_s,
                initial_offsets=offsets,
            )
        )
    return tuple(out)


def _live(streams: dict[str, SensorStream], step: int | None, blocks: tuple[ExerciseBlock, ...]) -> _Sets:
    """The session processor fed ``step`` samples of every sensor in turn (None: each stream whole)."""
    proc = SessionProcessor(
        {p: s.kind for p, s in streams.items()},
        {p: s.rate_hz for p, s in streams.items()},
        exercises=_Sets(blocks=blocks),
    )
    if step is None:
        for s in streams.values():
            proc.feed(s)
    else:
        n = max(len(s.t) for s in streams.values())
        for a in range(0, n, step):
            for s in streams.values():
                if a < len(s.t):
                    proc.feed(take(s, np.arange(a, min(a + step, len(s.t)))))
    proc.finish()
    return proc.exercises


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


@pytest.fixture(scope="module")
def reference():
    """recording_frame of the session and exercise blocks fed with it (the benchmark's path)."""
    s, frame, offsets = session()
    blocks = _blocks(offsets, frozenset(frame.segments))
    ref = _Sets(blocks=tuple(b.clone() for b in blocks))
    for a in range(0, len(frame), 500):
        ref.update(frame.slice(a, a + 500))
    ref.finish()
    return s, frame, blocks, ref


@pytest.mark.parametrize("step", [None, 11, 2])
def test_live_frames_and_exercise_results_equal_the_recording_frames(reference, step):
    s, frame, blocks, ref = reference
    live = _live(s.recording.streams, step, blocks)
    got = SegmentFrame.concat(live.frames)
    assert _same(got.t, frame.t)
    assert set(got.segments) == set(frame.segments)
    assert all(_same(got.segments[p], frame.segments[p]) for p in frame.segments)
    # the gyroscope of every on-device fusion sensor, in its segment's frame, on every row
    assert set(got.gyr) == set(frame.gyr) == {"pelvis", "thigh_left", "thigh_right"}
    assert all(_same(got.gyr[p], frame.gyr[p]) for p in frame.gyr)
    assert all(f.gyr.keys() == frame.gyr.keys() for f in live.frames)
    for b, r in zip(live.blocks, ref.blocks, strict=True):
        assert len(r.reps_) >= 2 and b.reps_ == r.reps_


def test_without_the_gyroscope_the_live_results_are_the_fused_headings(reference):
    """What the test above guards against: the sensors' gyroscope left out (a quaternion sensor that does
    not deliver it: NaN), the blocks take the fused heading, as fed the frame without a gyroscope (other
    peaks than with it)."""
    s, frame, blocks, ref = reference
    streams = {p: dataclasses.replace(st, gyr=None) for p, st in s.recording.streams.items()}
    live = _live(streams, 11, blocks)
    got = SegmentFrame.concat(live.frames)
    assert set(got.gyr) == set(frame.gyr) and all(np.isnan(g).all() for g in got.gyr.values())
    fused = _Sets(blocks=tuple(b.clone() for b in blocks))
    fused.update(SegmentFrame(frame.t, frame.segments))
    fused.finish()
    for b, f in zip(live.blocks, fused.blocks, strict=True):
        assert b.reps_ == f.reps_
    peaks = [[x.primary_peak_rad for x in b.reps_] for b in live.blocks]
    assert peaks != [[x.primary_peak_rad for x in b.reps_] for b in ref.blocks]


def _quat_stream(p: str, n: int, seed: int, rate_hz: float = 60.0, gaps: bool = True) -> SensorStream:
    """An on-device fusion sensor at ``rate_hz`` with jittered times (and two gaps), turning slowly, its
    gyroscope delivered (rad/s, sensor frame)."""
    rng = np.random.default_rng(seed)
    t = 0.013 + np.arange(n) / rate_hz + rng.uniform(-0.002, 0.002, n)
    if gaps:
        t[n // 3 :] += 0.2  # a gap
        t[2 * n // 3 :] += 0.02  # a step just over 2.5 periods: a gap too
    ang = 0.3 * np.sin(t)
    quat = np.column_stack([np.cos(ang / 2), np.zeros(n), np.sin(ang / 2) * 0.6, np.sin(ang / 2) * 0.8])
    gyr = rng.normal(0.0, 0.5, (n, 3))
    acc = rng.normal(0.0, 1.0, (n, 3)) + [0.0, 0.0, 9.81]
    return SensorStream(p, "quat", t, rate_hz, quat=quat, acc=acc, gyr=gyr)


def _run_channel(ch: SensorChannel, s: SensorStream, cuts: list[int]):
    parts = [ch.update(take(s, np.arange(a, b))) for a, b in zip([0, *cuts], [*cuts, len(s.t)], strict=True)]
    parts.append(ch.finish())
    k = np.concatenate([c.k for c in parts])
    return k, np.concatenate([c.quat for c in parts]), np.concatenate([c.acc for c in parts]), parts


@pytest.mark.parametrize("placement", ["pelvis", "lumbar_upper"])  # with and without acceleration features
def test_the_channel_resamples_the_gyroscope_as_the_recording_frame_does(placement):
    s = _quat_stream(placement, 400, 1)
    whole = _run_channel(SensorChannel(placement, "quat", 60.0, gyroscope=True), s, [])
    gyr = np.concatenate([c.gyr for c in whole[3]])
    k0, want = _grid_gyro(s, 100.0)
    assert whole[0][0] == k0 and len(whole[0]) == len(want)
    assert _same(gyr, want)  # linear between neighbours, NaN across the gaps
    assert np.isnan(gyr).any() and np.isfinite(gyr).sum() > 0.9 * gyr.size
    # the live chunks (1 to 12 samples: the Python-float path) give the very same values, and the
    # orientation and acceleration are those of a channel without the gyroscope
    rng = np.random.default_rng(2)
    cuts = np.cumsum(rng.integers(1, 13, 200))
    cuts = cuts[cuts < len(s.t)].tolist()
    live = _run_channel(SensorChannel(placement, "quat", 60.0, gyroscope=True), s, cuts)
    assert _same(live[0], whole[0]) and _same(live[1], whole[1]) and _same(live[2], whole[2])
    assert _same(np.concatenate([c.gyr for c in live[3]]), gyr)
    plain = _run_channel(SensorChannel(placement, "quat", 60.0), s, cuts)
    assert all(c.gyr is None for c in plain[3])
    assert _same(plain[0], live[0]) and _same(plain[1], live[1]) and _same(plain[2], live[2])


def test_the_channel_gyroscope_is_nan_where_a_chunk_has_none_and_raw_channels_carry_none():
    s = _quat_stream("pelvis", 120, 3, gaps=False)
    ch = SensorChannel("pelvis", "quat", 60.0, gyroscope=True)
    a = ch.update(take(s, np.arange(0, 60)))
    b = ch.update(dataclasses.replace(take(s, np.arange(60, 120)), gyr=None))
    assert np.isfinite(a.gyr).all() and np.isnan(b.gyr).all() and len(b.gyr) == len(b)
    raw = SensorStream("pelvis", "raw", s.t, 60.0, acc=s.acc, gyr=s.gyr)
    out = SensorChannel("pelvis", "raw", 60.0, gyroscope=True).update(raw)
    assert len(out) > 0 and out.gyr is None


def test_the_merge_carries_the_gyroscope_of_the_named_sensors():
    pl = ("pelvis", "thigh_left", "thigh_right")
    streams = {p: _quat_stream(p, 300, i, gaps=False) for i, p in enumerate(pl)}
    streams["thigh_right"] = dataclasses.replace(streams["thigh_right"], gyr=None)  # delivers none
    grids = {p: _run_channel(SensorChannel(p, "quat", 60.0, gyroscope=True), s, [100, 200])[3]
             for p, s in streams.items()}
    merge = GridMerge(pl, gyroscope=("pelvis", "thigh_right", "lumbar_upper"))
    assert merge.gyroscope == ("pelvis", "thigh_right")  # session sensors only
    out = [merge.update(c) for i in range(4) for p in pl for c in grids[p][i : i + 1]]
    rows = Rows.concat([*out, merge.finish()])
    assert set(rows.gyr) == {"pelvis", "thigh_right"} and np.isnan(rows.gyr["thigh_right"]).all()
    g = np.concatenate([c.gyr for c in grids["pelvis"]])
    k = np.concatenate([c.k for c in grids["pelvis"]])
    assert _same(rows.gyr["pelvis"][np.searchsorted(rows.k, k)], g)
    assert _same(rows.slice(5, 40).gyr["pelvis"], rows.gyr["pelvis"][5:40])
    # a part without a gyroscope joins as NaN (never dropped, never misaligned); empty rows carry the keys
    parts = [rows.slice(0, 10), dataclasses.replace(rows.slice(10, 20), gyr={}), rows.slice(20, len(rows))]
    joined = Rows.concat(parts)
    assert np.isfinite(g).all() and np.isnan(joined.gyr["pelvis"][10:20]).all()
    assert _same(joined.gyr["pelvis"][20:], rows.gyr["pelvis"][20:])
    assert set(Rows.empty(pl, ("pelvis",)).gyr) == {"pelvis"} and Rows.empty(pl).gyr == {}
    assert GridMerge(pl).update(grids["pelvis"][0]).gyr == {}


class _SwappedSearch(CalibrationSearch):
    """A calibration search that finds the thigh sensors on the wrong sides."""

    def update(self, chunk):
        return [CalibratedRows(c.rows, c.calibration, True, c.checked) for c in super().update(chunk)]


def test_the_segment_gets_the_gyroscope_of_its_sensor_turned_into_its_frame_with_swapped_thighs():
    kinds = {"pelvis": "quat", "thigh_left": "quat", "thigh_right": "quat", "lumbar_upper": "raw"}
    n = 200
    t = np.arange(n) / 100.0
    streams = {}
    for i, p in enumerate(kinds):
        quat = np.tile(qm.from_axis_angle([0.0, 1.0, 0.0], 0.1 * i), (n, 1))
        gyr = np.tile([0.1 * (i + 1), -0.02 * i, 0.03], (n, 1))  # each sensor its own constant rate
        acc = np.tile([0.0, 0.0, 9.81], (n, 1))
        if kinds[p] == "quat":
            streams[p] = SensorStream(p, "quat", t, 100.0, quat=quat, acc=acc, gyr=gyr)
        else:
            streams[p] = SensorStream(p, "raw", t, 100.0, acc=acc, gyr=gyr)
    cal = {
        p: SensorCalibration(p, qm.from_axis_angle([0.3, -0.5, 0.8], 0.4 + 0.3 * i), 0.9)
        for i, p in enumerate(kinds)
    }
    search = _SwappedSearch(tuple(kinds), initial_calibration=cal)
    proc = SessionProcessor(kinds, dict.fromkeys(kinds, 100.0), ProcessorConfig(initial_calibration=cal),
                            calibration=search, exercises=_Sets())
    for a in range(0, n, 7):
        for s in streams.values():
            proc.feed(take(s, np.arange(a, min(a + 7, n))))
    proc.finish()
    frame = SegmentFrame.concat(proc.exercises.frames)
    assert len(frame) > 100
    # the raw sensor's orientation already comes from its gyroscope: nothing carried for it
    assert set(frame.gyr) == {"pelvis", "thigh_left", "thigh_right"}
    for p, src in (("pelvis", "pelvis"), ("thigh_left", "thigh_right"), ("thigh_right", "thigh_left")):
        want = qm.rotate(qm.conjugate(cal[p].q_segment_in_sensor), streams[src].gyr[0])
        np.testing.assert_allclose(frame.gyr[p], np.tile(want, (len(frame), 1)), rtol=0, atol=1e-12)
    # without an exercise block nothing is carried
    plain = SessionProcessor(kinds, dict.fromkeys(kinds, 100.0))
    assert not any(c.gyroscope for c in plain.channels.values()) and plain.merge.gyroscope == ()
