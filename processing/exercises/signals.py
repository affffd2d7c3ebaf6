"""Named exercise angles for one working side, from the per-sample body angles.

The engine and the catalogue speak of angles by name (``hip_extension``, ``pelvis_roll``...). This module
turns the side-independent body angles of :func:`hipback.processing.angles3d.body_angles` (a mapping of
arrays: ``t``, ``hip_flexion_left`` ...) into those names for a *working side* (``"left"``, ``"right"``, or
``None`` for exercises done with both legs together, where hip angles are the mean of both sides).

All angles in rad. Signs (ISB, see ``docs/biomechanics.md`` and :mod:`hipback.processing.angles3d`):

* ``hip_flexion`` (+ flexion), ``hip_extension`` (= -flexion), ``hip_adduction`` (+ towards the midline),
  ``hip_abduction`` (= -adduction), ``hip_internal_rotation`` (+ internal), ``hip_external_rotation``;
  ``other_...``: the same for the other leg.
* ``pelvic_tilt`` (anterior +, heading-free), ``posterior_pelvic_tilt`` (= -pelvic_tilt).
* ``pelvis_hike``: the working side of the pelvis up (frontal plane, from gravity; meaningful upright).
* ``pelvis_roll``: rotation of the pelvis about its own long axis taking the working side posteriorly,
  from gravity (meaningful lying on the back, the side or the front, where that axis is horizontal).
* ``pelvis_inclination``: angle between the pelvis' superior axis and the vertical (0 upright).
* ``lumbar_flexion`` (+ flexion) / ``lumbar_extension``; ``lumbar_rotation``: upper lumbar segment turned
  towards the working side relative to the pelvis (needs the upper-lumbar sensor and an aligned heading).

Signals that need a sensor that is not worn are NaN (never guessed).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: signal name -> the sensors (catalogue names) it needs.
SIGNALS: dict[str, tuple[str, ...]] = {
    "hip_flexion": ("pelvis", "thigh"),
    "hip_extension": ("pelvis", "thigh"),
    "hip_adduction": ("pelvis", "thigh"),
    "hip_abduction": ("pelvis", "thigh"),
    "hip_internal_rotation": ("pelvis", "thigh"),
    "hip_external_rotation": ("pelvis", "thigh"),
    "other_hip_flexion": ("pelvis", "other_thigh"),
    "other_hip_extension": ("pelvis", "other_thigh"),
    "other_hip_abduction": ("pelvis", "other_thigh"),
    "other_hip_external_rotation": ("pelvis", "other_thigh"),
    "pelvic_tilt": ("pelvis",),
    "posterior_pelvic_tilt": ("pelvis",),
    "pelvis_hike": ("pelvis",),
    "pelvis_roll": ("pelvis",),
    "pelvis_inclination": ("pelvis",),
    "lumbar_flexion": ("pelvis", "lumbar_upper"),
    "lumbar_extension": ("pelvis", "lumbar_upper"),
    "lumbar_rotation": ("pelvis", "lumbar_upper"),
}

#: signals whose value is an angle on a circle (differences are wrapped to [-pi, pi)).
CIRCULAR = frozenset({"pelvis_roll"})


def _get(frame: Mapping[str, FloatArray], key: str, n: int) -> FloatArray:
    v = frame.get(key)
    return np.full(n, np.nan) if v is None else np.asarray(v, dtype=np.float64)


def _pair(frame: Mapping[str, FloatArray], stem: str, side: str | None, n: int, other: bool) -> FloatArray:
    left, right = _get(frame, f"{stem}_left", n), _get(frame, f"{stem}_right", n)
    if side is None:
        with np.errstate(invalid="ignore"):
            both = np.stack([left, right])
            ok = np.isfinite(both)
            cnt = ok.sum(axis=0)
            return np.where(cnt > 0, np.where(ok, both, 0.0).sum(axis=0) / np.maximum(cnt, 1), np.nan)
    use = ("right" if side == "left" else "left") if other else side
    return right if use == "right" else left


def wrap(x: FloatArray) -> FloatArray:
    """Angles wrapped to [-pi, pi)."""
    return (np.asarray(x) + np.pi) % (2 * np.pi) - np.pi


def signal(frame: Mapping[str, FloatArray], name: str, side: str | None) -> FloatArray:
    """The named signal (rad, see the module docstring) for the working ``side`` over a block of samples."""
    if name not in SIGNALS:
        raise KeyError(f"unknown exercise angle {name!r}")
    n = len(frame["t"])
    sign = -1.0 if side == "left" else 1.0
    if name.startswith(("hip_", "other_hip_")):
        other = name.startswith("other_")
        stem = name.removeprefix("other_")
        base, neg = {
            "hip_flexion": ("hip_flexion", False),
            "hip_extension": ("hip_flexion", True),
            "hip_adduction": ("hip_adduction", False),
            "hip_abduction": ("hip_adduction", True),
            "hip_internal_rotation": ("hip_rotation", False),
            "hip_external_rotation": ("hip_rotation", True),
        }[stem]
        v = _pair(frame, base, side, n, other)
        return -v if neg else v
    if name in ("pelvic_tilt", "posterior_pelvic_tilt"):
        v = _get(frame, "pelvic_tilt", n)
        return -v if name.startswith("posterior") else v
    if name in ("lumbar_flexion", "lumbar_extension"):
        v = _get(frame, "lumbar_flexion", n)
        return -v if name == "lumbar_extension" else v
    if name == "lumbar_rotation":
        return sign * _get(frame, "lumbar_rotation", n)
    gx, gy, gz = (_get(frame, f"pelvis_up_{c}", n) for c in "xyz")
    if name == "pelvis_hike":
        return np.arctan2(sign * gz, gy)
    if name == "pelvis_roll":
        return np.arctan2(gx, sign * gz)
    if name == "pelvis_inclination":
        return np.arccos(np.clip(gy, -1.0, 1.0))
    raise KeyError(name)  # pragma: no cover - every name is handled above


def available(name: str, worn: set[str], side: str | None) -> bool:
    """Whether the sensors a signal needs are worn (placements such as ``thigh_left``)."""
    other = None if side is None else ("right" if side == "left" else "left")
    for need in SIGNALS[name]:
        if need == "thigh":
            ok = ({"thigh_left", "thigh_right"} & worn) if side is None else {f"thigh_{side}"} & worn
        elif need == "other_thigh":
            ok = ({"thigh_left", "thigh_right"} & worn) if other is None else {f"thigh_{other}"} & worn
        else:
            ok = {need} & worn
        if not ok:
            return False
    return True
