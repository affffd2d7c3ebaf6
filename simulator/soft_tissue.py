"""Soft-tissue artefact (STA): the motion of a skin-mounted sensor against the bone it is meant to follow.

A sensor strapped to the skin does not move with the bone: the skin slides over muscle and fat as the joint
moves, the muscles change shape when they contract, and the wobbling mass shakes after each heel strike.
This module makes that motion for each sensor as a small rotation ``rotvec`` (rad, rotation vector in the
*segment* frame, applied between the segment and the sensor's mounting: ``q_sensor = q_seg * exp(rotvec) *
mounting``) and a translation ``disp`` (m, segment frame) on the simulator's fine grid. Both are zero in the
anatomical neutral posture, so a standing calibration sees (almost) the true mounting.

Components and magnitudes (per sensor, drawn once per session; ``VirtualPatient.soft_tissue`` scales them,
1 = typical):

- **Joint-angle-driven sliding** (quasi-static, linear in the hip flexion angle with a soft saturation).
  Cappozzo et al. 1996 (*Clin Biomech* 11:90, "Position and orientation in space of bones during movement:
  experimental artefacts") measured thigh skin-marker displacements against the femur of 10-30 mm, larger
  near the hip and on the lateral aspect, and largely a function of hip flexion; Leardini et al. 2005 (*Gait
  Posture* 21:212, review "Human movement analysis using stereophotogrammetry. Part 3: soft tissue
  artifact") report thigh STA up to 40 mm, with rotations of marker clusters of several degrees that are
  largest about the long axis (axial rotation) and in the frontal plane; Camomilla et al. 2013/2017
  (*J Biomech*, "A hip joint kinematics driven model for the generation of realistic thigh soft tissue
  artefacts"; *J Biomech* 62:77 review "Human movement analysis: The soft tissue artefact issue") model the
  thigh cluster's STA as a linear function of the hip angles, with cluster rotations of a few degrees over
  the hip range of motion. Peters et al. 2010 (*Gait Posture* 31:1, systematic review "Quantification of
  soft tissue artifact in lower limb human motion analysis") summarise thigh STA up to 31 mm and note it is
  subject- and task-specific and grows with soft-tissue thickness. Here: gains in rad of sensor rotation per
  rad of hip flexion, sagittal N(-0.05, 0.025) (the sensor lags the femur: a hip excursion of 50 deg gives
  ~2.5 deg less at the sensor, an amplitude gain of ~0.95), frontal N(0, 0.04), axial N(0, 0.08) (up to
  ~5-8 deg over the gait excursion); translation N(0, (10, 15, 6) mm) per rad (AP, long axis, ML), so
  10-20 mm over a gait cycle. A lateral mount gets the full values, an anterior one 0.7 of them (Cappozzo
  1996: lateral thigh markers near the greater trochanter moved most).
- **Muscle activity**: quadriceps and hamstrings contract around initial contact (terminal swing to loading
  response) and rectus femoris / hip flexors around pre-swing (Perry & Burnfield 2010, muscle timing); the
  contracting muscle bulges under the strap. Modelled as smooth bumps in the gait phase (~50 ms std) with
  a rotation of N(0, 1.0 deg) per axis at IC and N(0, 0.5 deg) at pre-swing, and 1-3 mm of translation.
- **Heel-strike impact**: the damped shake of the wobbling mass under the sensor after each IC is
  :class:`hipback.simulator.sensor_model.Wobble` (``SensorSpec.soft_tissue_deg``/``impact_acc_m_s2``/
  ``impact_delay_s``); device profiles set realistic values (soft-tissue vibration at 10-20 Hz decaying
  within ~0.1 s, Wakeling & Nigg 2001, *J Appl Physiol* 90:412 [B]): thighs 0.8-2.5 deg and 8-25 m/s^2,
  sacral and lumbar sensors 0.2-0.8 deg and 2-8 m/s^2 arriving 10-50 ms after the contact. A thigh sensor
  on a loose strap (``make_cohort(..., loose_straps=share)``): 5-10 deg and 40-80 m/s^2, the shake of the
  qmt full-body recording's thigh sensors (about 7 deg and 31 m/s^2 measured by ``bench/realism.py``,
  where the Movella DOT walk's thighs measure 1.4 deg, as the firm ranges above do).
- **Sacral and lumbar sensors**: a few mm and 1-3 deg (Leardini 2005 and Peters 2010: pelvic markers over
  bony landmarks move least, a few mm; the sacral skin is stretched by the alternating hip flexion and by the
  gluteus maximus contracting from terminal swing to ~15 % of each side's stance, Perry & Burnfield 2010).
  Rotation gains N(0, 0.03) rad/rad of half the hip-flexion difference (frontal and axial) and N(0, 0.02) of
  the mean hip flexion (sagittal); a gluteal bump of N(0, 0.8 deg) per axis after each side's IC (mirrored
  between sides); translation N(0, 4 mm) per rad. The upper lumbar sensor gets half of the sacral model.

Nothing here is known to processing: it sees only the sensor signals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
DEG = np.pi / 180.0
#: Soft saturation of the joint-angle-driven sliding (rad): the skin cannot slide without limit (sitting).
SATURATION_RAD = 0.6


@dataclass
class SoftTissueArtefact:
    """STA of one sensor on the fine grid: ``rotvec`` (N, 3) rad and ``disp`` (N, 3) m, segment frame;
    ``gains`` the drawn parameters (for the ground truth)."""

    rotvec: FloatArray
    disp: FloatArray
    gains: dict


def _bump(phase: FloatArray, centre: float, kappa: float = 12.0) -> FloatArray:
    """Periodic bump 0..1 at ``centre`` cycles (von Mises shape, std ~ 1 / (2 pi sqrt(kappa)) cycles)."""
    return np.exp(kappa * (np.cos(2.0 * np.pi * (phase - centre)) - 1.0))


def _sat(x: FloatArray) -> FloatArray:
    return SATURATION_RAD * np.tanh(np.asarray(x) / SATURATION_RAD)


def soft_tissue_artefact(
    placement: str,
    thigh_face: str,
    scale: float,
    ch: dict[str, FloatArray],
    phase: FloatArray,
    envelope: FloatArray,
    left_offset: float,
    rng: np.random.Generator,
) -> SoftTissueArtefact | None:
    """The STA of one sensor (``None`` if ``scale`` <= 0). ``ch``: the kinematic channels (rad) of
    :mod:`hipback.simulator.motion`; ``phase``: right-side gait cycles (NaN outside walks); ``envelope``:
    gait amplitude 0..1; ``left_offset``: cycles from a right IC to the next left IC."""
    if scale <= 0:
        return None
    n = len(envelope)
    ph = np.nan_to_num(phase, nan=0.0)
    env = np.asarray(envelope)
    gains: dict = {}
    if placement.startswith("thigh"):
        side = placement[6:]
        face = 1.0 if thigh_face == "lateral" else 0.7
        k = scale * face
        hip = _sat(ch[f"hip_{side}"])
        g_rot = np.array([rng.normal(0.0, 0.04), rng.normal(0.0, 0.08), rng.normal(-0.05, 0.025)]) * k
        g_disp = rng.normal(0.0, 1.0, 3) * np.array([0.010, 0.015, 0.006]) * k
        ph_side = ph - (left_offset if side == "left" else 0.0)
        a_ic = rng.normal(0.0, 1.0 * DEG, 3) * k
        a_ps = rng.normal(0.0, 0.5 * DEG, 3) * k
        d_ic = rng.normal(0.0, 0.002, 3) * k
        ic = env * _bump(ph_side, rng.uniform(-0.02, 0.04))
        ps = env * _bump(ph_side, rng.uniform(0.5, 0.6))
        rotvec = np.outer(hip, g_rot) + np.outer(ic, a_ic) + np.outer(ps, a_ps)
        disp = np.outer(hip, g_disp) + np.outer(ic, d_ic)
        gains = {
            "rot_per_rad": g_rot.tolist(),
            "disp_m_per_rad": g_disp.tolist(),
            "ic_rot_rad": a_ic.tolist(),
        }
    else:
        k = scale * (0.5 if placement == "lumbar_upper" else 1.0)
        diff = _sat(0.5 * (ch["hip_right"] - ch["hip_left"]))
        mean = _sat(0.5 * (ch["hip_right"] + ch["hip_left"]))
        g_diff = np.array([rng.normal(0.0, 0.03), rng.normal(0.0, 0.03), 0.0]) * k
        g_mean = np.array([0.0, 0.0, rng.normal(0.0, 0.02)]) * k
        g_disp = rng.normal(0.0, 0.004, 3) * k
        a_gl = rng.normal(0.0, 0.8 * DEG, 3) * k
        glute_r = env * _bump(ph, 0.05)
        glute_l = env * _bump(ph - left_offset, 0.05)
        mirror = np.array([-1.0, -1.0, 1.0])  # frontal and axial parts change sign between the sides
        rotvec = (
            np.outer(diff, g_diff)
            + np.outer(mean, g_mean)
            + np.outer(glute_r, a_gl)
            + np.outer(glute_l, a_gl * mirror)
        )
        disp = np.outer(diff, g_disp) + np.outer(glute_r - glute_l, 0.5 * g_disp)
        gains = {
            "rot_per_rad_diff": g_diff.tolist(),
            "rot_per_rad_mean": g_mean.tolist(),
            "glute_rot_rad": a_gl.tolist(),
        }
    assert rotvec.shape == (n, 3)
    return SoftTissueArtefact(rotvec=rotvec, disp=disp, gains=gains)
