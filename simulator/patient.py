"""The virtual patient: body dimensions and movement characteristics that shape the kinematics.

Angles are given in degrees here (these are human-facing settings); the simulator converts them to
radians. All angles follow BIOMECHANICS.md: hip flexion positive / extension negative (thigh relative
to pelvis), pelvic tilt anterior positive (pelvis relative to world vertical), lumbar flexion positive
(upper lumbar segment relative to pelvis), all relative to the standing-neutral posture of the
calibration at the start of a session.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Peak hip extension during gait of healthy young adults (Kerrigan et al. 2001: 20.4 +- 4.0 deg).
#: The lumbar compensation is driven by the deficit below this value.
NORMAL_PEAK_HIP_EXTENSION_DEG = 20.0


@dataclass
class VirtualPatient:
    """Settings of one simulated person (degrees, metres, seconds).

    Gait (per side unless noted):

    - ``peak_hip_extension_left/right_deg``: realised peak hip extension in steady walking, positive
      number (0-25 deg; young adults ~20, healthy elderly ~14, fallers ~11, Kerrigan 2001).
    - ``peak_hip_flexion_deg``: peak hip flexion in late swing (~30-35 deg).
    - ``walking_speed_m_s``, ``cadence_steps_min`` (steps per minute, two steps per stride).
    - ``pelvic_tilt_amplitude_deg``: peak-to-peak sagittal pelvic tilt oscillation per stride without
      compensation (normal 2-4 deg, two cycles per stride).
    - ``lumbar_compensation_gain``: extra anterior pelvic tilt near each side's terminal stance, in deg
      per deg of hip-extension deficit below :data:`NORMAL_PEAK_HIP_EXTENSION_DEG` (0 = none, ~0.5 strong).
      The lumbar spine extends by ``lumbar_follow`` times that extra tilt (the trunk stays upright).
    - ``walking_tilt_offset_deg``: mean anterior pelvic tilt while walking relative to standing.
    - ``pelvic_obliquity_amplitude_deg`` / ``pelvic_rotation_amplitude_deg``: amplitude (+-) of the
      frontal / transverse pelvic oscillation, once per stride. ``hip_adduction_amplitude_deg`` likewise.
    - ``stride_variability``: relative stride-to-stride variation of the stride duration (0.02 = 2 %).
    - ``amplitude_variability_deg``: random stride-to-stride variation of the peak hip extension (std, deg).
    - ``heel_strike_acc_m_s2``: peak of the short vertical deceleration transient of the pelvis at each
      initial contact (a smooth ~20 Hz wavelet, so the pelvis acceleration shows heel strikes).

    Stretch (kneeling hip-flexor stretch, half-kneeling with the stretched leg's knee on the ground):

    - ``stretch_hip_extension_left/right_deg``: hip extension reached in a hold (positive number).
    - ``arch_tilt_deg``: extra anterior pelvic tilt when the patient arches the back in a hold.
    - ``hold_start_tilt_deg``: pelvic tilt (vs standing) at the start of a hold (a cued posterior tilt
      is negative).

    Posture and body:

    - ``standing_anterior_tilt_deg``: anatomical anterior tilt of the pelvis in standing (not seen by the
      sensors' neutral calibration, kept for reports; Bugane 2014).
    - ``sitting_tilt_deg``: pelvic tilt while sitting relative to standing (posterior, negative).
    - ``sitting_lumbar_flexion_deg``: lumbar flexion while sitting (slouch, positive).
    - ``pelvis_height_m``: standing height of the pelvis centre (midpoint of the hip joint centres).
    - ``hip_half_width_m``: distance of each hip joint centre from the pelvis centre.
    - ``thigh_length_m``: hip joint centre to knee joint centre.
    - ``sway_deg``: amplitude of the slow postural sway in still postures.
    """

    patient_id: str = "sim-001"
    peak_hip_extension_left_deg: float = 12.0
    peak_hip_extension_right_deg: float = 16.0
    peak_hip_flexion_deg: float = 32.0
    walking_speed_m_s: float = 1.2
    cadence_steps_min: float = 108.0
    pelvic_tilt_amplitude_deg: float = 3.0
    lumbar_compensation_gain: float = 0.4
    lumbar_follow: float = 0.8
    walking_tilt_offset_deg: float = 1.0
    pelvic_obliquity_amplitude_deg: float = 3.0
    pelvic_rotation_amplitude_deg: float = 4.0
    hip_adduction_amplitude_deg: float = 4.0
    stride_variability: float = 0.02
    amplitude_variability_deg: float = 0.0
    heel_strike_acc_m_s2: float = 4.0
    stretch_hip_extension_left_deg: float = 15.0
    stretch_hip_extension_right_deg: float = 18.0
    arch_tilt_deg: float = 12.0
    hold_start_tilt_deg: float = -2.0
    standing_anterior_tilt_deg: float = 10.0
    sitting_tilt_deg: float = -8.0
    sitting_lumbar_flexion_deg: float = 12.0
    pelvis_height_m: float = 0.93
    hip_half_width_m: float = 0.09
    thigh_length_m: float = 0.43
    sway_deg: float = 0.4

    def __post_init__(self) -> None:
        checks = (
            ("peak_hip_extension_left_deg", -10.0, 40.0),
            ("peak_hip_extension_right_deg", -10.0, 40.0),
            ("peak_hip_flexion_deg", 0.0, 70.0),
            ("walking_speed_m_s", 0.1, 3.0),
            ("cadence_steps_min", 40.0, 200.0),
            ("pelvic_tilt_amplitude_deg", 0.0, 20.0),
            ("lumbar_compensation_gain", 0.0, 3.0),
            ("pelvis_height_m", 0.5, 1.3),
        )
        for name, lo, hi in checks:
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ValueError(f"VirtualPatient.{name} = {value} is outside the plausible range {lo}..{hi}")

    def peak_hip_extension_deg(self, side: str) -> float:
        return self.peak_hip_extension_left_deg if side == "left" else self.peak_hip_extension_right_deg

    def stretch_hip_extension_deg(self, side: str) -> float:
        return self.stretch_hip_extension_left_deg if side == "left" else self.stretch_hip_extension_right_deg

    def compensation_deg(self, side: str) -> float:
        """Extra anterior pelvic tilt (deg) near this side's terminal stance."""
        deficit = max(0.0, NORMAL_PEAK_HIP_EXTENSION_DEG - self.peak_hip_extension_deg(side))
        return self.lumbar_compensation_gain * deficit

    @property
    def stride_time_s(self) -> float:
        return 120.0 / self.cadence_steps_min

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def random(cls, rng: np.random.Generator, patient_id: str = "sim-001") -> VirtualPatient:
        """A plausible patient drawn from broad ranges (for cohorts and benchmarks)."""
        base_ext = rng.uniform(4.0, 23.0)
        asym = rng.normal(0.0, 3.0)
        ext_l = float(np.clip(base_ext + asym / 2, 0.0, 25.0))
        ext_r = float(np.clip(base_ext - asym / 2, 0.0, 25.0))
        speed = rng.uniform(0.8, 1.5)
        return cls(
            patient_id=patient_id,
            peak_hip_extension_left_deg=round(ext_l, 2),
            peak_hip_extension_right_deg=round(ext_r, 2),
            peak_hip_flexion_deg=round(rng.uniform(26.0, 38.0), 2),
            walking_speed_m_s=round(speed, 3),
            cadence_steps_min=round(float(np.clip(80.0 + 25.0 * speed + rng.normal(0, 4), 90, 125)), 2),
            pelvic_tilt_amplitude_deg=round(rng.uniform(2.0, 4.0), 2),
            lumbar_compensation_gain=round(rng.uniform(0.0, 0.6), 3),
            walking_tilt_offset_deg=round(rng.uniform(0.0, 2.0), 2),
            pelvic_obliquity_amplitude_deg=round(rng.uniform(2.0, 4.0), 2),
            pelvic_rotation_amplitude_deg=round(rng.uniform(2.0, 6.0), 2),
            hip_adduction_amplitude_deg=round(rng.uniform(2.0, 5.0), 2),
            stride_variability=round(rng.uniform(0.01, 0.03), 3),
            stretch_hip_extension_left_deg=round(float(np.clip(ext_l + rng.uniform(0, 6), 2, 30)), 2),
            stretch_hip_extension_right_deg=round(float(np.clip(ext_r + rng.uniform(0, 6), 2, 30)), 2),
            arch_tilt_deg=round(rng.uniform(8.0, 15.0), 2),
            hold_start_tilt_deg=round(rng.uniform(-4.0, 1.0), 2),
            standing_anterior_tilt_deg=round(rng.uniform(5.0, 15.0), 2),
            sitting_tilt_deg=round(rng.uniform(-12.0, -4.0), 2),
            sitting_lumbar_flexion_deg=round(rng.uniform(5.0, 20.0), 2),
            pelvis_height_m=round(rng.uniform(0.82, 1.02), 3),
            thigh_length_m=round(rng.uniform(0.38, 0.48), 3),
        )
