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
        values={}, modes=tuple(m for m in md.PAYLOAD_MODES if m != "custom5"),
        modes_reason="needs firmware 3 or later and the firmware version could not be read (Device Info)",
        notes=("firmware version unknown: only the payload modes every firmware has (not custom5)",))
    bad = {md.DEVICE_INFO_UUID: b"\x01\x02\x03"}
    assert MOVELLA_DOT.parse_config(bad).notes == (
        "Device Info unreadable (Device Info value has 3 bytes, expected 34)",
        "firmware version unknown: only the payload modes every firmware has (not custom5)",
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
    out = dec.feed(custom5(10_050_000), 3.0)  # returns the two kept aside before its own sample
    assert out.rejected is None and out.extra["recovered"] == 2
    # a new epoch one period after the last sample (the first stale one arrived with it), then their own steps
    assert out.device_time_s.tolist() == [t * 1e-6 for t in (10_516_667, 10_533_333, 10_550_000)]
    assert dec.stats.resets == 1
    nxt = dec.feed(custom5(10_066_667), 4.0)  # followed from now on
    assert nxt.rejected is None and nxt.missing == 0 and dec.stats.rejected == {} and dec.stats.recovered == 2


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
    first = WRAP + 500 + 16_667  # one period after the last sample, then the timestamps' own steps
    assert out.device_time_s.tolist() == [first * 1e-6, (first + 200) * 1e-6, (first + 400) * 1e-6]


# -- restarts as new epochs, steps the arrivals cannot hold, set-up reads --------------------------------
def test_the_same_timestamp_with_other_data_is_out_of_order_at_its_arrival() -> None:
    dec = md.MovellaDotDecoder(60.0, "custom5")
    assert dec.feed(custom5(10_000_000), 1.0).rejected is None
    out = dec.feed(custom5(10_000_000, acc=(0.0, 0.0, 9.7)), 2.0)
    assert out.rejected == "out_of_order" and out.arrival_time == 2.0
    assert dec.feed(custom5(10_000_000), 2.5).rejected == "duplicate"  # a repeat of the accepted one


def test_a_clock_restarted_onto_the_last_timestamp_continues_after_the_last_sample() -> None:
    """Two stale packets, then one with the last accepted timestamp (other data) that continues them: the
    device's clock now, a restart; its sample follows the last one by the time between their arrivals."""
    dec = md.MovellaDotDecoder(60.0, "custom5")
    assert dec.feed(custom5(10_000_000), 0.0).rejected is None
    assert _feed_all(dec, [9_500_000, 9_750_000]) == ["out_of_order", "out_of_order"]
    out = dec.feed(custom5(10_000_000, acc=(0.0, 0.0, 9.7)), 1.5)
    assert out.rejected is None and out.gaps == [] and dec.stats.resets == 1
    # the two stale ones arrived with the last sample: the first follows it by one period, then 0.25 s steps
    assert out.device_time_s.tolist() == [t * 1e-6 for t in (10_016_667, 10_266_667, 10_516_667)]
    assert out.extra["timestamp_us"] == 10_000_000


@pytest.mark.parametrize("arrival,step_us", [
    (12.5, 2_500_000),  # 2.5 s after the last sample's arrival
    (10.0, 16_667),  # at the same time: one sample period (rounded up)
    (float("nan"), 16_667),  # an arrival time that says nothing
    (10.0 + 1e9, 16_667),  # 1e9 s (31 years) on: not a pause
    (10.0 + 999_999_999.0, 999_999_999_000_000),
])
def test_a_restart_continues_after_the_last_sample_by_the_time_between_the_arrivals(arrival, step_us) -> None:
    dec = md.MovellaDotDecoder(60.0, "custom5")
    assert dec.feed(custom5(5_000_000), 10.0).rejected is None
    out = dec.feed(custom5(100), arrival)  # the clock restarted
    assert out.rejected is None and dec.stats.resets == 1
    assert out.device_time_s.tolist() == [(5_000_000 + step_us) * 1e-6]


def test_after_a_rollover_a_jump_of_more_than_half_the_counter_keeps_the_epoch() -> None:
    dec = md.MovellaDotDecoder(60.0, "custom5")
    assert _feed_all(dec, [WRAP - 1_000, 500]) == [None, None]  # epoch 2^32
    far = (1 << 31) + 10_000
    assert _feed_all(dec, [far, far + 16_667, far + 33_333]) == ["out_of_order", "out_of_order", None]
    out = dec.feed(custom5(far + 50_000), 0.0)
    # later than the last sample in the current epoch: no new epoch
    assert out.device_time_s.tolist() == [(WRAP + far + 50_000) * 1e-6]


def test_each_step_the_arrivals_cannot_hold_is_a_clock_jump_not_a_loss() -> None:
    dec = md.MovellaDotDecoder(60.0, "custom5")
    assert dec.feed(custom5(1_000_000), 100.0).rejected is None
    out = dec.feed(custom5(41_000_000), 101.0)  # 40 s of timestamps in 1 s of arrivals
    assert out.rejected is None and out.gaps == [] and dec.stats.resets == 1
    out = dec.feed(custom5(81_000_000), 102.0)
    assert out.gaps == [] and dec.stats.resets == 2 and dec.stats.gaps == []


@pytest.mark.parametrize("diff_us,arrival,lost", [
    (1_032_000_000, 1100.0, True),  # 1000 s of arrivals: 1001 s + 32 s allowed
    (1_034_000_000, 1100.0, False),
    (32_000_000, 100.0, True),  # arrived together: exactly MAX_LATENCY_S
    (32_500_000, 100.0, False),
    (32_500_000, 50.0, False),  # arrived before the sample before: no time passed
    (40_000_000, float("nan"), True),  # nothing known about the arrivals: a loss
])
def test_a_step_is_a_loss_only_as_far_as_the_arrivals_allow(diff_us: int, arrival: float, lost: bool) -> None:
    dec = md.MovellaDotDecoder(60.0, "custom5")
    assert dec.feed(custom5(1_000_000), 100.0).rejected is None
    out = dec.feed(custom5(1_000_000 + diff_us), arrival)
    assert out.rejected is None
    assert (out.missing == round(diff_us / (1e6 / 60.0)) - 1) is lost
    assert dec.stats.resets == (0 if lost else 1)


def test_unreadable_control_values_are_noted_and_stopped_before_the_rate_write() -> None:
    note = "measurement stopped before the output rate is written"
    notes = MOVELLA_DOT.parse_config({md.CONTROL_UUID: b"\x01\x05"}).notes
    assert notes[-1] == f"Control unreadable (01 05): {note}"
    assert MOVELLA_DOT.parse_config({md.CONTROL_UUID: b""}).notes[-1] == f"Control unreadable (empty): {note}"
    long = bytes(range(1, 11))
    assert MOVELLA_DOT.parse_config({md.CONTROL_UUID: long}).notes[-1] == (
        f"Control unreadable (01 02 03 04 05 06 07 08): {note}")
    cfg = MOVELLA_DOT.parse_config({md.DEVICE_CONTROL_UUID: bytes(5)})
    assert cfg.notes[-1] == (
        "Device Control unreadable (5 bytes, expected 32): the output rate is written alone")
    assert MOVELLA_DOT.parse_config({md.DEVICE_CONTROL_UUID: bytes(32)}).notes == (
        "firmware version unknown: only the payload modes every firmware has (not custom5)",)
    values = {md.CONTROL_UUID: b"\x01\x05", md.DEVICE_CONTROL_UUID: bytes(5)}
    assert MOVELLA_DOT.start_sequence(30, "custom3", values) == [
        Write(md.CONTROL_UUID, bytes([1, 0, 24]), True, "stop (measuring state unreadable)"),
        Write(md.DEVICE_CONTROL_UUID, md.device_control_write(bytes(32), 30), True,
              "output rate (the value read was malformed)"),
        Write(md.CONTROL_UUID, bytes([1, 1, 24]), True, "start custom3"),
    ]


def test_after_a_mode_change_a_restart_continues_after_the_last_sample() -> None:
    first = md.MovellaDotDecoder(60.0, "custom5")
    assert first.feed(custom5(5_000_000), 10.0).rejected is None
    second = md.MovellaDotDecoder(60.0, "custom5")
    second.continue_from(first)
    out = second.feed(custom5(100), 12.5)  # the clock restarted during the reconnection
    assert out.rejected is None and out.device_time_s.tolist() == [(5_000_000 + 2_500_000) * 1e-6]
