"""Smooth periodic sagittal gait curves for the virtual patient.

Source of the shape: the normative sagittal hip angle of level walking as described by Perry & Burnfield,
*Gait Analysis: Normal and Pathological Function* (2nd ed., 2010, ch. "Hip") and Winter, *Biomechanics
and Motor Control of Human Movement* (normative gait kinematics): the hip is flexed at initial contact
(0 % of the cycle), extends steadily through stance to its peak extension at terminal stance (~50-55 %),
flexes rapidly in pre-swing and initial swing to its peak flexion in late swing (~85 %), and extends a
little before the next initial contact. No data table is copied: a handful of approximate landmarks
(``_HIP_LANDMARKS``, normalised 0 = peak extension, 1 = peak flexion) is interpolated with a periodic
spline and reduced to its first :data:`HARMONICS` Fourier harmonics, which gives a smooth periodic curve
with that shape. It is then normalised to exactly [0, 1] so that the patient's chosen peak extension and
flexion are realised exactly.

Person-to-person variety (:class:`HipShape`): the timing of the landmarks differs between people and speeds.
In a real walk with an optical reference (issue 9) peak hip flexion fell at 72-82 % of the cycle; normative
data put it at ~85-90 % for healthy adults at comfortable speed (Perry & Burnfield 2010) and earlier with a
flatter peak in slow walkers, who keep the hip flexed through terminal swing (Kirtley, *Clinical Gait
Analysis*, 2006, ch. 4 [B]; Schwartz, Rozumalski & Trost 2008, *J Biomech* 41:1639, speed-dependent hip
curves: slower walking gives smaller excursions and flatter, earlier swing peaks [B]). Peak extension falls
at terminal stance, 45-58 % of the cycle (toe-off at ~60 %, earlier stance end for faster walkers).
:func:`hip_landmarks` places the same kind of landmarks at a person's timing, optionally with a flat top
(``plateau``), and :func:`_fit` smooths them the same way; the initial contact (IC, heel strike) stays at
phase 0 of each side's cycle by definition, which is what the ground truth reports as the true heel strike.

Pelvic tilt in normal gait oscillates by about 2-4 deg peak to peak, twice per stride (docs/biomechanics.md,
reference values); the simulator puts the anterior maxima at each side's terminal stance, where patients with
limited hip extension add extra anterior tilt (Kerrigan 1998; "exaggerated anterior tilt between 30-60 % of
the gait cycle").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import CubicSpline

HARMONICS = 5

# (fraction of gait cycle from initial contact, normalised hip flexion) -- approximate landmarks.
_HIP_LANDMARKS = (
    (0.00, 0.90),
    (0.10, 0.80),
    (0.20, 0.60),
    (0.30, 0.40),
    (0.40, 0.20),
    (0.52, 0.00),
    (0.60, 0.12),
    (0.70, 0.50),
    (0.80, 0.90),
    (0.87, 1.00),
    (0.95, 0.95),
)


def _fit(
    landmarks: tuple[tuple[float, float], ...] = _HIP_LANDMARKS, harmonics: int = HARMONICS
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float, float]:
    px = np.array([p[0] for p in landmarks] + [1.0])
    py = np.array([p[1] for p in landmarks] + [landmarks[0][1]])
    spline = CubicSpline(px, py, bc_type="periodic")
    grid = np.arange(4096) / 4096
    vals = spline(grid)
    spec = np.fft.rfft(vals) / len(grid)
    a = 2.0 * spec[: harmonics + 1].real
    b = -2.0 * spec[: harmonics + 1].imag
    a[0] /= 2.0
    dense = np.arange(200_000) / 200_000
    curve = _series(a, b, dense)
    lo, hi = float(curve.min()), float(curve.max())
    phase_min = float(dense[np.argmin(curve)])
    return a, b, lo, hi, phase_min


def _series(
    a: NDArray[np.float64], b: NDArray[np.float64], phase: NDArray[np.float64]
) -> NDArray[np.float64]:
    out = np.full_like(phase, a[0])
    for k in range(1, len(a)):
        out += a[k] * np.cos(2 * np.pi * k * phase) + b[k] * np.sin(2 * np.pi * k * phase)
    return out


_A, _B, _LO, _HI, PHASE_PEAK_EXTENSION = _fit()


@dataclass(frozen=True)
class HipShape:
    """Timing of one person's sagittal hip curve (fractions of the gait cycle from this side's IC).

    - ``extension_phase``: peak hip extension (terminal stance), 0.45-0.58.
    - ``flexion_phase``: peak hip flexion (late swing), 0.70-0.92.
    - ``plateau``: 0 = a pointed swing peak, 1 = the hip stays near peak flexion from the peak to IC (slow
      walkers).

    ``HipShape()`` with ``None`` everywhere is the fixed normative curve of the easy patient.
    """

    extension_phase: float | None = None
    flexion_phase: float | None = None
    plateau: float = 0.0

    @property
    def is_default(self) -> bool:
        return self.extension_phase is None and self.flexion_phase is None and self.plateau == 0.0


def hip_landmarks(shape: HipShape) -> tuple[tuple[float, float], ...]:
    """Landmarks (phase from IC, normalised flexion) of a person's curve: near-linear extension through
    stance from IC to ``extension_phase``, a slow start of flexion in pre-swing, the rapid swing flexion up
    to ``flexion_phase`` and a late-swing extension back to the IC value (less of it with a plateau)."""
    pe = 0.52 if shape.extension_phase is None else float(shape.extension_phase)
    pf = 0.87 if shape.flexion_phase is None else float(shape.flexion_phase)
    pl = float(np.clip(shape.plateau, 0.0, 1.0))
    drop = (0.10 + 0.6 * max(0.0, 0.9 - pf)) * (1.0 - 0.7 * pl)  # late-swing extension before IC
    v_ic = 1.0 - drop
    pts = [(0.0, v_ic)]
    for k in (1, 2, 3, 4):
        pts.append((k * pe / 5.0, v_ic * (1.0 - k / 5.0) ** 1.1))
    pts.append((pe, 0.0))
    sw = pf - pe
    pts += [(pe + 0.22 * sw, 0.12), (pe + 0.5 * sw, 0.5), (pe + 0.78 * sw, 0.88), (pf, 1.0)]
    tail = 1.0 - pf
    if tail > 0.04:
        pts.append((pf + 0.5 * tail, 1.0 - 0.55 * drop))
    return tuple(pts)


_CACHE: dict[HipShape, tuple] = {}


def _coefficients(shape: HipShape | None) -> tuple:
    if shape is None or shape.is_default:
        return _A, _B, _LO, _HI
    key = HipShape(
        round(float(shape.extension_phase or 0.52), 3),
        round(float(shape.flexion_phase or 0.87), 3),
        round(float(shape.plateau), 2),
    )
    if key not in _CACHE:
        a, b, lo, hi, _ = _fit(hip_landmarks(key), harmonics=7)
        _CACHE[key] = (a, b, lo, hi)
    return _CACHE[key]


def hip_shape(phase: ArrayLike, shape: HipShape | None = None) -> NDArray[np.float64]:
    """Normalised sagittal hip curve in [0, 1] (0 = peak extension, 1 = peak flexion).

    ``phase`` is in gait cycles from this side's initial contact (periodic with period 1); ``shape`` the
    person's timing (``None``: the fixed normative curve).
    """
    ph = np.asarray(phase, dtype=np.float64)
    a, b, lo, hi = _coefficients(shape)
    return (_series(a, b, ph) - lo) / (hi - lo)


def hip_flexion(
    phase: ArrayLike, peak_extension: ArrayLike, peak_flexion: ArrayLike, shape: HipShape | None = None
) -> NDArray[np.float64]:
    """Hip flexion (same unit as the inputs) with minimum ``-peak_extension`` and maximum ``peak_flexion``."""
    ext = np.asarray(peak_extension, dtype=np.float64)
    return -ext + (np.asarray(peak_flexion, dtype=np.float64) + ext) * hip_shape(phase, shape)


def tilt_oscillation(phase: ArrayLike) -> NDArray[np.float64]:
    """Unit pelvic tilt oscillation (range [-0.5, 0.5], two cycles per stride), anterior maxima at each
    side's peak hip extension (right at ``PHASE_PEAK_EXTENSION``, left half a cycle later)."""
    ph = np.asarray(phase, dtype=np.float64)
    return 0.5 * np.cos(4.0 * np.pi * (ph - PHASE_PEAK_EXTENSION))


def terminal_stance_bump(phase: ArrayLike, kappa: float = 4.0) -> NDArray[np.float64]:
    """Smooth periodic bump (peak 1 at this side's peak extension, width ~0.2 cycle, ~0 half a cycle away)."""
    ph = np.asarray(phase, dtype=np.float64)
    return np.exp(kappa * (np.cos(2.0 * np.pi * (ph - PHASE_PEAK_EXTENSION)) - 1.0))
