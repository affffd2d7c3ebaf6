"""Importer for Movella DOT CSV exports (Movella DOT app / SDK "export" files).

Layout: an optional preamble (``sep=,``, ``DeviceTag:,3``, ``OutputRate:,60Hz``, ``StartTime: ,...``, a
copyright line), then the header row, e.g.
``PacketCounter,SampleTimeFine,Quat_W,Quat_X,Quat_Y,Quat_Z,Acc_X,..,Gyr_X,..,Mag_X,..,Status,`` (note the
trailing comma), then one row per sample. Columns depend on the export settings; hipback uses what is present:

==================  =======================  ==========================================
column(s)           file unit                in the stream
==================  =======================  ==========================================
SampleTimeFine      u32 us, wraps at 2^32    ``t`` s (unwrapped; starts at 0)
PacketCounter       integer                  ``seq`` (unwrapped), gap detection
Quat_W..Z           sensor-to-world, w first ``quat`` (normalised)
Euler_X..Z          deg, roll/pitch/yaw      ``quat`` via R = Rz(yaw) Ry(pitch) Rx(roll) (only without Quat)
Acc_X..Z            m/s^2 (specific force)   ``acc``
Gyr_X..Z            deg/s                    ``gyr`` rad/s
Mag_X..Z            a.u.                     ``mag`` a.u. (kept as is; ``meta["mag_units"] = "a.u."``)
dq_W..Z, dv[1..3]   increments per sample    ``gyr`` / ``acc`` (only when Gyr / Acc are absent)
FreeAcc_X..Z,       --                       ignored (world-frame, gravity removed: not specific force)
Status, others
==================  =======================  ==========================================

The first rows of a DOT export carry zeros for acc and gyr before the first inertial sample: those leading
rows are dropped (see :mod:`hipback.ingest.files.assemble`). Without ``SampleTimeFine`` the time comes from
``PacketCounter`` and the ``OutputRate`` of the preamble.

The DOT app names files ``<tag>_<sensor id>_<YYYYMMDD>_<HHMMSS>.csv`` in the phone's local time (time zone not
recorded): the sensor id goes to ``meta["sensor_id"]`` and the local time to the report header
(``start_local``); ``start_utc`` stays unknown.
"""

from __future__ import annotations

import re

import numpy as np

from hipback.ingest.files.assemble import Decoded, build_stream, counter_modulus_for
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
from hipback.ingest.files.table import TextFile, parse_rows
from hipback.processing.types import Gap, SensorStream

GROUPS: dict[str, tuple[str, ...]] = {
    "quat": ("Quat_W", "Quat_X", "Quat_Y", "Quat_Z"),
    "euler": ("Euler_X", "Euler_Y", "Euler_Z"),
    "acc": ("Acc_X", "Acc_Y", "Acc_Z"),
    "gyr": ("Gyr_X", "Gyr_Y", "Gyr_Z"),
    "mag": ("Mag_X", "Mag_Y", "Mag_Z"),
    "dq": ("dq_W", "dq_X", "dq_Y", "dq_Z"),
    "dv": ("dv[1]", "dv[2]", "dv[3]"),
}
TIME_COLUMNS = ("PacketCounter", "SampleTimeFine")
_FILE_NAME = re.compile(r"^(?P<tag>\d+)_(?P<sensor>[0-9A-Fa-f]{12})_(?P<date>\d{8})_(?P<time>\d{6})")


