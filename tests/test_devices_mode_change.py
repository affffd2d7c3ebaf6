"""A payload mode change between connections (a reconnection negotiated another ATT MTU): the new mode's
decoder goes on where the previous one left off (``Decoder.continue_from``), so sample numbers and device
times stay unique and increasing over the change and the store keeps every sample (it skips a sample whose
sequence number or device time it holds already)."""

from __future__ import annotations

import struct

from hipback.ingest.devices import HIPBACK_V1, MOVELLA_DOT, WITMOTION
from hipback.ingest.devices import hipback_v1 as hb

PERIOD_US = 16_667  # Movella DOT at 60 Hz
RAW = hb.FMT_ACC | hb.FMT_GYR


def custom5(t_us: int) -> bytes:
    """Movella DOT custom mode 5: timestamp, quaternion, acceleration, angular velocity (63 bytes)."""
    return struct.pack("<I4f3f3f", t_us, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9.8, 0.0, 0.0, 0.0).ljust(63, b"\0")


def custom3(t_us: int) -> bytes:
    """Movella DOT custom mode 3: timestamp, quaternion, angular velocity (40 bytes)."""
    return struct.pack("<I4f3f", t_us, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0).ljust(40, b"\0")


def hipback_raw(seq: int, t0_us: int, battery: int = 80) -> bytes:
    header = struct.pack("<BBBBIQHH", 1, RAW, 1, battery, seq, t0_us, 10_000, 0)
    return header + struct.pack("<6h", 0, 0, 2048, 0, 0, 0)


def _increasing(values: list[float]) -> bool:
    return all(b > a for a, b in zip(values, values[1:], strict=False))


def test_movella_epoch_of_a_restart_carries_over_to_the_next_mode() -> None:
    first = MOVELLA_DOT.make_decoder(60, "custom5")
    outs = [first.feed(custom5(5_000_000 + i * PERIOD_US), 1.0 + i / 60) for i in range(5)]
    # the sensor restarts (its clock near 0 again): a new epoch after the last sample
    outs += [first.feed(custom5(100 + i * PERIOD_US), 3.0 + i / 60) for i in range(5)]
    assert first.stats.resets == 1
    # the link drops; the reconnection can only stream custom mode 3; the device clock went on meanwhile
    second = MOVELLA_DOT.make_decoder(60, "custom3")
    second.continue_from(first)
    outs += [second.feed(custom3(100 + (5 + 60 + i) * PERIOD_US), 4.1 + i / 60) for i in range(5)]
    assert all(o.rejected is None and o.n == 1 for o in outs)
    times = [float(o.device_time_s[0]) for o in outs]
    assert _increasing(times) and len(set(times)) == 15
    assert second.stats is first.stats and second.stats.resets == 1  # one set of statistics per sensor
    assert second.stats.missing == 60  # the samples the device sent while the link was down


def test_movella_without_carrying_over_would_go_back_in_time() -> None:
    """What the carry-over prevents: a fresh decoder restarts the device timeline at the raw timestamp, before
    the samples stored after the restart epoch."""
    first = MOVELLA_DOT.make_decoder(60, "custom5")
    for i in range(5):
        first.feed(custom5(5_000_000 + i * PERIOD_US), 1.0 + i / 60)
    last = first.feed(custom5(100), 3.0)
    fresh = MOVELLA_DOT.make_decoder(60, "custom3")
    out = fresh.feed(custom3(100 + PERIOD_US), 3.1)
    assert out.device_time_s[0] < last.device_time_s[0]


def test_hipback_numbering_over_restarts_carries_over_to_the_next_mode() -> None:
    first = HIPBACK_V1.make_decoder(100, "raw")
    seqs = []
    for seq in range(3):
        seqs += first.feed(hipback_raw(seq, seq * 10_000), 0.1 * seq).seq.tolist()
    seqs += first.feed(hipback_raw(0, 0, battery=79), 0.5).seq.tolist()  # a reboot: numbering goes on at 3
    second = HIPBACK_V1.make_decoder(100, "quat")
    second.continue_from(first)
    for seq in (1, 2):
        out = second.feed(hipback_raw(seq, seq * 10_000, battery=79), 0.5 + 0.1 * seq)
        assert out.rejected is None and out.missing == 0
        seqs += out.seq.tolist()
    assert seqs == [0, 1, 2, 3, 4, 5] and second.stats is first.stats and first.stats.resets == 1
    fresh = HIPBACK_V1.make_decoder(100, "quat")
    assert fresh.feed(hipback_raw(1, 10_000, battery=79), 0.6).seq.tolist() == [1]  # would collide with 1


def test_a_decoder_without_a_place_in_the_stream_takes_the_statistics() -> None:
    first = WITMOTION.make_decoder(100, None)
    second = WITMOTION.make_decoder(100, None)
    second.continue_from(first)
    assert second.stats is first.stats
