"""Time in the postures that matter to flexion and extension responders: sitting, bent forward, lumbar
extension.

Flexion responders (pain eased by sitting and bending) and extension responders (pain worse sitting and
bending) are told apart by how their pain follows posture, so the clinician wants to see, per day, how long
the patient sat, stood or walked bent forward, and held the lower back in extension (issue 10, responder
safety). Pure computation on a session's :class:`~hipback.processing.types.AngleSeries` (rad, relative to the
standing calibration, ISB signs: hip flexion +, lumbar flexion +) and its activity bouts (s):

- ``sitting_s``: the activity bouts labelled ``sitting``;
- ``bent_forward_s``: time *upright* (every worn thigh within ``thigh_vertical_rad`` of its standing
  inclination, so neither sitting, kneeling nor lying) with the trunk bent forward: hip flexion of every worn
  thigh at least ``bend_rad`` (bending forward flexes both hips; a swing leg in walking flexes only one), or
  lumbar flexion at least ``bend_rad`` (upper-lumbar sensor);
- ``lumbar_extension_s``: time with lumbar flexion at most ``-extension_rad`` (the lower back extended
  beyond standing neutral), in any posture. It needs the upper-lumbar sensor: None without it (not guessed
  from the pelvis);
- ``measured_s``: time with the angles needed for ``bent_forward_s`` (at least one thigh and the pelvis).

Each sample stands for the sampling interval of the uniform timeline (the median step of ``t``); samples
with a missing angle count for nothing. Monitoring measures, not diagnoses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

SIDES = ("left", "right")


@dataclass(frozen=True)
class PostureTime:
    """Seconds per posture in one session (see the module docstring); None: not measurable."""

    sitting_s: float
    bent_forward_s: float | None
    lumbar_extension_s: float | None
    measured_s: float

    def as_row(self) -> dict[str, Any]:
        return {
            "sitting_s": self.sitting_s,
            "bent_forward_s": self.bent_forward_s,
            "lumbar_extension_s": self.lumbar_extension_s,
            "measured_s": self.measured_s,
        }


def posture_time(
    angles: Any,
    bouts: Iterable[Any] = (),
    *,
    bend_rad: float = math.radians(30.0),
    thigh_vertical_rad: float = math.radians(30.0),
    extension_rad: float = math.radians(10.0),
) -> PostureTime:
    """:class:`PostureTime` of one session from its angles and activity bouts (module docstring):
    :class:`PostureCounter` fed the whole series once.

    :param angles: :class:`~hipback.processing.types.AngleSeries` (rad, uniform timeline ``t`` in s).
    :param bouts: activity bouts with ``label``, ``t_start``, ``t_end`` (s).
    :param bend_rad: hip or lumbar flexion from which the trunk counts as bent forward (rad).
    :param thigh_vertical_rad: largest thigh inclination from standing that still counts as upright (rad).
    :param extension_rad: lumbar extension beyond standing neutral that counts (rad, positive).
    """
    counter = PostureCounter(bend_rad=bend_rad, thigh_vertical_rad=thigh_vertical_rad,
                             extension_rad=extension_rad)
    counter.update(angles)
    return counter.result(bouts)


#: the bits of a row in :class:`PostureCounter` (per side: its angles known, upright, hip bent; the back bent)
_KNOWN = {"left": 1, "right": 2}
_UPRIGHT = {"left": 4, "right": 8}
_HIP_BENT = {"left": 16, "right": 32}
_BACK_BENT = 64
#: the angle series' columns a count reads
_COLUMNS = ("t", "lumbar_flexion", "thigh_inclination_left", "hip_flexion_left", "thigh_inclination_right",
            "hip_flexion_right")


class PostureCounter:
    """:func:`posture_time` fed in pieces, as a live session's angles come (same parameters): each row is
    kept as one byte of flags (100 bytes per second at 100 Hz) and the time steps as a count per step
    (rounded to a nanosecond), so that :meth:`result` decides exactly as :func:`posture_time` on the whole
    series: a thigh counts when its angles were ever known, a sample stands for the median time step.

    A live session hands over a few rows at a time (every live step); the pieces are joined and counted once
    ``batch_rows`` rows wait (about 30 numpy calls per count, whatever its size), and before every
    answer. Counting the joined rows gives the same flags and steps as counting each piece.
    """

    def __init__(
        self,
        *,
        bend_rad: float = math.radians(30.0),
        thigh_vertical_rad: float = math.radians(30.0),
        extension_rad: float = math.radians(10.0),
        batch_rows: int = 200,
    ) -> None:
        self.bend_rad = bend_rad
        self.thigh_vertical_rad = thigh_vertical_rad
        self.extension_rad = extension_rad
        self.batch_rows = int(batch_rows)
        self._flags = bytearray()
        self._steps: dict[int, int] = {}  # time step (ns) -> how many
        self._last_t: float | None = None
        self._seen = {f"{w}_{side}": False for side in SIDES for w in ("inc", "hip")}
        self._lumbar_seen = False
        self._extension = 0
        self._pending: list[tuple[np.ndarray, ...]] = []  # pieces not counted yet (_COLUMNS, each a copy)
        self._pending_rows = 0

    @property
    def rows_(self) -> int:
        """Rows taken so far (counted, or waiting for the next round)."""
        return len(self._flags) + self._pending_rows

    def update(self, angles: Any) -> None:
        """The next rows of the session's :class:`~hipback.processing.types.AngleSeries` (rad, s)."""
        n = len(angles.t)
        if n == 0:
            return
        if not self._pending and n >= self.batch_rows:  # a whole series, or a long piece: as it is
            self._count({c: np.asarray(getattr(angles, c), dtype=float) for c in _COLUMNS})
            return
        self._pending.append(tuple(np.array(getattr(angles, c), dtype=float) for c in _COLUMNS))
        self._pending_rows += n
        if self._pending_rows >= self.batch_rows:
            self._count_pending()

    def _count_pending(self) -> None:
        if not self._pending:
            return
        parts = self._pending
        cols = parts[0] if len(parts) == 1 else tuple(np.concatenate(c) for c in zip(*parts, strict=True))
        self._pending = []
        self._pending_rows = 0
        self._count(dict(zip(_COLUMNS, cols, strict=True)))

    def _count(self, a: dict[str, np.ndarray]) -> None:
        t = a["t"]
        steps = np.diff(t, prepend=t[0] if self._last_t is None else self._last_t)
        if self._last_t is None:
            steps = steps[1:]
        self._last_t = float(t[-1])
        values, counts = np.unique(np.round(steps * 1e9).astype(np.int64), return_counts=True)
        for step, n in zip(values.tolist(), counts.tolist(), strict=True):
            self._steps[step] = self._steps.get(step, 0) + n
        flags = np.zeros(t.size, dtype=np.uint8)
        lumbar = a["lumbar_flexion"]
        with np.errstate(invalid="ignore"):
            for side in SIDES:
                inc = a[f"thigh_inclination_{side}"]
                hip = a[f"hip_flexion_{side}"]
                fin_inc, fin_hip = np.isfinite(inc), np.isfinite(hip)
                self._seen[f"inc_{side}"] |= bool(fin_inc.any())
                self._seen[f"hip_{side}"] |= bool(fin_hip.any())
                flags[fin_inc & fin_hip] |= _KNOWN[side]
                flags[np.abs(inc) <= self.thigh_vertical_rad] |= _UPRIGHT[side]
                flags[hip >= self.bend_rad] |= _HIP_BENT[side]
            flags[lumbar >= self.bend_rad] |= _BACK_BENT  # NaN (no lumbar sensor) compares False
            self._extension += int(np.count_nonzero(lumbar <= -self.extension_rad))
        self._lumbar_seen |= bool(np.isfinite(lumbar).any())
        self._flags += flags.tobytes()

    def result(self, bouts: Iterable[Any] = ()) -> PostureTime:
        """The session's :class:`PostureTime` from the rows so far and its activity bouts (``label``,
        ``t_start``, ``t_end`` in s)."""
        sitting = float(sum(b.t_end - b.t_start for b in bouts if getattr(b, "label", "") == "sitting"))
        self._count_pending()
        n_steps = sum(self._steps.values())
        if n_steps < 1:
            return PostureTime(sitting, None, None, 0.0)
        dt = _median_of_counts(self._steps) / 1e9
        flags = np.frombuffer(bytes(self._flags), dtype=np.uint8)
        sides = [side for side in SIDES if self._seen[f"inc_{side}"] and self._seen[f"hip_{side}"]]
        bent = None
        measured = 0.0
        if sides:
            known_mask = sum(_KNOWN[s] for s in sides)
            upright_mask = sum(_UPRIGHT[s] for s in sides)
            bent_mask = sum(_HIP_BENT[s] for s in sides)
            known = (flags & known_mask) == known_mask
            upright = known & ((flags & upright_mask) == upright_mask)
            hips_bent = (flags & bent_mask) == bent_mask
            back_bent = (flags & _BACK_BENT) != 0
            bent = float(np.count_nonzero(upright & (hips_bent | back_bent))) * dt
            measured = float(np.count_nonzero(known)) * dt
        extension = float(self._extension) * dt if self._lumbar_seen else None
        return PostureTime(sitting, bent, extension, measured)


def _median_of_counts(counts: dict[int, int]) -> float:
    """The median of values given as value -> count (``np.median`` of the values, repeated)."""
    values = sorted(counts)
    total = sum(counts.values())
    lo, hi = (total - 1) // 2, total // 2  # the middle one or two, by rank
    out: list[int] = []
    seen = 0
    for v in values:
        seen += counts[v]
        while len(out) < 2 and seen > (lo if not out else hi):
            out.append(v)
    return (out[0] + out[1]) / 2.0
