"""Movella DOT decoding checked against packets built here from the published payload layout (little-endian
u32 timestamp in us, then float32 fields), not from our encoder: field offsets, units, quaternion
normalisation, the u32 rollover, late and repeated packets, clock restarts. Written to kill the mutants of
``bench/mutation.py --group decoders`` that mattered."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from hipback.ingest.devices import MOVELLA_DOT, StatusFlag

PERIOD_US = 16_667  # 60 Hz
WRAP = 1 << 32


def custom5(t_us: int, q=(1.0, 0.0, 0.0, 0.0), acc=(0.1, 0.2, 9.8), gyr=(1.0, 2.0, 3.0)) -> bytes:
    return struct.pack("<I4f3f3f", t_us % WRAP, *q, *acc, *gyr)


def test_custom5_fields_land_in_their_place_with_their_units() -> None:
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    out = dec.feed(custom5(1000, acc=(0.5, -1.25, 9.75), gyr=(10.0, -20.0, 30.0)), 5.0)
    assert out.n == 1 and out.rejected is None and out.arrival_time == 5.0
    np.testing.assert_allclose(out.acc, [[0.5, -1.25, 9.75]])
    np.testing.assert_allclose(out.gyr, np.radians([[10.0, -20.0, 30.0]]), rtol=1e-6)  # deg/s -> rad/s
    np.testing.assert_array_equal(out.quat, [[1.0, 0.0, 0.0, 0.0]])
    assert out.quat.dtype == np.float64 and out.acc.dtype == np.float64
    assert StatusFlag.FUSION_ON in out.flags and out.device_time_s[0] == pytest.approx(1000e-6)


def test_three_vectors_in_a_row_and_no_fusion_flag_without_a_quaternion() -> None:
    dec = MOVELLA_DOT.make_decoder(60, "rate_quantities_mag")
    data = struct.pack("<I3f3f3h", 2000, 1.0, 2.0, 3.0, 40.0, 50.0, 60.0, 4096, -8192, 2048)
    out = dec.feed(data, 1.0)
    np.testing.assert_allclose(out.acc, [[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(out.gyr, np.radians([[40.0, 50.0, 60.0]]), rtol=1e-6)
    np.testing.assert_allclose(out.mag, [[1.0, -2.0, 0.5]])  # int16 / 4096
    assert out.quat is None and StatusFlag.FUSION_ON not in out.flags


def test_quaternion_is_normalised_and_a_bad_norm_refused() -> None:
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    s = 1.008
    out = dec.feed(custom5(1000, q=(0.6 * s, 0.0, 0.8 * s, 0.0)), 0.0)
    np.testing.assert_allclose(out.quat, [[0.6, 0.0, 0.8, 0.0]], rtol=1e-6)
    assert np.linalg.norm(out.quat) == pytest.approx(1.0, abs=1e-12)
    bad = dec.feed(custom5(1000 + PERIOD_US, q=(1.02, 0.0, 0.0, 0.0)), 7.0)
    assert bad.rejected == "bad_quat_norm" and bad.arrival_time == 7.0


def test_rollover_late_packets_repeats_and_gaps() -> None:
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    t0 = WRAP - PERIOD_US
    assert dec.feed(custom5(t0), 0.0).n == 1
    after = dec.feed(custom5(t0 + PERIOD_US), 0.1)  # the u32 counter wrapped to 0
    assert after.n == 1 and after.device_time_s[0] == pytest.approx(WRAP * 1e-6) and after.missing == 0
    late = dec.feed(custom5(t0 - PERIOD_US), 0.2)  # from before the rollover, arriving late
    assert late.rejected == "out_of_order" and late.arrival_time == 0.2
    again = dec.feed(custom5(t0 + PERIOD_US), 0.3)
    assert again.rejected == "duplicate" and again.arrival_time == 0.3
    gap = dec.feed(custom5(t0 + 3 * PERIOD_US), 0.4)  # one sample lost
    assert gap.missing == 1 and gap.device_time_s[0] == pytest.approx((WRAP + 2 * PERIOD_US) * 1e-6)
    assert dec.stats.rejected == {"out_of_order": 1, "duplicate": 1} and dec.stats.resets == 0


def test_clock_restart_is_counted_once_and_small_steps_back_are_stale() -> None:
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    assert dec.feed(custom5(5_000_000), 0.0).n == 1
    stale = dec.feed(custom5(5_000_000 - 999_000), 0.1)  # less than 1 s back: a stale packet
    assert stale.rejected == "out_of_order" and stale.arrival_time == 0.1 and dec.stats.resets == 0
    restarted = dec.feed(custom5(100), 0.2)  # more than 1 s back: the sensor clock restarted
    # a new epoch: after the last sample by the 0.2 s between their arrivals (device times stay increasing)
    assert restarted.n == 1 and restarted.device_time_s[0] == pytest.approx(5.2)
    assert restarted.extra["timestamp_us"] == 100
    assert dec.stats.resets == 1
    assert dec.feed(custom5(100 + PERIOD_US), 0.3).n == 1 and dec.stats.resets == 1


@pytest.mark.parametrize("data, reason", [(custom5(1)[:20], "truncated"),
                                          (custom5(1) + b"\0" * 40, "bad_length"),
                                          (custom5(1, acc=(math.nan, 0.0, 0.0)), "bad_value"),
                                          (custom5(1, acc=(400.0, 0.0, 0.0)), "out_of_range")])
def test_refusals_keep_the_arrival_time(data: bytes, reason: str) -> None:
    out = MOVELLA_DOT.make_decoder(60, "custom5").feed(data, 3.5)
    assert out.rejected == reason and out.arrival_time == 3.5 and out.n == 0
