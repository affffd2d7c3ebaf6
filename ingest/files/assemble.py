"""From decoded file columns to a clean :class:`~hipback.processing.types.SensorStream` plus its gaps.

Shared by every dialect, in this order:

1. leading rows whose acc and gyr are all exactly zero are dropped (vendor exports only: a Movella DOT writes
   zeros before its first inertial sample; zeros are not data);
2. rows without the quantities the stream needs (quaternion for ``quat`` streams, acc and gyr for ``raw``
   streams) are dropped (vendor files); the hole they leave is reported as a gap like any other;
3. quaternions: a zero norm or a norm far from 1 (off by more than 0.1) is an error, otherwise they are
   normalised (exports store float32);
4. packet counters and device clocks are unwrapped (u16 / u32 / one-day counters);
5. repeated samples (same counter; same time when there is no counter) are dropped and counted;
6. time or counter going backwards is an error naming the line;
7. the rate is the median time step (snapped to the stated rate, or to a whole number of Hz, when within
   tolerance); every time step longer than 1.5 sample periods and every counter jump is a :class:`Gap`.
   Nothing is interpolated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hipback.ingest.errors import RecordingFileError
from hipback.ingest.files.report import ImportReport
from hipback.processing.types import Gap, SensorStream

FloatArray = NDArray[np.float64]

#: a time step longer than this many nominal sample periods is a gap
GAP_FACTOR = 1.5


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
    rate. ``kind`` forces the stream kind (default: ``quat`` when there are quaternions).
    """
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

    # 3. quaternion norms
    if quat is not None:
        norm = np.linalg.norm(quat, axis=1)
        zero_q = np.flatnonzero(norm < 1e-6)
        if zero_q.size:
            raise RecordingFileError(
                path, "the quaternion in this row has zero norm.", int(line_no[zero_q[0]])
            )
        off = np.flatnonzero(np.abs(norm - 1.0) > 0.1)
        if off.size:
            k = int(off[0])
            raise RecordingFileError(
                path,
                f"the quaternion in this row is not a unit quaternion (norm {norm[k]:.3g}).",
                int(line_no[k]),
            )
        if not exact:
            quat = quat / norm[:, None]

    # 4. unwrap counter and clock
    seq: NDArray[np.int64] | None = None
    if counter is not None:
        bad = np.flatnonzero(np.isnan(counter) | (counter < 0) | (counter != np.round(counter)))
        if bad.size:
            raise RecordingFileError(
                path, "the packet counter in this row is missing or not a whole number.", int(line_no[bad[0]])
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

    # 7. rate and gaps
    if len(t_dev) >= 2:
        measured = 1.0 / float(np.median(dt))
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
