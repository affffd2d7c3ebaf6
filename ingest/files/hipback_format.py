"""hipback's own recording format (version 1): one CSV file per sensor with a ``#`` metadata header.

Full description: ``docs/recording-format.md``. In short::

    # hipback-recording: 1
    # placement: pelvis
    # kind: quat
    # device: movella_dot
    # sensor_id: D422CD003437
    # rate_hz: 120.0
    # start_utc: 2023-10-31T12:48:07.000000Z
    # units: time_s=s; acc=m/s^2; gyr=rad/s; mag=a.u.
    # patient: P-0042
    # notes: first session after surgery
    # gap: 1.5 1.75 29 time step of 0.25 s at 120 Hz
    # meta: {"json": "object on one line"}
    time_s,seq,qw,qx,qy,qz,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z,mag_x,mag_y,mag_z
    0.0,0,0.99,...

- ``time_s`` is on the recording timeline (s, 0 = ``start_utc``); SI units, gyroscope in rad/s; quaternions
  scalar first, sensor-to-world.
- The writer always writes all 15 columns; a quantity the sensor does not have is an all-empty column, a
  missing value (NaN) an empty cell. The reader accepts any subset of the columns in any order (``time_s``
  required) and ignores unknown columns.
- Floats are written with ``repr`` (the shortest text that reads back to the same float64): lossless.
- Header values are single-line; ``\\`` and line breaks in free text are escaped as ``\\\\``, ``\\n``,
  ``\\r``.
- Gaps (``# gap: t_start t_end missing reason``) are the stream's known gaps; on reading, holes in time or
  ``seq`` that no declared gap covers are found and added, so a hand-made file cannot hide a gap.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from hipback.ingest.errors import RecordingFileError
from hipback.ingest.files.assemble import MAX_SPAN_S, Decoded, build_stream
from hipback.ingest.files.columns import find_groups, index_columns, stack
from hipback.ingest.files.detect import HIPBACK_MAGIC, Sniffed
from hipback.ingest.files.report import ImportReport
from hipback.ingest.files.table import TextFile, parse_rows
from hipback.processing.types import Gap, SensorStream

FORMAT_VERSION = 1
COLUMNS: tuple[str, ...] = (
    "time_s", "seq",
    "qw", "qx", "qy", "qz",
    "acc_x", "acc_y", "acc_z",
    "gyr_x", "gyr_y", "gyr_z",
    "mag_x", "mag_y", "mag_z",
)  # fmt: skip
GROUPS: dict[str, tuple[str, ...]] = {
    "quat": ("qw", "qx", "qy", "qz"),
    "acc": ("acc_x", "acc_y", "acc_z"),
    "gyr": ("gyr_x", "gyr_y", "gyr_z"),
    "mag": ("mag_x", "mag_y", "mag_z"),
}
#: stream meta keys that have their own header line (everything else goes to the ``meta`` JSON line)
HEADER_META_KEYS = ("sensor_id", "patient", "notes", "mag_units")
#: stream meta keys the writer handles itself: the import report and the gaps
_SKIPPED_META = ("import", "gaps")
#: the units the format takes, by the names the ``units`` header line gives them; a file whose ``units``
#: line states others is refused (its values would be misread)
UNITS: dict[str, tuple[str, ...]] = {
    "time_s": ("s",), "acc": ("m/s^2",), "gyr": ("rad/s",), "mag": ("uT", "a.u."),
}  # fmt: skip
_PLACEMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # whole string (fullmatch)


# ----------------------------------------------------------------------------------------------- writing


def check_placement(placement: str) -> None:
    """Placements become file names: letters, digits, ``_ . -`` only."""
    if not _PLACEMENT.fullmatch(placement):
        raise ValueError(
            f"placement {placement!r} cannot be used as a file name (letters, digits, _ . - only)"
        )


def format_stream(
    stream: SensorStream,
    gaps: list[Gap],
    start_utc: float | None,
    recording_meta: dict[str, Any] | None = None,
) -> str:
    """The whole file text for one stream (header, column names, rows, final newline)."""
    check_placement(stream.placement)
    meta = dict(stream.meta)
    header: list[tuple[str, str]] = [
        ("hipback-recording", str(FORMAT_VERSION)),
        ("placement", stream.placement),
        ("kind", stream.kind),
        ("device", stream.device),
    ]
    if "sensor_id" in meta:
        header.append(("sensor_id", str(meta["sensor_id"])))
    header.append(("rate_hz", repr(float(stream.rate_hz))))
    header.append(("start_utc", format_utc(start_utc) if start_utc is not None else "unknown"))
    mag_units = str(meta.get("mag_units", "uT"))
    header.append(("units", f"time_s=s; acc=m/s^2; gyr=rad/s; mag={mag_units}"))
    patient = meta.get("patient", (recording_meta or {}).get("patient"))
    if patient is not None:
        header.append(("patient", str(patient)))
    if "notes" in meta:
        header.append(("notes", str(meta["notes"])))
    for g in gaps:
        header.append(("gap", f"{float(g.t_start)!r} {float(g.t_end)!r} {int(g.missing)} {g.reason}"))
    extra = {k: v for k, v in meta.items() if k not in HEADER_META_KEYS and k not in _SKIPPED_META}
    report = meta.get("import")
    if isinstance(report, ImportReport) and report.dialect != "hipback" and "source_import" not in extra:
        source = report.to_dict()
        source["source_file"] = Path(source["source_file"]).name  # folders may hold personal names
        extra["source_import"] = source
    if extra:
        header.append(("meta", json.dumps(extra, default=_json_default, sort_keys=True, allow_nan=True)))

    n = len(stream)
    cols: list[list[str]] = [_floats(stream.t, "time_s")]
    cols.append([""] * n if stream.seq is None else [str(v) for v in np.asarray(stream.seq).tolist()])
    for name, width in (("quat", 4), ("acc", 3), ("gyr", 3), ("mag", 3)):
        arr = getattr(stream, name)
        for k in range(width):
            cols.append([""] * n if arr is None else _floats(arr[:, k], name))
    lines = [f"# {key}: {escape(value)}" for key, value in header]
    lines.append(",".join(COLUMNS))
    lines.extend(",".join(row) for row in zip(*cols, strict=True))
    return "\n".join(lines) + "\n"


def _floats(values: np.ndarray, name: str) -> list[str]:
    arr = np.asarray(values, dtype=np.float64)
    if np.isinf(arr).any():
        raise ValueError(f"{name} holds infinite values, which a recording file cannot store")
    out = list(map(repr, arr.tolist()))
    if np.isnan(arr).any():
        out = ["" if s == "nan" else s for s in out]
    return out


def format_utc(unix_s: float) -> str:
    """ISO 8601 UTC with microseconds, e.g. ``2023-10-31T12:48:07.123456Z``."""
    return datetime.fromtimestamp(unix_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> float:
    """ISO 8601 -> Unix seconds; a time without zone is refused (it would be ambiguous)."""
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError("no time zone")
    return dt.timestamp()


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), value)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path | datetime):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return repr(obj)


# ----------------------------------------------------------------------------------------------- reading


@dataclasses.dataclass
class HeaderInfo:
    version: int
    values: dict[str, str]
    gaps: list[Gap]
    meta: dict[str, Any]
    start_utc: float | None
    rate_hz: float | None
    gap_lines: list[int] = dataclasses.field(default_factory=list)  # file line of each gap
    units: dict[str, str] = dataclasses.field(default_factory=dict)  # the units line, checked (check_units)


def parse_header(path: Path, lines: list[str], first_line: int) -> HeaderInfo:
    """Parse the ``# key: value`` lines; ``first_line`` is the file line of ``lines[0]``."""
    values: dict[str, str] = {}
    raw_gaps: list[tuple[int, str]] = []
    version = 0
    meta: dict[str, Any] = {}
    for offset, line in enumerate(lines):
        lineno = first_line + offset
        text = line[1:].strip() if line.startswith("#") else line.strip()
        if not text:
            continue
        key, sep, value = text.partition(":")
        key, value = key.strip(), value.strip()
        if not sep:
            continue  # a free comment
        if offset == 0 or key == "hipback-recording":
            if not line.startswith(HIPBACK_MAGIC):
                raise RecordingFileError(
                    path, "the first line is not '# hipback-recording: <version>'.", lineno
                )
            try:
                version = int(value)
            except ValueError:
                raise RecordingFileError(
                    path, f"the format version '{value}' is not a number.", lineno
                ) from None
            if version > FORMAT_VERSION:
                raise RecordingFileError(
                    path,
                    f"the file uses format version {version}; this hipback reads up to {FORMAT_VERSION}.",
                    lineno,
                )
        elif key == "gap":
            raw_gaps.append((lineno, value))
        elif key == "meta":
            try:
                meta = json.loads(value)
            except json.JSONDecodeError:
                raise RecordingFileError(path, "the meta line is not valid JSON.", lineno) from None
            if not isinstance(meta, dict):
                raise RecordingFileError(path, "the meta line must hold a JSON object.", lineno)
        else:
            values[key] = unescape(value)
            values[f"_line_{key}"] = str(lineno)

    def line_of(key: str) -> int:
        return int(values.get(f"_line_{key}", first_line))

    rate: float | None = None
    if "rate_hz" in values:
        try:
            rate = float(values["rate_hz"])
        except ValueError:
            rate = math.nan
        if not (rate > 0 and math.isfinite(rate)):
            raise RecordingFileError(
                path, f"rate_hz '{values['rate_hz']}' is not a positive number.", line_of("rate_hz")
            )
    start_utc: float | None = None
    if values.get("start_utc", "unknown") not in ("", "unknown"):
        try:
            start_utc = parse_utc(values["start_utc"])
        except ValueError:
            raise RecordingFileError(
                path,
                f"start_utc '{values['start_utc']}' is not an ISO 8601 time with a time zone.",
                line_of("start_utc"),
            ) from None
    units = check_units(path, values["units"], line_of("units")) if "units" in values else {}
    placement = values.get("placement", "")
    gaps: list[Gap] = []
    gap_lines: list[int] = []
    for lineno, value in raw_gaps:
        parts = value.split(None, 3)
        try:
            t_start, t_end, missing = float(parts[0]), float(parts[1]), int(parts[2])
        except (ValueError, IndexError):
            raise RecordingFileError(
                path, "a gap line must read 'gap: <t_start> <t_end> <missing> <reason>'.", lineno
            ) from None
        if not (-MAX_SPAN_S <= t_start <= t_end <= MAX_SPAN_S) or missing < 0:
            raise RecordingFileError(
                path, "this gap line needs t_start <= t_end within the recording and missing >= 0.", lineno
            )
        reason = unescape(parts[3]) if len(parts) > 3 else "gap"
        gaps.append(Gap(placement, t_start, t_end, missing, reason))
        gap_lines.append(lineno)
    clean = {k: v for k, v in values.items() if not k.startswith("_line_")}
    return HeaderInfo(version, clean, gaps, meta, start_utc, rate, gap_lines, units)


