"""Generators of realistic recording files for the importer tests (Movella DOT CSV, Xsens MT Manager export).

Each generator writes a file and returns the :class:`Truth` of what a correct importer must find: the rows
that are real samples (after removing dropped, duplicated and leading "no data" rows), their times on the
device clock, and the values in hipback units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hipback.processing import quaternion as qt

GRAVITY = 9.81


@dataclass
class Motion:
    """Smooth synthetic motion: sensor-to-world quaternions, specific force (m/s^2), angular rate (rad/s)."""

    quat: np.ndarray
    acc: np.ndarray
    gyr: np.ndarray
    mag: np.ndarray


@dataclass
class Truth:
    """Expected import result; ``index`` = the sample indices present in the file, duplicates removed."""

    index: np.ndarray
    t_device: np.ndarray  # s, unwrapped device time of each kept sample
    quat: np.ndarray | None
    acc: np.ndarray | None
    gyr: np.ndarray | None  # rad/s
    mag: np.ndarray | None
    rate_hz: float
    missing: list[tuple[int, int]] = field(default_factory=list)  # (index before gap, samples missing)
    duplicates: int = 0
    leading_zero_rows: int = 0


def motion(n: int, rate_hz: float, seed: int = 0) -> Motion:
    """A thigh-like swing: rotation vector with sinusoids at gait frequencies, plus sensor noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate_hz
    rotvec = np.column_stack(
        [0.5 * np.sin(2 * np.pi * 0.9 * t), 0.1 * np.sin(2 * np.pi * 1.8 * t + 0.3), 0.2 + 0.05 * np.cos(t)]
    )
    quat = qt.from_rotvec(rotvec)
    g_world = np.array([0.0, 0.0, GRAVITY])
    acc = qt.rotate(qt.conjugate(quat), np.broadcast_to(g_world, (n, 3))) + rng.normal(0, 0.05, (n, 3))
    gyr = np.gradient(rotvec, t, axis=0) + rng.normal(0, 0.01, (n, 3))
    mag = qt.rotate(qt.conjugate(quat), np.broadcast_to([0.2, 0.0, -0.4], (n, 3)))
    return Motion(quat, acc, gyr, mag)


def _keep_index(n: int, drop: list[tuple[int, int]]) -> np.ndarray:
    keep = np.ones(n, dtype=bool)
    for start, count in drop:
        keep[start : start + count] = False
    return np.flatnonzero(keep)


def write_movella_dot(
    path: Path,
    n: int = 600,
    *,
    rate_hz: float = 120.0,
    stf0: int = 2**32 - 2_000_000,
    drop: list[tuple[int, int]] | None = None,
    duplicate: list[int] | None = None,
    leading_zero_rows: int = 1,
    columns: str = "full",
    preamble: bool = False,
    seed: int = 0,
) -> Truth:
    """A Movella DOT export: ``SampleTimeFine`` in us (u32, wraps), gyro in deg/s, ``, `` separated rows with
    a trailing comma, the first ``leading_zero_rows`` rows with zero acc/gyr.

    ``drop``: (first index, count) runs of samples left out (gaps); ``duplicate``: indices written twice;
    ``columns``: "full" (quat, acc, gyr, mag), "quat" (quaternions only) or "raw" (acc, gyr, no quat).
    """
    m = motion(n, rate_hz, seed)
    step_us = int(round(1e6 / rate_hz))
    stf = (stf0 + step_us * np.arange(n, dtype=np.int64)) % 2**32
    counter = np.arange(n)
    drop = drop or []
    duplicate = duplicate or []
    idx = _keep_index(n, drop)
    gyr_deg = np.rad2deg(m.gyr)
    acc = m.acc.copy()
    acc[:leading_zero_rows] = 0.0
    gyr_deg[:leading_zero_rows] = 0.0

    names = ["PacketCounter", "SampleTimeFine"]
    if columns in ("full", "quat"):
        names += ["Quat_W", "Quat_X", "Quat_Y", "Quat_Z"]
    if columns in ("full", "raw"):
        names += ["Acc_X", "Acc_Y", "Acc_Z", "Gyr_X", "Gyr_Y", "Gyr_Z", "Mag_X", "Mag_Y", "Mag_Z"]
    names += ["Status"]
    lines = []
    if preamble:
        lines += [
            "sep=,",
            "DeviceTag:,3",
            "FirmwareVersion:,2.0.3",
            "SyncStatus:,Synced",
            f"OutputRate:,{rate_hz:g}Hz",
            "FilterProfile:,General",
            "StartTime: ,2023-10-31_13:31:50_114 CET",
            "\u00a9 Movella Technologies B. V. 2005-2023",
            "",
        ]
    lines.append(",".join(names) + ",")
    for i in idx:
        vals: list[str] = [str(counter[i]), str(stf[i])]
        if columns in ("full", "quat"):
            vals += [repr(float(v)) for v in m.quat[i]]
        if columns in ("full", "raw"):
            vals += [repr(float(v)) for v in (*acc[i], *gyr_deg[i], *m.mag[i])]
        vals.append("0")
        row = ", ".join(vals) + ", "
        lines.append(row)
        if i in duplicate:
            lines.append(row)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    kept = idx[idx >= leading_zero_rows] if columns != "quat" else idx
    t_dev = (stf0 + step_us * kept) / 1e6
    return Truth(
        index=kept,
        t_device=t_dev,
        quat=m.quat[kept] if columns != "raw" else None,
        acc=acc[kept] if columns != "quat" else None,
        gyr=np.deg2rad(gyr_deg[kept]) if columns != "quat" else None,
        mag=m.mag[kept] if columns != "quat" else None,
        rate_hz=rate_hz,
        missing=[(start - 1, count) for start, count in drop],
        duplicates=len(duplicate),
        leading_zero_rows=leading_zero_rows if columns != "quat" else 0,
    )


