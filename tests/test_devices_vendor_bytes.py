"""Every profile's command and packet bytes against encodings written here from the vendors' layouts.

The expected bytes are packed field by field (``struct.pack``) from the documents the profiles implement
(Movella DOT BLE Service Specification XD0506P; WitMotion's register map and BLE 5.0 protocol; the hipback IMU
profile v1 in ``firmware_notes/``), never produced by hipback's own encoders, so a misreading of a layout
shared by a profile and its virtual twin cannot pass unnoticed.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hipback.ingest.devices import (
    HIPBACK_V1,
    MOVELLA_DOT,
    WITMOTION,
    DeviceConfig,
    DeviceSetupError,
    StatusFlag,
)

G = 9.80665
DEG = math.pi / 180.0


def _dot_uuid(short: int) -> str:
    return f"1517{short:04x}-4947-11e9-8646-d663bd873d93"


# -- WitMotion BLE 5.0 --------------------------------------------------------------------------------
WIT_WRITE = "0000ffe9-0000-1000-8000-00805f9a34fb"


def wit_cmd(reg: int, value: int) -> bytes:
    """``FF AA <register> <value lo> <value hi>``."""
    return struct.pack("<BBBH", 0xFF, 0xAA, reg, value)


#: RRATE (register 0x03) per WitMotion's register map; 0x0A is 125 Hz on the WT931 only
WIT_RATE_CODES = {
    0.2: 0x01,
    0.5: 0x02,
    1: 0x03,
    2: 0x04,
    5: 0x05,
    10: 0x06,
    20: 0x07,
    50: 0x08,
    100: 0x09,
    200: 0x0B,
}


@pytest.mark.parametrize("rate,code", list(WIT_RATE_CODES.items()))
def test_witmotion_start_sequence_is_unlock_rate_save(rate, code):
    writes = WITMOTION.start_sequence(rate)
    assert [w.char_uuid for w in writes] == [WIT_WRITE] * 3
    assert [w.data for w in writes] == [wit_cmd(0x69, 0xB588), wit_cmd(0x03, code), wit_cmd(0x00, 0x0000)]


def test_witmotion_battery_poll_and_register_reply():
    assert WITMOTION.battery is not None and WITMOTION.battery.poll is not None
    assert WITMOTION.battery.poll.char_uuid == WIT_WRITE
    assert WITMOTION.battery.poll.data == wit_cmd(0x27, 0x64)  # read registers from 0x64
    reply = struct.pack("<BBBB8h", 0x55, 0x71, 0x64, 0x00, 375, 0, 0, 0, 0, 0, 0, 0)  # 3.75 V
    out = WITMOTION.make_decoder(100).feed(reply, 0.0)
    # the vendor's voltage steps: 3.73 V and above (below 3.77 V) is 30 %
    assert out.n == 0 and out.extra["battery_v"] == pytest.approx(3.75) and out.battery_pct == 30.0
    dec = WITMOTION.make_decoder(100)
    bogus = struct.pack("<BBBB8h", 0x55, 0x71, 0x64, 0x00, 3000, 0, 0, 0, 0, 0, 0, 0)  # 30 V: no such cell
    out = dec.feed(bogus, 0.0)
    assert out.battery_pct is None and dec.stats.rejected == {"bad_value": 1}


def test_witmotion_data_frame_units_and_euler_order():
    raw = (1024, -2048, 16384, 1000, -500, 250, 5461, -2731, 10923)  # acc, gyr, roll/pitch/yaw (int16)
    frame = struct.pack("<BB9h", 0x55, 0x61, *raw)
    out = WITMOTION.make_decoder(100).feed(frame, 0.0)
    assert out.n == 1 and not out.rejected
    assert np.allclose(out.acc[0], np.array(raw[0:3]) / 32768 * 16 * G)
    assert np.allclose(out.gyr[0], np.array(raw[3:6]) / 32768 * 2000 * DEG)
    roll, pitch, yaw = np.array(raw[6:9]) / 32768 * 180
    ref = Rotation.from_euler("ZYX", [yaw, pitch, roll], degrees=True).as_quat()  # x, y, z, w
    ref = np.r_[ref[3], ref[:3]]
    assert min(np.abs(out.quat[0] - ref).max(), np.abs(out.quat[0] + ref).max()) < 1e-9


# -- Movella DOT ------------------------------------------------------------------------------------------
DOT_CONTROL = _dot_uuid(0x2001)
DOT_DEVICE_CONTROL = _dot_uuid(0x1002)
DOT_DEVICE_INFO = _dot_uuid(0x1001)


def dot_device_info(firmware: tuple[int, int, int]) -> bytes:
    """Device Info 0x1001: MAC (LE), firmware major/minor/revision, build date, SoftDevice, serial, code."""
    mac = bytes([0x34, 0x12, 0x00, 0xCD, 0x22, 0xD4])
    return (
        mac
        + struct.pack("<BBB", *firmware)
        + struct.pack("<HBBBBB", 2024, 3, 1, 12, 0, 0)
        + struct.pack("<IQ", 7002000, 0x1234)
        + b"XS-T02"
    )


def dot_device_control(rate_hz: int, tag: bytes = b"thigh") -> bytes:
    """Device Control 0x1002 (32 B): visit bits, identify, power, timeouts, tag length + tag, rate u16 @24."""
    b = bytearray(32)
    b[7] = len(tag)
    b[8 : 8 + len(tag)] = tag
    struct.pack_into("<H", b, 24, rate_hz)
    return bytes(b)


def test_movella_start_sequence_fresh_connection():
    current = {
        DOT_DEVICE_INFO: dot_device_info((3, 0, 0)),
        DOT_DEVICE_CONTROL: dot_device_control(60),
        DOT_CONTROL: struct.pack("<BBB", 0x01, 0x00, 26),  # measurement, stopped, last mode
    }
    writes = MOVELLA_DOT.start_sequence(30, "custom5", current)
    rate = bytearray(current[DOT_DEVICE_CONTROL])
    rate[0] = 0x10  # visit bit 4: output rate only
    struct.pack_into("<H", rate, 24, 30)
    assert [(w.char_uuid, w.data) for w in writes] == [
        (DOT_DEVICE_CONTROL, bytes(rate)),
        (DOT_CONTROL, struct.pack("<BBB", 0x01, 0x01, 26)),  # measurement, start, custom mode 5
    ]
    assert MOVELLA_DOT.stop_sequence("custom5")[0].data == struct.pack("<BBB", 0x01, 0x00, 26)


def test_movella_reconnect_stops_measurement_before_writing_the_rate():
    current = {
        DOT_DEVICE_INFO: dot_device_info((3, 0, 0)),
        DOT_DEVICE_CONTROL: dot_device_control(60),
        DOT_CONTROL: struct.pack("<BBB", 0x01, 0x01, 26),  # still measuring custom mode 5
    }
    writes = MOVELLA_DOT.start_sequence(60, "custom5", current)
    assert [(w.char_uuid, w.data[:3]) for w in writes] == [
        (DOT_CONTROL, struct.pack("<BBB", 0x01, 0x00, 26)),
        (DOT_DEVICE_CONTROL, bytes([0x10]) + current[DOT_DEVICE_CONTROL][1:3]),
        (DOT_CONTROL, struct.pack("<BBB", 0x01, 0x01, 26)),
    ]


def test_movella_battery():
    assert MOVELLA_DOT.battery is not None and MOVELLA_DOT.battery.char_uuid == _dot_uuid(0x3001)
    assert MOVELLA_DOT.battery.parse(struct.pack("<BB", 57, 1)) == 57.0


def _dot_decode(mode: str, payload: bytes, length: int):
    dec = MOVELLA_DOT.make_decoder(60, mode)
    return dec, dec.feed(payload.ljust(length, b"\0"), 0.0)


def test_movella_custom_mode_5_payload():
    q = (0.5, 0.5, -0.5, 0.5)
    acc, gyr = (0.25, -9.5, 3.0), (120.0, -45.5, 3.25)
    payload = struct.pack("<I4f3f3f", 123_456_789, *q, *acc, *gyr)  # 44 bytes in the 63-byte long payload
    dec, out = _dot_decode("custom5", payload, 63)
    assert out.n == 1 and not out.rejected
    assert out.device_time_s[0] == pytest.approx(123.456789)
    assert np.allclose(out.quat[0], q) and np.allclose(out.acc[0], acc, atol=1e-6)
    assert np.allclose(out.gyr[0], np.array(gyr) * DEG, atol=1e-7)
    assert MOVELLA_DOT.notify_uuids("custom5") == [_dot_uuid(0x2002)]


def test_movella_extended_quaternion_status_and_rate_quantities_mag():
    q, free_acc = (1.0, 0.0, 0.0, 0.0), (0.1, 0.2, -0.3)
    payload = struct.pack("<I4f3fHBB", 1000, *q, *free_acc, 0x0001 | 0x0008, 1, 1)  # acc x and gyr x clipped
    _, out = _dot_decode("extended_quaternion", payload, 40)
    assert out.n == 1 and out.extra["status"] == 0x0009
    assert StatusFlag.ACC_CLIPPING in out.flags and StatusFlag.GYR_CLIPPING in out.flags
    assert np.allclose(out.extra["free_acc"][0], free_acc)
    payload = struct.pack("<I3f3f3h", 2000, 0.0, 0.0, 9.8, 1.0, 2.0, 3.0, 4096, -2048, 1024)
    _, out = _dot_decode("rate_quantities_mag", payload, 40)
    assert np.allclose(out.mag[0], [1.0, -0.5, 0.25]) and np.allclose(out.gyr[0], np.array([1, 2, 3]) * DEG)
    payload = struct.pack("<I4f", 3000, *q)  # orientation quaternion: the 20-byte short payload, no padding
    _, out = _dot_decode("orientation_quaternion", payload, 20)
    assert out.n == 1 and np.allclose(out.quat[0], q)


@pytest.mark.parametrize(
    "acc,gyr",
    [((17.0 * G, 0.0, 0.0), (0.0, 0.0, 0.0)), ((0.0, 0.0, G), (0.0, -2200.0, 0.0))],
)
def test_movella_values_beyond_full_scale_are_rejected(acc, gyr):
    payload = struct.pack("<I4f3f3f", 1000, 1.0, 0.0, 0.0, 0.0, *acc, *gyr)
    dec, out = _dot_decode("custom5", payload, 63)
    assert out.n == 0 and out.rejected == "out_of_range" and dec.stats.rejected == {"out_of_range": 1}
    ok = struct.pack("<I4f3f3f", 2000, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 15.9 * G, 1990.0, 0.0, 0.0)
    assert dec.feed(ok.ljust(63, b"\0"), 0.0).n == 1  # just inside the range: accepted


def test_movella_mode_follows_firmware_and_mtu():
    old = MOVELLA_DOT.parse_config({DOT_DEVICE_INFO: dot_device_info((2, 6, 0))})
    assert old.firmware == "2.6.0" and "custom5" not in (old.modes or ())
    choice = MOVELLA_DOT.choose_mode("custom5", 247, old)
    assert choice.mode == "custom3" and "2.6.0" in (choice.message or "")
    new = MOVELLA_DOT.parse_config({DOT_DEVICE_INFO: dot_device_info((3, 0, 0))})
    assert MOVELLA_DOT.choose_mode("custom5", 247, new).mode == "custom5"
    assert MOVELLA_DOT.choose_mode("custom5", 66, new).message is None  # 63 bytes + 3 of ATT header
    at_65 = MOVELLA_DOT.choose_mode("custom5", 65, new)
    assert at_65.mode == "custom3" and "MTU >= 66" in (at_65.message or "")  # the medium payload fits
    default = MOVELLA_DOT.choose_mode("custom5", 23, new)
    assert default.mode == "orientation_quaternion"  # only the 20-byte short payload fits
    assert MOVELLA_DOT.sensor_kind(default.mode) == "quat"
    with pytest.raises(DeviceSetupError, match="rate_quantities"):
        MOVELLA_DOT.choose_mode("rate_quantities", 23, new)  # no raw mode in the short payload
    unknown = MOVELLA_DOT.parse_config({DOT_DEVICE_INFO: b"\x01\x02"})
    assert unknown.firmware is None and unknown.notes  # unreadable: noted, every mode assumed


# -- hipback IMU profile v1 -------------------------------------------------------------------------------
HB_CONTROL = "4deb0003-49d1-43f4-95ff-16609d6891a4"
HB_INFO = "4deb0004-49d1-43f4-95ff-16609d6891a4"


def hb_info(acc_g: int, gyr_dps: int, caps: int, rates: tuple[int, ...] = (25, 50, 100, 200)) -> bytes:
    """INFO (50 B): versions, firmware, IMU, MCU, ranges, capabilities, rates, serial, model."""
    padded = list(rates) + [0] * (8 - len(rates))
    return struct.pack(
        "<BBBBBBBBHHBB8HI16s", 1, 1, 2, 1, 0, 3, 1, acc_g, gyr_dps, 0, caps, len(rates), *padded, 77, b"diy"
    )


def test_hipback_control_writes():
    (start,) = HIPBACK_V1.start_sequence(100, "quat_raw", max_batch=4)
    assert (start.char_uuid, start.data) == (HB_CONTROL, struct.pack("<BHBB", 0x01, 100, 0x0D, 4))
    (start,) = HIPBACK_V1.start_sequence(100, "raw")
    assert start.data == struct.pack("<BHBB", 0x01, 100, 0x0C, 0)  # 0 = as many as fit
    assert HIPBACK_V1.stop_sequence()[0].data == bytes([0x02])


def test_hipback_packet_layout():
    header = struct.pack("<BBBBIQHH", 1, 0x0D, 2, 80, 4000, 5_000_000, 10_000, 0x0008)
    s0 = struct.pack("<4h3h3h", 16384, 0, 0, 0, 0, 0, 2048, 100, -100, 0)
    s1 = struct.pack("<4h3h3h", 0, 16384, 0, 0, 2048, 0, 0, 0, 0, 16384)
    out = HIPBACK_V1.make_decoder(100).feed(header + s0 + s1, 0.0)
    assert out.n == 2 and out.seq.tolist() == [4000, 4001] and out.battery_pct == 80.0
    assert np.allclose(out.device_time_s, [5.0, 5.01])
    assert np.allclose(out.quat, [[1, 0, 0, 0], [0, 1, 0, 0]])
    assert np.allclose(out.acc, [[0, 0, 2048 * 16 * G / 32768], [2048 * 16 * G / 32768, 0, 0]])
    assert np.allclose(out.gyr[1], [0, 0, 16384 * 2000 / 32768 * DEG])
    assert StatusFlag.FUSION_ON in out.flags


def test_hipback_info_decides_modes_rates_and_range():
    caps = 0x01 | 0x04 | 0x08 | 0x20  # Q14, acc, gyr, fusion; no float quaternion, no magnetometer
    config = HIPBACK_V1.parse_config({HB_INFO: hb_info(8, 1000, caps)})
    assert config.firmware == "2.1.0"
    assert set(config.modes or ()) == {"quat", "quat_raw", "raw"}
    assert HIPBACK_V1.choose_mode("quat_raw_mag", 247, config).mode == "quat_raw"
    assert HIPBACK_V1.nearest_rate(400, config) == 200.0  # the device's own rates
    dec = HIPBACK_V1.make_decoder(100, "quat_raw", config)
    header = struct.pack("<BBBBIQHH", 1, 0x0D, 1, 255, 0, 0, 10_000, 0x0008)
    inside = struct.pack("<4h3h3h", 16384, 0, 0, 0, 0, 0, 16000, 0, 0, 0)  # 7.8 g: inside +-8 g
    beyond = struct.pack("<4h3h3h", 16384, 0, 0, 0, 0, 0, 20480, 0, 0, 0)  # 10 g: beyond +-8 g
    assert dec.feed(header + inside, 0.0).n == 1
    header = struct.pack("<BBBBIQHH", 1, 0x0D, 1, 255, 1, 10_000, 10_000, 0x0008)
    assert dec.feed(header + beyond, 0.0).rejected == "out_of_range"
    assert dec.stats.rejected == {"out_of_range": 1}


def test_hipback_mode_falls_back_to_what_the_mtu_carries():
    assert HIPBACK_V1.min_mtu("quat_raw") == 3 + 20 + 20  # header + one sample + ATT header
    choice = HIPBACK_V1.choose_mode("quat_raw", 31, DeviceConfig())
    assert choice.mode == "quat" and "43" in (choice.message or "")
    with pytest.raises(DeviceSetupError):
        HIPBACK_V1.choose_mode("quat_raw", 23)
    with pytest.raises(DeviceSetupError):
        HIPBACK_V1.choose_mode("raw", 23)


# -- the virtual twins send the same layouts ----------------------------------------------------------------
def test_twins_encode_the_vendor_layouts():
    from hipback.simulator.devices import DeviceClock, make_twin

    t = np.array([0.5])
    quat = np.array([[1.0, 0.0, 0.0, 0.0]])
    acc = np.array([[0.5 * G, -1.0 * G, 2.0 * G]])
    gyr = np.array([[100.0, -250.0, 1000.0]]) * DEG

    wit = make_twin("witmotion", 100)
    (frame,) = wit.encode(t, quat, acc, gyr)
    acc_lsb = [round(a / 16 * 32768) for a in (0.5, -1.0, 2.0)]
    gyr_lsb = [round(w / 2000 * 32768) for w in (100.0, -250.0, 1000.0)]
    assert frame == struct.pack("<BB9h", 0x55, 0x61, *acc_lsb, *gyr_lsb, 0, 0, 0)

    dot = make_twin("movella_dot", 60, mode="custom5")
    dot.clock.offset_s = 2.0
    (payload,) = dot.encode(t, quat, acc, gyr)
    expected = struct.pack("<I4f3f3f", 2_500_000, 1.0, 0.0, 0.0, 0.0, *acc[0], 100.0, -250.0, 1000.0)
    assert payload == expected.ljust(63, b"\0")

    hb = make_twin("hipback_v1", 100, mode="quat_raw")
    hb.state.clock = DeviceClock(offset_s=3.0)
    hb.state.battery_pct = 77
    (packet,) = hb.encode(t, quat, acc, gyr)
    status = 0x0008 | (3 << 12)  # fusion on, fusion accuracy 3
    header = struct.pack("<BBBBIQHH", 1, 0x0D, 1, 77, 0, 3_500_000, 10_000, status)
    assert packet == header + struct.pack("<4h3h3h", 16384, 0, 0, 0, *acc_lsb, *gyr_lsb)