def check_units(path: Path, text: str, lineno: int) -> dict[str, str]:
    """The ``units`` header line (``time_s=s; acc=m/s^2; gyr=rad/s; mag=uT``) as {quantity: unit}; a
    :class:`RecordingFileError` naming the entry when it states units other than the format's (:data:`UNITS`),
    names another quantity or is not ``quantity=unit``: the values are read in the format's units only."""
    takes = "time_s in s, acc in m/s^2, gyr in rad/s and mag in uT or a.u."
    out: dict[str, str] = {}
    for entry in (e.strip() for e in text.split(";")):
        if not entry:
            continue
        name, sep, unit = (x.strip() for x in entry.partition("="))
        if not sep or name not in UNITS:
            raise RecordingFileError(
                path, f"the units line holds {entry!r}, but it can only state {takes} (entries such as "
                "acc=m/s^2, separated by ';').", lineno)
        if unit not in UNITS[name]:
            raise RecordingFileError(
                path, f"the units line states {name} in {unit}, but this format takes {takes}; convert the "
                "values to these units.", lineno)
        out[name] = unit
    return out


def read(
    tf: TextFile, sniffed: Sniffed, placement: str | None
) -> tuple[SensorStream, list[Gap], float | None]:
    """Read a hipback recording file; returns (stream, gaps, start_utc of the recording timeline)."""
    path = tf.path
    first_line = sniffed.header_index - len(sniffed.preamble) + 1
    info = parse_header(path, sniffed.preamble, first_line)
    header_line = sniffed.header_index + 1
    report = ImportReport(dialect="hipback", source_file=str(path), time_source="time_s")
    report.header = dict(info.values)
    report.rate_hz_stated = info.rate_hz

    index = index_columns(path, sniffed.names, header_line)
    if "time_s" not in index:
        raise RecordingFileError(path, "the column time_s is missing.", header_line)
    groups = find_groups(path, index, GROUPS, header_line)
    report.ignored_columns = [c for c in index if c not in COLUMNS]
    wanted = {c: index[c] for c in COLUMNS if c in index}
    table = parse_rows(
        tf, sniffed.header_index + 1, sniffed.sep, len(sniffed.names), wanted, strict_last_line=True
    )
    report.rows_read = table.rows_read
    report.note_truncated_last_line(table.truncated)

    seq = table.columns.get("seq")
    if seq is not None and np.isnan(seq).all():
        seq = None
    dec = Decoded(line_no=table.line_no, t=table.columns["time_s"], counter=seq, counter_modulus=2**62)
    bad_t = np.flatnonzero(np.isnan(dec.t))  # type: ignore[arg-type]
    if bad_t.size:
        raise RecordingFileError(path, "time_s is empty in this row.", int(table.line_no[bad_t[0]]))
    for name in GROUPS:
        if name in groups:
            setattr(dec, name, stack(table, groups[name]))
    kind = info.values.get("kind")
    if kind not in (None, "quat", "raw"):
        raise RecordingFileError(path, f"kind '{kind}' is neither quat nor raw.", first_line)
    if kind == "raw" and (dec.acc is None or dec.gyr is None):
        raise RecordingFileError(
            path, "a raw sensor file needs acc and gyr columns with values.", header_line
        )
    if kind == "quat" and dec.quat is None:
        raise RecordingFileError(
            path, "a quat sensor file needs qw, qx, qy, qz columns with values.", header_line
        )

    name = placement or info.values.get("placement") or path.stem
    device = info.values.get("device", "unknown")
    stream, found = build_stream(
        path, dec, report, placement=name, device=device, stated_rate=info.rate_hz,
        drop_leading_zeros=False, exact=True, kind=kind,
    )  # fmt: skip
    for g, lineno in zip(info.gaps, info.gap_lines, strict=True):
        if g.missing > 1.1 * (g.t_end - g.t_start) * stream.rate_hz + 2:  # more samples than the time holds
            raise RecordingFileError(
                path, f"this gap line says {g.missing} samples are missing in {g.t_end - g.t_start:.6g} s, "
                f"more than {stream.rate_hz:g} Hz allows.", lineno)
    declared = [dataclasses.replace(g, placement=name) for g in info.gaps]
    extra = [g for g in found if not any(d.t_start <= g.t_end and d.t_end >= g.t_start for d in declared)]
    gaps = sorted(declared + extra, key=lambda g: (g.t_start, g.t_end))
    report.gaps = len(gaps)
    report.missing_samples = int(sum(g.missing for g in gaps))

    meta: dict[str, Any] = dict(info.meta)
    for key in HEADER_META_KEYS:
        if key in info.values and key != "mag_units":
            meta[key] = info.values[key]
    if "mag" in info.units:
        meta["mag_units"] = info.units["mag"]
    stream.meta.update(meta)
    stream.meta["import"] = report
    if info.start_utc is not None:
        report.start_utc = info.start_utc + float(stream.t[0])
    return stream, gaps, info.start_utc
