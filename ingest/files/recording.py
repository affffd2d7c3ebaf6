"""Public entry points: read one sensor file, read a whole recording, write a recording folder.

Reading a recording from several vendor files puts every stream on one timeline: when the device clocks of all
files are shared (Movella DOT sensors synchronised by the app, Xsens Awinda/MT sensors of one export; first
samples within 10 s on the device clocks) the streams keep their relative clock offsets; otherwise each stream
starts at t = 0 and ``Recording.meta["alignment"]`` says so. Gaps of all streams are gathered in
``Recording.gaps`` on that timeline.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

from hipback.ingest.errors import RecordingFileError
from hipback.ingest.files import hipback_format, movella_dot, xsens_mt
from hipback.ingest.files.assemble import MAX_SPAN_S, RATE_LIMITS_HZ, SPARSE_FACTOR, SPARSE_SPAN_S
from hipback.ingest.files.atomic import atomic_write_text, fsync_dir, private_mkdir, write_file
from hipback.ingest.files.detect import VENDOR_DIALECTS, sniff
from hipback.ingest.files.table import read_text
from hipback.processing.types import Gap, Recording, SensorStream

SESSION_FILE = "session.json"
#: device clocks whose first samples lie within this many seconds are taken as one shared clock
SHARED_CLOCK_WINDOW_S = 10.0


class _Read(NamedTuple):
    stream: SensorStream
    gaps: list[Gap]
    timeline_start_utc: float | None  # hipback files: UTC of t = 0


def read_sensor_file(
    path: Path | str, placement: str | None = None, *, dialect: str | None = None
) -> SensorStream:
    """Read one sensor file of any supported dialect (detected unless ``dialect`` is given).

    ``placement`` names the stream (default: the placement in a hipback file, else the file name stem). The
    stream's ``meta`` holds ``"import"`` (an :class:`ImportReport`), ``"gaps"`` (list of :class:`Gap` on the
    stream's timeline), ``"mag_units"`` and, when known, ``"sensor_id"``. Vendor files start at t = 0; hipback
    files keep their recording timeline. Raises :class:`RecordingFileError` for unreadable files.
    """
    return _read_one(Path(path), placement, dialect).stream


def _read_one(
    path: Path, placement: str | None, dialect: str | None = None, given: str | None = None
) -> _Read:
    tf = read_text(path)
    sniffed = sniff(tf, dialect, given=given)
    start: float | None = None
    if sniffed.dialect == "hipback":
        stream, gaps, start = hipback_format.read(tf, sniffed, placement)
    elif sniffed.dialect == "movella_dot":
        stream, gaps = movella_dot.read(tf, sniffed, placement or path.stem)
    else:
        stream, gaps = xsens_mt.read(tf, sniffed, placement or path.stem)
    stream.meta["gaps"] = gaps
    return _Read(stream, gaps, start)


def read_recording(inputs: dict[str, Path | str] | Path | str, *, dialect: str | None = None) -> Recording:
    """Read a recording: a mapping placement -> file (any dialects), a folder written by
    :func:`write_recording`, or a single file.

    ``dialect`` (``"movella_dot"`` or ``"xsens_mt"``) names the dialect of the vendor exports among the
    files: it decides a file whose content cannot tell the two apart, a file whose content marks it as the
    other one is refused (:class:`RecordingFileError`), and files in hipback's format are read as such.
    (``read_sensor_file``'s ``dialect`` instead forces the reader of one file.) :class:`ValueError` for
    another name.
    """
    if dialect is not None and dialect not in VENDOR_DIALECTS:
        raise ValueError(f"unknown vendor dialect {dialect!r}; expected one of {', '.join(VENDOR_DIALECTS)}")
    if isinstance(inputs, dict):
        parts = {pl: _read_one(Path(p), pl, given=dialect) for pl, p in inputs.items()}
        return _assemble(parts, session=None)
    path = Path(inputs)
    if path.is_dir():
        return _read_folder(path)
    part = _read_one(path, None, given=dialect)
    return _assemble({part.stream.placement: part}, session=None)


def recording_files(folder: Path | str) -> dict[str, Path]:
    """The sensor files of a recording folder written by :func:`write_recording`, placement -> file: the
    streams its ``session.json`` lists, or without one every ``*.csv`` file that starts with ``#
    hipback-recording:``, placed by its ``placement`` header line (else its file name). Reads no samples.
    Empty when the folder holds neither (e.g. a folder of vendor exports). :class:`RecordingFileError` names
    what is wrong: an unreadable ``session.json``, a listed file missing, two files of one placement."""
    return _folder_files(Path(folder))[0]


def _folder_files(folder: Path) -> tuple[dict[str, Path], Any]:
    """:func:`recording_files` and the folder's ``session.json`` as read (None without one)."""
    session_path = folder / SESSION_FILE
    if session_path.exists():
        session = _session_file(session_path)
        streams = session.get("streams") if isinstance(session, dict) else None
        if not isinstance(streams, dict) or not streams:
            raise RecordingFileError(session_path, "the file lists no streams.")
        files = {str(pl): folder / str(name) for pl, name in streams.items()}
        for pl, f in files.items():
            if f.name != str(streams[pl]):
                raise RecordingFileError(
                    session_path, f"the file name listed for {pl} must not contain a folder."
                )
            if not f.is_file():
                raise RecordingFileError(session_path, f"the file {f.name} listed for {pl} is missing.")
        return files, session
    files: dict[str, Path] = {}
    for f in sorted(folder.glob("*.csv")):
        placement = _header_placement(f)
        if placement is None:
            continue
        if placement in files:
            raise RecordingFileError(f, f"another file in this folder already holds placement {placement}.")
        files[placement] = f
    return files, None


def _session_file(session_path: Path) -> Any:
    try:
        return json.loads(session_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RecordingFileError(session_path, "the file is not valid JSON.", exc.lineno) from None
    except (OSError, UnicodeDecodeError):
        raise RecordingFileError(session_path, "the file cannot be read as text.") from None


def _header_placement(f: Path) -> str | None:
    """The placement a hipback recording file names in its header lines (its file name when it names none);
    None when the file is not one (its first line is not the format's)."""
    with open(f, encoding="utf-8", errors="replace") as fh:
        if not fh.readline().startswith(hipback_format.HIPBACK_MAGIC):
            return None
        for line in fh:
            if not line.startswith("#"):
                break
            key, sep, value = line[1:].strip().partition(":")
            if sep and key.strip() == "placement" and value.strip():
                return hipback_format.unescape(value.strip())
    return f.stem


def _read_folder(folder: Path) -> Recording:
    files, session = _folder_files(folder)
    if not files:
        raise RecordingFileError(folder, "the folder holds no hipback recording files.")
    session_path = folder / SESSION_FILE
    parts = {pl: _read_one(f, pl) for pl, f in files.items()}
    return _assemble(parts, session=session, session_path=session_path)


def _assemble(
    parts: dict[str, _Read], session: dict[str, Any] | None, session_path: Path | None = None
) -> Recording:
    offsets, alignment = _offsets(parts)
    streams: dict[str, SensorStream] = {}
    gaps: list[Gap] = []
    start_utc: float | None = None
    for pl, part in parts.items():
        stream, off = part.stream, offsets[pl]
        stream.placement = pl
        if off:
            stream.t = stream.t + off
        moved = [
            dataclasses.replace(g, placement=pl, t_start=g.t_start + off, t_end=g.t_end + off)
            for g in part.gaps
        ]
        stream.meta["gaps"] = moved
        gaps.extend(moved)
        streams[pl] = stream
        report = stream.meta["import"]
        if start_utc is None:
            if part.timeline_start_utc is not None:
                start_utc = part.timeline_start_utc
            elif report.start_utc is not None:
                start_utc = report.start_utc - off
    meta: dict[str, Any] = {"alignment": alignment}
    if session is not None:
        where = session_path or SESSION_FILE
        raw_meta = session.get("meta") or {}
        if not isinstance(raw_meta, dict):
            raise RecordingFileError(where, "its meta must be a JSON object.")
        meta = dict(raw_meta)
        if session.get("start_utc"):
            try:
                start_utc = hipback_format.parse_utc(str(session["start_utc"]))
            except (ValueError, OverflowError):
                pass
        raw_gaps = session.get("gaps") or []
        if not isinstance(raw_gaps, list):
            raise RecordingFileError(where, "its gaps must be a JSON list.")
        for g in raw_gaps:
            if isinstance(g, dict) and g.get("placement") not in streams:
                try:
                    gap = Gap(str(g["placement"]), float(g["t_start"]), float(g["t_end"]), int(g["missing"]),
                              str(g.get("reason", "gap")))
                except (KeyError, TypeError, ValueError, OverflowError):
                    raise RecordingFileError(
                        where, "a gap entry lacks placement, t_start, t_end or missing."
                    ) from None
                most = (gap.t_end - gap.t_start) * RATE_LIMITS_HZ[1] + 2  # samples the gap's time can hold
                inside = -MAX_SPAN_S <= gap.t_start <= gap.t_end <= MAX_SPAN_S
                if not inside or not 0 <= gap.missing <= most:
                    raise RecordingFileError(
                        where, "a gap entry lies outside the recording or counts more missing samples than "
                        "its time can hold.")
                gaps.append(gap)
    gaps.sort(key=lambda g: (g.t_start, g.placement))
    if streams:
        first = min(float(s.t[0]) for s in streams.values())
        last = max(float(s.t[-1]) for s in streams.values())
        covered = max(len(s.t) / s.rate_hz for s in streams.values() if s.rate_hz > 0)
        if last - first > max(SPARSE_SPAN_S, SPARSE_FACTOR * covered):
            where = session_path or next(iter(parts.values())).stream.meta["import"].source_file
            raise RecordingFileError(
                where, f"the recording's streams together span {(last - first) / 3600:.3g} h but hold at "
                f"most {covered:.4g} s of samples each (are these files from different sessions?)."
            )
        if last - first > MAX_SPAN_S:
            where = session_path or next(iter(parts.values())).stream.meta["import"].source_file
            raise RecordingFileError(
                where, f"the recording's streams together span {(last - first) / 3600:.3g} h; a recording "
                f"spans at most {MAX_SPAN_S / 3600:g} h (are these files from different days?)."
            )
    return Recording(streams=streams, start_utc=start_utc, gaps=gaps, meta=meta)


def _offsets(parts: dict[str, _Read]) -> tuple[dict[str, float], str]:
    """Time shift per stream to put all streams on one timeline, and how it was chosen."""
    reports = {pl: p.stream.meta["import"] for pl, p in parts.items()}
    zero = {pl: 0.0 for pl in parts}
    if all(r.dialect == "hipback" for r in reports.values()):
        return zero, "recording timeline (hipback files)"
    if len(parts) == 1:
        return zero, "single stream"
    kinds = {(r.dialect, r.time_source, r.clock_period_s, r.clock_tick_s) for r in reports.values()}
    if len(kinds) == 1 and all(r.device_t0_s is not None for r in reports.values()):
        period = next(iter(kinds))[2]
        names = list(parts)
        ref = reports[names[0]].device_t0_s
        rel = {}
        for pl in names:
            d = reports[pl].device_t0_s - ref
            if period:
                d = (d + period / 2) % period - period / 2
            tick = reports[pl].clock_tick_s
            rel[pl] = round(d / tick) * tick if tick else d  # whole clock ticks: no float noise
        lo = min(rel.values())
        if max(rel.values()) - lo <= SHARED_CLOCK_WINDOW_S:
            return {pl: rel[pl] - lo for pl in names}, "shared device clock"
    return zero, "first samples aligned (device clocks not shared)"


def write_recording(recording: Recording, folder: Path | str) -> list[Path]:
    """Write ``recording`` as a hipback recording folder: ``<placement>.csv`` per stream, ``session.json``.

    Atomic: a new folder is written as a hidden temporary folder and renamed into place; in an existing folder
    each file is replaced by temp file + rename, ``session.json`` last. Returns the written paths.
    """
    folder = Path(folder)
    if not recording.streams:
        raise ValueError("a recording without streams cannot be written")
    texts: dict[str, str] = {}
    for pl, stream in recording.streams.items():
        if stream.placement != pl:
            stream = dataclasses.replace(stream, placement=pl)
        gaps = [g for g in recording.gaps if g.placement == pl]
        texts[f"{pl}.csv"] = hipback_format.format_stream(stream, gaps, recording.start_utc, recording.meta)
    texts[SESSION_FILE] = _session_json(recording)

    private_mkdir(folder.parent)
    if not folder.exists():
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
        try:
            for name, text in texts.items():
                write_file(tmp / name, text)
            fsync_dir(tmp)
            tmp.rename(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(folder.parent)
    else:
        for name, text in texts.items():
            atomic_write_text(folder / name, text)
    return [folder / name for name in texts]


def _session_json(recording: Recording) -> str:
    doc = {
        "hipback_recording": hipback_format.FORMAT_VERSION,
        "start_utc": hipback_format.format_utc(recording.start_utc)
        if recording.start_utc is not None
        else None,
        "streams": {pl: f"{pl}.csv" for pl in recording.streams},
        "gaps": [dataclasses.asdict(g) for g in recording.gaps],
        "meta": recording.meta,
    }
    return json.dumps(doc, indent=2, default=hipback_format._json_default, allow_nan=True) + "\n"
