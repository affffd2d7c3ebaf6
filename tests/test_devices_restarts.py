"""Device restarts and corrupt counters at the device boundary: a rebooted sensor's samples are kept as a new
clock epoch (device times unique and increasing within the session), and one corrupt sequence number or
timestamp far ahead costs at most that packet, never a gap proportional to the corruption."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from hipback.ingest.devices import HIPBACK_V1, MOVELLA_DOT
from hipback.ingest.devices import hipback_v1 as hb

G = 9.80665
PERIOD_US = 16_667  # Movella DOT at 60 Hz


def custom5(t_us: int, acc_z: float = 9.8) -> bytes:
    """One Movella DOT custom mode 5 notification (63 bytes, zero padded) at raw timestamp ``t_us``."""
    return struct.pack("<I4f3f3f", t_us, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, acc_z, 0.0, 0.0, 0.0).ljust(63, b"\0")


def _times(outs) -> list[float]:
    return [float(t) for o in outs if o.n for t in o.device_time_s]


def _increasing(times: list[float]) -> bool:
    return all(b > a for a, b in zip(times, times[1:], strict=False))


# -- Movella DOT: a reboot restarts the u32 microsecond timestamp ------------------------------------------
def test_movella_reboot_is_a_new_epoch_after_the_last_sample() -> None:
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    before = [dec.feed(custom5(5_000_000 + i * PERIOD_US), 10.0 + i / 60) for i in range(10)]
    last_arrival = 10.0 + 9 / 60
    # the sensor reboots: 2 s later its clock starts again near 0
    after = [dec.feed(custom5(200 + i * PERIOD_US), last_arrival + 2.0 + i / 60) for i in range(10)]
    assert all(o.rejected is None and o.n == 1 for o in before + after)
    assert dec.stats.resets == 1 and dec.stats.missing == 0
    times = _times(before + after)
    assert _increasing(times) and len(set(times)) == 20
    # the pause between the arrivals is the pause on the device timeline
    assert times[10] - times[9] == pytest.approx(2.0, abs=1e-6)
    assert after[0].extra["timestamp_us"] == 200  # the device's own timestamp stays as sent
    assert after[1].device_time_s[0] - after[0].device_time_s[0] == pytest.approx(PERIOD_US * 1e-6)


def test_movella_reboot_onto_timestamps_already_seen_keeps_the_new_clock() -> None:
    """The stream had run for three samples when the sensor restarted: its new clock passes through the
    same raw timestamps (0, 16667, 33333). Only a byte-identical repeat is a duplicate; the new samples
    that continue one another are the device's clock now, after the old ones."""
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    old = [dec.feed(custom5(i * PERIOD_US, 9.8), i / 60) for i in range(3)]
    new = [dec.feed(custom5(i * PERIOD_US, 9.0), 1.0 + i / 60) for i in range(6)]
    assert [o.rejected for o in old] == [None] * 3
    assert dec.stats.duplicates == 0 and dec.stats.resets == 1
    # the first two look stale until the third continues them: it returns their samples before its own
    assert [o.rejected for o in new] == ["out_of_order", "out_of_order", None, None, None, None]
    assert [o.n for o in new] == [0, 0, 3, 1, 1, 1] and new[2].extra["recovered"] == 2
    assert dec.stats.recovered == 2 and not dec.stats.rejected and dec.stats.samples == 9
    times = _times(old + new)
    assert _increasing(times) and len(times) == 9
    # the new clock's samples are one period apart, after the old ones by the pause between the arrivals
    assert np.allclose(np.diff(times[3:]), PERIOD_US * 1e-6)
    assert times[3] - times[2] == pytest.approx(1.0 - 2 / 60, abs=1e-6)
    assert new[2].extra["timestamps_us"] == [0, PERIOD_US, 2 * PERIOD_US]