def write_xsens_mt(
    path: Path,
    n: int = 500,
    *,
    rate_hz: float = 100.0,
    counter0: int = 65_000,
    stf0: int = 4_000_000_000,
    sample_time: str = "ticks",
    sep: str = "\t",
    drop: list[tuple[int, int]] | None = None,
    duplicate: list[int] | None = None,
    decimal_comma: bool = False,
    stf_modulus: int = 2**32,
    seed: int = 1,
) -> Truth:
    """An MT Manager export: ``//`` comments with the update rate, PacketCounter u16 (wraps at 65536),
    ``SampleTimeFine`` in 10 kHz ticks (``sample_time="ticks"``), left empty (``"empty"``) or absent
    (``"absent"``); gyro in rad/s; Quat_q0..q3 last.
    """
    m = motion(n, rate_hz, seed)
    step = int(round(1e4 / rate_hz))
    stf = (stf0 + step * np.arange(n, dtype=np.int64)) % stf_modulus
    counter = (counter0 + np.arange(n)) % 2**16
    drop = drop or []
    duplicate = duplicate or []
    idx = _keep_index(n, drop)

    lines = [
        "// Start Time: Unknown",
        f"// Update Rate: {rate_hz:.1f}Hz",
        "// Filter Profile: human (46.1)",
        "// Option Flags: AHS Disabled, ICC Disabled",
        "// Firmware Version: 4.3.2",
        "// DeviceId: 00B42D4F",
    ]
    names = ["PacketCounter"]
    if sample_time != "absent":
        names.append("SampleTimeFine")
    names += ["Acc_X", "Acc_Y", "Acc_Z", "Gyr_X", "Gyr_Y", "Gyr_Z", "Mag_X", "Mag_Y", "Mag_Z"]
    names += ["Quat_q0", "Quat_q1", "Quat_q2", "Quat_q3", "Roll", "Pitch", "Yaw"]
    lines.append(sep.join(names))
    for i in idx:
        vals = [str(counter[i])]
        if sample_time == "ticks":
            vals.append(str(stf[i]))
        elif sample_time == "empty":
            vals.append("")
        vals += [f"{v:.6f}" for v in (*m.acc[i], *m.gyr[i], *m.mag[i], *m.quat[i])]
        vals += ["1.0", "2.0", "3.0"]  # Euler columns: ignored when quaternions are present
        row = sep.join(vals)
        if decimal_comma:
            row = row.replace(".", ",")
        lines.append(row)
        if i in duplicate:
            lines.append(row)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    if sample_time == "ticks":
        t_dev = (stf0 + step * idx) / 1e4
    else:
        t_dev = (counter0 + idx) / rate_hz

    def r6(a: np.ndarray) -> np.ndarray:
        return np.round(a[idx], 6)

    return Truth(
        index=idx,
        t_device=t_dev,
        quat=r6(m.quat),
        acc=r6(m.acc),
        gyr=r6(m.gyr),
        mag=r6(m.mag),
        rate_hz=rate_hz,
        missing=[(start - 1, count) for start, count in drop],
        duplicates=len(duplicate),
    )