def read(tf: TextFile, sniffed: Sniffed, placement: str) -> tuple[SensorStream, list[Gap]]:
    path = tf.path
    report = ImportReport(dialect="movella_dot", source_file=str(path))
    header = _preamble(sniffed.preamble)
    meta: dict[str, object] = {"mag_units": "a.u."}
    m = _FILE_NAME.match(path.stem)
    if m:
        header.setdefault("DeviceTag", m["tag"])
        meta["sensor_id"] = m["sensor"].upper()
        d, t = m["date"], m["time"]
        header["start_local"] = f"{d[:4]}-{d[4:6]}-{d[6:]}T{t[:2]}:{t[2:4]}:{t[4:]}"
    report.header = header
    stated = parse_rate_hz(header["OutputRate"]) if "OutputRate" in header else None
    report.rate_hz_stated = stated

    header_line = sniffed.header_index + 1
    index = index_columns(path, sniffed.names, header_line)
    groups = find_groups(path, index, GROUPS, header_line)
    used = {c for cols in groups.values() for c in cols} | set(TIME_COLUMNS)
    wanted = {c: index[c] for c in used if c in index}
    names = sniffed.names[:-1] if sniffed.names and sniffed.names[-1] == "" else sniffed.names
    table = parse_rows(
        tf, sniffed.header_index + 1, sniffed.sep, len(names), wanted, trailing_sep_optional=True
    )
    report.rows_read = table.rows_read
    report.note_truncated_last_line(table.truncated)

    clock = column(table, "SampleTimeFine")
    counter = column(table, "PacketCounter")
    dec = Decoded(line_no=table.line_no, counter=counter)
    if counter is not None:
        dec.counter_modulus = counter_modulus_for(counter)
    if clock is not None and not (np.isnan(clock).any() and counter is not None and stated):
        dec.clock, dec.clock_modulus, dec.ticks_per_s = clock, 2**32, 1e6
        report.time_source = "SampleTimeFine (us)"
    else:
        if clock is not None:
            report.warnings.append("SampleTimeFine is empty in some rows; time built from PacketCounter")
        dec.time_from_counter = True
        report.time_source = "PacketCounter / OutputRate"

    sources: dict[str, str] = {}  # quantity -> column group it came from
    if "quat" in groups:
        dec.quat = stack(table, groups["quat"])
        sources["quat"] = "quat"
    if dec.quat is None and "euler" in groups:
        euler = stack(table, groups["euler"])
        if euler is not None:
            dec.quat = euler_deg_to_quat(euler[:, 0], euler[:, 1], euler[:, 2])
            sources["quat"] = "euler"
            report.units["quat"] = "from Euler_X/Y/Z (deg)"
    if "acc" in groups:
        dec.acc = stack(table, groups["acc"])
        sources["acc"], report.units["acc"] = "acc", "m/s^2"
    if "gyr" in groups:
        gyr = stack(table, groups["gyr"])
        dec.gyr = None if gyr is None else np.deg2rad(gyr)
        sources["gyr"], report.units["gyr"] = "gyr", "deg/s"
    if "mag" in groups:
        dec.mag = stack(table, groups["mag"])
        sources["mag"], report.units["mag"] = "mag", "a.u."
    if (dec.acc is None and "dv" in groups) or (dec.gyr is None and "dq" in groups):
        rate = stated or _rate_from_clock(clock)
        if rate:
            gyr_inc, acc_inc = increments_to_rates(
                stack(table, groups["dq"]) if "dq" in groups else None,
                stack(table, groups["dv"]) if "dv" in groups else None,
                rate,
            )
            if dec.gyr is None and gyr_inc is not None:
                dec.gyr = gyr_inc
                sources["gyr"], report.units["gyr"] = "dq", "from dq (per sample)"
            if dec.acc is None and acc_inc is not None:
                dec.acc = acc_inc
                sources["acc"], report.units["acc"] = "dv", "from dv (m/s per sample)"
    report.ignored_columns = ignored_columns(index, groups, sources, dec, TIME_COLUMNS)

    placement = placement or path.stem
    stream, gaps = build_stream(
        path, dec, report, placement=placement, device="movella_dot", stated_rate=stated
    )
    stream.meta.update(meta)
    stream.meta["import"] = report
    return stream, gaps


def _preamble(lines: list[str]) -> dict[str, str]:
    """``Key:,value`` lines of the DOT preamble (``sep=`` and free text are skipped)."""
    out: dict[str, str] = {}
    for line in lines:
        if ":" not in line or line.startswith("sep="):
            continue
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip().lstrip(",").strip().rstrip(",").strip()
    return out


def _rate_from_clock(clock: np.ndarray | None) -> float | None:
    if clock is None or len(clock) < 2:
        return None
    step = np.diff(clock)
    step = step[(step > 0) & np.isfinite(step)]
    return float(1e6 / np.median(step)) if step.size else None
