"""The live path's small steps through the whole session processor: a step of a few rows takes Python-float
paths in the grid merge (stillness), the slip monitor (thigh speeds, still periods, walk-axis rows), the
session processor (segment orientations), the sensor channel, the resampler and the guard
(``SMALL_CHUNK``, ``SMALL_PUSH``). Fed the same chunks with those paths on and off, a session with gaps,
NaN quaternions, a late sample, a slipped sensor and a sensor turning on the leg must give the very same
bits: angles, flags, strides, holds, activity, messages, warnings, calibration and the slip monitor's
records. The resampler's hemisphere decision is also checked on consecutive quaternions whose dot product
is zero or within rounding of it."""

from __future__ import annotations

import numpy as np
import pytest

from hipback.processing import channel as channel_module
from hipback.processing import merge as merge_module
from hipback.processing import orientation as orientation_module
from hipback.processing import pipeline as pipeline_module
from hipback.processing import plausibility as plausibility_module
from hipback.processing import quaternion as qm
from hipback.processing import resample as resample_module
from hipback.processing import slip as slip_module
from hipback.processing.pipeline import SessionProcessor
from hipback.processing.resample import GridResampler
from hipback.processing.slip import SlipMonitor
from hipback.processing.types import Recording
from tests.synth_processing import make_messy_recording


def _messy() -> Recording:
    """Raw left thigh, quaternion pelvis and right thigh: a pelvis gap, NaN quaternions, a late sample, a
    thigh sensor that slips at 10 s and turns on the leg while walking at 20 s."""
    return make_messy_recording(50.0, walk_s=30.0, turn_at_s=20.0, thigh_acc=True)[0]


def _run(rec: Recording, sizes: list[int]) -> tuple[tuple, list]:
    streams = list(rec.streams.values())
    proc = SessionProcessor(
        {s.placement: s.kind for s in streams},
        {s.placement: s.rate_hz for s in streams},
        pipeline_module.ProcessorConfig(live_batch_s=0.02),
    )
    pos = {s.placement: 0 for s in streams}
    polled = []
    i = 0
    while any(pos[s.placement] < len(s) for s in streams):
        for s in streams:
            a = pos[s.placement]
            if a < len(s):
                b = min(a + sizes[i % len(sizes)], len(s))
                proc.feed(s.slice(a, b))
                pos[s.placement] = b
                i += 1
        u = proc.poll()
        polled.append((u.angles.t.tobytes(), u.angles.flags().tobytes(), len(u.strides), len(u.holds),
                       len(u.activity), tuple(u.messages)))
    res = proc.finish()
    a = res.angles
    bits = tuple(
        (name, None if getattr(a, name) is None else np.asarray(getattr(a, name)).tobytes())
        for name in ("t", *a.FIELDS, *a.OPTIONAL, "implausible")
    )
    sm = proc.slip_monitor
    return (
        bits,
        repr([vars(s) for s in res.strides]),
        repr([vars(h) for h in res.holds]),
        repr([vars(b) for b in res.activity]),
        tuple(res.messages),
        tuple(res.warnings),
        repr(res.calibration),
        repr(res.summary),
        repr(sm.walk_offsets_),
        repr(sm.slips_),
    ), polled


@pytest.mark.parametrize("sizes", [[1], [2], [1, 3, 2, 1, 4, 2]])
def test_small_steps_give_the_bits_of_the_numpy_path(monkeypatch: pytest.MonkeyPatch,
                                                     sizes: list[int]) -> None:
    rec = _messy()
    taken = {"segments": 0, "slip": 0}
    seg_small, thigh_fast = pipeline_module._segment_quats_small, SlipMonitor._thigh_fast

    def counted_segments(*args: object) -> object:
        taken["segments"] += 1
        return seg_small(*args)  # type: ignore[arg-type]

    def counted_fast(self: SlipMonitor, rows: object) -> object:
        out = thigh_fast(self, rows)  # type: ignore[arg-type]
        taken["slip"] += any(isinstance(v, list) for v in out.values())
        return out

    monkeypatch.setattr(pipeline_module, "_segment_quats_small", counted_segments)
    monkeypatch.setattr(SlipMonitor, "_thigh_fast", counted_fast)
    fast, fast_polled = _run(rec, sizes)
    assert taken["segments"] > 200 and taken["slip"] > 200  # the small paths really ran
    for module in (channel_module, merge_module, orientation_module, pipeline_module, plausibility_module,
                   slip_module):
        monkeypatch.setattr(module, "SMALL_CHUNK", 0)
    monkeypatch.setattr(resample_module, "SMALL_PUSH", 0)
    slow, slow_polled = _run(rec, sizes)
    for got, want in zip(fast, slow, strict=True):
        assert got == want
    assert fast_polled == slow_polled
    # the session exercises what the small paths decide: stillness, a slip found while standing after
    # walking, the walk-axis windows of both thighs, gaps, NaN and late samples, strides
    assert "slipped" in " ".join(fast[5])
    assert fast[8].count("thigh_right") >= 2 and fast[8].count("thigh_left") >= 2
    assert fast[1].count("side") > 10
    text = " ".join(fast[4])
    assert "gap of" in text and "did not move forward" in text and "invalid quaternion" in text


