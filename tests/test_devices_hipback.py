"""hipback IMU profile v1: simulator encoder -> ingest decoder round trips, faults, control writes."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hipback.ingest.devices import HIPBACK_V1, StatusFlag
from hipback.ingest.devices import hipback_v1 as hb
from hipback.processing import quaternion as qm
from hipback.simulator.devices import DeviceClock, FaultInjector, FaultPlan, HipbackEncoder, HipbackState
from hipback.simulator.devices import hipback_v1 as sim_hb


def motion(n: int, rate: float = 100.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    rotvec = np.cumsum(rng.normal(scale=0.05, size=(n, 3)), axis=0)
    quat = qm.from_rotvec(rotvec)
    acc = rng.normal(scale=4.0, size=(n, 3)) + [0, 0, 9.81]
    gyr = rng.normal(scale=2.0, size=(n, 3))
    mag = rng.normal(scale=30.0, size=(n, 3))
    return t, quat, acc, gyr, mag


def decode_all(dec, packets, arrival=0.0):
    outs = [dec.feed(p, arrival) for p in packets]
    return [o for o in outs if o.n]


def cat(outs, name):
    return np.concatenate([getattr(o, name) for o in outs])


def test_constants_match_between_simulator_and_ingest():
    for name in ("SERVICE_UUID", "DATA_UUID", "CONTROL_UUID", "INFO_UUID", "TIME_UUID", "BATTERY_LEVEL_UUID"):
        assert getattr(sim_hb, name) == getattr(hb, name)
    assert sim_hb.HEADER.format == hb.HEADER.format
    assert sim_hb.FORMATS == hb.MODES
    assert sim_hb.RATES_HZ == tuple(int(r) for r in hb.RATES_HZ)


@pytest.mark.parametrize("mode", list(hb.MODES))
def test_round_trip_within_quantisation(mode):
    t, quat, acc, gyr, mag = motion(500)
    clock = DeviceClock(offset_s=12.5, drift_ppm=30)
    enc = HipbackEncoder(100, mtu=247, mode=mode, state=HipbackState(clock=clock))
    packets = enc.encode(t, quat, acc, gyr, mag)
    assert all(len(p) <= 244 for p in packets)
    assert len(packets[0]) == 20 + enc.samples_per_packet * hb.sample_size(hb.MODES[mode])
    dec = HIPBACK_V1.make_decoder(100, mode)
    outs = decode_all(dec, packets)
    assert dec.stats.samples == 500 and not dec.stats.rejected and not dec.stats.seq_gaps
    assert np.array_equal(cat(outs, "seq"), np.arange(500))
    # device times: t0 of each packet exact to 1 us, the rest t0 + i * dt
    assert np.allclose(cat(outs, "device_time_s"), clock.device_time(t), atol=2e-6 * 25)
    fmt = hb.MODES[mode]
    if fmt & hb.FMT_QUAT_MASK:
        err = qm.angle_between(cat(outs, "quat"), quat)
        assert err.max() < (2e-4 if fmt & hb.FMT_QUAT_MASK == hb.QUAT_Q14 else 1e-6)
    if fmt & hb.FMT_ACC:
        assert np.abs(cat(outs, "acc") - acc).max() <= hb.ACC_LSB / 2 + 1e-9
    if fmt & hb.FMT_GYR:
        assert np.abs(cat(outs, "gyr") - gyr).max() <= hb.GYR_LSB / 2 + 1e-9
    if fmt & hb.FMT_MAG:
        assert np.abs(cat(outs, "mag") - mag).max() <= hb.MAG_LSB / 2 + 1e-9
    else:
        assert outs[0].mag is None


@pytest.mark.parametrize("mtu,mode", [(247, "quat"), (247, "quat_raw"), (185, "quat_raw_mag"), (64, "raw")])
def test_batches_fill_the_mtu(mtu, mode):
    size = hb.sample_size(hb.MODES[mode])
    enc = HipbackEncoder(100, mtu=mtu, mode=mode)
    assert enc.samples_per_packet == min((mtu - 3 - 20) // size, 255)  # the profile document's rule
    t, quat, acc, gyr, mag = motion(300)
    packets = enc.encode(t, quat, acc, gyr, mag)
    assert max(len(p) for p in packets) <= mtu - 3
    assert max(len(p) for p in packets) > mtu - 3 - size


def test_faults_are_reported_exactly():
    t, quat, acc, gyr, mag = motion(2000)
    enc = HipbackEncoder(100, mtu=247, mode="quat_raw")
    packets = enc.encode(t, quat, acc, gyr)
    n_per = enc.samples_per_packet
    inj = FaultInjector(FaultPlan(drop={3, 7, 8}, truncate={12: 100}, duplicate={20}))
    damaged = inj.apply(packets)
    dec = HIPBACK_V1.make_decoder(100)
    outs = decode_all(dec, damaged)
    # lost: dropped packets 3, 7+8 (one gap) and the truncated packet 12
    assert dec.stats.seq_gaps == [(3 * n_per - 1, n_per), (7 * n_per - 1, 2 * n_per), (12 * n_per - 1, n_per)]
    assert dec.stats.truncated == 1 and dec.stats.duplicates == 1
    assert dec.stats.rejected == {"truncated": 1, "duplicate": 1}
    received = cat(outs, "seq")
    lost = (
        set(range(3 * n_per, 4 * n_per))
        | set(range(7 * n_per, 9 * n_per))
        | set(range(12 * n_per, 13 * n_per))
    )
    assert set(received.tolist()) == set(range(2000)) - lost
    assert len(received) == len(set(received.tolist()))  # the duplicate was not stored twice
    assert dec.stats.missing == len(lost)


def test_overrun_skip_and_flags():
    t, quat, acc, gyr, _ = motion(100)
    state = HipbackState(battery_pct=12)
    enc = HipbackEncoder(100, mode="quat_raw", state=state)
    dec = HIPBACK_V1.make_decoder(100)
    first = decode_all(dec, enc.encode(t[:50], quat[:50], acc[:50], gyr[:50]))
    enc.skip(37)  # the device dropped samples 50..86 (its buffer was full); its clock ran on meanwhile
    after = decode_all(dec, enc.encode(t[87:], quat[87:], acc[87:], gyr[87:]))
    assert dec.stats.seq_gaps == [(49, 37)]
    assert after[0].gaps[0].after_seq == 49 and after[0].missing == 37
    assert StatusFlag.OVERRUN in after[0].flags and StatusFlag.OVERRUN not in after[1].flags
    assert StatusFlag.OVERRUN not in first[0].flags
    assert StatusFlag.LOW_BATTERY in after[0].flags and after[0].battery_pct == 12
    assert StatusFlag.FUSION_ON in after[0].flags


def test_sequence_wraps_without_gap_and_restart_is_counted():
    t, quat, acc, gyr, _ = motion(300)
    enc = HipbackEncoder(100, mode="quat")
    enc.seq = 2**32 - 45
    dec = HIPBACK_V1.make_decoder(100)
    outs = decode_all(dec, enc.encode(t, quat))
    seq = cat(outs, "seq")
    assert np.all(np.diff(seq) == 1) and not dec.stats.seq_gaps
    enc.seq = 0  # device rebooted
    outs = decode_all(dec, enc.encode(t[:30], quat[:30]))
    assert dec.stats.resets == 1 and outs and not dec.stats.seq_gaps


def _packet(version=1, fmt=0x01, n=1, battery=50, seq=0, t0=0, dt=10000, status=0, body=None):
    body = body if body is not None else struct.pack("<4h", 16384, 0, 0, 0) * n
    return hb.HEADER.pack(version, fmt, n, battery, seq, t0, dt, status) + body


@pytest.mark.parametrize(
    "packet,reason",
    [
        (_packet(version=2), "bad_version"),
        (_packet(fmt=0x21), "bad_format"),
        (_packet(fmt=0x03), "bad_format"),
        (_packet(n=0, body=b""), "bad_format"),
        (_packet(dt=0), "bad_format"),
        (_packet(status=0x0400), "bad_format"),
        (_packet(battery=150), "bad_format"),
        (_packet(n=2)[:-8], "truncated"),
        (_packet()[:12], "truncated"),
        (_packet() + b"\0", "bad_length"),
        (_packet(body=struct.pack("<4h", 8000, 0, 0, 0)), "bad_quat_norm"),
        (_packet(fmt=0x02, body=struct.pack("<4f", float("nan"), 0, 0, 0)), "bad_value"),
    ],
)
def test_malformed_packets_are_counted_by_reason(packet, reason):
    dec = HIPBACK_V1.make_decoder(100)
    out = dec.feed(packet, 1.0)
    assert out.n == 0 and out.rejected == reason
    assert dec.stats.rejected == {reason: 1}
    good = dec.feed(_packet(seq=5), 1.1)  # the decoder goes on
    assert good.n == 1 and good.seq[0] == 5


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=20))
def test_random_bytes_never_raise(chunks):
    dec = HIPBACK_V1.make_decoder(100)
    for c in chunks:
        out = dec.feed(c, 0.0)
        assert out.n > 0 or out.rejected is not None
    assert dec.stats.packets == len(chunks)
    accepted = dec.stats.packets - dec.stats.rejected_total
    assert accepted >= 0 and dec.stats.samples >= accepted


def test_control_writes_from_the_profile_drive_the_state_machine():
    state = HipbackState()
    (start,) = HIPBACK_V1.start_sequence(200, "raw_mag")
    effects = state.handle_write(start.char_uuid, start.data)
    assert [e.kind for e in effects] == ["start"]
    assert effects[0].params == {"rate_hz": 200.0, "format": hb.MODES["raw_mag"], "max_batch": 0}
    assert state.streaming and state.rate_hz == 200
    # CONTROL read: last op, last result, streaming, format (u8), rate_hz u16, max_batch, location (u8)
    status = CONTROL_STATUS.unpack(state.read(hb.CONTROL_UUID))
    assert status[:5] == (0x01, 0, 1, hb.MODES["raw_mag"], 200)
    (stop,) = HIPBACK_V1.stop_sequence()
    assert [e.kind for e in state.handle_write(stop.char_uuid, stop.data)] == ["stop"] and not state.streaming
    bad = state.handle_write(hb.CONTROL_UUID, hb.start_command(33, hb.MODES["quat"]))
    assert (
        bad[0].kind == "error"
        and CONTROL_STATUS.unpack(state.read(hb.CONTROL_UUID))[1] == 3  # unsupported rate
    )
    assert state.handle_write(hb.CONTROL_UUID, bytes([0x04, 2]))[0].params == {"location": 2}  # thigh_left
    assert state.handle_write(hb.CONTROL_UUID, b"\x99")[0].kind == "error"


def test_heading_reset_zeroes_the_heading():
    state = HipbackState()
    enc = HipbackEncoder(100, mode="quat", state=state)
    q = qm.multiply(qm.from_axis_angle([0, 0, 1], 1.0), qm.from_axis_angle([1, 0, 0], 0.3))[None, :]
    enc.encode(np.array([0.0]), q)
    assert [e.kind for e in state.handle_write(hb.CONTROL_UUID, bytes([0x03]))] == ["heading_reset"]
    out = HIPBACK_V1.make_decoder(100, "quat").feed(enc.encode(np.array([0.01]), q)[0], 0.0)
    x_world = qm.rotate(out.quat[0], [1.0, 0.0, 0.0])
    assert abs(np.arctan2(x_world[1], x_world[0])) < 1e-3
    assert abs(x_world[2] - qm.rotate(q[0], [1.0, 0.0, 0.0])[2]) < 1e-3  # inclination unchanged


CONTROL_STATUS = struct.Struct("<BBBBHBB")


def time_sync_request(token: int, host_time_s: float) -> bytes:
    """TIME request of the profile document: op 0x01, token u32, host time u64 in us."""
    return struct.pack("<BIQ", 0x01, token & 0xFFFFFFFF, int(round(host_time_s * 1e6)))


def time_sync_offset(
    request_sent_s: float, reply: bytes, reply_received_s: float
) -> tuple[int, float, float]:
    """Parse a TIME reply (op 0x81, token u32, device rx/tx us u64): (token, host - device s, round trip s)
    by the profile document's formulas."""
    op, token, rx_us, tx_us = struct.unpack("<BIQQ", reply)
    assert op == 0x81
    t2, t3 = rx_us * 1e-6, tx_us * 1e-6
    offset = ((request_sent_s - t2) + (reply_received_s - t3)) / 2.0
    return token, offset, (reply_received_s - request_sent_s) - (t3 - t2)


