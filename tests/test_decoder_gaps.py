"""One lost sample is a gap: every decoder reports it, exactly once and with its size (a hand mutation
run showed the suite would not notice a decoder that ignored a one-sample sequence gap)."""

from __future__ import annotations

import struct

import numpy as np

from hipback.ingest.devices import HIPBACK_V1, MOVELLA_DOT
from hipback.ingest.devices import hipback_v1 as hb
from hipback.processing import quaternion as qm
from hipback.simulator.devices import MovellaEncoder

DT_US = 10_000  # 100 Hz


def _hipback(seq: int, n: int = 1) -> bytes:
    body = struct.pack("<4h", 16384, 0, 0, 0) * n
    return hb.HEADER.pack(1, 0x01, n, 50, seq, seq * DT_US, DT_US, 0) + body


def test_hipback_v1_one_missing_sample_is_one_gap() -> None:
    dec = HIPBACK_V1.make_decoder(100)
    got = []
    for seq, n in ((0, 1), (1, 1), (3, 2), (5, 1), (7, 3), (10, 1)):  # sample 2 and sample 6 never arrive
        out = dec.feed(_hipback(seq, n), 0.0)
        assert out.n == n and out.rejected is None
        got += list(out.seq)
        assert out.missing == (1 if seq in (3, 7) else 0)
    assert got == [0, 1, 3, 4, 5, 7, 8, 9, 10]
    assert dec.stats.seq_gaps == [(1, 1), (5, 1)] and dec.stats.missing == 2
    assert [g.after_time_s for g in dec.stats.gaps] == [1 * DT_US * 1e-6, 5 * DT_US * 1e-6]


def test_hipback_v1_no_gap_without_loss() -> None:
    dec = HIPBACK_V1.make_decoder(100)
    for seq in range(6):
        assert dec.feed(_hipback(seq), 0.0).missing == 0
    assert dec.stats.seq_gaps == [] and dec.stats.missing == 0


def test_movella_one_missing_sample_is_one_gap() -> None:
    n = 12
    t = np.arange(n) / 60.0
    quat = qm.from_rotvec(np.zeros((n, 3)))
    packets = MovellaEncoder(60, mode="custom5").encode(t, quat, np.zeros((n, 3)) + [0, 0, 9.81],
                                                        np.zeros((n, 3)))
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    outs = [dec.feed(p, 0.0) for i, p in enumerate(packets) if i != 4]  # one sample lost
    assert [o.missing for o in outs] == [0, 0, 0, 0, 1] + [0] * (n - 6)
    assert [m for _, m in dec.stats.seq_gaps] == [1] and dec.stats.missing == 1
