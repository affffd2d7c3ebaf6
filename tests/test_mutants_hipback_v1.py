"""hipback IMU profile v1, checked byte by byte against packets built here from the profile document
(``firmware_notes/hipback-imu-profile-v1.md``), not from the simulator's encoder.

Written for the survivors of ``python bench/mutation.py --group decoders``: exact scales and offsets, every
refusal with its reason and arrival time, the battery byte, the status word, sequence arithmetic at its
edges (restart, stale and repeated packets, a header that claims no samples), the INFO characteristic and the
control writes.
"""

from __future__ import annotations

import math
import struct
import warnings

import numpy as np
import pytest

from hipback.ingest.devices import HIPBACK_V1, DeviceConfig, StatusFlag, Write
from hipback.ingest.devices import hipback_v1 as hb

G = 9.80665
RAW = hb.FMT_ACC | hb.FMT_GYR
RAW_MAG = RAW | hb.FMT_MAG
MODE_QRM = hb.MODES["quat_raw_mag"]


def packet(
    body: bytes = b"",
    *,
    fmt: int = RAW,
    n: int = 1,
    battery: int = 80,
    seq: int = 0,
    t0_us: int = 0,
    dt_us: int = 10_000,
    status: int = 0,
    version: int = 1,
) -> bytes:
    return struct.pack("<BBBBIQHH", version, fmt, n, battery, seq, t0_us, dt_us, status) + body


def raw_body(n: int = 1, acc=(0, 0, 2048), gyr=(0, 0, 0)) -> bytes:
    return struct.pack("<6h", *acc, *gyr) * n


def raw(seq: int, t0_us: int, n: int = 1, **kw) -> bytes:
    return packet(raw_body(n), n=n, seq=seq, t0_us=t0_us, **kw)


# -- samples: scales, offsets, times, status, battery ---------------------------------------------------
def test_raw_mag_samples_exact_scales_times_and_status() -> None:
    body = struct.pack("<9h", 100, -200, 2048, 16, -32, 64, 160, -320, 480)
    body += struct.pack("<9h", -1, 1, 0, 32767, -32768, 0, 1, 2, 3)
    status = 0x2000 | 0x0001 | 0x0040  # fusion accuracy 2, acc clip, overrun
    dec = HIPBACK_V1.make_decoder(100, "raw_mag")
    out = dec.feed(packet(body, fmt=RAW_MAG, n=2, battery=80, seq=7, t0_us=3_000_000, dt_us=2_500,
                          status=status), 12.5)
    assert out.rejected is None and out.n == 2 and out.arrival_time == 12.5
    lsb_a, lsb_g = 16 * G / 32768, math.radians(2000 / 32768)
    np.testing.assert_array_equal(out.acc, np.array([[100, -200, 2048], [-1, 1, 0]], float) * lsb_a)
    np.testing.assert_array_equal(out.gyr, np.array([[16, -32, 64], [32767, -32768, 0]], float) * lsb_g)
    np.testing.assert_array_equal(out.mag, [[10.0, -20.0, 30.0], [1 / 16, 2 / 16, 3 / 16]])  # 1/16 uT
    assert out.quat is None
    assert out.seq.dtype == np.int64 and out.seq.tolist() == [7, 8]
    np.testing.assert_array_equal(out.device_time_s, [3.0, 3.0025])
    assert out.flags == StatusFlag.ACC_CLIPPING | StatusFlag.OVERRUN
    assert out.battery_pct == 80.0
    assert out.extra == {"fusion_accuracy": 2, "dt_us": 2_500}
    assert dec.stats.samples == 2 and dec.stats.bytes == 20 + 36 and dec.stats.packets == 1


def test_every_known_status_bit_maps_to_its_flag() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    out = dec.feed(raw(0, 0, status=0x01FF | 0x3000), 0.0)
    assert out.flags == StatusFlag(0x01FF) and out.extra["fusion_accuracy"] == 3


@pytest.mark.parametrize(
    "battery,pct,low",
    [(0, 0.0, True), (15, 15.0, True), (16, 16.0, False), (100, 100.0, False), (255, None, False)],
)
def test_battery_byte(battery: int, pct: float | None, low: bool) -> None:
    out = HIPBACK_V1.make_decoder(100, "raw").feed(raw(0, 0, battery=battery), 0.0)
    assert out.rejected is None and out.battery_pct == pct
    assert (StatusFlag.LOW_BATTERY in out.flags) is low


def test_q14_quaternion_is_scaled_and_renormalised() -> None:
    # norm 1.015: within the Q14 tolerance (0.02); the decoded quaternion is unit
    w = round(16384 * 1.015)
    dec = HIPBACK_V1.make_decoder(100, "quat")
    out = dec.feed(packet(struct.pack("<4h", w, 0, 0, 0), fmt=hb.QUAT_Q14), 0.0)
    np.testing.assert_array_equal(out.quat, [[1.0, 0.0, 0.0, 0.0]])
    out = dec.feed(packet(struct.pack("<4h", 8192, 8192, 8192, 8192), fmt=hb.QUAT_Q14, seq=1), 0.0)
    np.testing.assert_array_equal(out.quat, [[0.5, 0.5, 0.5, 0.5]])
    assert out.flags == StatusFlag.NONE  # fusion is the device's status bit 3, not implied by a quaternion


