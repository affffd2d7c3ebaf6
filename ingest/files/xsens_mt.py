"""Importer for Xsens MT Manager exports (MTi / MTw "Export to ASCII" text files).

Layout: ``//`` comment lines (``// Start Time: ...``, ``// Update Rate: 100.0Hz``, ``// Filter Profile: ...``,
``// DeviceId: ...``, ``// Firmware Version: ...``), then a header row and one row per sample. The separator
is a comma, a semicolon or a tab (detected from the header row); with ``;`` or tab a decimal comma is
accepted. Cells may be empty or ``NaN``.

==================  ==============================  =============================================
column(s)           file unit                       in the stream
==================  ==============================  =============================================
SampleTimeFine      10 kHz ticks (u32, or wrapping  ``t`` s (unwrapped; starts at 0). The tick rate is
                    after one day on MTi-10/100)    checked against the update rate (10 kHz or 1 MHz)
PacketCounter       u16, wraps at 65536             ``seq`` (unwrapped); gaps; the time axis
                                                    (counter / update rate) when SampleTimeFine is
                                                    missing or empty
Quat_q0..q3         sensor-to-world, q0 = w         ``quat`` (normalised)
Roll, Pitch, Yaw    deg (or Euler_X..Z)             ``quat`` via R = Rz(yaw) Ry(pitch) Rx(roll), only
                                                    without Quat_q*
Acc_X..Z            m/s^2                           ``acc``
Gyr_X..Z            rad/s                           ``gyr``
Mag_X..Z            a.u. (normalised to the local   ``mag`` a.u. (kept; ``meta["mag_units"]``)
                    field)
OriInc_q0..q3,      increments per sample           ``gyr`` / ``acc`` only when Gyr / Acc are absent
VelInc_X..Z
UTC_Year..UTC_Nano  UTC                             ``start_utc`` of the first sample (UTC_Valid != 0)
others              --                              ignored, listed in the import report
==================  ==============================  =============================================
"""

from __future__ import annotations

import calendar

import numpy as np

from hipback.ingest.files.assemble import Decoded, build_stream
from hipback.ingest.files.columns import (
    column,
    euler_deg_to_quat,
    find_groups,
    ignored_columns,
    increments_to_rates,
    index_columns,
    parse_rate_hz,
    stack,
)
from hipback.ingest.files.detect import Sniffed
from hipback.ingest.files.report import ImportReport
from hipback.ingest.files.table import Table, TextFile, parse_rows
from hipback.processing.types import Gap, SensorStream

GROUPS: dict[str, tuple[str, ...]] = {
    "quat": ("Quat_q0", "Quat_q1", "Quat_q2", "Quat_q3"),
    "rpy": ("Roll", "Pitch", "Yaw"),
    "euler": ("Euler_X", "Euler_Y", "Euler_Z"),
    "acc": ("Acc_X", "Acc_Y", "Acc_Z"),
    "gyr": ("Gyr_X", "Gyr_Y", "Gyr_Z"),
    "mag": ("Mag_X", "Mag_Y", "Mag_Z"),
    "dq": ("OriInc_q0", "OriInc_q1", "OriInc_q2", "OriInc_q3"),
    "dv": ("VelInc_X", "VelInc_Y", "VelInc_Z"),
}
TIME_COLUMNS = ("PacketCounter", "SampleTimeFine")
UTC_COLUMNS = (
    "UTC_Year",
    "UTC_Month",
    "UTC_Day",
    "UTC_Hour",
    "UTC_Minute",
    "UTC_Second",
    "UTC_Nano",
    "UTC_Valid",
)
ONE_DAY_TICKS = 864_000_000