@pytest.mark.parametrize("back_us,recovered", [(500_000, 2), (999_999, 2), (40_000, 2), (20_000, 1)])
def test_movella_clock_set_back_less_than_a_second_loses_no_sample(back_us: int, recovered: int) -> None:
    """A re-sync sets the DOT's clock back by less than 1 s in the middle of a stream (arrivals on time): no
    sample is lost, the timeline goes on one period apart, nothing stays counted as refused. The packets
    still behind the last sample are returned by the third of them (``recovered`` 2), or, when the new clock
    passes the last sample sooner (20 ms back: one packet behind), by the next packet, one period on."""
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    raws = [5_000_000 + i * PERIOD_US for i in range(10)]
    raws += [raws[-1] - back_us + i * PERIOD_US for i in range(1, 11)]
    outs = [dec.feed(custom5(r), 2.0 + i / 60) for i, r in enumerate(raws)]
    assert sum(o.n for o in outs) == 20 and dec.stats.samples == 20 and dec.stats.missing == 0
    assert dec.stats.resets == 1 and dec.stats.recovered == recovered and not dec.stats.rejected
    times = _times(outs)
    assert _increasing(times) and np.allclose(np.diff(times), PERIOD_US * 1e-6, atol=2e-6)


def test_movella_stale_packets_that_the_old_clock_follows_stay_refused() -> None:
    """One or two corrupt timestamps behind, then the stream goes on: those packets alone are refused (and
    counted so), the samples kept aside are dropped, nothing is recovered."""
    for corrupt in (1, 2):
        dec = MOVELLA_DOT.make_decoder(60, "custom5")
        raws = [5_000_000 + i * PERIOD_US for i in range(12)]
        for k in range(corrupt):
            raws[5 + k] = 4_600_000 + k * PERIOD_US  # 0.4 s behind, continuing one another
        outs = [dec.feed(custom5(r), 2.0 + i / 60) for i, r in enumerate(raws)]
        assert [o.rejected for o in outs] == [None] * 5 + ["out_of_order"] * corrupt + [None] * (7 - corrupt)
        assert all(o.n == 1 for o in outs if o.rejected is None)
        assert dec.stats.rejected == {"out_of_order": corrupt} and dec.stats.recovered == 0
        assert dec.stats.resets == 0 and _increasing(_times(outs))


def test_movella_byte_identical_repeat_is_still_a_duplicate() -> None:
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    assert dec.feed(custom5(1000), 0.0).rejected is None
    assert dec.feed(custom5(1000), 0.0).rejected == "duplicate"
    assert dec.stats.duplicates == 1


@pytest.mark.parametrize("back_s", [4.0, 0.5])
def test_movella_restart_of_the_clock_inside_the_session_stores_every_sample(tmp_path, back_s: float) -> None:
    """Through the real session path: the virtual DOT's clock goes back 4 s (a reboot's restarted timestamp)
    or 0.5 s (a re-sync) at t = 5 s; every sample sent is stored (none collide with stored device times)."""
    from hipback.ingest.session import run_virtual_session
    from hipback.ingest.store import LocalStore
    from hipback.simulator import SensorSpec, simulate
    from hipback.simulator.virtual_ble import SensorFaults

    sim = simulate("short", seed=7, sensors=[SensorSpec("thigh_left", kind="quat", rate_hz=100.0)])
    outcome = run_virtual_session(
        sim,
        {"thigh_left": "movella_dot"},
        tmp_path / "s.sqlite",
        faults={"thigh_left": SensorFaults(clock_jumps=[(5.0, -back_s)])},
        until_s=10.0,
        calibration_s=0,
        process=False,
    )
    st, ledger = outcome.stats["thigh_left"], outcome.ledgers["thigh_left"]
    with LocalStore(tmp_path / "s.sqlite") as store:
        stored = store.sample_count(outcome.session_id, "thigh_left")
        rec = store.load_recording(outcome.session_id)
    assert st.duplicates_ignored == 0 and not st.rejected
    assert st.samples == ledger.sent_samples == stored > 400
    t = rec.streams["thigh_left"].t
    assert np.all(np.diff(t) > 0) and np.max(np.diff(t)) < 0.5  # no hole, no overlap in the timeline


# -- hipback v1: one corrupt sequence number far ahead ------------------------------------------------------
DT_US = 10_000  # 100 Hz


