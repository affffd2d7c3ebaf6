"""WitMotion BLE 5.0: frames, Euler convention, re-framing of split/concatenated streams, registers,
commands."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hipback.ingest.devices import WITMOTION, StatusFlag, match_profile
from hipback.ingest.devices import witmotion as wm
from hipback.processing import quaternion as qm
from hipback.simulator.devices import WitMotionEncoder, WitMotionState
from hipback.simulator.devices import witmotion as sim_wm

G = 9.80665


def motion(n: int, seed: int = 2):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 100.0
    quat = qm.from_rotvec(np.cumsum(rng.normal(scale=0.08, size=(n, 3)), axis=0))
    acc = rng.normal(scale=4.0, size=(n, 3)) + [0, 0, G]
    gyr = rng.normal(scale=3.0, size=(n, 3))
    return t, quat, acc, gyr


def decode(chunks, dec=None):
    dec = dec or WITMOTION.make_decoder(100)
    outs = [o for o in (dec.feed(c, 0.0) for c in chunks) if o.n]
    if not outs:
        return dec, None, None, None
    return (
        dec,
        np.concatenate([o.quat for o in outs]),
        np.concatenate([o.acc for o in outs]),
        np.concatenate([o.gyr for o in outs]),
    )


def test_constants_match_between_simulator_and_ingest():
    assert (sim_wm.SERVICE_UUID, sim_wm.NOTIFY_UUID, sim_wm.WRITE_UUID) == (
        wm.SERVICE_UUID,
        wm.NOTIFY_UUID,
        wm.WRITE_UUID,
    )
    assert {v: k for k, v in sim_wm.RATE_CODES.items()} == wm.RATE_CODES


def test_round_trip_within_int16_quantisation():
    t, quat, acc, gyr = motion(1000)
    frames = WitMotionEncoder(100).encode(t, quat, acc, gyr)
    assert all(len(f) == 20 and f[:2] == b"\x55\x61" for f in frames)
    dec, q, a, w = decode(frames)
    assert dec.stats.samples == 1000 and not dec.stats.rejected
    assert np.degrees(qm.angle_between(q, quat)).max() < 0.02
    assert np.abs(a - acc).max() <= wm.ACC_SCALE / 2 + 1e-9
    assert np.abs(w - gyr).max() <= wm.GYR_SCALE / 2 + 1e-9


def test_euler_convention_matches_scipy_intrinsic_zyx_and_gravity_is_up():
    rng = np.random.default_rng(0)
    roll, pitch, yaw = rng.uniform(-3, 3, 50), rng.uniform(-1.5, 1.5, 50), rng.uniform(-3, 3, 50)
    q = wm.euler_zyx_to_quat(roll, pitch, yaw)
    ref = qm.from_scipy(qm.to_scipy(np.tile(qm.IDENTITY, (50, 1))).from_euler("ZYX", np.c_[yaw, pitch, roll]))
    assert qm.angle_between(q, ref).max() < 1e-9
    # a sensor lying flat at rest: frame with zero angles and az = +1 g -> identity, gravity along world +z
    frame = bytes([0x55, 0x61]) + np.array([0, 0, 2048, 0, 0, 0, 0, 0, 0], "<i2").tobytes()
    out = WITMOTION.make_decoder(100).feed(frame, 0.0)
    assert np.allclose(out.quat[0], qm.IDENTITY) and np.allclose(
        qm.rotate(out.quat[0], out.acc[0]), [0, 0, G]
    )
    # roll of +30 deg is a right-handed rotation about the sensor x axis
    frame = bytes([0x55, 0x61]) + np.array([0, 0, 0, 0, 0, 0, round(30 / 180 * 32768), 0, 0], "<i2").tobytes()
    out = WITMOTION.make_decoder(100).feed(frame, 0.0)
    assert qm.angle_between(out.quat[0], qm.from_axis_angle([1, 0, 0], np.radians(30))) < 1e-4


def test_yaw_of_180_degrees_wraps_and_pitch_is_clipped():
    q = np.stack([qm.from_axis_angle([0, 0, 1], np.pi), qm.from_axis_angle([0, 1, 0], np.pi / 2)])
    frames = WitMotionEncoder(100).encode(np.zeros(2), q, np.zeros((2, 3)), np.zeros((2, 3)))
    dec, out_q, _, _ = decode(frames)
    assert not dec.stats.rejected and qm.angle_between(out_q, q).max() < 1e-3


frames_strategy = st.integers(min_value=1, max_value=30)


@settings(max_examples=60, deadline=None)
@given(
    n=frames_strategy,
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=40),
    junk=st.binary(max_size=7).filter(lambda b: 0x55 not in b),
)
def test_reframing_split_and_concatenated_streams(n, cuts, junk):
    t, quat, acc, gyr = motion(n, seed=n)
    frames = WitMotionEncoder(100).encode(t, quat, acc, gyr)
    stream = junk + b"".join(frames)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in zip(points[:-1], points[1:], strict=True) if b > a]
    dec, q, a, w = decode(chunks)
    _, q_ref, a_ref, w_ref = decode(frames)
    assert dec.stats.samples == n
    assert np.array_equal(q, q_ref) and np.array_equal(a, a_ref) and np.array_equal(w, w_ref)
    assert dec.stats.junk_bytes == len(junk)
    assert (dec.stats.rejected.get("junk", 0) >= 1) == bool(junk)  # one count per junk run seen
    assert dec.stats.truncated == 0


def test_truncated_frame_then_whole_frames():
    t, quat, acc, gyr = motion(4)
    frames = WitMotionEncoder(100).encode(t, quat, acc, gyr)
    dec, q, _, _ = decode([frames[0], frames[1][:11], frames[2], frames[3]])
    assert dec.stats.samples == 3 and dec.stats.truncated == 1 and dec.stats.junk_bytes == 11
    _, q_ref, _, _ = decode([frames[0], frames[2], frames[3]])
    assert np.array_equal(q, q_ref)


def test_impossible_pitch_is_rejected():
    frame = bytes([0x55, 0x61]) + np.array([0, 0, 2048, 0, 0, 0, 0, 20000, 0], "<i2").tobytes()
    dec = WITMOTION.make_decoder(100)
    assert dec.feed(frame, 0.0).n == 0 and dec.stats.rejected == {"bad_value": 1}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=15))
def test_random_bytes_never_raise(chunks):
    dec = WITMOTION.make_decoder(100)
    for c in chunks:
        dec.feed(c, 0.0)
    assert dec.stats.packets == len(chunks)


def test_register_replies_battery_quaternion_temperature():
    state = WitMotionState(100, battery_v=3.65, temperature_c=31.5)
    enc = WitMotionEncoder(100, state=state)
    t, quat, acc, gyr = motion(5)
    enc.encode(t, quat, acc, gyr)
    dec = WITMOTION.make_decoder(100)
    replies = {}
    for reg in (wm.REG_BATTERY, wm.REG_QUAT, wm.REG_TEMPERATURE):
        (eff,) = state.handle_write(wm.WRITE_UUID, wm.register_read(reg))
        assert eff.kind == "notify" and eff.params["char_uuid"] == wm.NOTIFY_UUID
        replies[reg] = dec.feed(eff.params["data"], 0.0)
    bat = replies[wm.REG_BATTERY]
    assert bat.n == 0 and bat.extra["battery_v"] == pytest.approx(3.65) and bat.battery_pct == 10.0
    assert StatusFlag.LOW_BATTERY in bat.flags
    assert qm.angle_between(replies[wm.REG_QUAT].extra["quat_register"], quat[-1]) < 1e-3
    assert replies[wm.REG_TEMPERATURE].extra["temperature_c"] == pytest.approx(31.5)
    assert WITMOTION.battery.poll.data == bytes([0xFF, 0xAA, 0x27, 0x64, 0x00])


def test_rate_commands_need_unlock_and_use_the_ble5_table():
    state = WitMotionState(10)
    writes = WITMOTION.start_sequence(100)
    assert [w.data.hex() for w in writes] == ["ffaa6988b5", "ffaa030900", "ffaa000000"]
    effects = [e.kind for w in writes for e in state.handle_write(w.char_uuid, w.data, now=1.0)]
    assert effects == ["unlock", "rate", "save"] and state.rate_hz == 100
    # 200 Hz is code 0x0B in WitMotion's register map (0x0A is 125 Hz, WT931 only): FF AA <reg> <lo> <hi>
    assert wm.rate_command(200) == struct.pack("<BBBH", 0xFF, 0xAA, 0x03, 0x0B)
    # locked again 10 s after the unlock
    assert state.handle_write(wm.WRITE_UUID, wm.rate_command(50), now=12.0)[0].kind == "error"
    assert state.rate_hz == 100
    assert state.handle_write(wm.WRITE_UUID, b"\xff\xaa", now=1.0)[0].kind == "error"
    assert WITMOTION.nearest_rate(120) == 100 and WITMOTION.stop_sequence() == []
    assert [e.kind for e in state.handle_write(wm.WRITE_UUID, wm.UNLOCK, now=20.0)] == ["unlock"]
    assert state.handle_write(wm.WRITE_UUID, wm.rate_command(200), now=20.5)[0].kind == "rate"
    assert state.rate_hz == 200
    with pytest.raises(ValueError):
        wm.rate_command(125)


def test_scan_matching():
    assert match_profile("WT901BLE68", []) is WITMOTION
    assert match_profile(None, [wm.SERVICE_UUID]) is WITMOTION
    assert match_profile("hipback-thigh", []) is not WITMOTION


def test_one_frame_notifications_decode_to_the_values_of_several_frames_at_once():
    """A notification of one frame (the device's usual) is decoded on Python floats: the same products, so
    the same bits as the array path that several frames in one notification take."""
    t, quat, acc, gyr = motion(40, seed=9)
    frames = WitMotionEncoder(100).encode(t, quat, acc, gyr)
    one = [o for o in (WITMOTION.make_decoder(100).feed(f, 0.0) for f in frames) if o.n]
    (many,) = [o for o in [WITMOTION.make_decoder(100).feed(b"".join(frames), 0.0)] if o.n]
    assert len(one) == 40 and many.n == 40
    for name in ("acc", "gyr"):
        assert np.array_equal(np.concatenate([getattr(o, name) for o in one]), getattr(many, name))
    assert np.array_equal(np.concatenate([o.extra["euler_rad"] for o in one]), many.extra["euler_rad"])
    np.testing.assert_allclose(np.concatenate([o.quat for o in one]), many.quat, rtol=0, atol=1e-15)
