"""Small packets take a path on Python floats (hipback v1 values and sample times, the clock model's mapping);
it must give the very same output as the numpy path, bit for bit, refusals and counters included.

Each case feeds the same packets twice, once with the small paths and once with them off (thresholds 0),
and compares every array by its bytes. The packets are built from the profile document's layout (not from
the decoder): every int16 format, 1 to 16 samples, quaternions at and beyond the norm tolerance, values at
and beyond the full scale, sequence gaps, repeats, restarts and device clock steps.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from hipback.ingest import clock as clock_module
from hipback.ingest.clock import ClockModel
from hipback.ingest.devices import HIPBACK_V1, DeviceConfig
from hipback.ingest.devices import hipback_v1 as hb

INT16_MODES = [m for m, fmt in hb.MODES.items() if fmt & hb.FMT_QUAT_MASK != hb.QUAT_F32]


def _packet(rng: np.random.Generator, fmt: int, n: int, seq: int, t0_us: int) -> bytes:
    """One DATA notification of ``n`` samples: unit quaternions and values inside the full scale, except in
    about one packet in five, where one sample's quaternion norm sits at or beyond the tolerance (or is zero)
    or one value lies at or beyond the configured full scale (8 g, 1000 deg/s) or at the int16 limits."""
    flaw = rng.choice(["none"] * 8 + ["norm", "scale"])
    bad_row = int(rng.integers(0, n))
    vals = []
    for i in range(n):
        row = []
        if fmt & hb.FMT_QUAT_MASK:
            q = rng.normal(size=4)
            q /= np.linalg.norm(q)
            if flaw == "norm" and i == bad_row:
                q *= rng.choice([1.019, 0.981, 1.021, 0.979, 0.0])
            row += [int(v) for v in np.clip(np.round(q * 16384), -32768, 32767)]
        for bit in (hb.FMT_ACC, hb.FMT_GYR, hb.FMT_MAG):
            if fmt & bit:
                row += [int(v) for v in rng.integers(-4000, 4001, size=3)]
                if flaw == "scale" and i == bad_row:
                    row[-1] = int(rng.choice([-32768, 32767, 8600, -8601, 16400, -17300]))
        vals += row
    header = hb.HEADER.pack(1, fmt, n, int(rng.integers(0, 101)), seq & 0xFFFFFFFF, t0_us, 10_000,
                            int(rng.choice([0, 0x0008, 0x0108, 0x0041])))
    return header + struct.pack(f"<{len(vals)}h", *vals)


def _stream(seed: int, mode: str) -> list[tuple[bytes, float]]:
    rng = np.random.default_rng(seed)
    fmt = hb.MODES[mode]
    out = []
    seq, t_us, arrival = 1000, 5_000_000, 100.0
    for _ in range(400):
        n = int(rng.integers(1, 17))
        data = _packet(rng, fmt, n, seq, t_us)
        arrival += n * 0.01 + float(rng.exponential(0.004))
        out.append((data, arrival))
        roll = rng.random()
        if roll < 0.03:
            out.append((data, arrival + 0.001))  # a repeat
        elif roll < 0.05:
            seq += int(rng.integers(1, 30))  # a loss
            t_us += 10_000 * int(rng.integers(1, 30))
        elif roll < 0.06:
            t_us = max(1_000, t_us - 3_000_000)  # the device clock steps back
        elif roll < 0.065:
            seq, t_us = 0, 1_000  # a restart
        elif roll < 0.07:
            arrival += 1.5  # a stall
        seq += n
        t_us += 10_000 * n
    return out


def _run(packets: list[tuple[bytes, float]], mode: str) -> list[tuple]:
    # a device configured to 8 g and 1000 deg/s: values beyond that full scale occur in the packets
    dec = HIPBACK_V1.make_decoder(100.0, mode, DeviceConfig(acc_range_ms2=8 * hb.G,
                                                            gyr_range_rads=math.radians(1000.0)))
    clk = ClockModel(100.0)
    out = []
    for data, arrival in packets:
        d = dec.feed(data, arrival)
        t = clk.map(d)
        arrays = tuple(None if a is None else (a.dtype.str, a.shape, a.tobytes())
                       for a in (d.device_time_s, d.seq, d.quat, d.acc, d.gyr, d.mag, t))
        out.append((d.rejected, d.n, int(d.flags), d.battery_pct, d.gaps, d.extra, arrays))
    st = dec.stats
    out.append((st.packets, st.samples, dict(st.rejected), st.missing, st.resets, clk.jump_count,
                clk.offset_s, clk.drift_ppm))
    return out


@pytest.mark.parametrize("mode", INT16_MODES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_small_path_is_bit_identical(monkeypatch: pytest.MonkeyPatch, mode: str, seed: int) -> None:
    packets = _stream(seed, mode)
    small = _run(packets, mode)
    monkeypatch.setattr(hb, "SMALL_PACKET", 0)
    monkeypatch.setattr(hb, "SMALL_TIMES", 0)
    monkeypatch.setattr(clock_module, "SMALL_PACKET", 0)
    assert _run(packets, mode) == small
    refusals = {d[0] for d in small[:-1]}
    # the streams reach the refusals and the clock events they are meant to
    fmt = hb.MODES[mode]
    expected = {None}
    expected |= {"bad_quat_norm"} if fmt & hb.FMT_QUAT_MASK else set()
    expected |= {"out_of_range"} if fmt & (hb.FMT_ACC | hb.FMT_GYR) else set()
    assert expected <= refusals and refusals & {"duplicate", "out_of_order"}, refusals
    assert small[-1][3] > 0 and small[-1][5] > 0  # samples lost, clock jumps


def test_q14_norm_does_not_depend_on_the_order_of_the_sum() -> None:
    """The small path sums a quaternion's four squares left to right, numpy in its own order: the same,
    because an int16 / 16384 squared is a multiple of 2^-28 below 4 and four of them add up exactly in
    float64. Checked here at the int16 extremes and at random."""
    rng = np.random.default_rng(7)
    rows = rng.integers(-32768, 32768, size=(20000, 4)).tolist() + [[-32768] * 4, [32767] * 4, [1, -1, 0, 0]]
    for row in rows:
        w, x, y, z = (v * hb.Q14 for v in row)
        sums = {((w * w + x * x) + y * y) + z * z, w * w + (x * x + (y * y + z * z)),
                (w * w + x * x) + (y * y + z * z)}
        exact = sum(v * v for v in row) / 2.0**28
        assert sums == {exact}


def _arrival_clock_run(seed: int) -> list[tuple]:
    """A device without timestamps (WitMotion) over a seeded harsh link (delays, stalls of up to 0.15 s):
    packets of 1 to 20 frames, lost stretches of 3 to 40 frames, a packet now and then that arrives before
    the one before it was due; every mapped time's bytes, the gaps found and the fit after each packet."""
    from hipback.ingest.clock import ArrivalClock
    from hipback.simulator.virtual_ble.link_timing import LinkTiming

    rng = np.random.default_rng(seed)
    rate = 100.0
    t = np.arange(6000) / rate * (1 + 40e-6)  # device sample times, 40 ppm fast
    lost: set[int] = set()
    for start in rng.integers(500, 5800, size=6):
        lost |= set(range(int(start), int(start) + int(rng.integers(3, 41))))
    clock = ArrivalClock(rate)
    out = []
    i = 0
    timing = LinkTiming(interval_s=0.015, seed=seed, latency_sigma=1.0, stall_rate_hz=0.5, stall_max_s=0.15)
    for event, delivery in timing.schedule(-0.5):
        j = min(int(np.searchsorted(t, event, side="right")), len(t))
        while i < j:
            n = min(int(rng.integers(1, 21)), j - i)
            kept = sum(1 for k in range(i, i + n) if k not in lost)
            if kept:
                arrival = delivery - (0.05 if rng.random() < 0.02 else 0.0)  # now and then too early
                times = clock.map_packet(kept, arrival)
                out.append((times.tobytes(), clock.env.offset, clock.env.slope, clock.missing_total))
            i += n
        if i >= len(t):
            break
    out.append(tuple((g.after_index, g.after_time_utc, g.arrival_time, g.missing) for g in clock.gaps))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_arrival_clock_small_path_is_bit_identical(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """The arrival clock (devices without timestamps) maps packets of up to ``SMALL_PACKET`` frames on
    Python floats: the same bytes as on numpy, losses, late bursts and nudged times included."""
    small = _arrival_clock_run(seed)
    monkeypatch.setattr(clock_module, "SMALL_PACKET", 0)
    assert _arrival_clock_run(seed) == small
    assert small[-1]  # the losses were found
