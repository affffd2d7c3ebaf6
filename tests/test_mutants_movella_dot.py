"""Movella DOT: status word, Device Info, battery, configuration reads, control writes and the timestamp
arithmetic at its exact edges, from values built here after the published spec (XD0506P), not from the
simulator's encoder.

Written for the survivors of ``python bench/mutation.py --group decoders``.
"""

from __future__ import annotations

import re
import struct

import pytest

from hipback.ingest.devices import MOVELLA_DOT, DeviceConfig, StatusFlag, Write
from hipback.ingest.devices import movella_dot as md

G = 9.80665
WRAP = 1 << 32


def custom5(t_us: int, acc=(0.0, 0.0, 9.8)) -> bytes:
    return struct.pack("<I4f3f3f", t_us % WRAP, 1.0, 0.0, 0.0, 0.0, *acc, 0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    "status,flags",
    [
        (0x0000, StatusFlag.NONE),
        (0x0001, StatusFlag.ACC_CLIPPING),
        (0x0004, StatusFlag.ACC_CLIPPING),
        (0x0008, StatusFlag.GYR_CLIPPING),
        (0x0020, StatusFlag.GYR_CLIPPING),
        (0x0040, StatusFlag.MAG_CLIPPING),
        (0x0100, StatusFlag.MAG_CLIPPING),
        (0x0200, StatusFlag.MAG_VALID),
        (0x0201, StatusFlag.ACC_CLIPPING | StatusFlag.MAG_VALID),
        (0x0241, StatusFlag.ACC_CLIPPING | StatusFlag.MAG_CLIPPING | StatusFlag.MAG_VALID),
        (0x0400, StatusFlag.NONE),  # not a documented bit
    ],
)
def test_status_word_bits(status: int, flags: StatusFlag) -> None:
    assert md.status_flags(status) == flags


def device_info(product: bytes = b"\xffOTX\x00\x00") -> bytes:
    return (bytes([1, 2, 3, 4, 5, 6]) + bytes([3, 0, 1]) + struct.pack("<HBBBBB", 2024, 5, 17, 8, 9, 10)
            + struct.pack("<IQ", 0x80000001, 0x8000000000000002) + product)


def test_device_info_every_field() -> None:
    assert md.parse_device_info(device_info()) == {
        "mac": "06:05:04:03:02:01",
        "firmware": "3.0.1",
        "build": "2024-05-17T08:09:10",
        "softdevice": 0x80000001,
        "serial": 0x8000000000000002,
        "product_code": "\ufffdOTX",
    }
    with pytest.raises(ValueError, match=r"^Device Info value has 33 bytes, expected 34$"):
        md.parse_device_info(device_info()[:-1])


@pytest.mark.parametrize("data,value", [(b"\x64\x01", (100.0, True)), (b"\x00\x00", (0.0, False)),
                                        (b"\x65\x00", None), (b"\x32\x02", None), (b"\x32", None)])
def test_battery_characteristic(data: bytes, value: tuple[float, bool] | None) -> None:
    if value is None:
        with pytest.raises(ValueError, match=r"^malformed Movella DOT battery value$"):
            md.parse_battery(data)
    else:
        assert md.parse_battery(data) == value and md.battery_percent(data) == value[0]


def test_device_control_write_refusals_say_why() -> None:
    with pytest.raises(ValueError, match=r"^Device Control value has 3 bytes, expected 32$"):
        md.device_control_write(b"abc", 60)
    msg = f"Movella DOT cannot stream at 7 Hz (rates: {md.ALL_RATES_HZ})"
    with pytest.raises(ValueError, match="^" + re.escape(msg) + "$"):
        md.device_control_write(bytes(32), 7)


