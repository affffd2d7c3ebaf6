"""Vertical ground reaction force of walking and the vertical pelvis motion it implies.

The pelvis' vertical acceleration is what lower-back gait detectors (and hipback's initial-contact rule) read,
so its shape around each initial contact (IC) matters more than its size. A sinusoidal "bob" puts the
largest upward acceleration at one smooth maximum per step; real walks show more structure (see the mean
sacral vertical acceleration around the contacts of the Movella DOT walks in ``../shared/data``, measured in
``bench/README.md``): it rises while the trailing leg pushes off, levels off at the contact and rises again,
steeply, to its largest value some 50-90 ms later while the leading leg takes the weight (loading
response). This module builds that motion from the forces that cause it.

Model
-----
* One foot's vertical ground reaction force (GRF, in body weights) over its stance is the classic double
  hump: it rises from 0 at the IC, quickly (half of ``peak1`` by 6 % of stance, 92 % of it by 15 %), to a
  first peak ``peak1`` at 25 % of stance (weight acceptance), falls to
  ``valley`` at mid-stance and rises again to ``peak2`` at ``peak2_at`` of stance (push-off; 80 % by
  default) before falling to 0 at toe-off (55 % of ``peak2`` left half-way from there to toe-off)
  (Winter 1991, *The Biomechanics and Motor Control of Human Gait*, 2nd ed., ch. 5; Perry & Burnfield
  2010, *Gait Analysis*, 2nd ed., ch. 20). The push-off peak comes at the end of terminal stance,
  just before the other foot's contact (terminal stance ends at 50 % of the cycle, i.e. at ~80-82 % of a
  60-62 % stance; Perry & Burnfield 2010), so the trailing leg is still pushing when the leading leg lands:
  the pelvis' vertical acceleration rises into the contact, as on the real Movella DOT walks (by ~2 m/s^2
  over the 150 ms before mobgap's contacts, ``bench/README.md``). With the peak at 75 % it fell by ~1.4 m/s^2
  over the 50 ms before each contact instead. Both peaks grow and the valley deepens with walking
  speed: about 1.0-1.05 / 0.9-0.95 BW at 0.5 m/s to 1.2-1.3 / 0.6-0.7 BW at 1.5 m/s (Keller et al. 1996,
  *Clin Biomech* 11:253). The curve through these points is a shape-preserving cubic (PCHIP), so it never
  overshoots its control points.
* Stance lasts ``stance_share`` of the gait cycle (about 0.60-0.62 at comfortable speed, longer when slow;
  Perry & Burnfield 2010), and the left foot's stance starts ``left_offset`` cycles after the right's.
* The body's vertical acceleration is ``g (F_left + F_right) / mean - g``, the mean taken over the cycle
  (over a steady cycle the ground carries the body weight on average); the pelvis is taken to move with the
  centre of mass vertically. Its displacement is the double integral, done per harmonic of the cycle
  (a periodic motion: no drift), and evaluated at the walker's gait phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import PchipInterpolator

FloatArray = NDArray[np.float64]
G = 9.81
#: harmonics of the stride frequency kept in the displacement (20 x ~0.9 Hz: up to ~18 Hz)
HARMONICS = 20
_GRID = 1024


@dataclass(frozen=True)
class GroundReaction:
    """One walker's vertical GRF shape (see the module docstring); forces in body weights."""

    peak1: float = 1.15
    valley: float = 0.75
    peak2: float = 1.1
    stance_share: float = 0.61
    left_offset: float = 0.5
    peak2_at: float = 0.8

    def __post_init__(self) -> None:
        if not 0.5 < self.stance_share < 0.8:
            raise ValueError(f"stance_share {self.stance_share} outside (0.5, 0.8)")
        if not (0.3 <= self.valley < min(self.peak1, self.peak2) and max(self.peak1, self.peak2) <= 2.0):
            raise ValueError("the GRF needs 0.3 <= valley < both peaks <= 2 body weights")
        if not 0.6 <= self.peak2_at <= 0.9:
            raise ValueError(f"peak2_at {self.peak2_at} outside [0.6, 0.9] of the stance")

    def foot_force(self, stance: FloatArray) -> FloatArray:
        """One foot's vertical GRF (BW) at ``stance`` (share of its stance: 0 = IC, 1 = toe-off; 0
        outside)."""
        s = np.asarray(stance, dtype=float)
        at = self.peak2_at
        knots = np.array([0.0, 0.06, 0.15, 0.25, 0.5, at, at + 0.5 * (1.0 - at), 1.0])
        values = np.array(
            [0.0, 0.5 * self.peak1, 0.92 * self.peak1, self.peak1, self.valley, self.peak2,
             0.55 * self.peak2, 0.0]
        )
        f = np.maximum(PchipInterpolator(knots, values)(np.clip(s, 0.0, 1.0)), 0.0)  # no rounding below 0
        return np.where((s >= 0.0) & (s <= 1.0), f, 0.0)

    def body_acceleration(self, phase: FloatArray) -> FloatArray:
        """Vertical acceleration (m/s^2, up +) of the body at gait ``phase`` (cycles; 0 = right IC)."""
        ph = np.asarray(phase, dtype=float)
        right = np.mod(ph, 1.0) / self.stance_share
        left = np.mod(ph - self.left_offset, 1.0) / self.stance_share
        total = self.foot_force(right) + self.foot_force(left)
        return G * (total / _mean_force(self) - 1.0)

    def pelvis_displacement(self, phase: FloatArray, f0: float) -> FloatArray:
        """Vertical displacement (m) about the mean height whose second derivative is
        :meth:`body_acceleration` for a walker at stride frequency ``f0`` (Hz), at gait ``phase``."""
        coef = _harmonics(self)
        ph = np.asarray(phase, dtype=float)
        out = np.zeros_like(ph)
        for k in range(1, HARMONICS + 1):
            w = 2 * np.pi * k * f0
            c = coef[k]
            # a(t) = Re(c e^{i 2 pi k phase}) -> z(t) = -a / w^2 per harmonic
            out -= (c.real * np.cos(2 * np.pi * k * ph) - c.imag * np.sin(2 * np.pi * k * ph)) / w**2
        return out


@lru_cache(maxsize=256)
def _mean_force(grf: GroundReaction) -> float:
    ph = np.arange(_GRID) / _GRID
    right = ph / grf.stance_share
    left = np.mod(ph - grf.left_offset, 1.0) / grf.stance_share
    return float(np.mean(grf.foot_force(right) + grf.foot_force(left)))


@lru_cache(maxsize=256)
def _harmonics(grf: GroundReaction) -> np.ndarray:
    """Complex amplitudes ``c_k`` of the acceleration over one cycle:
    ``a = sum Re(c_k e^{i 2 pi k phase})``."""
    ph = np.arange(_GRID) / _GRID
    a = grf.body_acceleration(ph)
    spec = np.fft.rfft(a) / _GRID
    coef = 2.0 * spec
    coef[0] = spec[0]
    return coef
