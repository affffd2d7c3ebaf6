"""Helpers shared by the vendor dialects: column groups (x/y/z, w/x/y/z) and orientation conversions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hipback.ingest.errors import RecordingFileError
from hipback.ingest.files.table import Table
from hipback.processing import quaternion as qt

FloatArray = NDArray[np.float64]


def index_columns(path: Path, names: list[str], header_line: int) -> dict[str, int]:
    """Column name -> field index; empty names (a trailing separator) are skipped, repeats are an error."""
    index: dict[str, int] = {}
    for j, name in enumerate(names):
        if not name:
            continue
        if name in index:
            raise RecordingFileError(path, f"the column {name} appears twice in the header.", header_line)
        index[name] = j
    return index


def find_groups(
    path: Path, index: dict[str, int], groups: dict[str, tuple[str, ...]], header_line: int
) -> dict[str, tuple[str, ...]]:
    """The groups whose columns are all present; a group with only some of its columns is an error."""
    found: dict[str, tuple[str, ...]] = {}
    for group, cols in groups.items():
        present = [c for c in cols if c in index]
        if not present:
            continue
        if len(present) != len(cols):
            missing = ", ".join(c for c in cols if c not in index)
            raise RecordingFileError(path, f"the header has {present[0]} but not {missing}.", header_line)
        found[group] = cols
    return found


def ignored_columns(
    index: dict[str, int],
    groups: dict[str, tuple[str, ...]],
    sources: dict[str, str],
    dec: Any,
    always_used: tuple[str, ...],
) -> list[str]:
    """Columns of the file that did not feed any quantity of the stream (for the import report)."""
    used = set(always_used)
    for quantity, group in sources.items():
        if getattr(dec, quantity) is not None:
            used.update(groups[group])
    return [c for c in index if c not in used]


def stack(table: Table, cols: tuple[str, ...]) -> FloatArray | None:
    """The columns side by side, or None when every cell is empty (the quantity was not recorded)."""
    arr = np.column_stack([table.columns[c] for c in cols])
    return None if np.isnan(arr).all() else arr


def column(table: Table, name: str) -> FloatArray | None:
    col = table.columns.get(name)
    return None if col is None or np.isnan(col).all() else col


def euler_deg_to_quat(roll: FloatArray, pitch: FloatArray, yaw: FloatArray) -> FloatArray:
    """Xsens Euler angles (deg) to sensor-to-world quaternions: ``R = Rz(yaw) Ry(pitch) Rx(roll)``."""
    angles = np.column_stack([yaw, pitch, roll])
    out = np.full((len(angles), 4), np.nan)
    ok = ~np.isnan(angles).any(axis=1)
    if ok.any():
        from scipy.spatial.transform import Rotation  # (imported when used: about half a second)

        out[ok] = qt.from_scipy(Rotation.from_euler("ZYX", angles[ok], degrees=True))
    return out


def increments_to_rates(
    dq: FloatArray | None, dv: FloatArray | None, rate_hz: float
) -> tuple[FloatArray | None, FloatArray | None]:
    """Strapdown increments over one sample period to rates: gyr (rad/s) from dq, acc (m/s^2) from dv."""
    gyr = None if dq is None else qt.to_rotvec(qt.normalize(dq)) * rate_hz
    acc = None if dv is None else dv * rate_hz
    return gyr, acc


def parse_rate_hz(text: str) -> float | None:
    """``"100.0Hz"`` / ``"60 Hz"`` -> 100.0 / 60.0; None when there is no number."""
    m = re.search(r"([0-9]+(?:[.,][0-9]+)?)\s*(?:Hz)?", text, flags=re.IGNORECASE)
    if not m:
        return None
    value = float(m.group(1).replace(",", "."))
    return value if value > 0 else None