def test_parse_config_notes_modes_and_measuring() -> None:
    assert MOVELLA_DOT.parse_config({}) == DeviceConfig(
        values={}, notes=("firmware version unknown: every payload mode assumed",))
    bad = {md.DEVICE_INFO_UUID: b"\x01\x02\x03"}
    assert MOVELLA_DOT.parse_config(bad).notes == (
        "Device Info unreadable (Device Info value has 3 bytes, expected 34)",
        "firmware version unknown: every payload mode assumed",
    )
    v2 = device_info()[:6] + bytes([2, 9, 9]) + device_info()[9:]
    old = MOVELLA_DOT.parse_config({md.DEVICE_INFO_UUID: v2})
    assert old.firmware == "2.9.9" and "custom5" not in old.modes and "custom3" in old.modes
    assert MOVELLA_DOT.parse_config({md.CONTROL_UUID: bytes([1, 1, 26])}).measuring is True
    # a control type other than measurement
    assert MOVELLA_DOT.parse_config({md.CONTROL_UUID: bytes([2, 1, 26])}).measuring is False
    assert MOVELLA_DOT.parse_config({md.CONTROL_UUID: bytes([1, 0, 26])}).measuring is False


def test_start_sequence_stops_a_measuring_device_writes_the_rate_then_starts() -> None:
    dc = bytes(range(32))
    values = {md.CONTROL_UUID: bytes([1, 1, 26]), md.DEVICE_CONTROL_UUID: dc}
    rate = bytes([md.VISIT_RATE]) + dc[1:24] + struct.pack("<H", 30) + dc[26:]
    assert MOVELLA_DOT.start_sequence(31, "custom3", values) == [
        Write(md.CONTROL_UUID, bytes([1, 0, 26]), True, "stop (measuring)"),
        Write(md.DEVICE_CONTROL_UUID, rate, True, "output rate (read-modify-write)"),
        Write(md.CONTROL_UUID, bytes([1, 1, 24]), True, "start custom3"),
    ]
    start5 = Write(md.CONTROL_UUID, bytes([1, 1, 26]), True, "start custom5")
    assert MOVELLA_DOT.start_sequence(60) == [start5]
    assert MOVELLA_DOT.stop_sequence("custom3") == [Write(md.CONTROL_UUID, bytes([1, 0, 24]), True, "stop")]


def test_fallback_modes_never_offer_the_mode_itself() -> None:
    assert MOVELLA_DOT.fallback_modes("custom5") == (
        "custom3", "extended_quaternion", "complete_quaternion", "orientation_quaternion")
    assert MOVELLA_DOT.fallback_modes("orientation_quaternion") == ()
    assert MOVELLA_DOT.fallback_modes("rate_quantities_mag") == ("rate_quantities",)


def test_decoder_defaults_and_configured_full_scale() -> None:
    assert md.MovellaDotDecoder(60).mode.name == "custom5"
    dec = MOVELLA_DOT.make_decoder(60, "custom5", DeviceConfig(acc_range_ms2=2 * G))
    assert dec.feed(custom5(0, acc=(0.0, 0.0, 2 * G)), 0.0).rejected is None
    assert dec.feed(custom5(16_667, acc=(0.0, 0.0, 3 * G)), 0.0).rejected == "out_of_range"


def test_half_a_period_late_counts_as_one_lost_sample() -> None:
    dec = MOVELLA_DOT.make_decoder(1, "custom5")  # 1 Hz: period 1e6 us
    dec.feed(custom5(0), 0.0)
    assert dec.feed(custom5(1_499_999), 0.0).missing == 0
    assert dec.feed(custom5(1_499_999 + 1_500_000), 0.0).missing == 1


def test_two_rollovers_add_two_wraps() -> None:
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    for t in (WRAP - 100, 50, 50 + (1 << 30), 50 + (2 << 30), 50 + (3 << 30), WRAP - 100, 50):
        out = dec.feed(custom5(t), 0.0)
        assert out.rejected is None
    assert out.device_time_s[0] == (50 + 2 * WRAP) * 1e-6 and out.extra["timestamp_us"] == 50


def test_exactly_half_the_counter_back_is_a_restart_and_forward_is_a_gap() -> None:
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    dec.feed(custom5(3_000_000_000), 0.0)
    out = dec.feed(custom5(3_000_000_000 - (1 << 31)), 0.0)
    assert out.rejected is None and dec.stats.resets == 1
    assert out.device_time_s[0] == (3_000_000_000 + 16_667) * 1e-6  # a new epoch after the last sample
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    dec.feed(custom5(1000), 0.0)
    out = dec.feed(custom5(1000 + (1 << 31)), 0.0)  # further ahead than the arrivals allow: a clock jump
    assert out.rejected is None and out.missing == 0 and dec.stats.resets == 1


