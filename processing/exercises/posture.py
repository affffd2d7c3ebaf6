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
    """:class:`PostureTime` of one session from its angles and activity bouts (module docstring).

    :param angles: :class:`~hipback.processing.types.AngleSeries` (rad, uniform timeline ``t`` in s).
    :param bouts: activity bouts with ``label``, ``t_start``, ``t_end`` (s).
    :param bend_rad: hip or lumbar flexion from which the trunk counts as bent forward (rad).
    :param thigh_vertical_rad: largest thigh inclination from standing that still counts as upright (rad).
    :param extension_rad: lumbar extension beyond standing neutral that counts (rad, positive).
    """
    sitting = float(sum(b.t_end - b.t_start for b in bouts if getattr(b, "label", "") == "sitting"))
    t = np.asarray(angles.t, dtype=float)
    if t.size < 2:
        return PostureTime(sitting, None, None, 0.0)
    dt = float(np.median(np.diff(t)))
    lumbar = np.asarray(angles.lumbar_flexion, dtype=float)
    thighs = []
    for side in SIDES:
        inc = np.asarray(getattr(angles, f"thigh_inclination_{side}"), dtype=float)
        hip = np.asarray(getattr(angles, f"hip_flexion_{side}"), dtype=float)
        if np.isfinite(inc).any() and np.isfinite(hip).any():
            thighs.append((inc, hip))
    bent = None
    measured = 0.0
    if thighs:
        known = np.all([np.isfinite(inc) & np.isfinite(hip) for inc, hip in thighs], axis=0)
        with np.errstate(invalid="ignore"):
            upright = known & np.all([np.abs(inc) <= thigh_vertical_rad for inc, _ in thighs], axis=0)
            hips_bent = np.all([hip >= bend_rad for _, hip in thighs], axis=0)
            back_bent = lumbar >= bend_rad  # NaN (no lumbar sensor) compares False
        bent = float(np.count_nonzero(upright & (hips_bent | back_bent))) * dt
        measured = float(np.count_nonzero(known)) * dt
    extension = None
    if np.isfinite(lumbar).any():
        with np.errstate(invalid="ignore"):
            extension = float(np.count_nonzero(lumbar <= -extension_rad)) * dt
    return PostureTime(sitting, bent, extension, measured)
