"""The live path's small chunks: a sensor channel (and its grid resampler) given the few samples of a BLE
packet, and the plausibility guard given the few rows of a live step, compute them on Python floats
(``SMALL_CHUNK``, ``SMALL_PUSH``); the grid rows, acceleration features, flags, angles, counters, gaps and
messages must be the very bits the numpy path gives for the same chunks, on clean data and on data with
every kind of fault (gaps, time going backwards or standing still, NaN and infinite times, NaN, zero and
non-unit quaternions, NaN and infinite accelerations, quaternion sign flips, NaN raw samples and
magnetometer rows (whose VQF orientation is decided on Python floats too, 6D and 9D); joint angles out of
range, too fast, NaN)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing import channel as channel_module
from hipback.processing import orientation as orientation_module
from hipback.processing import plausibility as plausibility_module
from hipback.processing import resample as resample_module
from hipback.processing.channel import SensorChannel
from hipback.processing.orientation import OrientationEstimator
from hipback.processing.plausibility import PlausibilityGuard
from hipback.processing.resample import GridResampler
from hipback.processing.types import AngleSeries, SensorStream


def _stream(seed: int, kind: str, n: int = 600, faults: bool = True) -> SensorStream:
    rng = np.random.default_rng(seed)
    t = 3.0 + np.cumsum(rng.uniform(0.008, 0.012, n))
    angle = np.cumsum(rng.normal(0.0, 0.05, n))
    axis = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    quat = np.column_stack([np.cos(angle / 2), np.outer(np.sin(angle / 2), axis)])
    quat[rng.random(n) < 0.2] *= -1.0  # the same rotation, the other sign
    acc = rng.normal(0.0, 3.0, (n, 3)) + [0.0, 0.0, 9.81]
    gyr = rng.normal(0.0, 0.5, (n, 3))
    # a raw sensor with a magnetometer from seed 3 on (VQF 9D), some of its rows NaN or infinite
    mag = rng.normal(0.0, 20.0, (n, 3)) + [20.0, 0.0, -40.0] if seed >= 3 and kind == "raw" else None
    if faults:
        for _ in range(6):
            i = int(rng.integers(5, n - 5))
            t[i:] += rng.choice([0.05, 0.3, 1.0])  # gaps short and long
        for i in rng.integers(1, n, 8):
            t[i] = t[i - 1] - rng.choice([0.0, 0.004, 0.5])  # standing still or going backwards
        t[rng.integers(0, n, 3)] = np.nan
        t[int(rng.integers(0, n))] = math.inf
        quat[rng.integers(0, n, 4)] = np.nan
        quat[rng.integers(0, n, 2)] = 0.0
        quat[rng.integers(0, n, 4)] *= 1.04  # non-unit, renormalised
        quat[rng.integers(0, n, 2)] *= 3.0  # far from unit: invalid
        acc[rng.integers(0, n, 4)] = np.nan
        acc[int(rng.integers(0, n)), 1] = math.inf
        gyr[rng.integers(0, n, 3), 2] = np.nan
        if mag is not None:
            mag[rng.integers(0, n, 5)] = np.nan
            mag[int(rng.integers(0, n)), 0] = math.inf
    return SensorStream("thigh_left", kind, t, 100.0, quat=quat if kind == "quat" else None, acc=acc, gyr=gyr,
                        mag=mag)


def _run(stream: SensorStream, sizes: list[int], placement: str) -> tuple[list, SensorChannel]:
    ch = SensorChannel(placement, stream.kind, 100.0)
    out = []
    a = 0
    i = 0
    while a < len(stream):
        b = min(a + sizes[i % len(sizes)], len(stream))
        g = ch.update(stream.slice(a, b))
        out.append((g.k.tobytes(), g.quat.tobytes(), g.acc.tobytes(), g.first_k, g.next_k))
        a, i = b, i + 1
    return out, ch


def _count_small(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the small chunks that took the Python-float paths (so that the comparison is not vacuous)."""
    taken = {"push": 0, "acc": 0, "vqf": 0}
    push_small, acc_small = GridResampler._push_small, channel_module._acc_features_small
    vqf_small = OrientationEstimator._update_small

    def counted_vqf(self: OrientationEstimator, *args: object) -> object:
        out = vqf_small(self, *args)  # type: ignore[arg-type]
        taken["vqf"] += out is not None
        return out

    def counted_push(self: GridResampler, *args: object) -> object:
        out = push_small(self, *args)  # type: ignore[arg-type]
        taken["push"] += out is not None
        return out

    def counted_acc(*args: object) -> object:
        taken["acc"] += 1
        return acc_small(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(GridResampler, "_push_small", counted_push)
    monkeypatch.setattr(channel_module, "_acc_features_small", counted_acc)
    monkeypatch.setattr(OrientationEstimator, "_update_small", counted_vqf)
    return taken


@pytest.mark.parametrize("kind", ["quat", "raw"])
@pytest.mark.parametrize("placement", ["thigh_left", "lumbar_upper"])  # with and without acceleration output
@pytest.mark.parametrize("seed", range(6))
def test_small_chunks_give_the_bits_of_the_numpy_path(monkeypatch: pytest.MonkeyPatch, kind: str,
                                                       placement: str, seed: int) -> None:
    stream = _stream(seed, kind, faults=seed > 0)
    sizes = [1, 2, 3, 2, 5, 6, 1, 4, 11, 2, 7, 13, 12, 30]
    taken = _count_small(monkeypatch)
    fast, ch_fast = _run(stream, sizes, placement)
    assert taken["push"] > 15 and taken["acc"] > (30 if placement == "thigh_left" else -1)
    assert taken["vqf"] > (30 if kind == "raw" else -1)
    monkeypatch.setattr(channel_module, "SMALL_CHUNK", 0)
    monkeypatch.setattr(orientation_module, "SMALL_CHUNK", 0)
    monkeypatch.setattr(resample_module, "SMALL_PUSH", 0)
    slow, ch_slow = _run(stream, sizes, placement)
    assert fast == slow
    for name in ("dropped_backwards_", "invalid_", "non_unit_", "gaps_", "messages_"):
        assert getattr(ch_fast, name) == getattr(ch_slow, name), name


def test_small_resampler_pushes_give_the_bits_of_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(11)
    n = 400
    t = np.cumsum(rng.uniform(0.002, 0.03, n))
    t[200:] += 0.2  # a gap
    q = rng.normal(size=(n, 4))
    q[rng.integers(0, n, 5)] = np.nan
    s = rng.normal(size=(n, 2))
    s[rng.integers(0, n, 5), 1] = np.nan

    def run(sizes: list[int], with_s: bool) -> list:
        r = GridResampler(100.0, 0.025)
        out = []
        a = i = 0
        while a < n:
            b = min(a + sizes[i % len(sizes)], n)
            k, qo, so = r.push(t[a:b], q[a:b], s[a:b] if with_s else None)
            so_bits = None if so is None else (so.shape, so.tobytes())
            out.append((k.tobytes(), qo.tobytes(), so_bits, r.next_k))
            a, i = b, i + 1
        return out

    sizes = [1, 3, 2, 6, 1, 1, 4, 9, 2, 12, 13, 40]
    taken = _count_small(monkeypatch)
    fast = [run(sizes, True), run(sizes, False)]
    assert taken["push"] > 15
    monkeypatch.setattr(resample_module, "SMALL_PUSH", 0)
    assert fast == [run(sizes, True), run(sizes, False)]


@pytest.mark.parametrize("seed", range(4))
def test_small_guard_steps_give_the_bits_of_the_numpy_path(monkeypatch: pytest.MonkeyPatch,
                                                          seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    t = np.arange(n) / 100.0
    t[250:] += 0.5  # a gap
    names = ("hip_flexion_left", "hip_flexion_right", "pelvic_tilt", "lumbar_flexion",
             "thigh_inclination_left", "thigh_inclination_right")
    angles = {name: np.cumsum(rng.normal(0.0, 0.02, n)) for name in names}
    for name in ("hip_flexion_left", "hip_flexion_right", "lumbar_flexion"):
        x = angles[name]
        x[rng.integers(0, n, 4)] = np.nan
        x[rng.integers(0, n, 3)] += rng.choice([-3.0, 3.0])  # out of range
        x[rng.integers(0, n, 3)] += 0.25  # a jump: too fast at 100 Hz
    if seed == 0:
        angles["lumbar_flexion"][:] = np.nan  # no upper-lumbar sensor
    series = AngleSeries(t=t, pelvis_inclination=np.zeros(n), pelvis_motion=np.zeros(n), **angles)

    def run() -> tuple[list, PlausibilityGuard]:
        guard = PlausibilityGuard()
        out = []
        a = i = 0
        sizes = [1, 2, 3, 8, 12, 13, 2, 30, 5]
        while a < n:
            b = min(a + sizes[i % len(sizes)], n)
            piece = AngleSeries(**{f: (v[a:b] if isinstance(v, np.ndarray) else v)
                                   for f, v in vars(series).items()})
            res = guard.update(piece)
            out.append([(f, v.tobytes()) for f, v in vars(res).items() if isinstance(v, np.ndarray)])
            a, i = b, i + 1
        return out, guard

    fast, guard_fast = run()
    monkeypatch.setattr(plausibility_module, "SMALL_CHUNK", 0)
    slow, guard_slow = run()
    assert fast == slow
    assert guard_fast.counts_ == guard_slow.counts_ and guard_fast.n_rows_ == guard_slow.n_rows_ == n
    assert sum(c["range"] + c["rate"] for c in guard_fast.counts_.values()) > 10