def _hipback(seq: int, t0_us: int, n: int = 4) -> bytes:
    """A hipback v1 packet of ``n`` identity quaternions (Q14) from ``seq`` at device time ``t0_us``."""
    body = struct.pack("<4h", 16384, 0, 0, 0) * n
    return hb.HEADER.pack(1, 0x01, n, 50, seq & 0xFFFFFFFF, t0_us, DT_US, 0) + body


@pytest.mark.parametrize("jump", [(1 << 31) - 1, 1 << 20, 5_000, 999, 500, 50, 20])
def test_hipback_corrupt_sequence_far_ahead_costs_one_packet(jump: int) -> None:
    """Jumps of 0.2 s to 10 s of samples (20 to 999 at 100 Hz) that neither the device time (which goes on
    one period per sample) nor the arrivals (40 ms apart) back are corrupt numbers too, not losses."""
    dec = HIPBACK_V1.make_decoder(100)
    outs = []
    for k in range(12):
        seq = 4 * k + (jump if k == 5 else 0)  # packet 5 carries a corrupt sequence number
        outs.append(dec.feed(_hipback(seq, 1_000_000 + 4 * k * DT_US), k * 0.04))
    assert [o.rejected for o in outs] == [None] * 5 + ["bad_value"] + [None] * 6
    # the refused packet's own four samples are the only loss, and the numbering does not move
    assert dec.stats.seq_gaps == [(19, 4)] and dec.stats.missing == 4 and dec.stats.resets == 0
    seqs = [int(s) for o in outs if o.n for s in o.seq]
    assert seqs == [s for k in range(12) if k != 5 for s in range(4 * k, 4 * k + 4)]
    # the next real loss is reported with its own size
    out = dec.feed(_hipback(4 * 13, 1_000_000 + 4 * 13 * DT_US), 0.6)
    assert out.missing == 4 and dec.stats.missing == 8


def test_hipback_sequence_gap_backed_by_device_time_is_a_loss() -> None:
    dec = HIPBACK_V1.make_decoder(100)
    assert dec.feed(_hipback(0, 0), 0.0).n == 4
    out = dec.feed(_hipback(4 + 6000, (4 + 6000) * DT_US), 60.0)  # a minute lost, the clock agrees
    assert out.rejected is None and out.missing == 6000 and dec.stats.resets == 0


def test_hipback_header_with_sequence_and_time_far_ahead_is_refused() -> None:
    """Sequence number and device time both 2^20 samples (about 3 h) on, 40 ms after the packet before: the
    device time backs the gap, the arrivals cannot."""
    dec = HIPBACK_V1.make_decoder(100)
    outs = [dec.feed(_hipback(4 * k, 4 * k * DT_US), 0.04 * k) for k in range(3)]
    jump = 1 << 20
    outs.append(dec.feed(_hipback(12 + jump, (12 + jump) * DT_US), 0.12))
    outs += [dec.feed(_hipback(4 * k, 4 * k * DT_US), 0.04 * k) for k in range(4, 7)]
    assert [o.rejected for o in outs] == [None] * 3 + ["bad_value"] + [None] * 3
    assert dec.stats.missing == 4 and dec.stats.resets == 0  # the refused packet's own samples
    assert outs[-1].seq.tolist() == [24, 25, 26, 27]


@pytest.mark.parametrize("arrival_s,lost", [(2.0, True), (1.86, True), (1.85, False), (0.04, False)])
def test_hipback_loss_while_the_device_clock_stepped_back_is_a_gap_as_far_as_the_arrivals_back_it(
    arrival_s: float, lost: bool
) -> None:
    """196 samples (1.96 s) lost while a time sync set the device clock back: the device time does not back
    the jump, the arrivals do when they are 1.96 s apart less the 0.1 s the packet before may have been
    delayed more (with the 1e-3 drift bound: 1.86 s does, 1.85 s does not); 40 ms after it they cannot, and
    the number is corrupt."""
    dec = HIPBACK_V1.make_decoder(100)
    assert dec.feed(_hipback(0, 5_000_000), 0.0).n == 4
    out = dec.feed(_hipback(4 + 196, 1_000_000), arrival_s)  # the clock set back 4 s
    if lost:
        assert out.rejected is None and out.missing == 196 and out.seq.tolist() == [200, 201, 202, 203]
    else:
        assert out.rejected == "bad_value" and dec.stats.gaps == []


