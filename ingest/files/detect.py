"""Which dialect a recording file is written in: ``hipback``, ``movella_dot`` or ``xsens_mt``.

- ``hipback``: the first line is ``# hipback-recording: <version>``.
- ``xsens_mt`` (Xsens MT Manager export): ``//`` comment lines before the header row, or quaternion columns
  named ``Quat_q0..q3``, or MT-only columns (``OriInc_*``, ``VelInc_*``, ``Roll/Pitch/Yaw``, ``StatusWord``,
  ``UTC_*``), or a ``;``/tab separator.
- ``movella_dot`` (Movella DOT app / SDK export): quaternion columns ``Quat_W..Z``, ``dq_*`` or ``dv[*]``,
  a DOT preamble (``sep=,``, ``DeviceTag:,..``), ``Euler_*`` or ``FreeAcc_*`` (names MT exports may carry too,
  so they decide only after the MT-only names and the separator), or the DOT habit of a trailing comma and a
  ``Status`` column.

In that order: the names only one dialect uses decide first (``Quat_q0`` / ``Quat_W``, ``dq``/``dv``,
``OriInc``/``VelInc``/``Roll``), then the separator, then the names both may carry.

A file with only ``Acc``/``Gyr`` columns and none of these marks is refused rather than guessed, because the
two dialects store the gyroscope in different units (deg/s versus rad/s); ``hipback process --dialect`` or
``dialect=`` of ``read_recording`` / ``read_sensor_file`` decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hipback.ingest.errors import RecordingFileError
from hipback.ingest.files.table import TextFile, detect_separator, read_text, split_header

DIALECTS = ("hipback", "movella_dot", "xsens_mt")
#: the vendor export dialects, as a sentence names them
VENDOR_DIALECTS = {"movella_dot": "a Movella DOT export", "xsens_mt": "an Xsens MT Manager export"}
HIPBACK_MAGIC = "# hipback-recording:"

_HEADER_MARKS = {"PacketCounter", "SampleTimeFine", "Acc_X", "Gyr_X", "Quat_W", "Quat_q0", "Euler_X", "Roll"}
#: names only MT Manager exports use
_MT_COLUMNS = ("OriInc_q0", "VelInc_X", "Roll", "Pitch", "Yaw", "StatusWord")
#: names only Movella DOT exports use
_DOT_COLUMNS = ("Quat_W", "dq_W", "dv[1]")
#: names of DOT exports that an MT export may carry as well (free acceleration; Euler angles by axis)
_SHARED_COLUMNS = ("Euler_X", "FreeAcc_X")
_SEARCH_LINES = 200


@dataclass
class Sniffed:
    """Where the data start: ``header_index`` is the 0-based index of the column-name row."""

    dialect: str
    header_index: int
    sep: str
    names: list[str]
    preamble: list[str] = field(default_factory=list)


def detect_dialect(path: Path | str) -> str:
    """The dialect of ``path`` (``hipback``, ``movella_dot`` or ``xsens_mt``); raises RecordingFileError."""
    return sniff(read_text(Path(path))).dialect


def sniff(tf: TextFile, forced: str | None = None, *, given: str | None = None) -> Sniffed:
    """Find the header row and the dialect of an already read file.

    ``forced`` skips the guess. ``given`` (a key of :data:`VENDOR_DIALECTS`) is the dialect a user named for
    vendor exports: it decides a file whose content cannot tell the two apart, a file whose content marks it
    as the other dialect is a :class:`RecordingFileError`, and a hipback file stays one."""
    if forced is not None and forced not in DIALECTS:
        raise ValueError(f"unknown dialect {forced!r}; expected one of {', '.join(DIALECTS)}")
    if given is not None and given not in VENDOR_DIALECTS:
        raise ValueError(f"unknown vendor dialect {given!r}; expected one of {', '.join(VENDOR_DIALECTS)}")
    first = next((i for i, line in enumerate(tf.lines) if line.strip()), None)
    if first is None:
        raise RecordingFileError(tf.path, "the file is empty.")
    if tf.lines[first].startswith(HIPBACK_MAGIC) or forced == "hipback":
        for i in range(first, len(tf.lines)):
            line = tf.lines[i]
            if line.strip() and not line.startswith("#"):
                sep = detect_separator(line)
                return Sniffed("hipback", i, sep, split_header(line, sep), tf.lines[first:i])
        raise RecordingFileError(tf.path, "the hipback header is not followed by a row of column names.")

    for i in range(first, min(len(tf.lines), _SEARCH_LINES)):
        line = tf.lines[i]
        if line.startswith("//") or not line.strip():
            continue
        sep = detect_separator(line)
        names = split_header(line, sep)
        if _HEADER_MARKS.isdisjoint(names):
            continue
        preamble = tf.lines[first:i]
        dialect = forced or _guess(tf, i, sep, names, preamble, undecided=given)
        if forced is None and given is not None and dialect != given:
            raise RecordingFileError(
                tf.path,
                f"its content marks it as {VENDOR_DIALECTS[dialect]}, not {VENDOR_DIALECTS[given]} as the "
                f"dialect given ({given}) says.",
                i + 1,
            )
        return Sniffed(dialect, i, sep, names, preamble)
    raise RecordingFileError(
        tf.path,
        "this is not a hipback recording, a Movella DOT export or an Xsens MT Manager export "
        "(no known row of column names was found).",
    )


def _guess(
    tf: TextFile, index: int, sep: str, names: list[str], preamble: list[str], undecided: str | None = None
) -> str:
    """The dialect the content marks; ``undecided`` when it marks none (without it, a RecordingFileError)."""
    if any(line.startswith("//") for line in preamble):
        return "xsens_mt"
    if "Quat_q0" in names:
        return "xsens_mt"
    if any(name in names for name in _DOT_COLUMNS):
        return "movella_dot"
    if any(line.startswith(("sep=", "DeviceTag")) for line in preamble):
        return "movella_dot"
    if any(name in names for name in _MT_COLUMNS):
        return "xsens_mt"
    if sep in (";", "\t"):
        return "xsens_mt"
    if any(name in names for name in _SHARED_COLUMNS):
        return "movella_dot"
    if any(name.startswith("UTC_") for name in names):
        return "xsens_mt"
    if names[-1] == "" or "Status" in names:
        return "movella_dot"
    if undecided is not None:
        return undecided
    raise RecordingFileError(
        tf.path,
        "cannot tell whether this is a Movella DOT export (gyroscope in deg/s) or an Xsens MT Manager export "
        "(gyroscope in rad/s); name it with hipback process --dialect movella_dot or --dialect xsens_mt "
        "(dialect= in Python).",
        index + 1,
    )
