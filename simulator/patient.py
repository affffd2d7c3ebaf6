"""The virtual patient: body dimensions and movement characteristics that shape the kinematics.

Angles are given in degrees here (these are human-facing settings); the simulator converts them to
radians. All angles follow docs/biomechanics.md: hip flexion positive / extension negative (thigh relative
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

    Realism (all defaults give the easy patient of the first simulator; :meth:`realistic` draws them):

    - ``hip_extension_phase`` / ``hip_flexion_phase``: gait-cycle fractions (from IC) of peak extension and
      peak flexion, ``None`` = the normative 0.52 / 0.875; ``hip_flexion_phase_asymmetry``: left minus right
      shift of the flexion peak (cycles); ``hip_flexion_plateau``: 0 pointed swing peak .. 1 flat (slow
      walkers); see :mod:`hipback.simulator.gait`.
    - ``peak_hip_flexion_asymmetry_deg``: right minus left peak flexion.
    - ``step_asymmetry``: left IC at ``0.5 + step_asymmetry / 2`` cycles after the right IC (0 = symmetric;
      a limp of a few % of the stride is common in patients, Patterson et al. 2010, *Gait Posture* 31:241).
    - ``flexion_variability_deg``: stride-to-stride std of the peak flexion (like
      ``amplitude_variability_deg`` for the extension).
    - ``gait_ramp_s``: duration of gait initiation and termination (amplitude envelope);
      ``initiation_cadence_drop``: relative cadence reduction at the start and end of a walk (first and last
      steps are slower, Jian et al. 1993, *Gait Posture* 1:9: steady state within 1-2 steps).
    - ``turn_amplitude_drop``: relative reduction of the hip excursion during U-turns (short steps while
      turning, Hase & Stein 1999, *J Neurophysiol* 81:2914 [B]); ``turn_s``: duration of a 180 deg turn
      (``None``: the scenario's).
    - ``com_phase_lag``: cycles from each IC to the lowest point of the (sinusoidal) vertical pelvis motion.
      The body's centre of mass is lowest in the middle of double support (Perry & Burnfield 2010; Saunders,
      Inman & Eberhart 1953), and each double support lasts ~10-12 % of the cycle at comfortable speed and
      longer in slow walkers, so ~0.05-0.09; 0 = the easy patient (lowest at the IC). With the lag, the
      Mobilise-D lower-back IC detector (mobgap, Ionescu/McCamley) lands within ~30 ms of the true contacts
      as it does on real walks (Caramia et al. 2019; issue 9), while with 0 it fires ~0.1 s early.
      ``bob_m``: half of the peak-to-peak vertical pelvis excursion (~0.02 m).
    - ``stance_share`` (0 = the sinusoidal motion above) and ``grf_peak1``, ``grf_valley``, ``grf_peak2``: the
      vertical pelvis motion of a realistic walker follows from the vertical ground reaction force instead
      (the double hump of each foot over a stance of this share of the cycle, in body weights; see
      :mod:`hipback.simulator.loading`): the trailing leg's push-off, the contact and the leading leg's
      loading response shape the sacral acceleration around each contact as on real walks.
      ``grf_peak2_at``: where in its stance the push-off peak lies (share of the stance, 0.8 by default).
    - Calibration stance: ``stance_hip_flexion_left/right_deg`` (hips and knees slightly flexed while
      "standing neutral"), ``stance_tilt_deg`` (pelvic tilt of that stance against the anatomical neutral),
      ``stance_abduction_deg`` (feet apart: both hips abducted); every standing step uses this stance and the
      truth angles stay anatomical (see ``GroundTruth.stance_angles``). ``calibration_fidget_deg``: a weight
      shift during the first standing (one hip flexes by this much and back within ~1.5 s; 0 = none).
    - ``heel_strike_delay_s``, ``heel_strike_jitter_s``, ``heel_strike_cv``: the pelvis' heel-strike
      transient starts this delay (s) after each initial contact (causal: nothing before its onset; it
      peaks ~10 ms later) with this per-contact jitter (s, std) and
      amplitude variation (coefficient of variation); all 0 = the easy patient's transient exactly at the
      contact (see :func:`hipback.simulator.motion.variable_heel_strikes`).
    - ``hip_rotation_amplitude_deg``: amplitude (+-) of the hip's internal rotation in stance / external
      rotation in swing while walking (total range ~8-10 deg with wide variation between people, Kadaba et al.
      1990, *J Orthop Res* 8:383 [B]; 0 = none, the easy patient).
    - ``soft_tissue``: scale of the soft-tissue artefact of all sensors (0 = none, 1 = the literature's
      typical magnitudes, up to ~2 for a lot of soft tissue); see :mod:`hipback.simulator.soft_tissue`.
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
    hip_extension_phase: float | None = None
    hip_flexion_phase: float | None = None
    hip_flexion_phase_asymmetry: float = 0.0
    hip_flexion_plateau: float = 0.0
    peak_hip_flexion_asymmetry_deg: float = 0.0
    step_asymmetry: float = 0.0
    flexion_variability_deg: float = 0.0
    gait_ramp_s: float = 1.2
    initiation_cadence_drop: float = 0.0
    turn_amplitude_drop: float = 0.0
    turn_s: float | None = None
    com_phase_lag: float = 0.0
    bob_m: float = 0.02
    stance_hip_flexion_left_deg: float = 0.0
    stance_hip_flexion_right_deg: float = 0.0
    stance_tilt_deg: float = 0.0
    stance_abduction_deg: float = 0.0
    calibration_fidget_deg: float = 0.0
    soft_tissue: float = 0.0
    hip_rotation_amplitude_deg: float = 0.0
    heel_strike_delay_s: float = 0.0
    heel_strike_jitter_s: float = 0.0
    heel_strike_cv: float = 0.0
    grf_peak1: float = 1.15
    grf_valley: float = 0.75
    grf_peak2: float = 1.1
    stance_share: float = 0.0
    grf_peak2_at: float = 0.8

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
            ("step_asymmetry", -0.2, 0.2),
            ("gait_ramp_s", 0.3, 5.0),
            ("soft_tissue", 0.0, 3.0),
        )
        for name, lo, hi in checks:
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ValueError(f"VirtualPatient.{name} = {value} is outside the plausible range {lo}..{hi}")

    def peak_hip_flexion_side_deg(self, side: str) -> float:
        """Peak hip flexion of one side (deg): the mean plus or minus half the asymmetry."""
        half = 0.5 * self.peak_hip_flexion_asymmetry_deg
        return self.peak_hip_flexion_deg + (half if side == "right" else -half)

    def hip_shape(self, side: str):
        """:class:`hipback.simulator.gait.HipShape` of one side."""
        from hipback.simulator.gait import HipShape

        if (
            self.hip_extension_phase is None
            and self.hip_flexion_phase is None
            and self.hip_flexion_plateau == 0
        ):
            return HipShape()
        pf = 0.875 if self.hip_flexion_phase is None else self.hip_flexion_phase
        pf += 0.5 * self.hip_flexion_phase_asymmetry * (1.0 if side == "left" else -1.0)
        return HipShape(self.hip_extension_phase, float(pf), self.hip_flexion_plateau)

    @property
    def left_phase_offset(self) -> float:
        """Cycles from a right IC to the next left IC."""
        return 0.5 + 0.5 * self.step_asymmetry

    def stance_deg(self) -> dict[str, float]:
        """The calibration stance (deg) against the anatomical neutral, by kinematic channel."""
        return {
            "hip_left": self.stance_hip_flexion_left_deg,
            "hip_right": self.stance_hip_flexion_right_deg,
            "tilt": self.stance_tilt_deg,
            "add_left": -self.stance_abduction_deg,
            "add_right": -self.stance_abduction_deg,
        }

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

    @classmethod
    def realistic(cls, rng: np.random.Generator, patient_id: str = "sim-001") -> VirtualPatient:
        """A patient as varied as real ones (for benchmarks): the ranges of :meth:`random` plus the realism
        fields, drawn from these sources:

        - speed 0.5-1.5 m/s and cadence 70-130 steps/min with the usual speed-cadence coupling (cadence
          ~ 60 + 45 x speed, +- 6; Grieve & Gear 1966 / Oberg et al. 1993, *J Rehabil Res Dev* 30:210 [B]);
        - peak flexion at 70-92 % of the cycle, earlier and flatter for slow walkers; peak extension at
          45-58 % (see :mod:`hipback.simulator.gait`); peak flexion 20-40 deg and extension 0-25 deg
          (Kerrigan et al. 2001: 20.4 +- 4.0 young, 14.3 +- 4.4 elderly, 11.1 +- 4.8 fallers);
        - asymmetry: step timing +-4 % of the stride, peak flexion +-4 deg, extension +-3 deg (Patterson et
          al. 2010 symmetry ratios in patients [B]);
        - stride time CV 1.5-4 % (Hausdorff 2005, *J NeuroEng Rehabil* 2:19: ~1-3 % healthy, higher in
          elderly and fallers); stride-to-stride peak angle std 0.5-2 deg;
        - gait initiation and termination over 0.8-2.5 s with 10-30 % slower first and last steps;
        - hip excursion 10-35 % smaller in U-turns lasting 2-4 s;
        - calibration stance: hips 0-5 deg flexed (knees soft), pelvis +-2 deg, 1-4 deg abduction, sway
          0.3-1.2 deg, and one patient in three shifts weight (3-10 deg) during "stand still";
        - vertical ground reaction force: peaks 1.0-1.05 / valley 0.9-0.95 body weights at 0.5 m/s to
          1.2-1.3 / 0.6-0.7 at 1.5 m/s (Keller et al. 1996), each walker's peaks +-0.05 BW (sd, at most 0.1)
          firmer or softer than that at its speed with the valley deeper or shallower by as much, and the
          push-off peak at 75-86 % of the stance (terminal stance ends at about 50 % of the cycle, some
          80-83 % of the stance: Perry & Burnfield 2010; the spread is chosen to hold both real walkers at
          hand, whose sacral acceleration rises into the contact, steepest about 50 ms before it, or levels
          off until the contact and rises after it: ``bench/realism.py``);
        - heel-strike transient at the sacrum 0.5-8 m/s^2 (less in slow walkers), 5-30 ms after the contact
          with 3-12 ms jitter and 20-50 % amplitude variation between steps (Whittle 1999);
        - hip rotation +-2-6 deg while walking (Kadaba et al. 1990);
        - soft-tissue scale 0.5-1.8 (lean to high BMI; Leardini et al. 2005 and Peters et al. 2010 find STA
          grows with soft-tissue thickness).
        """
        p = cls.random(rng, patient_id)
        speed = float(rng.uniform(0.5, 1.5))
        cadence = float(np.clip(60.0 + 45.0 * speed + rng.normal(0.0, 6.0), 70.0, 130.0))
        slow = float(np.clip((1.1 - speed) / 0.6, 0.0, 1.0))  # 1 = very slow walker
        base_ext = float(rng.uniform(0.0, 24.0) * (0.6 + 0.4 * (1 - slow)))
        asym = float(rng.normal(0.0, 3.0))
        p.peak_hip_extension_left_deg = round(float(np.clip(base_ext + asym / 2, 0.0, 25.0)), 2)
        p.peak_hip_extension_right_deg = round(float(np.clip(base_ext - asym / 2, 0.0, 25.0)), 2)
        p.peak_hip_flexion_deg = round(float(rng.uniform(20.0, 40.0) - 4.0 * slow), 2)
        p.walking_speed_m_s = round(speed, 3)
        p.cadence_steps_min = round(cadence, 2)
        p.hip_extension_phase = round(float(rng.uniform(0.47, 0.58)), 3)
        late = float(rng.uniform(0.0, 1.0)) * (1.0 - 0.6 * slow)
        p.hip_flexion_phase = round(float(np.clip(0.70 + 0.22 * late, 0.70, 0.92)), 3)
        p.hip_flexion_phase_asymmetry = round(float(rng.normal(0.0, 0.02)), 3)
        p.hip_flexion_plateau = round(float(np.clip(slow * rng.uniform(0.3, 1.0), 0.0, 1.0)), 2)
        p.peak_hip_flexion_asymmetry_deg = round(float(rng.normal(0.0, 2.0)), 2)
        p.step_asymmetry = round(float(np.clip(rng.normal(0.0, 0.02), -0.04, 0.04)), 3)
        p.stride_variability = round(float(rng.uniform(0.015, 0.04)), 3)
        p.amplitude_variability_deg = round(float(rng.uniform(0.5, 2.0)), 2)
        p.flexion_variability_deg = round(float(rng.uniform(0.5, 2.0)), 2)
        p.gait_ramp_s = round(float(rng.uniform(0.8, 2.5)), 2)
        p.initiation_cadence_drop = round(float(rng.uniform(0.1, 0.3)), 2)
        p.turn_amplitude_drop = round(float(rng.uniform(0.1, 0.35)), 2)
        p.turn_s = round(float(rng.uniform(2.0, 4.0)), 2)
        p.com_phase_lag = round(float(0.5 * (0.10 + 0.08 * slow) + rng.normal(0.0, 0.005)), 3)
        p.bob_m = round(float(rng.uniform(0.012, 0.03)), 3)
        # vertical ground reaction force (Keller et al. 1996: peaks grow and the valley deepens with speed;
        # stance longer in slow walkers, Perry & Burnfield 2010)
        u = float(np.clip((speed - 0.5) / 1.0, 0.0, 1.0))
        p.grf_peak1 = round(float(1.02 + 0.23 * u + rng.normal(0.0, 0.03)), 3)
        p.grf_valley = round(float(min(0.93 - 0.28 * u + rng.normal(0.0, 0.03), p.grf_peak1 - 0.05)), 3)
        p.grf_peak2 = round(float(max(1.02 + 0.10 * u + rng.normal(0.0, 0.03), p.grf_valley + 0.05)), 3)
        p.stance_share = round(float(np.clip(0.65 - 0.05 * u + rng.normal(0.0, 0.01), 0.56, 0.7)), 3)
        # walkers at one speed push off more or less firmly and earlier or later (a stream spawned from rng,
        # which leaves rng's own draws, and so every other field of a cohort, as they were)
        own = rng.spawn(1)[0]
        vigour = float(np.clip(own.normal(0.0, 0.05), -0.1, 0.1))
        p.grf_peak1 = round(p.grf_peak1 + vigour, 3)
        p.grf_peak2 = round(p.grf_peak2 + vigour, 3)
        p.grf_valley = round(max(0.3, min(p.grf_valley - vigour, p.grf_peak1 - 0.05, p.grf_peak2 - 0.05)), 3)
        p.grf_peak2_at = round(float(own.uniform(0.75, 0.86)), 3)
        # heel-strike transient at the sacrum: small in slow (shuffling) walkers, late and variable
        p.heel_strike_acc_m_s2 = round(float(rng.uniform(0.5, 8.0) * (1.0 - 0.6 * slow)), 2)
        p.heel_strike_delay_s = round(float(rng.uniform(0.005, 0.03)), 4)
        p.heel_strike_jitter_s = round(float(rng.uniform(0.003, 0.012)), 4)
        p.heel_strike_cv = round(float(rng.uniform(0.2, 0.5)), 2)
        p.stance_hip_flexion_left_deg = round(float(rng.uniform(0.0, 5.0)), 2)
        p.stance_hip_flexion_right_deg = round(float(rng.uniform(0.0, 5.0)), 2)
        p.stance_tilt_deg = round(float(rng.uniform(-2.0, 2.0)), 2)
        p.stance_abduction_deg = round(float(rng.uniform(1.0, 4.0)), 2)
        p.sway_deg = round(float(rng.uniform(0.3, 1.2)), 2)
        p.calibration_fidget_deg = round(float(rng.uniform(3.0, 10.0)), 2) if rng.uniform() < 1 / 3 else 0.0
        p.soft_tissue = round(float(rng.uniform(0.5, 1.8)), 2)
        p.hip_rotation_amplitude_deg = round(float(rng.uniform(2.0, 6.0)), 2)
        p.stretch_hip_extension_left_deg = round(
            float(np.clip(p.peak_hip_extension_left_deg + rng.uniform(0, 6), 2, 30)), 2
        )
        p.stretch_hip_extension_right_deg = round(
            float(np.clip(p.peak_hip_extension_right_deg + rng.uniform(0, 6), 2, 30)), 2
        )
        return p
