"""Device-driver common parts: decoder statistics, the never-raise guarantee of ``feed``, the full-scale
check, profile matching, payload-mode choice messages and profile lookup.

Written for the survivors of ``python bench/mutation.py --group decoders`` (``ingest/devices/base.py`` and
``ingest/devices/__init__.py``).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from hipback.ingest.devices import (
    HIPBACK_V1,
    MOVELLA_DOT,
    PROFILES,
    WITMOTION,
    DecodedSamples,
    Decoder,
    DecoderStats,
    DeviceConfig,
    DeviceProfile,
    DeviceSetupError,
    SampleGap,
    get_profile,
)
from hipback.ingest.devices import hipback_v1 as hb
from hipback.ingest.devices import movella_dot as md
from hipback.ingest.devices.base import MAX_GAP_RECORDS


class _Broken(Decoder):
    def _decode(self, data: bytes, arrival_time: float) -> DecodedSamples:
        if data == b"boom":
            raise RuntimeError("parser bug")
        return DecodedSamples(arrival_time=arrival_time, n=len(data))


def test_stats_count_every_event() -> None:
    s = DecoderStats()
    for reason in ("duplicate", "duplicate", "truncated", "truncated", "truncated", "junk"):
        s.reject(reason)
    assert (s.duplicates, s.truncated, s.rejected_total) == (2, 3, 6)
    s.add_gap(SampleGap(after_seq=None, after_time_s=None, missing=2))
    s.add_gap(SampleGap(after_seq=0, after_time_s=0.0, missing=3))
    assert s.seq_gaps == [(-1, 2), (0, 3)] and s.missing == 5


def test_feed_never_raises_and_counts_bytes_and_samples() -> None:
    dec = _Broken(10)
    assert dec.feed(b"abc", 1).n == 3
    out = dec.feed(b"boom", 2)
    assert out == DecodedSamples(arrival_time=2.0, rejected="bad_format")
    assert isinstance(out.arrival_time, float)
    assert dec.feed(bytearray(b"defgh"), 3).n == 5
    assert (dec.stats.packets, dec.stats.bytes, dec.stats.samples) == (3, 12, 8)
    assert dec.stats.rejected == {"bad_format": 1}


def test_full_scale_margin_is_inclusive() -> None:
    dec = Decoder(10, acc_range_ms2=100.0, gyr_range_rads=10.0)
    edge = np.array([[0.0, -105.0, 0.0]])
    assert not dec._out_of_range(edge, edge / 10)  # exactly full scale + 5 %: possible
    assert dec._out_of_range(edge * 1.0001, None) and dec._out_of_range(None, edge / 10 * 1.0001)
    assert not Decoder(10)._out_of_range(edge * 1e6, edge * 1e6)  # no full scale known: no check


@pytest.mark.parametrize(
    "profile,name,uuids,hit",
    [
        (HIPBACK_V1, None, [hb.SERVICE_UUID.upper()], True),
        (HIPBACK_V1, "hipback-pelvis", [], True),
        (HIPBACK_V1, "my hipback", [], False),  # names match by prefix
        (HIPBACK_V1, None, [], False),
        (HIPBACK_V1, "", [md.MEASUREMENT_SERVICE_UUID], False),
        (MOVELLA_DOT, "Xsens DOT", [], True),
        (WITMOTION, "WT901", ["0000180a-0000-1000-8000-00805f9b34fb"], True),
    ],
)
def test_profile_matches(profile: DeviceProfile, name: str | None, uuids: list[str], hit: bool) -> None:
    assert profile.matches(name, uuids) is hit


def test_mode_messages() -> None:
    msg = "hipback IMU profile v1: unknown mode 'nope'; known modes: " + ", ".join(hb.MODES)
    with pytest.raises(ValueError, match="^" + re.escape(msg) + "$"):
        HIPBACK_V1.mode_or_default("nope")
    assert MOVELLA_DOT.mode_unavailable("custom5", 100, DeviceConfig(modes=("custom3",))) == (
        "custom5 is not offered by this device")
    assert MOVELLA_DOT.mode_unavailable("custom5", 100, DeviceConfig(modes=(), firmware="2.0.1")) == (
        "custom5 is not offered by firmware 2.0.1")
    with pytest.raises(DeviceSetupError) as err:
        HIPBACK_V1.choose_mode("raw", 30)
    assert str(err.value) == (
        "hipback IMU profile v1: no payload mode can stream here (raw needs ATT MTU >= 35 but the link "
        "negotiated 30).")
    with pytest.raises(DeviceSetupError, match=re.escape("negotiated 30; raw needs ATT MTU >= 35")):
        HIPBACK_V1.choose_mode("raw_mag", 30)


def test_profile_defaults() -> None:
    base = DeviceProfile()
    assert base.min_mtu() == 23
    assert base.parse_config({"a": b"1"}) == DeviceConfig(values={"a": b"1"})
    ranges = HIPBACK_V1._ranges(DeviceConfig(gyr_range_rads=1.5))
    assert ranges == {"acc_range_ms2": HIPBACK_V1.acc_range_ms2, "gyr_range_rads": 1.5}


def test_get_profile() -> None:
    assert get_profile("witmotion") is WITMOTION
    msg = "unknown device kind 'xsens'; known kinds: " + ", ".join(PROFILES)
    with pytest.raises(KeyError) as err:
        get_profile("xsens")
    assert err.value.args == (msg,)


def test_flat_full_scale_check_is_the_array_check_on_lists() -> None:
    """:meth:`Decoder._flat_out_of_range` (small packets) refuses exactly what ``_out_of_range`` refuses:
    full scale + 5 % is possible on either side, anything beyond is not, in either field."""
    dec = Decoder(10, acc_range_ms2=100.0, gyr_range_rads=10.0)
    for acc, gyr in [([0.0, 105.0, 1.0], None), ([0.0, -105.0, 1.0], None), (None, [10.5, 0.0, 0.0]),
                     (None, [0.0, -10.5, 0.0]), ([105.0, -105.0], [10.5, -10.5]), ([], [])]:
        assert not dec._flat_out_of_range(acc, gyr)
        assert not dec._out_of_range(None if acc is None else np.array(acc),
                                     None if gyr is None else np.array(gyr))
    for acc, gyr in [([0.0, 105.0001], None), ([-105.0001, 0.0], None), (None, [10.5001]), (None, [-10.5001]),
                     ([1.0], [-10.5001]), ([1.0], [0.0, 10.5001])]:
        assert dec._flat_out_of_range(acc, gyr)
    assert not Decoder(10)._flat_out_of_range([1e9, -1e9], [1e9, -1e9])  # no full scale known: no check


def test_gap_records_keep_the_most_recent_and_count_every_gap() -> None:
    s = DecoderStats()
    n = MAX_GAP_RECORDS + 3
    for i in range(n):
        s.add_gap(SampleGap(after_seq=i, after_time_s=float(i), missing=1))
    assert len(s.gaps) == MAX_GAP_RECORDS and len(s.seq_gaps) == MAX_GAP_RECORDS
    assert [g.after_seq for g in s.gaps] == list(range(3, n))
    assert s.seq_gaps == [(i, 1) for i in range(3, n)]
    assert s.missing == n


def test_notifications_longer_than_the_limit_are_refused_before_decoding() -> None:
    dec = _Broken(10)
    limit = Decoder.MAX_NOTIFICATION_BYTES
    assert dec.feed(b"x" * limit, 1).n == limit  # the longest taken
    out = dec.feed(b"x" * (limit + 1), 2)
    assert out == DecodedSamples(arrival_time=2.0, rejected="bad_length")
    assert isinstance(out.arrival_time, float)
    assert dec.stats.rejected == {"bad_length": 1} and dec.stats.samples == limit
    assert dec.stats.bytes == 2 * limit + 1 and dec.stats.packets == 2
