"""WitMotion BLE 5.0: frames, register replies, re-framing counts and commands, built here byte by byte from
the vendor's frame layout (``55 61`` data, ``55 71`` registers), not from the simulator's encoder.

Written for the survivors of ``python bench/mutation.py --group decoders``: exact junk and truncation counts
(a lost frame must show), register replies (battery edges, quaternion and magnetometer scales), the pitch
limit, the quaternion sign, command bytes.
"""

from __future__ import annotations

import math
import re
import struct

import numpy as np
import pytest

from hipback.ingest.devices import WITMOTION, StatusFlag, Write
from hipback.ingest.devices import witmotion as wm
from hipback.processing import quaternion as qm

G = 9.80665


def frame(acc=(0, 0, 2048), gyr=(0, 0, 0), ang=(0, 0, 0)) -> bytes:
    return b"\x55\x61" + struct.pack("<9h", *acc, *gyr, *ang)


def reg(number: int, *vals: int, high: int = 0) -> bytes:
    v = (list(vals) + [0] * 8)[:8]
    return bytes([0x55, 0x71, number, high]) + struct.pack("<8h", *v)


def deg(x: float) -> int:
    return round(x * 32768 / 180)


def test_one_frame_exact_values_and_flags() -> None:
    dec = WITMOTION.make_decoder(10)
    out = dec.feed(frame((100, -200, 2048), (16, -32, 64), (deg(10), deg(-20), deg(30))), 2.5)
    assert out.n == 1 and out.arrival_time == 2.5 and out.flags == StatusFlag.FUSION_ON
    np.testing.assert_array_equal(out.acc, [[100 * wm.ACC_SCALE, -200 * wm.ACC_SCALE, 2048 * wm.ACC_SCALE]])
    np.testing.assert_array_equal(out.gyr, np.array([[16, -32, 64]]) * math.radians(2000 / 32768))
    np.testing.assert_array_equal(out.extra["euler_rad"],
                                  np.array([[deg(10), deg(-20), deg(30)]]) * math.radians(180 / 32768))
    assert set(out.extra) == {"euler_rad"} and out.device_time_s is None and out.seq is None


def test_pitch_limit_is_ninety_degrees_and_a_bad_frame_does_not_hide_the_next() -> None:
    dec = WITMOTION.make_decoder(10)
    out = dec.feed(frame(ang=(0, 16384, 0)) + frame(ang=(0, 16385, 0)) + frame(ang=(0, -16385, 0))
                   + frame(ang=(0, -16384, 0)), 0.0)
    assert out.n == 2 and dec.stats.rejected == {"bad_value": 2}
    np.testing.assert_array_equal(out.extra["euler_rad"][:, 1], [math.pi / 2, -math.pi / 2])


@pytest.mark.parametrize("n", [1, 3])
def test_quaternion_scalar_part_is_never_negative(n: int) -> None:
    """roll 170, pitch -80, yaw 170 deg gives w < 0 before the sign is fixed; the rotation is unchanged."""
    angles = (deg(170), deg(-80), deg(170))
    out = WITMOTION.make_decoder(10).feed(frame(ang=angles) * n, 0.0)
    r, p, y = (a * math.radians(180 / 32768) for a in angles)
    cr, sr, cp, sp, cy, sy = (math.cos(r / 2), math.sin(r / 2), math.cos(p / 2), math.sin(p / 2),
                              math.cos(y / 2), math.sin(y / 2))
    q = np.array([cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                  cr * cp * sy - sr * sp * cy])
    assert q[0] < 0
    np.testing.assert_allclose(out.quat, np.tile(-q, (n, 1)), rtol=0, atol=1e-15)
    v = wm.euler_zyx_to_quat(np.array([r, 0.0]), np.array([p, 0.0]), np.array([y, 0.0]))
    np.testing.assert_allclose(v, [-q, [1, 0, 0, 0]], rtol=0, atol=1e-15)
    assert qm.angle_between(out.quat, np.tile(q, (n, 1))).max() < 1e-7


def test_junk_is_counted_byte_by_byte() -> None:
    dec = WITMOTION.make_decoder(10)
    out = dec.feed(b"\x01\x02\x55\x00" + frame(), 1.0)  # 2 bytes, a header without a valid flag, its flag
    assert out.n == 1 and dec.stats.junk_bytes == 4 and dec.stats.rejected == {"junk": 1}
    out = dec.feed(b"\x55\x55\x00\x00" + frame() + b"\x07", 1.0)
    assert out.n == 1 and dec.stats.junk_bytes == 4 + 4 + 1 and dec.stats.rejected == {"junk": 2}
    out = dec.feed(b"\x55" + frame(), 1.0)  # a stray header right before a real one
    assert out.n == 1 and dec.stats.junk_bytes == 10 and dec.stats.truncated == 0
    out = dec.feed(b"\x01\x55\x00", 1.0)
    assert out.n == 0 and dec.stats.junk_bytes == 13 and out.extra == {"pending_bytes": 0}


