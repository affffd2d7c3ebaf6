"""Recording files: hipback's own format and importers for Movella DOT and Xsens MT Manager exports.

Public API::

    read_sensor_file(path, placement=None, *, dialect=None) -> SensorStream
    read_recording(inputs: dict[str, Path] | Path, *, dialect=None) -> Recording
    write_recording(recording, folder) -> list[Path]
    recording_files(folder) -> dict[str, Path]  # placement -> file of a folder written by write_recording
    detect_dialect(path) -> "hipback" | "movella_dot" | "xsens_mt"
    ImportReport  # per-stream import facts, in SensorStream.meta["import"]

Everything read is converted to hipback units (s, m/s^2, rad/s; magnetometer in uT or the device's arbitrary
units, see ``meta["mag_units"]``), device clocks and packet counters are unwrapped, repeated samples dropped
and counted, gaps found (``Recording.gaps``, ``SensorStream.meta["gaps"]``) and never interpolated. Unreadable
files raise :class:`hipback.ingest.errors.RecordingFileError` with one sentence naming the file and line. The
format
and the policies (truncated last line, leading zero rows, ...) are documented in ``docs/recording-format.md``.
"""

from hipback.ingest.files.detect import detect_dialect
from hipback.ingest.files.recording import (
    read_recording,
    read_sensor_file,
    recording_files,
    write_recording,
)
from hipback.ingest.files.report import ImportReport

__all__ = [
    "ImportReport",
    "detect_dialect",
    "read_recording",
    "read_sensor_file",
    "recording_files",
    "write_recording",
]
