"""From decoded file columns to a clean :class:`~hipback.processing.types.SensorStream` plus its gaps.

Shared by every dialect, in this order:

1. leading rows whose acc and gyr are all exactly zero are dropped (vendor exports only: a Movella DOT writes
   zeros before its first inertial sample; zeros are not data);
2. rows without the quantities the stream needs (quaternion for ``quat`` streams, acc and gyr for ``raw``
   streams) are dropped (vendor files); the hole they leave is reported as a gap like any other;
3. rows holding a value the sensor cannot produce are dropped and counted (``ImportReport.out_of_range``, by
   quantity, with a warning), as the BLE decoders reject such packets: an acc or gyr component beyond the
   device's full scale (:data:`FULL_SCALE`, plus :data:`RANGE_MARGIN`), a magnetometer component beyond
   :data:`MAG_LIMIT`, a quaternion whose norm is zero or far from 1 (off by more than
   :data:`QUAT_NORM_TOLERANCE`). The hole they leave is a gap like any other. Kept quaternions are normalised
   (exports store float32; hipback files are kept bit for bit);
4. packet counters and device clocks are unwrapped (u16 / u32 / one-day counters); a value beyond the
   counter's or clock's range is an error naming the line;
5. repeated samples (same counter; same time when there is no counter) are dropped and counted;
6. time or counter going backwards is an error naming the line;
7. time is bounded before anything is sized by it: a file spans at most :data:`MAX_SPAN_S` (a corrupt last
   time stamp such as 1e9 s is an error naming its line, not a request for terabytes), a timeline longer
   than :data:`SPARSE_SPAN_S` is covered by samples for at least 1 / :data:`SPARSE_FACTOR` of it, a counter
   jump may not stand for more samples than that span holds (nor, when time has its own source, for more
   than the time step holds), and the rate lies within :data:`RATE_LIMITS_HZ`;
8. the rate is the typical time step (the median step, or over three steps where the device's clock ticks
   quantize it: :func:`typical_step`; snapped to the stated rate, or to a whole number of Hz, when within
   tolerance); every time step longer than 1.5 sample periods and every counter jump is a :class:`Gap`.
   Nothing is interpolated;
9. a vendor file with quaternions and both accelerometer and gyroscope columns is a ``quat`` stream only
   when the device's orientation output follows its own gyroscope
   (:func:`hipback.processing.orientation.gyroscope_agreement` on the quiet samples, bias-removed residual
   at most :data:`MAX_ORIENTATION_RESIDUAL_RAD_S` in 90 % of them). An output that jitters, holds and
   jumps, or runs apart from the gyroscope (seen in a real full-body recording: steps of 1-2 deg back and
   forth between samples while the gyroscope reads 0.03 rad/s) would be taken as motion everywhere (no
   still standing found, no calibration, no angles); the file is then read as a ``raw`` stream (orientation
   by VQF from its accelerometer and gyroscope) with a warning. A kind forced by the caller is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hipback.ingest.errors import RecordingFileError
from hipback.ingest.files.report import ImportReport
from hipback.processing.orientation import GyroscopeAgreement, gyroscope_agreement
from hipback.processing.types import Gap, SensorStream

FloatArray = NDArray[np.float64]

#: a time step longer than this many nominal sample periods is a gap
GAP_FACTOR = 1.5
#: step 9: largest 90th percentile (rad/s) of a device orientation's bias-removed departure from its own
#: gyroscope on the quiet samples for its quaternions to be used. Working fusion stays at the gyroscope's
#: noise (real Movella DOT files: 0.000-0.021 rad/s); a jittering output is tenths of a rad/s and more (a
#: real full-body recording: 0.23-0.69 rad/s). 0.1 rad/s (5.7 deg/s) lies between, with a margin both ways.
MAX_ORIENTATION_RESIDUAL_RAD_S = 0.1
#: step 9 needs at least this many seconds of quiet samples to judge (fewer: the quaternions are used)
MIN_QUIET_S = 1.0

_G = 9.80665  # m/s^2
#: full scale per axis (acc m/s^2, gyr rad/s) of each device, from the datasheets: Movella DOT +-16 g and
#: +-2000 deg/s; the hipback v1 profile's packet scale and WitMotion WT9011DCL the same; Xsens MTi 1-, 100-
#: and 600-series and MTw at most +-20 g and +-2000 deg/s
FULL_SCALE: dict[str, tuple[float, float]] = {
    "movella_dot": (16 * _G, np.radians(2000.0)),
    "hipback_v1": (16 * _G, np.radians(2000.0)),
    "witmotion": (16 * _G, np.radians(2000.0)),
    "xsens_mt": (20 * _G, np.radians(2000.0)),
}
#: any other device (simulated, unknown): the widest ranges of wearable MEMS IMUs, +-32 g and +-4000 deg/s
DEFAULT_FULL_SCALE = (32 * _G, np.radians(4000.0))
#: relative margin over the full scale (factory calibration applied on the device), as the BLE decoders use
RANGE_MARGIN = 0.05
#: magnetometer component limit, uT or normalised units: beyond any magnetometer's range in either unit
MAG_LIMIT = 5000.0
#: a quaternion whose norm differs from 1 by more than this is not an orientation
QUAT_NORM_TOLERANCE = 0.1
#: longest time a recording (one file, or all files of a recording together) may span, s
MAX_SPAN_S = 86_400.0
#: a timeline longer than SPARSE_SPAN_S must be covered by samples for at least 1 / SPARSE_FACTOR of it:
#: processing sizes its arrays by the timeline, so 300 samples with a last time stamp 18 h later (one corrupt
#: value) would need gigabytes; a real recording with long disconnections still passes
SPARSE_SPAN_S = 7200.0
SPARSE_FACTOR = 4.0
#: sample rates a file may state or have (Hz)
RATE_LIMITS_HZ = (0.1, 10_000.0)


@dataclass
class Decoded:
    """One file's columns in hipback units, one entry per data row, before cleaning.

    Time comes either from ``t`` (s, already continuous, e.g. the hipback format), or from ``clock`` (raw
    device ticks, wrapping at ``clock_modulus``, ``ticks_per_s`` per second), or from ``counter`` divided by
    the stated rate (``time_from_counter``). ``counter`` holds raw packet counters (wrapping at
    ``counter_modulus``).
    """

    line_no: NDArray[np.int64]
    t: FloatArray | None = None
    clock: FloatArray | None = None
    clock_modulus: int = 2**32
    ticks_per_s: float = 1e6
    counter: FloatArray | None = None
    counter_modulus: int = 2**16
    time_from_counter: bool = False
    quat: FloatArray | None = None
    acc: FloatArray | None = None
    gyr: FloatArray | None = None
    mag: FloatArray | None = None


def unwrap_counter(values: NDArray[np.int64], modulus: int) -> tuple[NDArray[np.int64], int]:
    """Undo wrap-arounds of a counter that counts modulo ``modulus``.

    A step down by more than half the modulus is a wrap; a step up by more than half the modulus is a step
    backwards across the wrap (left negative so the caller reports it). Returns (unwrapped, number of wraps).
    """
    if len(values) < 2:
        return values.astype(np.int64), 0
    step = np.diff(values.astype(np.int64))
    half = modulus // 2
    wraps = step < -half
    back = step > half
    step[wraps] += modulus
    step[back] -= modulus
    out = np.empty(len(values), dtype=np.int64)
    out[0] = int(values[0])
    np.cumsum(step, out=out[1:])
    out[1:] += out[0]
    return out, int(wraps.sum())


def counter_modulus_for(values: FloatArray) -> int:
    """u16 counters wrap at 65536; larger values mean a u32 counter."""
    return 2**16 if np.nanmax(values) < 2**16 else 2**32


def typical_step(t: np.ndarray, dt: np.ndarray) -> float:
    """The sampling step (s) of times ``t`` (``dt`` their differences): the median step, or the median over
    three steps where that is the same step to 1 %. A device clock of coarse ticks quantizes the steps (60 Hz
    in 10 kHz ticks: 167, 167, 166 ticks), so the median step lies a part of a tick off (59.88 Hz) where three
    steps hold the true period; over three steps a lost sample counts in three windows, so the single-step
    median, robust while under half the steps hold a gap, decides when the two disagree."""
    step = float(np.median(dt))
    if len(t) >= 4:
        step3 = float(np.median((t[3:] - t[:-3]) / 3.0))
        if abs(step3 - step) <= 0.01 * step:
            return step3
    return step


def snap_rate(measured: float, stated: float | None) -> float:
    """The stated rate if the data agree (2 %), else a whole number of Hz (0.2 %), else the measured rate."""
    if stated and abs(measured / stated - 1.0) < 0.02:
        return float(stated)
    whole = round(measured)
    if whole > 0 and abs(measured - whole) / measured < 2e-3:
        return float(whole)
    return float(measured)


def build_stream(
    path: Path,
    dec: Decoded,
    report: ImportReport,
    *,
    placement: str,
    device: str,
    stated_rate: float | None = None,
    drop_leading_zeros: bool = True,
    exact: bool = False,
    kind: str | None = None,
) -> tuple[SensorStream, list[Gap]]:
    """Clean ``dec`` (see the module docstring) into a stream whose ``t`` starts at 0, and its gaps.

    ``exact`` (the hipback format, already clean): keep ``t`` as stored (not shifted to 0), keep rows with
    missing values, keep quaternions bit for bit (checked, not normalised) and take ``stated_rate`` as the
    rate. ``kind`` forces the stream kind (default: ``quat`` when there are quaternions whose orientation
    follows the device's gyroscope, see step 9 of the module docstring).
    """
    warnings_before = len(report.warnings)
    stream, gaps = _build_stream(
        path, dec, report, placement=placement, device=device, stated_rate=stated_rate,
        drop_leading_zeros=drop_leading_zeros, exact=exact, kind=kind,
    )
    if kind is not None or exact or stream.kind != "quat" or stream.acc is None or stream.gyr is None:
        return stream, gaps
    agreement = _orientation_agreement(stream)
    if not agreement.residual_p90_rad_s > MAX_ORIENTATION_RESIDUAL_RAD_S:  # (NaN: too few quiet samples)
        return stream, gaps
    del report.warnings[warnings_before:]  # read again as a raw stream: its own warnings
    stream, gaps = _build_stream(
        path, dec, report, placement=placement, device=device, stated_rate=stated_rate,
        drop_leading_zeros=drop_leading_zeros, exact=exact, kind="raw",
    )
    report.orientation_residual_rad_s = agreement.residual_p90_rad_s
    report.warnings.append(
        f"the device's orientation does not follow its own gyroscope (while still it departs by up to "
        f"{agreement.residual_p90_rad_s:.2f} rad/s in 90 % of the samples; working fusion stays under "
        f"{MAX_ORIENTATION_RESIDUAL_RAD_S:g} rad/s): its accelerometer and gyroscope are used instead "
        "(orientation by VQF)"
    )
    return stream, gaps


def _orientation_agreement(stream: SensorStream) -> GyroscopeAgreement:
    """Step 9's test on the quiet samples of ``stream`` (pairs across a gap left out)."""
    assert stream.quat is not None and stream.gyr is not None
    n = len(stream.t)
    if n < 2:
        return GyroscopeAgreement(0, float("nan"))
    step_ok = np.diff(stream.t) <= GAP_FACTOR / stream.rate_hz
    q, g = stream.quat, stream.gyr.copy()
    g[1:][~step_ok] = np.nan  # a pair across a gap is not compared
    agreement = gyroscope_agreement(q, g, stream.rate_hz)
    if agreement.quiet_rows < MIN_QUIET_S * stream.rate_hz:
        return GyroscopeAgreement(agreement.quiet_rows, float("nan"))
    return agreement


def _build_stream(
    path: Path,
    dec: Decoded,
    report: ImportReport,
    *,
    placement: str,
    device: str,
    stated_rate: float | None,
    drop_leading_zeros: bool,
    exact: bool,
    kind: str | None,
) -> tuple[SensorStream, list[Gap]]:
    """Steps 1-8 of the module docstring for one kind (``kind`` None: ``quat`` when there are
    quaternions)."""
    n = len(dec.line_no)
    keep = np.ones(n, dtype=bool)

    # 1. leading all-zero acc+gyr rows
    if drop_leading_zeros and dec.acc is not None and dec.gyr is not None:
        zero = np.all(dec.acc == 0.0, axis=1) & np.all(dec.gyr == 0.0, axis=1)
        lead = int(np.argmin(zero)) if not zero.all() else n
        keep[:lead] = False
        report.leading_zero_rows_dropped = lead

    # 2. rows without required data
    kind = kind or ("quat" if dec.quat is not None else "raw")
    if kind == "quat":
        if dec.quat is None:
            raise RecordingFileError(path, "the file has no quaternion values for a quat sensor.")
        missing = np.isnan(dec.quat).any(axis=1)
    else:
        if dec.acc is None or dec.gyr is None:
            raise RecordingFileError(
                path, "the file has neither quaternion columns nor both accelerometer and gyroscope columns."
            )
        missing = np.isnan(dec.acc).any(axis=1) | np.isnan(dec.gyr).any(axis=1)
    missing &= keep
    if exact:
        missing[:] = False  # a hipback file is restored as written, NaN rows included
    report.rows_without_data = int(missing.sum())
    keep &= ~missing
    if not keep.any():
        raise RecordingFileError(path, "no row of the file holds usable sensor data.")

    def sel(a: FloatArray | None) -> FloatArray | None:
        return None if a is None else a[keep]

    line_no = dec.line_no[keep]
    quat, acc, gyr, mag = sel(dec.quat), sel(dec.acc), sel(dec.gyr), sel(dec.mag)
    clock, counter, t_given = sel(dec.clock), sel(dec.counter), sel(dec.t)

    # 3. values the sensor cannot produce
    acc_fs, gyr_fs = FULL_SCALE.get(device, DEFAULT_FULL_SCALE)
    limits = {"acc": acc_fs * (1 + RANGE_MARGIN), "gyr": gyr_fs * (1 + RANGE_MARGIN), "mag": MAG_LIMIT}
    impossible = np.zeros(len(line_no), dtype=bool)
    for name, arr in (("acc", acc), ("gyr", gyr), ("mag", mag)):
        if arr is not None:
            with np.errstate(invalid="ignore"):
                bad_rows = (np.abs(arr) > limits[name]).any(axis=1)
            if bad_rows.any():
                report.out_of_range[name] = int(bad_rows.sum())
                impossible |= bad_rows
    if quat is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            norm = np.linalg.norm(quat, axis=1)
        bad_rows = ~(np.abs(norm - 1.0) <= QUAT_NORM_TOLERANCE) & ~np.isnan(norm)
        if bad_rows.any():
            report.out_of_range["quat"] = int(bad_rows.sum())
            impossible |= bad_rows
    if impossible.any():
        n_bad = int(impossible.sum())
        first = int(line_no[np.flatnonzero(impossible)[0]])
        what = ", ".join(f"{k} {v}" for k, v in report.out_of_range.items())
        report.warnings.append(
            f"{n_bad} row(s) hold values the sensor cannot produce ({what}; first at line {first}); "
            "they were left out and count as a gap"
        )
        ok = ~impossible
        if not ok.any():
            raise RecordingFileError(
                path, "no row holds values the sensor can produce (acc, gyr, mag or quaternion out of "
                "range).", first,
            )
        line_no = line_no[ok]
        quat, acc, gyr, mag = (None if a is None else a[ok] for a in (quat, acc, gyr, mag))
        clock, counter, t_given = (None if a is None else a[ok] for a in (clock, counter, t_given))
    if quat is not None and not exact:
        quat = quat / np.linalg.norm(quat, axis=1)[:, None]

    # 4. unwrap counter and clock
    seq: NDArray[np.int64] | None = None
    if counter is not None:
        bad = np.flatnonzero(np.isnan(counter) | (counter < 0) | (counter != np.round(counter)))
        if bad.size:
            raise RecordingFileError(
                path, "the packet counter in this row is missing or not a whole number.", int(line_no[bad[0]])
            )
        bad = np.flatnonzero(counter >= min(float(dec.counter_modulus), 2.0**53))
        if bad.size:
            raise RecordingFileError(
                path, "the packet counter in this row is larger than the counter can count.",
                int(line_no[bad[0]]),
            )
        seq, wraps = unwrap_counter(counter.astype(np.int64), dec.counter_modulus)
        report.unwrap_events += wraps
    t0 = 0.0  # device time of the first kept row; t_dev is relative to it (exact integer differences)
    if t_given is not None:
        t_dev = t_given
    elif clock is not None:
        bad = np.flatnonzero(np.isnan(clock) | (clock < 0))
        if bad.size:
            raise RecordingFileError(path, "the time stamp in this row is missing.", int(line_no[bad[0]]))
        bad = np.flatnonzero((clock >= dec.clock_modulus) | (clock != np.round(clock)))
        if bad.size:
            raise RecordingFileError(
                path, "the time stamp in this row is not a whole number of clock ticks within the clock's "
                "range.",
                int(line_no[bad[0]]),
            )
        ticks, wraps = unwrap_counter(clock.astype(np.int64), dec.clock_modulus)
        report.unwrap_events += wraps
        t0 = float(ticks[0]) / dec.ticks_per_s
        t_dev = (ticks - ticks[0]) / dec.ticks_per_s
        report.clock_period_s = dec.clock_modulus / dec.ticks_per_s
        report.clock_tick_s = 1.0 / dec.ticks_per_s
    elif dec.time_from_counter and seq is not None and stated_rate:
        t0 = float(seq[0]) / float(stated_rate)
        t_dev = (seq - seq[0]) / float(stated_rate)
        report.clock_period_s = dec.counter_modulus / float(stated_rate)
        report.clock_tick_s = 1.0 / float(stated_rate)
    else:
        raise RecordingFileError(
            path, "the file has no usable time: no SampleTimeFine, and no PacketCounter with a stated rate."
        )

    # 5. duplicates (consecutive repeats of the same sample)
    key = seq if seq is not None else t_dev
    dup = np.zeros(len(key), dtype=bool)
    dup[1:] = np.diff(key) == 0
    report.duplicates_dropped = int(dup.sum())
    if dup.any():
        nd = ~dup
        line_no, t_dev = line_no[nd], t_dev[nd]
        seq = None if seq is None else seq[nd]
        quat, acc, gyr, mag = (None if a is None else a[nd] for a in (quat, acc, gyr, mag))

    # 6. monotonic time and counter
    if seq is not None:
        back = np.flatnonzero(np.diff(seq) < 0)
        if back.size:
            raise RecordingFileError(
                path, "the packet counter goes backwards in this row.", int(line_no[back[0] + 1])
            )
    dt = np.diff(t_dev)
    back = np.flatnonzero(~(dt > 0))
    if back.size:
        k = int(back[0]) + 1
        what = "does not advance" if dt[k - 1] == 0 else "goes backwards"
        raise RecordingFileError(path, f"the time {what} in this row.", int(line_no[k]))

    # 7. bounded time: checked before anything is sized by it (gaps, the processing grid)
    far = np.flatnonzero(np.abs(t_dev) > MAX_SPAN_S) if t_given is not None else np.zeros(0, dtype=np.int64)
    if far.size:
        k = int(far[0])
        raise RecordingFileError(
            path, f"the time {t_dev[k]:.6g} s in this row lies more than {MAX_SPAN_S / 3600:g} h from the "
            "recording's start; the time stamp is corrupt.", int(line_no[k]))
    beyond = np.flatnonzero(t_dev - t_dev[0] > MAX_SPAN_S)
    if beyond.size:
        k = int(beyond[0])
        raise RecordingFileError(
            path, f"the time jumps to {t_dev[k] - t_dev[0]:.6g} s after the first sample in this row; a "
            f"recording spans at most {MAX_SPAN_S / 3600:g} h, so the time stamp is corrupt.",
            int(line_no[k]))
    lo, hi = RATE_LIMITS_HZ
    if stated_rate is not None and not lo <= stated_rate <= hi:
        raise RecordingFileError(path, f"the stated rate {stated_rate:g} Hz is outside {lo:g}-{hi:g} Hz.")

    # 8. rate and gaps
    if len(t_dev) >= 2:
        measured = 1.0 / typical_step(t_dev, dt)
        if not lo <= measured <= hi:
            raise RecordingFileError(
                path, f"the time stamps give a rate of {measured:.4g} Hz, outside {lo:g}-{hi:g} Hz.")
        report.rate_hz_measured = measured
        rate = float(stated_rate) if exact and stated_rate else snap_rate(measured, stated_rate)
        if stated_rate and rate != stated_rate:
            report.warnings.append(
                f"the file states {stated_rate:g} Hz but the time stamps give {measured:.4g} Hz; "
                "using the time stamps"
            )
    elif stated_rate:
        rate = float(stated_rate)
    else:
        raise RecordingFileError(path, "the file holds a single sample, so its sample rate is unknown.")

    t = t_dev
    if len(t_dev) >= 2:
        span, covered = float(t_dev[-1] - t_dev[0]), len(t_dev) / rate
        if span > max(SPARSE_SPAN_S, SPARSE_FACTOR * covered):
            k = int(np.argmax(dt)) + 1
            raise RecordingFileError(
                path, f"the {len(t_dev)} samples cover {covered:.4g} s but their times span "
                f"{span / 3600:.3g} h (the time jumps by {dt[k - 1]:.6g} s in this row); a time stamp is "
                "corrupt.", int(line_no[k]))
    if seq is not None and len(seq) >= 2:
        jump = np.diff(seq)
        if not dec.time_from_counter:  # time has its own source: a counter jump must fit the time step
            lying = np.flatnonzero(jump > 1.5 * np.diff(t_dev) * rate + 2)
            if lying.size:
                k = int(lying[0]) + 1
                raise RecordingFileError(
                    path, f"the packet counter jumps by {int(jump[k - 1])} in this row while the time "
                    f"advances by {t_dev[k] - t_dev[k - 1]:.6g} s; one of them is corrupt.", int(line_no[k]))
        big = np.flatnonzero(jump > MAX_SPAN_S * rate)
        if big.size:
            k = int(big[0]) + 1
            raise RecordingFileError(
                path, f"the packet counter jumps by {int(jump[k - 1])} in this row, more samples than "
                f"{MAX_SPAN_S / 3600:g} h hold at {rate:g} Hz; the counter is corrupt.", int(line_no[k]))
    gaps = find_gaps(t, seq, rate, placement, period=float(np.median(dt)) if len(dt) else None)
    report.gaps = len(gaps)
    report.missing_samples = int(sum(g.missing for g in gaps))
    report.device_t0_s = None if t_given is not None else t0
    report.first_data_line = int(line_no[0])
    report.rows_kept = len(t)
    report.rows_rejected = report.rows_read - report.rows_kept - report.duplicates_dropped

    stream = SensorStream(
        placement=placement,
        kind=kind,  # type: ignore[arg-type]
        t=t,
        rate_hz=rate,
        quat=quat,
        acc=acc,
        gyr=gyr,
        mag=mag,
        seq=seq,
        device=device,
    )
    return stream, gaps


def find_gaps(
    t: FloatArray,
    seq: NDArray[np.int64] | None,
    rate_hz: float,
    placement: str,
    period: float | None = None,
) -> list[Gap]:
    """Gaps from time steps longer than 1.5 periods and from packet-counter jumps (``missing`` = the larger).

    ``period`` is the measured sample period (s), used to count missing samples (default ``1 / rate_hz``).
    """
    if len(t) < 2:
        return []
    dt = np.diff(t)
    period = period if period and period > 0 else 1.0 / rate_hz
    by_time = np.where(dt > GAP_FACTOR * period, np.rint(dt / period).astype(np.int64) - 1, 0)
    by_time = np.maximum(by_time, 0)
    by_seq = np.diff(seq) - 1 if seq is not None else np.zeros(len(dt), dtype=np.int64)
    gaps: list[Gap] = []
    for i in np.flatnonzero((by_time > 0) | (by_seq > 0)):
        reasons = []
        if by_seq[i] > 0:
            assert seq is not None
            reasons.append(f"packet counter jumps from {seq[i]} to {seq[i + 1]}")
        if by_time[i] > 0:
            reasons.append(f"time step of {dt[i]:.4g} s at {rate_hz:g} Hz")
        gaps.append(
            Gap(
                placement=placement,
                t_start=float(t[i]),
                t_end=float(t[i + 1]),
                missing=int(max(by_time[i], by_seq[i], 1)),
                reason="; ".join(reasons),
            )
        )
    return gaps