@pytest.mark.parametrize("norm,ok", [(1.009, True), (0.991, True), (1.011, False), (1.5, False)])
def test_float_quaternion_norm_tolerance_is_one_percent(norm: float, ok: bool) -> None:
    body = struct.pack("<4f", norm, 0, 0, 0) + struct.pack("<6h", 0, 0, 2048, 0, 0, 0)
    out = HIPBACK_V1.make_decoder(100, "quat_f32_raw").feed(packet(body, fmt=hb.QUAT_F32 | RAW), 0.0)
    assert out.rejected == (None if ok else "bad_quat_norm")
    if ok:
        np.testing.assert_allclose(out.quat, [[1.0, 0.0, 0.0, 0.0]], rtol=0, atol=1e-15)


@pytest.mark.parametrize("norm,ok", [(1.019, True), (0.981, True), (1.021, False)])
def test_q14_quaternion_norm_tolerance_is_two_percent(norm: float, ok: bool) -> None:
    out = HIPBACK_V1.make_decoder(100, "quat").feed(
        packet(struct.pack("<4h", round(16384 * norm), 0, 0, 0), fmt=hb.QUAT_Q14), 0.0)
    assert out.rejected == (None if ok else "bad_quat_norm")


def test_gyr_beyond_the_configured_full_scale_is_out_of_range() -> None:
    """A device reporting 250 deg/s of range cannot send 300 deg/s; 250 deg/s itself passes."""
    cfg = DeviceConfig(gyr_range_rads=math.radians(250.0), acc_range_ms2=2 * G)
    dec = HIPBACK_V1.make_decoder(100, "raw", cfg)
    per_dps = 32768 / 2000
    ok = packet(struct.pack("<6h", 0, 0, 2048, round(250 * per_dps), 0, 0))
    bad = packet(struct.pack("<6h", 0, 0, 2048, 0, round(-300 * per_dps), 0), seq=1, t0_us=10_000)
    assert dec.feed(ok, 0.0).rejected is None
    out = dec.feed(bad, 4.0)
    assert out.rejected == "out_of_range" and out.arrival_time == 4.0
    acc3g = packet(struct.pack("<6h", 0, 0, 3 * 2048, 0, 0, 0), seq=1, t0_us=10_000)
    assert dec.feed(acc3g, 0.0).rejected == "out_of_range"
    assert dec.stats.rejected == {"out_of_range": 2}


# -- refusals: reason, arrival time, no state change ----------------------------------------------------
@pytest.mark.parametrize(
    "data,reason",
    [
        (b"\x01" * 19, "truncated"),
        (packet(raw_body(), version=2), "bad_version"),
        (packet(raw_body(), fmt=0x23), "bad_format"),  # reserved format bit
        (packet(raw_body(), fmt=0x03 | hb.FMT_ACC), "bad_format"),  # quaternion code 3
        (packet(b"", fmt=0, n=1), "bad_format"),  # no field at all
        (packet(b"", n=0), "bad_format"),
        (packet(raw_body(), dt_us=0), "bad_format"),
        (packet(raw_body(), status=0x0200), "bad_format"),  # unknown status bit
        (packet(raw_body(), battery=101), "bad_format"),
        (packet(raw_body(2), n=3), "truncated"),
        (packet(raw_body(2) + b"\x00", n=2), "bad_length"),
        (packet(struct.pack("<4f", math.nan, 0, 0, 0), fmt=hb.QUAT_F32), "bad_value"),
        (packet(struct.pack("<4h", 8000, 0, 0, 0), fmt=hb.QUAT_Q14), "bad_quat_norm"),
    ],
)
def test_refusals_name_their_reason_and_keep_the_arrival_time(data: bytes, reason: str) -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    out = dec.feed(data, 7.25)
    assert (out.rejected, out.n, out.arrival_time) == (reason, 0, 7.25)
    assert dec.stats.rejected == {reason: 1} and dec.stats.samples == 0
    assert dec.stats.truncated == (reason == "truncated")


def test_a_header_claiming_no_samples_changes_no_sequence_state() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    dec.feed(raw(0, 0), 0.0)
    assert dec.feed(packet(b"", n=0, seq=5, t0_us=50_000), 0.0).rejected == "bad_format"
    out = dec.feed(raw(1, 10_000), 0.0)
    assert out.rejected is None and out.missing == 0 and out.seq.tolist() == [1]
    assert dec.stats.seq_gaps == [] and dec.stats.missing == 0


# -- sequence numbers: restarts, stale and repeated packets -------------------------------------------
def test_each_device_restart_is_counted_and_numbering_continues() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    for seq in range(3):
        dec.feed(raw(seq, seq * 10_000), 0.0)
    out = dec.feed(raw(0, 0, battery=79), 0.0)  # sequence and clock back: a reboot
    assert out.rejected is None and out.seq.tolist() == [3] and out.missing == 0
    dec.feed(raw(1, 10_000, battery=79), 0.0)
    out = dec.feed(raw(0, 0, battery=78), 0.0)  # and again
    assert out.seq.tolist() == [5]
    assert dec.stats.resets == 2 and dec.stats.rejected == {}


