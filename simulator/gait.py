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

Pelvic tilt in normal gait oscillates by about 2-4 deg peak to peak, twice per stride (BIOMECHANICS.md
4.2); the simulator puts the anterior maxima at each side's terminal stance, where patients with limited
hip extension add extra anterior tilt (Kerrigan 1998; "exaggerated anterior tilt between 30-60 % of the
gait cycle").
"""

from __future__ import annotations

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


def _fit() -> tuple[NDArray[np.float64], NDArray[np.float64], float, float, float]:
    px = np.array([p[0] for p in _HIP_LANDMARKS] + [1.0])
    py = np.array([p[1] for p in _HIP_LANDMARKS] + [_HIP_LANDMARKS[0][1]])
    spline = CubicSpline(px, py, bc_type="periodic")
    grid = np.arange(4096) / 4096
    vals = spline(grid)
    spec = np.fft.rfft(vals) / len(grid)
    a = 2.0 * spec[: HARMONICS + 1].real
    b = -2.0 * spec[: HARMONICS + 1].imag
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


def hip_shape(phase: ArrayLike) -> NDArray[np.float64]:
    """Normalised sagittal hip curve in [0, 1] (0 = peak extension, 1 = peak flexion).

    ``phase`` is in gait cycles from this side's initial contact (periodic with period 1).
    """
    ph = np.asarray(phase, dtype=np.float64)
    return (_series(_A, _B, ph) - _LO) / (_HI - _LO)


def hip_flexion(phase: ArrayLike, peak_extension: ArrayLike, peak_flexion: float) -> NDArray[np.float64]:
    """Hip flexion (same unit as the inputs) with minimum ``-peak_extension`` and maximum ``peak_flexion``."""
    ext = np.asarray(peak_extension, dtype=np.float64)
    return -ext + (peak_flexion + ext) * hip_shape(phase)


def tilt_oscillation(phase: ArrayLike) -> NDArray[np.float64]:
    """Unit pelvic tilt oscillation (range [-0.5, 0.5], two cycles per stride), anterior maxima at each
    side's peak hip extension (right at ``PHASE_PEAK_EXTENSION``, left half a cycle later)."""
    ph = np.asarray(phase, dtype=np.float64)
    return 0.5 * np.cos(4.0 * np.pi * (ph - PHASE_PEAK_EXTENSION))


def terminal_stance_bump(phase: ArrayLike, kappa: float = 4.0) -> NDArray[np.float64]:
    """Smooth periodic bump (peak 1 at this side's peak extension, width ~0.2 cycle, ~0 half a cycle away)."""
    ph = np.asarray(phase, dtype=np.float64)
    return np.exp(kappa * (np.cos(2.0 * np.pi * (ph - PHASE_PEAK_EXTENSION)) - 1.0))