def test_time_sync_round_trip_estimates_the_offset():
    clock = DeviceClock(offset_s=500.25)
    state = HipbackState(clock=clock)
    host_offset = 1.7e9  # host time = sim time + host_offset
    best = None
    for i, (up, down) in enumerate([(0.020, 0.011), (0.008, 0.0075), (0.030, 0.002)]):
        sim_send = 10.0 + i
        req = time_sync_request(i, sim_send + host_offset)
        (eff,) = state.handle_write(hb.TIME_UUID, req, now=sim_send + up)
        reply = eff.params["data"]
        token, offset, rtt = time_sync_offset(
            sim_send + host_offset, reply, sim_send + up + down + host_offset
        )
        assert token == i and rtt == pytest.approx(up + down, abs=1e-5)
        if best is None or rtt < best[1]:
            best = (offset, rtt)
    true_offset = host_offset - clock.offset_s
    assert abs(best[0] - true_offset) <= best[1] / 2 + 1e-5
    (eff,) = state.handle_write(hb.TIME_UUID, struct.pack("<Bq", 0x02, 2_000_000))  # set offset, us
    assert eff.kind == "time_offset" and state.time_synced and clock.offset_s == pytest.approx(502.25)


def test_info_and_battery_reads_parse():
    state = HipbackState(battery_pct=64, model="hipback-thigh")
    info = hb.parse_info(state.read(hb.INFO_UUID))
    assert info["protocol_version"] == 1 and info["model"] == "hipback-thigh"
    assert info["rates_hz"] == list(hb.RATES_HZ) and info["gyr_range_dps"] == 2000
    assert state.read(hb.BATTERY_LEVEL_UUID) == bytes([64])
    with pytest.raises(ValueError):
        hb.parse_info(b"\x01" * 10)
