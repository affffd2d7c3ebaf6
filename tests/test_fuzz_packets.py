"""Bounded, seeded fuzzing of the BLE packet boundary (``tests/fuzz_packets.py``; the long campaign is
``bench/fuzz_campaign.py --only ble:hipback_v1 ble:movella_dot ble:witmotion ble:long``), the harness's own
sensitivity, and the faults the campaign found, one test each."""

from __future__ import annotations

import random
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.clock import ArrivalClock, ClockModel
from hipback.ingest.devices import HIPBACK_V1, MOVELLA_DOT, WITMOTION
from hipback.ingest.devices import hipback_v1 as hb
from hipback.ingest.devices import movella_dot as md
from hipback.ingest.devices import witmotion as wm
from hipback.ingest.devices.base import Decoder
from tests import fuzz_boundaries as fb
from tests import fuzz_packets as fp

SEED = 20261126


def _run(kind: str, tmp_path: Path, n: int, seed: int = SEED) -> tuple[fb.Fuzzer, fp.PacketFuzz]:
    state = fp.PacketFuzz(kind, tmp_path)
    fuzzer = fb.Fuzzer(f"ble:{kind}", fp.packet_case(state))
    try:
        with fb.bounded(memory_gib=2.0, seconds=120):
            fuzzer.run(n, seed)
    finally:
        state.close()
    return fuzzer, state


@pytest.mark.parametrize("kind", fp.KINDS)
def test_mutated_notification_streams_through_the_live_path(tmp_path, kind) -> None:
    fuzzer, state = _run(kind, tmp_path, 50)
    assert not fuzzer.failures, fuzzer.failures[:3]
    # the property is only tested when both happen: mutations refused and mutations taken as samples
    assert fuzzer.counts["error"] >= 5 and fuzzer.counts["ok"] >= 5, dict(fuzzer.counts)
    reasons = {k for k in state.packets if k.startswith("rejected:")}
    assert state.packets["accepted"] > 500, state.packets
    assert len(reasons) >= (1 if kind == "witmotion" else 5), state.packets
    assert all(state.buffers[k] <= fp.BUFFER_BOUNDS[k] for k in state.buffers)


def test_garbage_for_a_long_time_keeps_buffers_bounded(tmp_path) -> None:
    state = fp.PacketFuzz("long", tmp_path)
    fuzzer = fb.Fuzzer("ble:long", fp.long_case(state, n_packets=1_500))
    with fb.bounded(memory_gib=2.0, seconds=120):
        fuzzer.run(2, SEED)
    state.close()
    assert not fuzzer.failures, fuzzer.failures
    assert fuzzer.counts["ok"] == 2 and all(f"{k}:events.clock_jumps" in state.buffers for k in fp.KINDS)
    bounded = {name: v for name, v in state.buffers.items() if name.split(":", 1)[1] in fp.BUFFER_BOUNDS}
    assert all(v <= fp.BUFFER_BOUNDS[name.split(":", 1)[1]] for name, v in bounded.items()), bounded
    # the event records are kept to the most recent ones while the counters go on past them
    assert state.buffers["hipback_v1:events.clock_jumps"] > fp.BUFFER_BOUNDS["clock.jump_records"]
    assert state.buffers["hipback_v1:clock.jump_records"] == fp.BUFFER_BOUNDS["clock.jump_records"]
    assert state.buffers["movella_dot:decoder.gap_records"] == fp.BUFFER_BOUNDS["decoder.gap_records"]


# -- the harness catches faults ------------------------------------------------------------------------


def _failures(kind: str, tmp_path: Path, n: int) -> list[str]:
    fuzzer, _ = _run(kind, tmp_path, n)
    return [detail for _, _, detail in fuzzer.failures]


def test_the_harness_catches_values_beyond_the_datasheet(tmp_path, monkeypatch) -> None:
    """Without the decoders' range check (on arrays or, as the Movella DOT decoder's, on Python floats)."""
    monkeypatch.setattr(Decoder, "_out_of_range", lambda self, acc, gyr: False)
    monkeypatch.setattr(Decoder, "_flat_out_of_range", lambda self, acc, gyr: False)
    assert any("beyond the full scale" in d for d in _failures("movella_dot", tmp_path, 40))