def test_restart_needs_the_clock_to_go_back_even_by_one_microsecond() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    dec.feed(raw(10, 10_000_000), 0.0)
    out = dec.feed(raw(0, 9_999_999), 0.0)
    assert out.rejected is None and dec.stats.resets == 1 and out.seq.tolist() == [11]


def test_stale_packet_with_the_same_or_a_later_time_is_out_of_order() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    dec.feed(raw(10, 100_000), 0.0)
    same_time = dec.feed(raw(9, 100_000, battery=70), 3.0)
    later = dec.feed(raw(8, 200_000, battery=70), 4.0)
    assert (same_time.rejected, same_time.arrival_time) == ("out_of_order", 3.0)
    assert (later.rejected, later.arrival_time) == ("out_of_order", 4.0)
    assert dec.stats.resets == 0 and dec.stats.rejected == {"out_of_order": 2}
    assert dec.feed(raw(11, 110_000), 0.0).missing == 0  # the stream goes on


def test_jump_of_half_the_sequence_space_is_read_as_backwards() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    dec.feed(raw(0, 0), 0.0)
    out = dec.feed(raw(1 + (1 << 31), 20_000), 0.0)  # 2^31 ahead of the expected 1: ambiguous, not a gap
    assert out.rejected == "out_of_order" and dec.stats.seq_gaps == []
    out = dec.feed(raw(1 + (1 << 31) - 1, 20_000), 0.0)  # 2^31 - 1 ahead in 0.02 s of device time: corrupt
    assert out.rejected == "bad_value" and dec.stats.seq_gaps == []


def test_duplicates_are_recognised_among_the_last_64_packets() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    packets = [raw(seq, seq * 10_000) for seq in range(70)]
    for p in packets:
        dec.feed(p, 0.0)
    assert [(o.rejected, o.arrival_time) for o in (dec.feed(p, 9.0) for p in packets[70 - 64:])] == [
        ("duplicate", 9.0)] * 64
    assert dec.stats.duplicates == 64 and dec.stats.rejected == {"duplicate": 64}
    # older than the window: no longer known (with an earlier device time it reads as a restart)
    assert dec.feed(packets[70 - 65], 0.0).rejected != "duplicate" and dec.stats.duplicates == 64


# -- INFO, configuration, control writes -------------------------------------------------------------
def info(chip: int = 1, mcu: int = 1, acc_g: int = 8, gyr_dps: int = 1000, caps: int = 0x3F, n_rates: int = 5,
         rates=(25, 50, 100, 200, 400, 0, 0, 0), serial: int = 0x91223344, model: bytes = b"Hb-1X",
         mag_ut: int = 4900) -> bytes:
    return hb.INFO.pack(1, 1, 2, 3, 4, chip, mcu, acc_g, gyr_dps, mag_ut, caps, n_rates, *rates, serial,
                        model)


def test_parse_info_every_field() -> None:
    assert hb.parse_info(info()) == {
        "info_version": 1,
        "protocol_version": 1,
        "firmware": "2.3.4",
        "imu": "BNO085",
        "mcu": "nRF52840",
        "acc_range_g": 8,
        "gyr_range_dps": 1000,
        "mag_range_ut": 4900,
        "capabilities": 0x3F,
        "rates_hz": [25.0, 50.0, 100.0, 200.0, 400.0],
        "serial": 0x91223344,
        "model": "Hb-1X",
    }


