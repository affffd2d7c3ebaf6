"""Clock models: device time -> UTC with latency jitter, drift, stalls and clock jumps; arrival-only
timing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.ingest.clock import ArrivalClock, ClockModel
from hipback.ingest.devices import HIPBACK_V1
from hipback.ingest.devices.base import DecodedSamples
from hipback.simulator.devices import DeviceClock, HipbackEncoder, HipbackState

UTC0 = 1.7e9


def simulate_timestamped(
    seed=1, dur=240.0, rate=100.0, batch=10, drift_ppm=50.0, floor=0.001, jumps=(), spike_prob=0.01
):
    """Packets of ``batch`` samples; latency = floor + exponential(8 ms) + rare 0.1-0.45 s stalls."""
    rng = np.random.default_rng(seed)
    n = int(dur * rate)
    t_true = UTC0 + np.arange(n) / rate
    dev = 5000.0 + (t_true - UTC0) * (1 + drift_ppm * 1e-6)
    for at, delta in jumps:
        dev[int(at * rate) :] += delta
    cm = ClockModel(rate)
    mapped = np.empty(n)
    for s in range(0, n, batch):
        e = s + batch
        lat = floor + rng.exponential(0.008)
        if rng.random() < spike_prob:
            lat += rng.uniform(0.1, 0.45)
        d = DecodedSamples(arrival_time=t_true[e - 1] + lat, device_time_s=dev[s:e], n=batch)
        mapped[s:e] = cm.map(d)
    return cm, t_true, mapped


def steady(err, rate, exclude):
    mask = np.ones(len(err), dtype=bool)
    for a, b in exclude:
        mask[int(a * rate) : int(b * rate)] = False
    return err[mask]


def test_drift_and_jitter_are_absorbed():
    cm, t_true, mapped = simulate_timestamped()
    err = mapped - t_true
    assert abs(cm.drift_ppm - 50.0) < 15.0
    assert not cm.jumps  # stalls up to 0.45 s are not jumps
    e = steady(err, 100, [(0, 10)])
    assert np.abs(e).max() < 0.005
    assert np.all(np.diff(mapped) > 0)
    assert np.abs(err[:1000]).max() < 0.05  # the first 10 s: still within a few latencies


def test_clock_jumps_are_detected_and_reanchored():
    jumps = [(80.0, 3.0), (160.0, -5.0)]
    cm, t_true, mapped = simulate_timestamped(seed=3, jumps=jumps)
    assert len(cm.jumps) == 2
    for found, (at, delta) in zip(cm.jumps, jumps, strict=True):
        assert found.arrival_time - UTC0 == pytest.approx(at, abs=0.2)
        assert found.delta_s == pytest.approx(-delta, abs=0.05)  # offset change is the opposite of the jump
    e = steady(mapped - t_true, 100, [(0, 10), (80, 90), (160, 170)])
    assert np.abs(e).max() < 0.005
    assert np.abs(steady(mapped - t_true, 100, [(0, 80), (81, 160), (161, 240)])).max() < 0.1


def test_bounded_drift_keeps_a_bad_fit_out():
    cm = ClockModel(100, max_drift_ppm=200)
    # arrivals drifting by 1000 ppm cannot be followed beyond the bound
    for i in range(2000):
        dev = i * 0.1
        cm.observe(dev, UTC0 + dev * (1 + 1e-3))
    assert cm.drift_ppm == pytest.approx(-200.0)  # the device clock is slow


def test_with_the_hipback_decoder_end_to_end():
    rng = np.random.default_rng(5)
    clock = DeviceClock(offset_s=123.0, drift_ppm=-40)
    enc = HipbackEncoder(100, mode="quat", state=HipbackState(clock=clock))
    dec = HIPBACK_V1.make_decoder(100, "quat")
    cm = ClockModel(100)
    t = np.arange(12000) / 100.0
    q = np.tile([1.0, 0, 0, 0], (len(t), 1))
    errs = []
    for s in range(0, len(t), 25):
        for pkt in enc.encode(t[s : s + 25], q[s : s + 25]):
            out = dec.feed(pkt, 0.0)
            out.arrival_time = UTC0 + t[s + 24] + 0.002 + rng.exponential(0.01)
            idx = out.seq
            errs.append(cm.map(out) - (UTC0 + t[idx]))
    err = np.concatenate(errs)
    assert np.abs(err[2000:]).max() < 0.005


def test_arrival_clock_without_timestamps():
    """WitMotion-like: one frame per notification, delivered at 30 ms connection events, rate 0.3 % off
    nominal, 50 frames lost at 100 s, a 0.3 s stall without loss at 200 s."""
    rng = np.random.default_rng(2)
    true_rate = 100 * 1.003
    n = int(260 * true_rate)
    t_true = UTC0 + np.arange(n) / true_rate
    keep = np.ones(n, dtype=bool)
    keep[10000:10050] = False
    cm = ClockModel(100)
    errs = []
    reported = 0
    for i in np.flatnonzero(keep):
        arrival = UTC0 + np.ceil((t_true[i] - UTC0) / 0.03) * 0.03 + 0.001 + rng.exponential(0.002)
        if 20000 <= i < 20030:
            arrival = t_true[20030] + 0.3 + (i - 20000) * 1e-4
        packet = DecodedSamples(arrival_time=arrival, n=1)
        (m,) = cm.map(packet)
        reported += packet.missing
        errs.append((i, m - t_true[i]))
    errs = np.array(errs)
    assert len(cm.gaps) == 1
    assert cm.gaps[0].missing == 50 and cm.gaps[0].after_index == 9999
    assert reported == 0  # arrival-estimated losses live in cm.gaps only (no double counting downstream)
    assert cm.gaps[0].after_time_utc == pytest.approx(t_true[9999], abs=0.01)
    idx, err = errs[:, 0], errs[:, 1]
    calm = (idx > 1000) & ~((idx > 9990) & (idx < 10200)) & ~((idx > 19990) & (idx < 20200))
    assert np.abs(err[calm]).max() < 0.01
    assert np.all(np.diff(errs[:, 1] + t_true[idx.astype(int)]) > 0)  # monotonic


def test_arrival_clock_batches():
    ac = ArrivalClock(50)
    t = ac.map_packet(3, UTC0 + 0.06)
    assert len(t) == 3 and np.all(np.diff(t) == pytest.approx(0.02)) and t[-1] <= UTC0 + 0.06


def _arrivals_with_loss(seed: int, n_drop: int, interval_s: float, **timing: float) -> list[int]:
    """A 100 Hz device without timestamps (one frame per notification) over a virtual link's seeded
    connection events and delivery delays; frames 2000.. are lost; returns the losses the clock found."""
    from hipback.simulator.virtual_ble.link_timing import LinkTiming

    rate = 100.0
    t = np.arange(4000) / rate * (1 + 30e-6)  # device sample times, 30 ppm fast
    lost = set(range(2000, 2000 + n_drop))
    clock = ArrivalClock(rate)
    i = 0
    for event, delivery in LinkTiming(interval_s=interval_s, seed=seed, **timing).schedule(-0.5):
        j = int(np.searchsorted(t, event, side="right"))
        for k in range(i, j):
            if k not in lost:
                clock.map_packet(1, delivery)
        i = j
        if i >= len(t):
            break
    return [g.missing for g in clock.gaps]


@pytest.mark.parametrize("seed", range(12))
def test_arrival_clock_finds_a_loss_under_realistic_link_timing(seed: int) -> None:
    """Losses of 10 and 25 frames are found exactly and late bursts after host stalls are not taken for
    losses, for every seeded link (connection interval, delivery delays, stalls)."""
    interval = (0.0075, 0.015, 0.02, 0.03)[seed % 4]
    assert _arrivals_with_loss(seed, 0, interval) == []
    for n in (10, 25):
        assert _arrivals_with_loss(seed, n, interval) == [n]
    # a busier host: longer delays and frequent stalls of up to 0.15 s, which may fall next to the loss
    harsh = {"latency_sigma": 1.0, "stall_rate_hz": 0.5, "stall_max_s": 0.15}
    assert _arrivals_with_loss(seed, 0, interval, **harsh) == []
    assert _arrivals_with_loss(seed, 25, interval, **harsh) == [25]


def test_gap_records_stay_bounded_while_the_counts_go_on() -> None:
    """A decoder keeps the most recent gap records; what was lost is still counted in full."""
    from hipback.ingest.devices.base import MAX_GAP_RECORDS, DecoderStats, SampleGap

    stats = DecoderStats()
    for i in range(MAX_GAP_RECORDS + 44):
        stats.add_gap(SampleGap(after_seq=i, after_time_s=None, missing=2))
    assert len(stats.gaps) == len(stats.seq_gaps) == MAX_GAP_RECORDS
    assert stats.seq_gaps[0] == (44, 2) and stats.seq_gaps[-1] == (MAX_GAP_RECORDS + 43, 2)
    assert stats.missing == 2 * (MAX_GAP_RECORDS + 44)


def test_median_is_numpys() -> None:
    """The envelope fit's median (a sorted list) gives numpy's value for odd and even counts, repeated
    values and NaN."""
    from hipback.ingest.clock import _median

    rng = np.random.default_rng(3)
    for n in list(range(1, 40)) + [119, 120]:
        for _ in range(30):
            v = rng.normal(size=n) * 10.0 ** rng.integers(-6, 2)
            if rng.random() < 0.3:
                v = np.round(v, 2)
            assert _median(v) == float(np.median(v))
    assert math.isnan(_median(np.array([1.0, math.nan, 2.0])))


def test_percentile_and_mean_are_numpys() -> None:
    """The envelope fit's percentile (a sorted list) and mean (numpy's sum over the count) give numpy's
    bits for any count and percentile, repeated values, infinities, NaN and strided columns."""
    from hipback.ingest.clock import _mean, _percentile

    rng = np.random.default_rng(4)
    for n in list(range(1, 40)) + [119, 120, 121]:
        for _ in range(20):
            rows = rng.normal(size=(n, 3)) * 10.0 ** rng.integers(-6, 2)
            if rng.random() < 0.3:
                rows = np.round(rows, 2)
            if rng.random() < 0.1:
                rows[rng.integers(0, n), 2] = rng.choice([math.inf, -math.inf])
            v = rows[:, 2]  # a strided column, as the fit takes its values
            for q in (0, 5, 10, 33.3, 50, 90, 95, 100):
                with np.errstate(invalid="ignore"):  # (numpy warns of inf - inf between two infinities)
                    got, expected = _percentile(v, q), np.percentile(v, q)
                assert np.float64(got).tobytes() == np.float64(expected).tobytes()
            if np.isfinite(v).all():
                assert np.float64(_mean(v)).tobytes() == np.float64(v.mean()).tobytes()
    assert math.isnan(_percentile(np.array([1.0, math.nan, 2.0]), 5))