def test_a_header_at_the_end_waits_for_its_flag() -> None:
    dec = WITMOTION.make_decoder(10)
    f = frame()
    a = dec.feed(f + f[:1], 0.0)
    b = dec.feed(f[1:], 0.0)
    assert (a.n, b.n) == (1, 1) and dec.stats.junk_bytes == 0 and dec.stats.rejected == {}
    c = dec.feed(f[:7], 0.0)
    assert c.n == 0 and c.extra == {"pending_bytes": 7} and c.arrival_time == 0.0


def test_a_value_that_looks_like_a_header_does_not_cut_the_frame() -> None:
    """A yaw of about 137 deg is the int16 0x6155, i.e. the bytes ``55 61``: a notification that starts with
    them while the frame before is incomplete is the rest of that frame, not a new one."""
    f = frame(ang=(0, 0, 0x6155))
    g = frame()
    dec = WITMOTION.make_decoder(10)
    assert dec.feed(f[:18], 0.0).n == 0
    out = dec.feed(f[18:] + g, 0.0)
    assert out.n == 2 and dec.stats.truncated == 0 and dec.stats.junk_bytes == 0
    np.testing.assert_array_equal(out.extra["euler_rad"][:, 2], [0x6155 * wm.ANGLE_SCALE, 0.0])


def test_a_cut_frame_counts_every_lost_byte() -> None:
    dec = WITMOTION.make_decoder(10)
    f = frame()
    dec.feed(f[:11], 0.0)
    dec.feed(f, 0.0)
    dec.feed(f[:5], 0.0)
    dec.feed(f, 0.0)
    assert dec.stats.truncated == 2 and dec.stats.junk_bytes == 16 and dec.stats.samples == 2


def test_register_replies_are_kept_by_register_number() -> None:
    dec = WITMOTION.make_decoder(10)
    out = dec.feed(reg(wm.REG_QUAT, 16384, -16384, 8192, 0) + reg(wm.REG_MAG, 120, -240, 60)
                   + reg(wm.REG_TEMPERATURE, 3150) + reg(0x64, 400, high=1), 0.0)
    assert out.n == 0 and out.flags == StatusFlag.NONE and "pending_bytes" not in out.extra
    regs = out.extra["registers"]
    assert regs[wm.REG_QUAT] == (16384, -16384, 8192, 0, 0, 0, 0, 0) and regs[0x164][0] == 400
    assert sorted(regs) == [wm.REG_MAG, wm.REG_TEMPERATURE, wm.REG_QUAT, 0x164]
    np.testing.assert_array_equal(out.extra["quat_register"], [0.5, -0.5, 0.25, 0.0])
    np.testing.assert_array_equal(out.extra["mag_register"], [1.0, -2.0, 0.5])
    assert out.extra["temperature_c"] == 31.5
    assert "battery_v" not in out.extra and out.battery_pct is None  # 0x164 is not the battery register


@pytest.mark.parametrize(
    "raw,volts,pct",
    [(250, 2.5, 0.0), (450, 4.5, 100.0), (249, None, None), (451, None, None), (396, 3.96, 100.0),
     (395, 3.95, 90.0), (368, 3.68, 15.0), (370, 3.70, 20.0), (339, 3.39, 0.0)],
)
def test_battery_register(raw: int, volts: float | None, pct: float | None) -> None:
    dec = WITMOTION.make_decoder(10)
    out = dec.feed(reg(wm.REG_BATTERY, raw), 0.0)
    assert out.extra.get("battery_v") == volts and out.battery_pct == pct
    assert dec.stats.rejected == ({} if volts is not None else {"bad_value": 1})
    assert (StatusFlag.LOW_BATTERY in out.flags) is (pct is not None and pct <= 15.0)


def test_low_battery_survives_a_data_frame_in_the_same_notification() -> None:
    out = WITMOTION.make_decoder(10).feed(reg(wm.REG_BATTERY, 368) + frame(), 0.0)
    assert out.n == 1 and out.flags == StatusFlag.FUSION_ON | StatusFlag.LOW_BATTERY


def test_commands() -> None:
    assert wm.command(wm.REG_RATE) == bytes([0xFF, 0xAA, 0x03, 0x00, 0x00])
    assert wm.command(0x01, -2) == bytes([0xFF, 0xAA, 0x01, 0xFE, 0xFF])
    assert wm.command(0x01, 40000) == bytes([0xFF, 0xAA, 0x01, 0x40, 0x9C])
    assert wm.register_read(0x164) == bytes([0xFF, 0xAA, 0x27, 0x64, 0x00])
    msg = f"WitMotion BLE 5.0 cannot stream at 125 Hz (rates: {tuple(wm.RATE_CODES)})"
    with pytest.raises(ValueError, match="^" + re.escape(msg) + "$"):
        wm.rate_command(125)
    assert WITMOTION.start_sequence(100) == [
        Write(wm.WRITE_UUID, wm.UNLOCK, True, "unlock"),
        Write(wm.WRITE_UUID, bytes([0xFF, 0xAA, 0x03, 0x09, 0x00]), True, "return rate"),
        Write(wm.WRITE_UUID, wm.SAVE, True, "save"),
    ]