def test_parse_info_unknown_chips_bad_text_and_too_many_rates() -> None:
    got = hb.parse_info(info(chip=9, mcu=7, n_rates=9, rates=tuple(range(1, 9)), model=b"\xffX\x00\x00"))
    assert got["imu"] == "unknown(9)" and got["mcu"] == "unknown(7)"
    assert got["rates_hz"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert got["model"] == "\ufffdX"
    with pytest.raises(ValueError, match=r"^INFO value has 49 bytes, expected 50$"):
        hb.parse_info(info()[:-1])


def test_parse_config_without_or_with_a_bad_info() -> None:
    other = {hb.BATTERY_LEVEL_UUID: b"\x50"}
    assert HIPBACK_V1.parse_config(other) == DeviceConfig(
        values=other, notes=("INFO not read: profile defaults used",))
    bad = {hb.INFO_UUID: b"\x01\x02\x03"}
    assert HIPBACK_V1.parse_config(bad) == DeviceConfig(
        values=bad, notes=("INFO unreadable (INFO value has 3 bytes, expected 50): profile defaults used",)
    )


def test_parse_config_modes_rates_and_ranges() -> None:
    caps = hb.CAP_Q14 | hb.CAP_FUSION | hb.CAP_ACC | hb.CAP_GYR
    values = {hb.INFO_UUID: info(caps=caps, acc_g=8, gyr_dps=1000, rates=(25, 0, 100, 1, 0, 0, 0, 0),
                                 n_rates=4)}
    assert HIPBACK_V1.parse_config(values) == DeviceConfig(
        values=values, firmware="2.3.4", modes=("quat", "quat_raw", "raw"), rates_hz=(25.0, 100.0, 1.0),
        acc_range_ms2=8 * G, gyr_range_rads=math.radians(1000.0),
    )


@pytest.mark.parametrize(
    "acc_g,gyr_dps,acc,gyr",
    [
        (32, 4000, 16 * G, math.radians(2000.0)),  # capped at the packet scale
        (1, 1, G, math.radians(1.0)),
        (0, 0, None, None),  # not reported: the profile's
    ],
)
def test_parse_config_ranges(acc_g: int, gyr_dps: int, acc: float | None, gyr: float | None) -> None:
    cfg = HIPBACK_V1.parse_config({hb.INFO_UUID: info(acc_g=acc_g, gyr_dps=gyr_dps, rates=(0,) * 8)})
    assert (cfg.acc_range_ms2, cfg.gyr_range_rads, cfg.rates_hz) == (acc, gyr, None)


def test_modes_sizes_capabilities_and_fallbacks() -> None:
    assert {m: HIPBACK_V1.sensor_kind(m) for m in hb.MODES} == {
        "quat": "quat", "quat_raw": "quat", "quat_raw_mag": "quat", "quat_f32_raw": "quat",
        "raw": "raw", "raw_mag": "raw"}
    assert {m: hb.sample_size(f) for m, f in hb.MODES.items()} == {
        "quat": 8, "quat_raw": 20, "quat_raw_mag": 26, "quat_f32_raw": 28, "raw": 12, "raw_mag": 18}
    assert {m: HIPBACK_V1.fallback_modes(m) for m in hb.MODES} == {
        "quat": (),
        "quat_raw": ("quat",),
        "quat_raw_mag": ("quat_raw", "quat"),
        "quat_f32_raw": ("quat_raw_mag", "quat_raw", "quat"),
        "raw": (),
        "raw_mag": ("raw",),
    }
    assert hb.format_capabilities(RAW) == hb.CAP_ACC | hb.CAP_GYR
    assert hb.format_capabilities(hb.QUAT_Q14) == hb.CAP_Q14 | hb.CAP_FUSION
    assert HIPBACK_V1.min_mtu("quat_raw") == 3 + 20 + 20
    with pytest.raises(ValueError, match=r"^format byte 0x03 uses reserved bits$"):
        hb.sample_size(0x03)


def test_start_and_stop_writes() -> None:
    fmt = hb.MODES["quat_raw"]
    assert HIPBACK_V1.start_sequence(100, "quat_raw") == [
        Write(hb.CONTROL_UUID, bytes([0x01, 100, 0, fmt, 0]), True, "start streaming")]
    # the device's own rates count; the batch cap is clamped to a byte
    cfg = DeviceConfig(rates_hz=(30.0,))
    assert HIPBACK_V1.start_sequence(100, "raw", cfg, max_batch=300)[0].data == bytes([0x01, 30, 0, RAW, 255])
    assert HIPBACK_V1.start_sequence(100, "raw", max_batch=-5)[0].data[-1] == 0
    assert hb.start_command(400, RAW_MAG, 200) == bytes([0x01, 0x90, 0x01, RAW_MAG, 200])
    assert hb.start_command(50, RAW) == bytes([0x01, 50, 0, RAW, 0])
    assert HIPBACK_V1.stop_sequence() == [Write(hb.CONTROL_UUID, b"\x02", True, "stop streaming")]
    assert HIPBACK_V1.make_decoder(100, "raw", cfg).rate_hz == 30.0


@pytest.mark.parametrize("data,pct", [(b"\x00", 0.0), (b"\x64", 100.0), (b"\x65", None), (b"", None),
                                      (b"\x10\x10", None)])
def test_battery_level_characteristic(data: bytes, pct: float | None) -> None:
    if pct is None:
        with pytest.raises(ValueError, match=r"^malformed Battery Level value$"):
            hb.battery_level(data)
    else:
        assert hb.battery_level(data) == pct


# -- resynchronisation: a stream of out-of-order packets that continue one another -------------------------
def _after_corrupt_seq(dec) -> None:
    """Packet 0 at 0 s, then one whose sequence number is corrupt (1000): the decoder expects 1001 next."""
    assert dec.feed(raw(0, 0), 0.0).rejected is None
    assert dec.feed(raw(1000, 10_000), 10.0).missing == 999  # the arrivals (10 s on) back the jump


def test_three_continuing_out_of_order_packets_resynchronise_numbering_continues() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    _after_corrupt_seq(dec)
    first = dec.feed(raw(1, 20_000), 1.0)
    second = dec.feed(raw(2, 30_000), 2.0)
    assert (first.rejected, first.arrival_time) == ("out_of_order", 1.0)
    assert (second.rejected, second.arrival_time) == ("out_of_order", 2.0)
    assert dec.stats.resets == 0
    third = dec.feed(raw(3, 40_000), 3.0)
    assert third.rejected is None and third.seq.tolist() == [1001] and third.missing == 0
    assert dec.stats.resets == 1
    out = dec.feed(raw(4, 50_000), 4.0)  # the stream followed from now on
    assert out.rejected is None and out.seq.tolist() == [1002] and out.missing == 0
    assert dec.stats.rejected == {"out_of_order": 2}


def test_resynchronisation_counts_only_packets_that_follow_on_in_sequence() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    _after_corrupt_seq(dec)
    assert dec.feed(raw(1, 20_000), 0.0).rejected == "out_of_order"
    assert dec.feed(raw(5, 30_000), 0.0).rejected == "out_of_order"  # does not follow 1: counting restarts
    assert dec.feed(raw(6, 40_000), 0.0).rejected == "out_of_order"
    assert dec.feed(raw(8, 50_000), 0.0).rejected == "out_of_order"  # skips 7: restarts again
    assert dec.feed(raw(9, 60_000), 0.0).rejected == "out_of_order"
    out = dec.feed(raw(10, 70_000), 0.0)
    assert out.rejected is None and out.seq.tolist() == [1001] and dec.stats.resets == 1


def test_resynchronisation_needs_each_packet_later_than_the_last_sample_before() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    _after_corrupt_seq(dec)
    # two samples each: the next one must start after the last sample (t0 + dt), not only after t0
    assert dec.feed(raw(1, 20_000, n=2), 0.0).rejected == "out_of_order"
    assert dec.feed(raw(3, 30_000, n=2), 0.0).rejected == "out_of_order"  # = the last sample's time
    assert dec.feed(raw(5, 45_000, n=2), 0.0).rejected == "out_of_order"  # count 2 from the one before
    out = dec.feed(raw(7, 60_000, n=2), 0.0)
    assert out.rejected is None and out.seq.tolist() == [1001, 1002] and dec.stats.resets == 1


def test_resynchronisation_follows_the_sequence_over_its_wrap() -> None:
    top = 0xFFFFFFFF
    dec = HIPBACK_V1.make_decoder(100, "raw")
    assert dec.feed(raw(top - 10, 0), 0.0).rejected is None
    assert dec.feed(raw(5, 10_000), 0.2).missing == 15  # corrupt: 15 samples ahead over the wrap (0.2 s on)
    assert dec.feed(raw(top - 1, 20_000), 0.0).rejected == "out_of_order"
    assert dec.feed(raw(top, 30_000), 0.0).rejected == "out_of_order"
    out = dec.feed(raw(0, 40_000), 0.0)  # follows top over the wrap: the third in a row
    assert out.rejected is None and dec.stats.resets == 1 and out.seq.tolist() == [top - 10 + 2 + 15]


def test_a_clock_standing_still_is_refused_until_packets_continue_one_another() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    assert dec.feed(raw(0, 1_000_000), 0.0).rejected is None
    step = dec.feed(raw(1, 500_000), 0.0)  # the clock set back once (a time sync): accepted
    assert step.rejected is None and dec.stats.resets == 0
    # still at or before the last sample: refused while they do not continue one another in time
    refused = [dec.feed(raw(2, 500_000), 1.0), dec.feed(raw(2, 200_000), 2.0), dec.feed(raw(3, 300_000), 3.0)]
    assert [(o.rejected, o.arrival_time) for o in refused] == [("out_of_order", 1.0), ("out_of_order", 2.0),
                                                              ("out_of_order", 3.0)]
    out = dec.feed(raw(4, 400_000), 4.0)  # the third that continues: the clock runs again (new timeline)
    assert out.rejected is None and dec.stats.resets == 1 and out.seq.tolist() == [4]
    assert out.missing == 2 and dec.stats.missing == 2  # seq 2 and 3 were refused
    step = dec.feed(raw(5, 400_000), 5.0)  # the packet after the resync may be a step (once)
    assert step.rejected is None and step.seq.tolist() == [5]
    assert dec.feed(raw(6, 400_000), 6.0).rejected == "out_of_order"  # but not twice in a row
    nxt = dec.feed(raw(6, 410_000), 7.0)  # on that timeline from now on
    assert nxt.rejected is None and nxt.seq.tolist() == [6] and dec.stats.resets == 1


# -- packets beyond SMALL_PACKET samples (numpy path) and the small-packet path's renormalisation ------------
QUATS = [(12000, 8000, -6000, 5000), (-10000, 9000, 7500, 5000), (3000, -11000, 9000, 7000),
         (16384, 0, 0, 0)]  # norms 1.0011, 0.9884, 0.9841, 1


def _q14_body(rows) -> bytes:
    """quat_raw_mag samples: a Q14 quaternion, acc, gyr and mag (int16 each), from the given quaternions."""
    return b"".join(struct.pack("<13h", *q, 10 * i, -20 * i, 2048, 3 * i, -4 * i, 5 * i, 16 * i, -32, 48)
                    for i, q in enumerate(rows))


def _expected_quat(rows) -> np.ndarray:
    q = np.array(rows, dtype=float) / 16384
    return q / np.sqrt((q * q).sum(axis=1))[:, None]


@pytest.mark.parametrize("n", [4, hb.SMALL_PACKET, hb.SMALL_PACKET + 1, 12])
def test_q14_quaternions_are_renormalised_row_by_row_on_both_paths(n: int) -> None:
    rows = [QUATS[i % len(QUATS)] for i in range(n)]
    out = HIPBACK_V1.make_decoder(100, "quat_raw_mag").feed(packet(_q14_body(rows), fmt=MODE_QRM, n=n), 0.0)
    assert out.rejected is None and out.n == n
    np.testing.assert_allclose(out.quat, _expected_quat(rows), rtol=1e-15, atol=1e-16)
    i = np.arange(n)[:, None]
    np.testing.assert_array_equal(out.acc, np.hstack([10 * i, -20 * i, 2048 + 0 * i]) * (16 * G / 32768))
    np.testing.assert_array_equal(out.gyr, np.hstack([3 * i, -4 * i, 5 * i]) * math.radians(2000 / 32768))
    np.testing.assert_array_equal(out.mag, np.hstack([16 * i, -32 + 0 * i, 48 + 0 * i]) / 16)


@pytest.mark.parametrize("n", [hb.SMALL_PACKET, 12])
@pytest.mark.parametrize("bad", [(24576, 0, 0, 0), (8192, 0, 0, 0), (16384, 16384, 16384, 16384)])
def test_a_q14_row_outside_the_norm_tolerance_refuses_the_packet(n: int, bad) -> None:
    rows = [QUATS[0]] * n
    rows[n - 2] = bad  # norm 1.5, 0.5 or 2
    out = HIPBACK_V1.make_decoder(100, "quat_raw_mag").feed(packet(_q14_body(rows), fmt=MODE_QRM, n=n), 1.5)
    assert (out.rejected, out.arrival_time) == ("bad_quat_norm", 1.5)


@pytest.mark.parametrize("n", [hb.SMALL_PACKET, 12])
@pytest.mark.parametrize("field", ["acc", "gyr"])
def test_one_value_beyond_full_scale_in_a_long_packet_refuses_it(n: int, field: str) -> None:
    cfg = DeviceConfig(gyr_range_rads=math.radians(250.0), acc_range_ms2=2 * G)
    rows = [[0, 0, 2048, 0, 0, 0] for _ in range(n)]
    rows[n - 1][1 if field == "acc" else 4] = -3 * 2048 if field == "acc" else -round(300 * 32768 / 2000)
    body = b"".join(struct.pack("<6h", *r) for r in rows)
    dec = HIPBACK_V1.make_decoder(100, "raw", cfg)
    assert dec.feed(packet(body, n=n), 2.0).rejected == "out_of_range"
    rows[n - 1] = [0, 0, 2048, 0, 0, 0]
    assert dec.feed(packet(b"".join(struct.pack("<6h", *r) for r in rows), n=n), 2.0).rejected is None


def test_float_quaternions_with_magnetometer() -> None:
    fmt = hb.QUAT_F32 | RAW_MAG
    n = 3
    body = b"".join(struct.pack("<4f", 0.0, 0.6, 0.0, 0.8) + struct.pack("<9h", i, -i, 2048, 0, 0, 0, 16 * i,
                                                                       -160, 32 + i) for i in range(n))
    out = HIPBACK_V1.make_decoder(100, "quat_f32_raw").feed(packet(body, fmt=fmt, n=n), 0.0)
    assert out.rejected is None
    q = np.array([0.0, 0.6, 0.0, 0.8], dtype=np.float32).astype(float)
    np.testing.assert_allclose(out.quat, np.tile(q / np.linalg.norm(q), (n, 1)), rtol=1e-15)
    np.testing.assert_array_equal(out.mag, [[0.0, -10.0, 2.0], [1.0, -10.0, 33 / 16], [2.0, -10.0, 34 / 16]])
    np.testing.assert_array_equal(out.acc[:, 0], [0.0, 16 * G / 32768, 2 * 16 * G / 32768])


def test_a_signalling_nan_quaternion_is_refused_as_a_bad_value_without_a_warning() -> None:
    snan = struct.pack("<I", 0x7FA00000)  # float32 signalling NaN: its conversion raises the invalid flag
    body = snan + struct.pack("<3f", 0, 0, 0) + struct.pack("<6h", 0, 0, 2048, 0, 0, 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = HIPBACK_V1.make_decoder(100, "quat_f32_raw").feed(packet(body, fmt=hb.QUAT_F32 | RAW), 0.0)
    assert out.rejected == "bad_value" and caught == []


@pytest.mark.parametrize("fmt", sorted({f for f in range(32) if f & 3 != 3}))
def test_sample_dtype_describes_one_sample_of_the_format(fmt: int) -> None:
    dt = hb.sample_dtype(fmt)
    assert dt.itemsize == hb.sample_size(fmt)
    names = (["quat"] if fmt & 3 else []) + [n for b, n in ((hb.FMT_ACC, "acc"), (hb.FMT_GYR, "gyr"),
                                                           (hb.FMT_MAG, "mag")) if fmt & b]
    assert list(dt.names or ()) == names
    if fmt & 3:
        assert dt["quat"] == np.dtype(("<i2" if fmt & 3 == 1 else "<f4", (4,)))
    for name in names[1 if fmt & 3 else 0:]:
        assert dt[name] == np.dtype(("<i2", (3,)))


def test_status_flags_are_right_from_an_empty_cache(monkeypatch) -> None:
    monkeypatch.setattr(hb, "_FLAGS", {})
    dec = HIPBACK_V1.make_decoder(100, "raw")
    out = dec.feed(raw(0, 0, status=0x0003, battery=10), 0.0)
    assert out.flags == StatusFlag.ACC_CLIPPING | StatusFlag.GYR_CLIPPING | StatusFlag.LOW_BATTERY
    out = dec.feed(raw(1, 10_000, status=0x0003, battery=10), 0.0)  # the same key, now cached
    assert out.flags == StatusFlag.ACC_CLIPPING | StatusFlag.GYR_CLIPPING | StatusFlag.LOW_BATTERY
    out = dec.feed(raw(2, 20_000, status=0x0040, battery=90), 0.0)
    assert out.flags == StatusFlag.OVERRUN


def test_a_restart_right_after_a_clock_step_is_a_restart_not_a_second_step() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    dec.feed(raw(0, 1_000_000), 0.0)
    dec.feed(raw(1, 1_010_000), 0.0)
    assert dec.feed(raw(2, 500_000), 0.0).rejected is None  # a step of the clock
    out = dec.feed(raw(0, 100_000), 0.0)  # sequence and clock back: a reboot
    assert out.rejected is None and out.seq.tolist() == [3] and dec.stats.resets == 1
    assert dec.feed(raw(1, 110_000), 0.0).seq.tolist() == [4]


@pytest.mark.parametrize("fmt", [hb.FMT_ACC, hb.FMT_GYR, hb.FMT_MAG, hb.FMT_ACC | hb.FMT_MAG,
                                 hb.FMT_GYR | hb.FMT_MAG])
def test_formats_with_neither_a_quaternion_nor_acc_and_gyr_are_refused(fmt: int) -> None:
    body = b"\x00" * hb.sample_size(fmt)
    out = HIPBACK_V1.make_decoder(100, "raw").feed(packet(body, fmt=fmt), 3.5)
    assert (out.rejected, out.arrival_time) == ("bad_format", 3.5)


@pytest.mark.parametrize("n,t0_us,ok", [
    (1, hb.MAX_DEVICE_TIME_US - 1, True), (1, hb.MAX_DEVICE_TIME_US, False),
    (3, hb.MAX_DEVICE_TIME_US - 21, True), (3, hb.MAX_DEVICE_TIME_US - 20, False),
])
def test_device_times_up_to_the_last_sample_stay_below_2_to_the_53_us(n: int, t0_us: int, ok: bool) -> None:
    out = HIPBACK_V1.make_decoder(100, "raw").feed(raw(0, t0_us, n=n, dt_us=10), 2.25)
    if ok:
        assert out.rejected is None and out.n == n
        assert out.device_time_s.tolist() == [(t0_us + 10 * i) * 1e-6 for i in range(n)]
    else:
        assert (out.rejected, out.arrival_time, out.n) == ("bad_value", 2.25, 0)


def test_every_resynchronisation_is_counted() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    _after_corrupt_seq(dec)
    for seq in (1, 2, 3):
        dec.feed(raw(seq, seq * 10_000 + 10_000), 0.0)
    assert dec.feed(raw(900, 60_000), 20.0).missing == 900 - 4  # corrupt again: 1002 + 896 (20 s on)
    for seq in (5, 6, 7):
        out = dec.feed(raw(seq, seq * 10_000 + 30_000), 0.0)
    assert out.rejected is None and dec.stats.resets == 2 and out.seq.tolist() == [1002 + 896 + 1]
    # and a clock standing still, twice
    dec = HIPBACK_V1.make_decoder(100, "raw")
    t = 1_000_000
    for rnd in range(2):
        seq = 10 * rnd
        assert dec.feed(raw(seq, t), 0.0).rejected is None
        assert dec.feed(raw(seq + 1, t // 2), 0.0).rejected is None  # a step
        got = [dec.feed(raw(seq + 2 + i, t // 4 + 1_000 * i), 0.0).rejected for i in range(3)]
        assert got == ["out_of_order", "out_of_order", None]
        t *= 4
    assert dec.stats.resets == 2


# -- sequence numbers the device time cannot hold (HipbackV1Decoder._plausible_gap) ---------------------
def _gap_after(delta: int, t0_us: int, arrival: float, *, dt_us: int = 10_000, rate: float = 100.0,
               first_arrival: float = 500.0, first_t0_us: int = 0):
    """A packet ``delta`` sequence numbers after the one expected, starting at device time ``t0_us`` and
    arriving at ``arrival`` (s), after one sample at device time ``first_t0_us`` that arrived at
    ``first_arrival``."""
    dec = hb.HipbackV1Decoder(rate)
    assert dec.feed(raw(0, first_t0_us, dt_us=dt_us), first_arrival).rejected is None
    return dec, dec.feed(raw(1 + delta, t0_us, dt_us=dt_us), arrival)


def test_a_long_loss_the_device_time_and_the_arrivals_hold_is_a_gap() -> None:
    dec, out = _gap_after(1999, 20_000_000, 520.0)  # 20 s lost, timed by both clocks
    assert out.rejected is None and out.missing == 1999 and out.seq.tolist() == [2000]


@pytest.mark.parametrize("delta,ok", [(11_998, True), (11_999, False)])
def test_a_gap_may_span_the_device_time_plus_ten_percent_and_ten_seconds(delta: int, ok: bool) -> None:
    # device clock 100 s on: 99.99 s between the samples, so 109.989 s + 10 s of lost samples at 10 ms
    dec, out = _gap_after(delta, 7_100_000_000, 700.0, first_t0_us=7_000_000_000)
    assert (out.rejected is None) is ok
    if not ok:
        assert out.rejected == "bad_value" and out.arrival_time == 700.0 and dec.stats.gaps == []


@pytest.mark.parametrize("delta,arrival,ok", [
    (103_200, 1500.0, True),  # 1032 s of samples, 1000 s of arrivals: 1001 s + 32 s allowed
    (103_400, 1500.0, False),
    (3_200, 500.0, True),  # arrived together: exactly MAX_LATENCY_S of samples may have been delayed
    (3_250, 500.0, False),
    (3_250, 400.0, False),  # arrived earlier than the sample before: no time passed
])
def test_a_gap_may_span_the_arrivals_with_the_drift_bound_and_the_longest_delay(delta, arrival, ok) -> None:
    dec, out = _gap_after(delta, 2_000_000_000, arrival)  # the device clock allows 2000 s
    assert (out.rejected is None) is ok
    if ok:
        assert out.missing == delta
    else:
        assert out.rejected == "bad_value" and out.arrival_time == arrival


def test_without_a_finite_arrival_time_only_the_device_time_bounds_a_gap() -> None:
    dec, out = _gap_after(5_000, 60_000_000, math.nan)
    assert out.rejected is None and out.missing == 5_000


def test_the_arrival_bound_is_measured_from_the_last_accepted_packet() -> None:
    dec = hb.HipbackV1Decoder(100.0)
    for i in range(3):  # arrivals 100 s apart
        assert dec.feed(raw(i, i * 10_000), 100.0 * i).rejected is None
    # 40 s of samples in 1 s of arrivals: refused, whatever came before
    out = dec.feed(raw(3 + 4_000, 2_000_000_000), 201.0)
    assert out.rejected == "bad_value"


@pytest.mark.parametrize("delta,ok", [(2_000, True), (2_001, False)])
def test_a_corrupt_sample_period_times_the_lost_samples_at_half_the_nominal_one(delta: int, ok: bool) -> None:
    """dt_us of 1 us: each lost sample counts 5 ms at 100 Hz, so 2000 of them fill the 10 s an untimed gap
    may span (the device clock did not advance), 2001 do not."""
    dec, out = _gap_after(delta, 1, 10_000.0, dt_us=1)
    assert (out.rejected is None) is ok


@pytest.mark.parametrize("delta,ok", [(1_999, True), (2_000, False)])
def test_with_the_device_clock_standing_a_gap_may_span_exactly_ten_seconds(delta: int, ok: bool) -> None:
    """At 99.99999 Hz half a period is 5000.0005 us: 2000 lost samples timed at it (dt_us corrupt, 1 us) are
    1 us over the 10 s a gap may span without device time, 1999 are under it."""
    dec, out = _gap_after(delta, 1, 10_000.0, dt_us=1, rate=99.99999)
    assert (out.rejected is None) is ok


@pytest.mark.parametrize("delta,ok", [(1_728_000, True), (1_728_001, False)])
def test_no_gap_is_longer_than_a_day(delta: int, ok: bool) -> None:
    day_us = 86_400_000_000
    dec, out = _gap_after(delta, 2 * day_us, 500.0 + 2 * 86_400, dt_us=50_000, rate=20.0)
    assert (out.rejected is None) is ok


def test_far_ahead_packets_that_continue_one_another_resynchronise_the_numbering() -> None:
    dec = hb.HipbackV1Decoder(100.0)
    assert dec.feed(raw(0, 1_000_000), 0.0).rejected is None  # device time 1 s
    far = 1_000_000_000
    # a corrupt header far ahead (and device times before the last sample): refused, the numbering stays
    first = dec.feed(raw(far, 10_000), 0.01)
    assert first.rejected == "bad_value" and first.arrival_time == 0.01
    assert dec.feed(raw(far + 1, 20_000), 0.02).rejected == "bad_value"
    out = dec.feed(raw(far + 2, 30_000), 0.03)  # the third in a row: the device's stream now
    assert out.rejected is None and out.seq.tolist() == [1] and out.gaps == []
    assert dec.stats.resets == 1 and dec.stats.gaps == []
    # the new timeline is not a clock step: one step of the device clock back is still accepted once
    assert dec.feed(raw(far + 3, 25_000), 0.04).rejected is None
    assert dec.feed(raw(far + 4, 26_000), 0.05).rejected is None
    assert dec.stats.resets == 1
    # and once more: each resynchronisation counts
    far2 = 2_000_000_000
    assert [dec.feed(raw(far2 + i, 40_000 + 10_000 * i), 0.06 + 0.01 * i).rejected for i in range(3)] == [
        "bad_value", "bad_value", None]
    assert dec.stats.resets == 2


def test_after_a_mode_change_a_gap_follows_the_last_sample_number() -> None:
    first = hb.HipbackV1Decoder(100.0)
    assert first.feed(raw(0, 0, n=3), 0.0).rejected is None
    second = hb.HipbackV1Decoder(100.0)
    second.continue_from(first)
    out = second.feed(raw(5, 50_000), 0.05)  # samples 3 and 4 lost during the reconnection
    assert out.rejected is None and out.missing == 2
    assert [(g.after_seq, g.missing) for g in out.gaps] == [(2, 2)]