def read(tf: TextFile, sniffed: Sniffed, placement: str) -> tuple[SensorStream, list[Gap]]:
    path = tf.path
    report = ImportReport(dialect="xsens_mt", source_file=str(path))
    header = _comments(sniffed.preamble)
    report.header = header
    rate_key = next((k for k in header if k.lower().replace(" ", "") == "updaterate"), None)
    stated = parse_rate_hz(header[rate_key]) if rate_key else None
    report.rate_hz_stated = stated
    meta: dict[str, object] = {"mag_units": "a.u."}
    device_id = next((header[k] for k in header if k.lower().replace(" ", "") == "deviceid"), None)
    if device_id:
        meta["sensor_id"] = device_id

    header_line = sniffed.header_index + 1
    index = index_columns(path, sniffed.names, header_line)
    groups = find_groups(path, index, GROUPS, header_line)
    used = {c for cols in groups.values() for c in cols} | set(TIME_COLUMNS) | set(UTC_COLUMNS)
    wanted = {c: index[c] for c in used if c in index}
    start = sniffed.header_index + 1
    first_row = next((tf.lines[i] for i in range(start, len(tf.lines)) if tf.lines[i].strip()), "")
    decimal_comma = sniffed.sep != "," and "," in first_row and "." not in first_row
    table = parse_rows(tf, start, sniffed.sep, len(sniffed.names), wanted, decimal_comma=decimal_comma)
    report.rows_read = table.rows_read
    report.note_truncated_last_line(table.truncated)

    clock = column(table, "SampleTimeFine")
    counter = column(table, "PacketCounter")
    dec = Decoded(line_no=table.line_no, counter=counter, counter_modulus=2**16)
    if clock is not None and not np.isnan(clock).any():
        dec.clock = clock
        dec.clock_modulus = ONE_DAY_TICKS if np.nanmax(clock) < ONE_DAY_TICKS else 2**32
        dec.ticks_per_s = _ticks_per_second(clock, stated, report)
        report.time_source = f"SampleTimeFine ({dec.ticks_per_s:g} ticks/s)"
    elif counter is not None and stated:
        if clock is not None:
            report.warnings.append("SampleTimeFine is empty in some rows; time built from PacketCounter")
        dec.time_from_counter = True
        report.time_source = "PacketCounter / Update Rate"
    else:
        dec.clock = clock  # None, or with holes: build_stream names the first row without a time stamp

    sources: dict[str, str] = {}  # quantity -> column group it came from
    if "quat" in groups:
        dec.quat = stack(table, groups["quat"])
        sources["quat"] = "quat"
    if dec.quat is None:
        for name in ("rpy", "euler"):
            if name in groups:
                angles = stack(table, groups[name])
                if angles is not None:
                    dec.quat = euler_deg_to_quat(angles[:, 0], angles[:, 1], angles[:, 2])
                    sources["quat"] = name
                    report.units["quat"] = f"from {'/'.join(groups[name])} (deg)"
                    break
    if "acc" in groups:
        dec.acc = stack(table, groups["acc"])
        sources["acc"], report.units["acc"] = "acc", "m/s^2"
    if "gyr" in groups:
        dec.gyr = stack(table, groups["gyr"])
        sources["gyr"], report.units["gyr"] = "gyr", "rad/s"
    if "mag" in groups:
        dec.mag = stack(table, groups["mag"])
        sources["mag"], report.units["mag"] = "mag", "a.u."
    if stated and ((dec.acc is None and "dv" in groups) or (dec.gyr is None and "dq" in groups)):
        gyr_inc, acc_inc = increments_to_rates(
            stack(table, groups["dq"]) if "dq" in groups else None,
            stack(table, groups["dv"]) if "dv" in groups else None,
            stated,
        )
        if dec.gyr is None and gyr_inc is not None:
            dec.gyr = gyr_inc
            sources["gyr"], report.units["gyr"] = "dq", "from OriInc (per sample)"
        if dec.acc is None and acc_inc is not None:
            dec.acc = acc_inc
            sources["acc"], report.units["acc"] = "dv", "from VelInc (m/s per sample)"
    report.ignored_columns = ignored_columns(index, groups, sources, dec, TIME_COLUMNS + UTC_COLUMNS)

    placement = placement or path.stem
    stream, gaps = build_stream(path, dec, report, placement=placement, device="xsens_mt", stated_rate=stated)
    report.start_utc = _utc_at_line(table, report.first_data_line)
    stream.meta.update(meta)
    stream.meta["import"] = report
    return stream, gaps


def _comments(lines: list[str]) -> dict[str, str]:
    """``// Key: value`` comment lines -> {Key: value}."""
    out: dict[str, str] = {}
    for line in lines:
        text = line.lstrip("/").strip()
        if ":" in text:
            key, _, value = text.partition(":")
            out[key.strip()] = value.strip()
    return out


def _ticks_per_second(clock: np.ndarray, stated: float | None, report: ImportReport) -> float:
    """10 kHz (MTi / MTw) unless the steps fit 1 MHz better at the stated update rate."""
    if not stated or len(clock) < 2:
        return 1e4
    step = np.diff(clock)
    step = step[step > 0]
    if not step.size:
        return 1e4
    per_s = float(np.median(step)) * stated
    best = min((1e4, 1e6), key=lambda c: abs(np.log(per_s / c)))
    if abs(per_s / best - 1.0) > 0.1:
        report.warnings.append(
            f"SampleTimeFine steps ({np.median(step):g}) fit neither 10 kHz nor 1 MHz ticks "
            f"at {stated:g} Hz; "
            "assuming 10 kHz"
        )
        return 1e4
    return best


def _utc_at_line(table: Table, line: int | None) -> float | None:
    if line is None or any(c not in table.columns for c in UTC_COLUMNS[:6]):
        return None
    rows = np.flatnonzero(table.line_no == line)
    if not rows.size:
        return None
    k = int(rows[0])
    vals = {c: table.columns[c][k] for c in UTC_COLUMNS if c in table.columns}
    if any(np.isnan(v) for v in vals.values()):
        return None
    valid = vals.get("UTC_Valid")
    if (valid is not None and int(valid) == 0) or vals["UTC_Year"] < 2000:
        return None
    try:
        whole = calendar.timegm(
            (
                int(vals["UTC_Year"]),
                int(vals["UTC_Month"]),
                int(vals["UTC_Day"]),
                int(vals["UTC_Hour"]),
                int(vals["UTC_Minute"]),
                int(vals["UTC_Second"]),
                0,
                0,
                0,
            )
        )
    except (ValueError, OverflowError):
        return None
    return whole + vals.get("UTC_Nano", 0.0) * 1e-9
