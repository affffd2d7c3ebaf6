"""Movella DOT: padded payloads per mode, timestamps (rollover, gaps), control writes, heading reset."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from hipback.ingest.devices import MOVELLA_DOT, StatusFlag
from hipback.ingest.devices import movella_dot as md
from hipback.processing import quaternion as qm
from hipback.simulator.devices import DeviceClock, FaultInjector, FaultPlan, MovellaEncoder, MovellaState
from hipback.simulator.devices import movella_dot as sim_md


def motion(n: int, rate: float = 60.0, seed: int = 1):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    quat = qm.from_rotvec(np.cumsum(rng.normal(scale=0.05, size=(n, 3)), axis=0))
    acc = rng.normal(scale=3.0, size=(n, 3)) + [0, 0, 9.81]
    gyr = rng.normal(scale=2.0, size=(n, 3))
    mag = rng.normal(scale=0.5, size=(n, 3))  # device units (earth field about 1)
    return t, quat, acc, gyr, mag


def test_constants_match_between_simulator_and_ingest():
    for name in (
        "DEVICE_INFO_UUID",
        "DEVICE_CONTROL_UUID",
        "CONTROL_UUID",
        "LONG_PAYLOAD_UUID",
        "MEDIUM_PAYLOAD_UUID",
        "SHORT_PAYLOAD_UUID",
        "ORIENTATION_RESET_CONTROL_UUID",
        "ORIENTATION_RESET_STATUS_UUID",
        "BATTERY_UUID",
        "MESSAGE_CONTROL_UUID",
    ):
        assert getattr(sim_md, name) == getattr(md, name)
    for mid, (name, char, fields) in sim_md.MODES.items():
        m = md.PAYLOAD_MODES[name]
        assert (m.mode_id, m.char_uuid, m.fields) == (mid, char, fields)


@pytest.mark.parametrize("mode", list(md.PAYLOAD_MODES))
def test_round_trip_each_payload_mode(mode):
    t, quat, acc, gyr, mag = motion(240)
    enc = MovellaEncoder(60, mode=mode, state=MovellaState(clock=DeviceClock(offset_s=3.0)))
    packets = enc.encode(t, quat, acc, gyr, mag)
    m = md.PAYLOAD_MODES[mode]
    assert all(len(p) == md.PAYLOAD_LENGTH[m.char_uuid] for p in packets)  # padded to the characteristic
    assert all(p[m.size :] == bytes(len(p) - m.size) for p in packets)
    assert MOVELLA_DOT.notify_uuids(mode) == [m.char_uuid]
    dec = MOVELLA_DOT.make_decoder(60, mode)
    outs = [dec.feed(p, 0.0) for p in packets]
    assert dec.stats.samples == 240 and not dec.stats.rejected and not dec.stats.seq_gaps
    dt = np.concatenate([o.device_time_s for o in outs])
    assert np.allclose(dt, 3.0 + t, atol=1e-6)
    if "quat" in m.fields:
        q = np.concatenate([o.quat for o in outs])
        assert qm.angle_between(q, quat).max() < 1e-5  # float32
        assert StatusFlag.FUSION_ON in outs[0].flags
    for name, ref in (("acc", acc), ("gyr", gyr), ("mag", mag)):
        if name in m.fields:
            got = np.concatenate([getattr(o, name) for o in outs])
            tol = md.MAG_SCALE if name == "mag" else 1e-5 * np.abs(ref).max()
            assert np.abs(got - ref).max() <= tol
        else:
            assert getattr(outs[0], name) is None
    if "free_acc" in m.fields:
        fa = np.concatenate([o.extra["free_acc"] for o in outs])
        assert np.allclose(fa, qm.rotate(quat, acc) - [0, 0, 9.80665], atol=1e-4)


def test_timestamp_rollover_is_unwrapped():
    rate = 60.0
    start = (2**32 - 1_000_000) * 1e-6  # device clock one second before the u32 us counter wraps
    t, quat, acc, gyr, _ = motion(300, rate)
    enc = MovellaEncoder(rate, mode="custom5", state=MovellaState(clock=DeviceClock(offset_s=start)))
    dec = MOVELLA_DOT.make_decoder(rate, "custom5")
    outs = [dec.feed(p, 0.0) for p in enc.encode(t, quat, acc, gyr)]
    raw = [o.extra["timestamp_us"] for o in outs]
    assert min(raw) < 1_000_000 < max(raw)  # the raw counter did wrap
    dt = np.concatenate([o.device_time_s for o in outs])
    assert np.allclose(np.diff(dt), 1 / rate, atol=2e-6)
    assert np.allclose(dt, start + t, atol=1e-6)
    assert not dec.stats.seq_gaps and not dec.stats.rejected


def test_gaps_from_timestamps_and_duplicates():
    t, quat, acc, gyr, _ = motion(600)
    packets = MovellaEncoder(60, mode="custom3").encode(t, quat, acc, gyr)
    inj = FaultInjector(FaultPlan(drop={10, 11, 12, 100}, duplicate={50}, truncate={200: 25}))
    dec = MOVELLA_DOT.make_decoder(60, "custom3")
    outs = [dec.feed(p, 0.0) for p in inj.apply(packets)]
    assert [m for _, m in dec.stats.seq_gaps] == [3, 1, 1]
    assert [round(g.after_time_s * 60) for g in dec.stats.gaps] == [9, 99, 199]
    assert dec.stats.rejected == {"duplicate": 1, "truncated": 1}
    assert sum(o.n for o in outs) == 600 - 5


@pytest.mark.parametrize(
    "mutate,reason",
    [
        (lambda p: p[:30], "truncated"),
        (lambda p: p + b"\0", "bad_length"),
        (lambda p: p[:4] + struct.pack("<f", float("nan")) + p[8:], "bad_value"),
        (lambda p: p[:4] + struct.pack("<4f", 0.5, 0, 0, 0) + p[20:], "bad_quat_norm"),
    ],
)
def test_malformed_payloads(mutate, reason):
    t, quat, acc, gyr, _ = motion(3)
    packets = MovellaEncoder(60, mode="custom5").encode(t, quat, acc, gyr)
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    assert dec.feed(packets[0], 0.0).n == 1
    out = dec.feed(mutate(packets[1]), 0.0)
    assert out.n == 0 and out.rejected == reason and dec.stats.rejected == {reason: 1}
    assert dec.feed(packets[2], 0.0).n == 1


def test_status_bits_of_extended_mode():
    t, quat, acc, gyr, _ = motion(2)
    acc[1] = [200.0, 0, 0]  # beyond 16 g on x
    outs = [
        MOVELLA_DOT.make_decoder(60, "extended_quaternion").feed(p, 0.0)
        for p in MovellaEncoder(60, mode="extended_quaternion").encode(t, quat, acc, gyr)
    ]
    assert StatusFlag.ACC_CLIPPING not in outs[0].flags and StatusFlag.ACC_CLIPPING in outs[1].flags
    assert outs[1].extra["status"] == 0x0001


def test_rate_read_modify_write_is_understood_by_the_device():
    state = MovellaState()
    state.device_control[7] = 5
    state.device_control[8:13] = b"thigh"
    current = {uuid: state.read(uuid) for uuid in MOVELLA_DOT.config_reads}
    assert md.DEVICE_CONTROL_UUID in MOVELLA_DOT.config_reads
    writes = MOVELLA_DOT.start_sequence(30, "custom5", current)
    assert [w.char_uuid for w in writes] == [md.DEVICE_CONTROL_UUID, md.CONTROL_UUID]
    kinds = [[e.kind for e in state.handle_write(w.char_uuid, w.data)] for w in writes]
    assert kinds == [["rate"], ["start"]]
    assert state.rate_hz == 30 and state.measuring and state.mode_name == "custom5"
    dc = state.read(md.DEVICE_CONTROL_UUID)
    assert dc[8 : 8 + dc[7]] == b"thigh"  # the tag (length at offset 7, text from 8) is untouched
    # the spec: rate cannot change once measuring
    again = md.device_control_write(state.read(md.DEVICE_CONTROL_UUID), 60)
    assert state.handle_write(md.DEVICE_CONTROL_UUID, again)[0].kind == "error" and state.rate_hz == 30
    (stop,) = MOVELLA_DOT.stop_sequence("custom5")
    assert [e.kind for e in state.handle_write(stop.char_uuid, stop.data)] == ["stop"] and not state.measuring
    assert MOVELLA_DOT.nearest_rate(120) == 60 and MOVELLA_DOT.nearest_rate(100) == 60
    with pytest.raises(ValueError):
        md.device_control_write(bytes(31), 60)
    with pytest.raises(ValueError):
        md.device_control_write(bytes(32), 50)


def test_rate_write_sets_only_the_rate_visit_bit():
    out = md.device_control_write(bytes([0xFF] * 32), 30)
    assert out[0] == 0x10 and struct.unpack_from("<H", out, 24)[0] == 30 and out[1:24] == bytes([0xFF] * 23)
    state = MovellaState()
    assert [e.kind for e in state.handle_write(md.DEVICE_CONTROL_UUID, out)] == ["rate"]
    dynamic = bytearray(32)
    dynamic[0], dynamic[26] = 0x20, 1  # visit bit 5: filter profile "Dynamic"
    assert [e.kind for e in state.handle_write(md.DEVICE_CONTROL_UUID, bytes(dynamic))] == ["filter_profile"]
    assert state.filter_profile == 1


def test_virtual_heading_reset():
    state = MovellaState()
    enc = MovellaEncoder(60, mode="orientation_quaternion", state=state)
    q = qm.multiply(qm.from_axis_angle([0, 0, 1], -2.0), qm.from_axis_angle([0, 1, 0], 0.4))[None, :]
    for w in MOVELLA_DOT.start_sequence(60, "orientation_quaternion"):
        state.handle_write(w.char_uuid, w.data)
    enc.encode(np.array([0.0]), q)
    kinds = [  # the virtual DOT's heading reset (hipback does not send it): revert to default, then reset
        [e.kind for e in state.handle_write(md.ORIENTATION_RESET_CONTROL_UUID, data)]
        for data in (struct.pack("<H", 0x0007), struct.pack("<H", 0x0001))
    ]
    assert kinds == [["heading_revert"], ["heading_reset"]]
    assert state.read(md.ORIENTATION_RESET_STATUS_UUID) == b"\x01"
    out = MOVELLA_DOT.make_decoder(60, "orientation_quaternion").feed(enc.encode(np.array([0.1]), q)[0], 0.0)
    x_world = qm.rotate(out.quat[0], [1.0, 0.0, 0.0])
    assert abs(np.arctan2(x_world[1], x_world[0])) < 1e-4
    # a second reset without revert fails, as on the device
    assert state.handle_write(md.ORIENTATION_RESET_CONTROL_UUID, b"\x01\x00")[0].kind == "error"
    assert state.read(md.ORIENTATION_RESET_STATUS_UUID) == b"\x00"


def test_reads_battery_info_and_sync_message():
    state = MovellaState(mac="D4:22:CD:00:12:34", battery_pct=7, firmware=(2, 6, 0))
    assert md.parse_battery(state.read(md.BATTERY_UUID)) == (7.0, False)
    info = md.parse_device_info(state.read(md.DEVICE_INFO_UUID))
    assert (
        info["mac"] == "D4:22:CD:00:12:34"
        and info["product_code"] == "XS-T02"
        and info["firmware"] == "2.6.0"
    )
    msg = bytes.fromhex(
        "020701CCBBAACD22D402"
    )  # the specification's StartSync example (root D4:22:CD:AA:BB:CC)
    assert state.handle_write(md.MESSAGE_CONTROL_UUID, msg)[0].params == {"root_mac": "D4:22:CD:AA:BB:CC"}
    assert state.handle_write(md.MESSAGE_CONTROL_UUID, msg[:-1] + b"\0")[0].kind == "error"
    with pytest.raises(ValueError):
        md.parse_battery(b"\xff\x00")


def test_scan_matching_names():
    from hipback.ingest.devices import match_profile

    assert match_profile("Xsens DOT", []) is MOVELLA_DOT
    assert match_profile("Movella DOT", []) is MOVELLA_DOT
    assert match_profile(None, [md.MEASUREMENT_SERVICE_UUID.upper()]) is MOVELLA_DOT
    assert match_profile("Some DOT", []) is None


def test_reconnect_while_measuring_stops_before_writing_the_rate():
    from hipback.simulator.devices import MovellaTwin

    twin = MovellaTwin(60)

    def config():
        return MOVELLA_DOT.parse_config({u: twin.read(u, 0.0) for u in MOVELLA_DOT.config_reads})

    first = config()
    assert first.firmware == "3.0.0" and not first.measuring
    for w in MOVELLA_DOT.start_sequence(60, "custom5", first):
        twin.handle_write(w.char_uuid, w.data, 0.0)
    twin.on_link_lost()  # the DOT keeps measuring when the central goes
    again = config()
    assert again.measuring
    # what a host that skips the stop gets: the rate write is refused
    refused = md.device_control_write(again.values[md.DEVICE_CONTROL_UUID], 30)
    assert twin.handle_write(md.DEVICE_CONTROL_UUID, refused, 1.0)[0].kind == "error"
    writes = MOVELLA_DOT.start_sequence(30, "custom5", again)
    kinds = [[e.kind for e in twin.handle_write(w.char_uuid, w.data, 1.0)] for w in writes]
    assert kinds == [["stop"], ["rate"], ["start"]] and twin.state.rate_hz == 30 and twin.state.measuring


def test_old_firmware_streams_custom_mode_3():
    from hipback.simulator.devices import MovellaTwin

    twin = MovellaTwin(60, firmware=(2, 6, 0))
    config = MOVELLA_DOT.parse_config({u: twin.read(u, 0.0) for u in MOVELLA_DOT.config_reads})
    choice = MOVELLA_DOT.choose_mode("custom5", 247, config)
    assert choice.mode == "custom3" and "firmware 2.6.0" in (choice.message or "")
    (start,) = [
        w for w in MOVELLA_DOT.start_sequence(60, choice.mode, config) if w.char_uuid == md.CONTROL_UUID
    ]
    (effect,) = twin.handle_write(start.char_uuid, start.data, 0.0)
    assert effect.kind == "start" and effect.params["char_uuid"] == md.MEDIUM_PAYLOAD_UUID