def test_hipback_renumbered_stream_is_followed_after_three_packets() -> None:
    """A device whose numbering really jumped (its clock running on) is followed once three packets continue
    one another: the two before are refused, nothing is counted lost, numbering stays continuous."""
    dec = HIPBACK_V1.make_decoder(100)
    assert dec.feed(_hipback(0, 0), 0.0).n == 4
    jump = 1 << 30
    outs = [dec.feed(_hipback(jump + 4 * k, (4 + 4 * k) * DT_US), 0.04 * (k + 1)) for k in range(4)]
    assert [o.rejected for o in outs] == ["bad_value", "bad_value", None, None]
    assert dec.stats.missing == 0 and dec.stats.resets == 1
    assert outs[2].seq.tolist() == [4, 5, 6, 7] and outs[3].seq.tolist() == [8, 9, 10, 11]


# -- Movella DOT: one corrupt timestamp far ahead ------------------------------------------------------------
@pytest.mark.parametrize(
    "ahead_us,refused",
    [
        ((1 << 31) - 1, "out_of_order"),  # beyond half the u32 counter (with the period): read as behind
        ((1 << 31) - 20_000, None),  # just under half the counter ahead
        (1 << 28, None),
        (60_000_000, None),
    ],
)
def test_movella_corrupt_timestamp_far_ahead_is_no_gap_and_loses_nothing(ahead_us: int, refused) -> None:
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    raws = [1_000_000 + i * PERIOD_US for i in range(12)]
    raws[5] += ahead_us  # one packet's timestamp is corrupt, the stream goes on as before
    outs = [dec.feed(custom5(r), 3.0 + i / 60) for i, r in enumerate(raws)]
    # every other sample kept; the corrupt one too unless it reads as stale
    assert [o.rejected for o in outs] == [None] * 5 + [refused] + [None] * 6
    # no loss made up from the corrupt timestamp (a refused packet's own sample is the only one missing)
    assert dec.stats.missing == (1 if refused else 0)
    times = _times(outs)
    assert _increasing(times)
    # the samples after it follow on one period apart again
    assert np.allclose(np.diff(times[6:]), PERIOD_US * 1e-6)


def test_movella_timestamp_ahead_by_the_time_that_passed_is_a_loss() -> None:
    dec = MOVELLA_DOT.make_decoder(60, "custom5")
    assert dec.feed(custom5(1_000_000), 3.0).n == 1
    out = dec.feed(custom5(1_000_000 + 61 * PERIOD_US), 4.0)  # 60 samples lost in the 1 s between arrivals
    assert out.missing == 60 and dec.stats.resets == 0
    # a link stalled for 30 s (the clock ran on while nothing arrived) is a loss too
    out = dec.feed(custom5(1_000_000 + 61 * PERIOD_US + 30_000_000), 4.1)
    assert out.missing == int(round(30_000_000 / (1e6 / 60))) - 1 and dec.stats.resets == 0


def test_hipback_corrupt_sample_period_cannot_make_a_huge_gap_fit() -> None:
    """A header whose dt_us reads 1 us and whose sequence number is 10^7 ahead: 10 s of samples at 1 us, but
    10^7 samples are more than a day at the nominal 100 Hz."""
    dec = HIPBACK_V1.make_decoder(100)
    assert dec.feed(_hipback(0, 0), 0.0).n == 4
    bad = bytearray(_hipback(4 + 10**7, 40_000))
    struct.pack_into("<H", bad, 16, 1)  # dt_us
    assert dec.feed(bytes(bad), 0.04).rejected == "bad_value"
    assert dec.feed(_hipback(8, 80_000), 0.08).missing == 4 and dec.stats.missing == 4