def test_the_harness_catches_a_missing_length_check(tmp_path, monkeypatch) -> None:
    """Without the limit on a notification's length, megabytes of repeated frames become thousands of
    samples at one arrival."""
    monkeypatch.setattr(Decoder, "MAX_NOTIFICATION_BYTES", 1 << 30)
    assert any("samples in one notification" in d for d in _failures("witmotion", tmp_path, 40))


def test_the_harness_catches_a_decoder_that_does_not_recover(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(hb.HipbackV1Decoder, "RESYNC_PACKETS", 10**9)
    assert any("did not recover" in d for d in _failures("hipback_v1", tmp_path, 40))


def test_the_harness_catches_device_times_that_go_back_after_a_restart(tmp_path, monkeypatch) -> None:
    """A restarted Movella DOT clock read as it comes: its samples take device times already stored."""
    monkeypatch.setattr(md.MovellaDotDecoder, "_new_epoch", lambda self, raw_t, arrival_time: None)
    assert any("device time went back" in d for d in _failures("movella_dot", tmp_path, 60))


def test_the_harness_catches_a_gap_made_up_from_a_corrupt_sequence_number(tmp_path, monkeypatch) -> None:
    """Every sequence number ahead taken as a loss: a corrupt one becomes a gap of up to 2^31 - 1 samples."""
    monkeypatch.setattr(hb.HipbackV1Decoder, "_plausible_gap", lambda self, *args: True)
    assert any("samples" in d and d.startswith("a gap of") for d in _failures("hipback_v1", tmp_path, 60))


def test_the_harness_catches_a_start_sequence_that_refuses_what_was_read(tmp_path, monkeypatch) -> None:
    """A malformed Device Control read that fails every connection set-up (the session retries for ever)."""
    real = md.MovellaDotProfile.start_sequence

    def strict(self, rate_hz, mode=None, current=None, *, max_batch=None):
        dc = self._config(current).values.get(md.DEVICE_CONTROL_UUID)
        if dc is not None and len(dc) != md.DEVICE_CONTROL_SIZE:
            raise ValueError(f"Device Control value has {len(dc)} bytes, expected {md.DEVICE_CONTROL_SIZE}")
        return real(self, rate_hz, mode, current, max_batch=max_batch)

    monkeypatch.setattr(md.MovellaDotProfile, "start_sequence", strict)
    assert any("the start sequence raised" in d for d in _failures("movella_dot", tmp_path, 150))


def test_the_harness_catches_a_parser_exception_hidden_as_bad_format(tmp_path, monkeypatch) -> None:
    real = md.MovellaDotDecoder._decode

    def buggy(self, data, arrival):
        if len(data) == 39:  # a truncation of the 40-byte medium payload
            raise IndexError("bug")
        return real(self, data, arrival)

    monkeypatch.setattr(md.MovellaDotDecoder, "_decode", buggy)
    assert any("parser raised (hidden as bad_format): IndexError" in d
               for d in _failures("movella_dot", tmp_path, 40))


# -- the faults the campaign found ---------------------------------------------------------------------


def _hb_raw(seq: int, t0_us: int, n: int = 1, dt_us: int = 10_000) -> bytes:
    body = np.zeros((n, 6), "<i2")
    body[:, 2] = 2048  # 1 g on z
    return hb.HEADER.pack(1, hb.MODES["raw"], n, 80, seq & 0xFFFFFFFF, t0_us, dt_us, 0) + body.tobytes()


def test_hipback_one_corrupt_sequence_number_no_longer_refuses_the_rest_of_the_stream() -> None:
    """A single packet whose sequence number jumped ahead made every later (genuine) packet look stale:
    refused as out of order for the rest of the session. Then three in a row that continued one another were
    followed, as after a restart, but the corrupt packet still made up a gap of 100,000 samples and moved
    every later number on. Now the corrupt packet alone is refused: its device time, one period on, cannot
    hold the gap."""
    dec = HIPBACK_V1.make_decoder(100, "raw")
    for k in range(5):
        assert dec.feed(_hb_raw(k, k * 10_000), k * 0.01).n == 1
    corrupt = dec.feed(_hb_raw(5 + 100_000, 50_000), 0.05)  # 100,000 samples ahead, 10 ms on
    assert corrupt.rejected == "bad_value" and dec.stats.missing == 0
    outs = [dec.feed(_hb_raw(k, k * 10_000), k * 0.01) for k in range(6, 12)]
    assert [o.rejected for o in outs] == [None] * 6
    assert dec.stats.resets == 0 and dec.stats.rejected == {"bad_value": 1}
    seqs = np.concatenate([o.seq for o in outs if o.n])
    assert seqs.tolist() == list(range(6, 12))  # numbering unmoved
    assert dec.stats.seq_gaps == [(4, 1)] and dec.stats.missing == 1  # the refused packet's own sample


def test_hipback_stale_packets_that_do_not_continue_one_another_stay_refused() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    dec.feed(_hb_raw(100, 1_000_000), 0.0)
    outs = [dec.feed(_hb_raw(seq, 2_000_000 + seq), 0.0) for seq in (10, 50, 20, 70, 30)]
    assert all(o.rejected == "out_of_order" for o in outs) and dec.stats.resets == 0


def test_hipback_device_time_beyond_2_53_us_is_refused() -> None:
    """At 9e12 s a float cannot hold microseconds: the samples of one packet collapsed onto one time."""
    dec = HIPBACK_V1.make_decoder(100, "raw")
    assert dec.feed(_hb_raw(0, (1 << 53) - 30_000, n=3), 0.0).n == 3
    out = dec.feed(_hb_raw(3, (1 << 53) - 10_000, n=2), 0.0)  # its last sample at 2^53 us
    assert out.rejected == "bad_value" and dec.stats.rejected == {"bad_value": 1}
    assert dec.feed(_hb_raw(3, 1 << 63, n=1), 0.0).rejected == "bad_value"


def test_hipback_a_device_clock_that_stands_still_is_refused_until_it_runs_again() -> None:
    """The sequence went on but the device time stood still: every packet was accepted with the same times,
    the clock model suspected a jump for ever (a list growing by one entry per packet) and timed the samples
    further and further before their arrival."""
    dec, clock = HIPBACK_V1.make_decoder(100, "raw"), ClockModel(100)
    frozen = 1_000_000
    for k in range(200):
        t0 = 10_000 * 10 * k if k < 100 else frozen
        out = dec.feed(_hb_raw(10 * k, t0, n=10), 0.1 * k + 0.02)
        clock.map(out)
        if k == 100:  # the first packet that does not advance: a step of the clock (a time sync), accepted
            assert out.n == 10
        elif k > 100:
            assert out.rejected == "out_of_order"
    assert len(clock._suspects) == 0 and dec.stats.rejected == {"out_of_order": 99}
    # the clock runs again from where it stood: taken at once
    outs = [dec.feed(_hb_raw(2000 + 10 * k, frozen + 100_000 * k, n=10), 20.0 + 0.1 * k) for k in range(1, 3)]
    assert [o.n for o in outs] == [10, 10] and dec.stats.resets == 0


def test_hipback_a_device_clock_that_runs_again_below_where_it_stood_is_followed() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    for k in range(3):  # 5 s, then the clock stands still at 5.0 s
        dec.feed(_hb_raw(10 * k, 5_000_000 if k else 4_900_000, n=10), 0.0)
    # it runs again from 1 s on (below where it stood): followed after three packets that continue one another
    outs = [dec.feed(_hb_raw(30 + 10 * k, 1_000_000 + 100_000 * k, n=10), 0.0) for k in range(5)]
    assert [o.n for o in outs] == [0, 0, 10, 10, 10] and dec.stats.resets == 1
    assert dec.stats.rejected == {"out_of_order": 2}


def test_hipback_one_step_back_of_the_device_clock_is_accepted() -> None:
    dec = HIPBACK_V1.make_decoder(100, "raw")
    dec.feed(_hb_raw(0, 5_000_000, n=5), 0.0)
    outs = [dec.feed(_hb_raw(5 + 5 * k, 4_000_000 + 50_000 * k, n=5), 0.0) for k in range(4)]  # a re-sync
    assert all(o.n == 5 for o in outs) and not dec.stats.rejected and dec.stats.resets == 0


def _dot(t_us: int) -> bytes:
    m = md.PAYLOAD_MODES["custom5"]
    payload = m.struct.pack(t_us, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9.81, 0.0, 0.0, 0.0)
    return payload.ljust(md.PAYLOAD_LENGTH[m.char_uuid], b"\0")


@pytest.mark.parametrize("rate", [1.0, 60.0])
def test_movella_a_clock_jump_of_more_than_half_the_counter_no_longer_refuses_everything(rate) -> None:
    """A timestamp 2^31 us or more ahead reads as a late packet from before a rollover: after a device clock
    jump that large, every later packet was refused. Now three that continue one another are followed (at
    1 Hz the step between them is over 1 s: the limit scales with the period)."""
    dec = MOVELLA_DOT.make_decoder(rate, "custom5")
    period = int(1e6 / rate) + 80  # the device clock runs 80 ppm fast at 1 Hz
    for k in range(3):
        assert dec.feed(_dot(1_000 + k * period), 0.0).n == 1
    start = 1_000 + 3 * period + (1 << 31) + 12_345
    outs = [dec.feed(_dot(start + k * period), 0.0) for k in range(5)]
    assert [o.rejected for o in outs] == ["out_of_order", "out_of_order", None, None, None]
    assert dec.stats.resets == 1 and outs[-1].missing == 0


def test_movella_one_corrupt_timestamp_ahead_costs_at_most_two_packets() -> None:
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    p = 16_667
    for k in range(3):
        dec.feed(_dot(k * p), 0.0)
    assert dec.feed(_dot(3 * p + 500_000), 0.0).n == 1  # half a second ahead: read as a gap
    outs = [dec.feed(_dot(k * p), 0.0) for k in range(4, 9)]
    assert [o.rejected for o in outs] == ["out_of_order", "out_of_order", None, None, None]


def _wm_frame() -> bytes:
    return bytes([0x55, 0x61]) + np.array([0, 0, 2048, 0, 0, 0, 0, 0, 0], "<i2").tobytes()


@pytest.mark.parametrize("decoder", [lambda: WITMOTION.make_decoder(10), lambda: HIPBACK_V1.make_decoder(100),
                                     lambda: MOVELLA_DOT.make_decoder(60)])
def test_a_notification_longer_than_1024_bytes_is_refused(decoder) -> None:
    """A megabyte of repeated WitMotion frames in one notification gave 52,428 samples, timed hours before
    they arrived; one BLE notification holds at most 512 bytes."""
    dec = decoder()
    out = dec.feed(_wm_frame() * 52_429, 1.0)
    assert out.rejected == "bad_length" and out.n == 0 and dec.stats.rejected == {"bad_length": 1}
    assert dec.stats.packets == 1 and dec.stats.bytes == 20 * 52_429
    if isinstance(dec, wm.WitMotionDecoder):
        assert dec.feed(_wm_frame() * 51, 1.0).n == 51  # 1020 bytes: a re-framed stream is still served


def test_packets_arriving_within_a_microsecond_keep_distinct_utc_times() -> None:
    """Two notifications handled back to back (arrivals 0.1 us apart) were both timed at their arrival: the
    second sample 0.1 us after the first, the same float once the session's start (1.7e9 s) is added, and
    the store dropped it as a duplicate (WitMotion samples are keyed by their time)."""
    start = 1.7e9
    arrival = ArrivalClock(10.0)
    a = arrival.map_packet(1, 100.0)
    b = arrival.map_packet(1, 100.0 + 1e-7)
    assert b[0] - a[0] > 0.99e-6 and (b + start)[0] > (a + start)[0]
    model = ClockModel(100.0)
    out = HIPBACK_V1.make_decoder(100, "raw")
    t1 = model.map(out.feed(_hb_raw(0, 0, n=3), 50.0))
    t2 = model.map(out.feed(_hb_raw(3, 30_000, n=3), 50.0 + 1e-7))
    assert np.all(np.diff(np.concatenate([t1, t2]) + start) > 0)


def test_replies_of_every_protocol_are_parsed_or_refused_in_one_sentence(tmp_path) -> None:
    for kind in fp.KINDS:
        state = fp.PacketFuzz(kind, tmp_path)
        fuzzer = fb.Fuzzer(kind, lambda rng, state=state: fp.reply_case(state, rng))
        fuzzer.run(60, SEED)
        assert not fuzzer.failures, fuzzer.failures[:3]
        assert fuzzer.counts["error"] >= 5 and fuzzer.counts["ok"] >= 5, (kind, dict(fuzzer.counts))


def test_mutations_are_all_exercised() -> None:
    counts: Counter = Counter()
    rng = random.Random(SEED)
    for kind in fp.KINDS:
        stream = fp.clean_stream(kind, rng)
        packets = [fp.Packet(bytes(d), 0.01 * i, i) for i, d in enumerate(stream.more(30))]
        for _ in range(400):
            fp.mutate(stream, packets, rng, counts)
    assert set(counts) == set(fp.MUTATIONS)


@pytest.mark.parametrize("fmt", [hb.FMT_MAG, hb.FMT_ACC, hb.FMT_GYR, hb.FMT_ACC | hb.FMT_MAG])
def test_hipback_a_format_without_orientation_or_raw_pair_is_refused(fmt) -> None:
    """A magnetometer-only packet was taken as samples holding neither a quaternion nor acc: stored rows no
    stream could use. Every mode of the profile streams a quaternion, or acc and gyr."""
    n, size = 2, hb.sample_size(fmt)
    data = hb.HEADER.pack(1, fmt, n, 80, 0, 0, 10_000, 0) + bytes(n * size)
    dec = HIPBACK_V1.make_decoder(100, "raw")
    assert dec.feed(data, 0.0).rejected == "bad_format" and dec.stats.rejected == {"bad_format": 1}


def test_a_packet_later_than_any_stall_re_anchors_the_clock_at_once() -> None:
    """A device clock that stood still for 70 s (its packets refused as duplicates meanwhile) and runs on:
    the next packet is 70 s "late". A stall cannot delay a packet beyond the BLE supervision timeout (32 s at
    most), yet the clock model waited for 2 s of device time and three late packets to decide: with few
    packets accepted, samples were timed 79 s before they arrived."""
    model = ClockModel(1.0)
    for k in range(20):
        model.map(_dot_samples(k * 1.0, k * 1.0 + 0.02))
    t = model.map(_dot_samples(20.0, 90.02))  # one second of device time, 71 s of arrival time
    assert len(model.jumps) == 1 and model.jumps[-1].delta_s > 32.0
    assert 90.0 <= t[0] <= 90.02
    stalled = ClockModel(1.0)
    for k in range(20):
        stalled.map(_dot_samples(k * 1.0, k * 1.0 + 0.02))
    t = stalled.map(_dot_samples(20.0, 40.0))  # 20 s late: a stall is likelier, the fit stays
    assert not stalled.jumps and len(stalled._suspects) == 1 and t[0] == pytest.approx(20.02, abs=1e-3)


def _dot_samples(device_time_s: float, arrival: float):
    from hipback.ingest.devices.base import DecodedSamples

    return DecodedSamples(arrival_time=arrival, device_time_s=np.array([device_time_s]), n=1)


def test_hipback_a_signalling_nan_quaternion_is_bad_value_without_a_warning() -> None:
    """Casting a float32 signalling NaN warned ("invalid value encountered in cast") on the console for such
    packets, and under warnings-as-errors the packet became bad_format instead of bad_value."""
    import warnings

    body = struct.pack("<4I", 0x7F800001, 0, 0, 0)  # w: a signalling NaN
    data = hb.HEADER.pack(1, hb.QUAT_F32, 1, 80, 0, 0, 10_000, 0) + body
    dec = HIPBACK_V1.make_decoder(100, "quat")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dec.feed(data, 0.0).rejected == "bad_value"