def test_small_pushes_decide_the_hemisphere_as_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Consecutive quaternions whose dot product is exactly zero, a few units of rounding either side of it,
    or clearly positive or negative: the small push takes the numpy path's decision (sign flip or not)."""
    rng = np.random.default_rng(5)
    n = 600
    t = np.arange(n) / 100.0 + 0.003
    q = np.empty((n, 4))
    q[0] = qm.normalize(rng.normal(size=4))
    for i in range(1, n):
        r = rng.normal(size=4)
        r -= (r @ q[i - 1]) * q[i - 1]  # orthogonal to the previous one
        r /= np.linalg.norm(r)
        mode = i % 5
        if mode == 0:
            q[i] = r  # dot product zero or within rounding of it
        elif mode == 1:
            q[i] = qm.normalize(r + rng.choice([-1e-15, 1e-15, 3e-16]) * q[i - 1])  # a hair off zero
        else:
            q[i] = qm.normalize(r + rng.choice([-1.0, 1.0, 0.3]) * q[i - 1])
    s = rng.normal(size=(n, 2))

    def run() -> list:
        r = GridResampler(100.0, 0.025)
        out = []
        a = i = 0
        sizes = [1, 2, 3, 1, 5]
        while a < n:
            b = min(a + sizes[i % len(sizes)], n)
            k, qo, so = r.push(t[a:b], q[a:b], s[a:b])
            out.append((k.tobytes(), qo.tobytes(), None if so is None else so.tobytes()))
            a, i = b, i + 1
        return out

    taken = {"small": 0}
    push_small = GridResampler._push_small

    def counted(self: GridResampler, *args: object) -> object:
        res = push_small(self, *args)  # type: ignore[arg-type]
        taken["small"] += res is not None
        return res

    monkeypatch.setattr(GridResampler, "_push_small", counted)
    fast = run()
    assert taken["small"] > 20
    monkeypatch.setattr(resample_module, "SMALL_PUSH", 0)
    assert fast == run()


def test_small_merge_steps_give_the_stillness_bits_of_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Grid rows turning near the stillness threshold with x axes near the tilt limit, NaN rows of a thigh
    (no veto) and of the pelvis (veto): the merge's stillness flags, angular velocities and rows, fed in
    small steps, are the numpy path's bits."""
    from hipback.processing.channel import GridChunk
    from hipback.processing.merge import GridMerge

    rng = np.random.default_rng(8)
    n = 1500
    placements = ("pelvis", "thigh_left", "thigh_right")
    data = {}
    for j, p in enumerate(placements):
        # the x axis swings 3 deg about 45 deg from the vertical (the limit) while the sensor spins about
        # its x axis at 0-0.3 rad/s: the speed and the tilt both cross the stillness limits
        i = np.arange(n)
        theta = np.radians(-45.0 + 3.0 * np.sin(2.0 * np.pi * i / 300.0 + 0.3 * j))
        phi = np.cumsum(rng.uniform(0.0, 0.003, n))
        q = qm.multiply(qm.from_axis_angle([0.0, 1.0, 0.0], theta),
                        qm.from_axis_angle([1.0, 0.0, 0.0], phi))
        q[rng.integers(0, n, 20)] = np.nan
        data[p] = (q, rng.normal(0.0, 1.0, (n, 2)))

    def run() -> list:
        merge = GridMerge(placements, rate_hz=100.0)
        out = []
        pos = {p: 0 for p in placements}
        sizes = [1, 2, 3, 1, 2]
        i = 0
        while any(v < n for v in pos.values()):
            for p in placements:
                a = pos[p]
                b = min(a + sizes[i % len(sizes)], n)
                i += 1
                if a == b:
                    continue
                q, acc = data[p]
                merge.add(GridChunk(p, np.arange(a, b, dtype=np.int64), q[a:b], acc[a:b], 0, b))
                pos[p] = b
            rows = merge.update(GridChunk("pelvis", np.zeros(0, dtype=np.int64), np.zeros((0, 4)),
                                          np.zeros((0, 2)), 0, pos["pelvis"]))
            out.append((rows.k.tobytes(), rows.still.tobytes(),
                        [rows.omega[p].tobytes() for p in placements], rows.motion.tobytes()))
        return out

    fast = run()
    still = np.concatenate([np.frombuffer(s, dtype=bool) for _, s, _, _ in fast])
    assert 0.05 < still.mean() < 0.95  # both decisions taken many times
    monkeypatch.setattr(merge_module, "SMALL_CHUNK", 0)
    assert fast == run()


def test_small_slip_steps_decide_the_thigh_speeds_as_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thigh angular velocities at, just around and far from the motion limit, NaN and infinite: a live
    step's fast-rotation flags are the numpy path's."""
    from hipback.processing.merge import Rows

    rng = np.random.default_rng(4)
    mon = SlipMonitor()
    mon.calibration_ = {"thigh_left": None, "thigh_right": None}  # type: ignore[dict-item]
    limit = mon.motion_gyr_rad_s
    n = 3000
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    speed = limit * (1.0 + rng.choice([0.0, 1e-16, -1e-16, 1e-12, -1e-12, 1e-6, -1e-6, 0.3, -0.3], n))
    w = direction * speed[:, None]
    w[rng.integers(0, n, 30)] = np.nan
    w[rng.integers(0, n, 10), 1] = np.inf
    fast_bits, slow_bits = [], []
    for a in range(0, n, 6):
        rows = Rows(np.arange(a, a + 6), {}, np.zeros((6, 4)), np.zeros(6), np.zeros(6, dtype=bool),
                    {"thigh_left": w[a:a + 6], "thigh_right": w[::-1][a:a + 6]})
        fast_bits.append({p: list(v) for p, v in mon._thigh_fast(rows).items()})
        with monkeypatch.context() as m:
            m.setattr(slip_module, "SMALL_CHUNK", 0)
            slow_bits.append({p: [bool(x) for x in v] for p, v in mon._thigh_fast(rows).items()})
    assert fast_bits == slow_bits
    flags = [x for d in fast_bits for v in d.values() for x in v]
    assert 0.2 < np.mean(flags) < 0.8