def test_restart_threshold_is_one_second_and_each_restart_counts() -> None:
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    dec.feed(custom5(5_000_000), 0.0)
    assert dec.feed(custom5(4_000_000), 0.0).rejected is None  # exactly 1 s back: a restart
    dec.feed(custom5(9_000_000), 0.0)
    assert dec.feed(custom5(100), 0.0).rejected is None
    assert dec.stats.resets == 2


# -- resynchronisation: out-of-order packets whose timestamps continue one another -------------------------
def _feed_all(dec, times: list[int]) -> list[str | None]:
    return [dec.feed(custom5(t), 0.0).rejected for t in times]


def test_three_continuing_stale_packets_after_a_corrupt_timestamp_are_the_clock_now() -> None:
    dec = md.MovellaDotDecoder(60.0, "custom5")
    assert _feed_all(dec, [10_000_000, 10_500_000]) == [None, None]  # the second is corrupt (0.5 s ahead)
    stale = [10_016_667, 10_033_333]
    assert _feed_all(dec, stale) == ["out_of_order", "out_of_order"] and dec.stats.resets == 0
    out = dec.feed(custom5(10_050_000), 3.0)
    assert out.rejected is None and out.device_time_s.tolist() == [(10_500_000 + 3_000_000) * 1e-6]
    assert dec.stats.resets == 1
    nxt = dec.feed(custom5(10_066_667), 4.0)  # followed from now on
    assert nxt.rejected is None and nxt.missing == 0 and dec.stats.rejected == {"out_of_order": 2}


@pytest.mark.parametrize(
    "times,accepted_at",
    [
        ([3_000_000_000, 3_001_000_000, 3_002_000_000], 2),  # steps of exactly RESYNC_STEP_US count
        ([3_000_000_000, 3_000_000_001, 3_000_000_002], 2),  # and of one microsecond
        ([3_000_000_000, 3_001_000_001, 3_002_000_001, 3_003_000_001], 3),  # one more: counting restarts
        ([3_000_000_000, 3_000_000_000, 3_000_000_100, 3_000_000_200], 3),  # a repeat does not continue
        ([3_000_000_000, 2_999_999_000, 2_999_999_500, 3_000_000_000], 3),  # nor an earlier one
    ],
)
def test_resynchronisation_after_a_jump_of_more_than_half_the_counter(times, accepted_at: int) -> None:
    dec = md.MovellaDotDecoder(60.0, "custom5")
    assert dec.feed(custom5(1_000), 0.0).rejected is None
    got = _feed_all(dec, times)
    assert got == ["out_of_order"] * accepted_at + [None] * (len(times) - accepted_at)
    assert dec.stats.resets == 1
    out = dec.feed(custom5(times[-1] + 16_667), 0.0)
    assert out.rejected is None and out.missing == 0
    assert out.device_time_s.tolist() == [(times[-1] + 16_667) * 1e-6]


@pytest.mark.parametrize("step,counts", [(1_500_000, True), (2_000_000, True), (2_000_001, False)])
def test_at_one_hertz_a_continuing_step_may_be_two_sample_periods(step: int, counts: bool) -> None:
    dec = md.MovellaDotDecoder(1.0, "custom5")
    assert dec.feed(custom5(1_000), 0.0).rejected is None
    t0 = 3_000_000_000
    got = _feed_all(dec, [t0, t0 + step, t0 + 2 * step])
    assert got == ["out_of_order", "out_of_order", None if counts else "out_of_order"]


def test_resynchronisation_follows_the_timestamps_over_the_counter_wrap() -> None:
    dec = md.MovellaDotDecoder(60.0, "custom5")
    assert _feed_all(dec, [WRAP - 1_000, 500]) == [None, None]  # a rollover: epoch 2^32
    # late packets from before the rollover, then one after it: they continue one another over the wrap
    assert _feed_all(dec, [WRAP - 300, WRAP - 100]) == ["out_of_order", "out_of_order"]
    out = dec.feed(custom5(100), 0.0)
    assert out.rejected is None and dec.stats.resets == 1
    assert out.device_time_s.tolist() == [(WRAP + 500 + 16_667) * 1e-6]
