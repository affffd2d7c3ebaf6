"""What a simulated sensor is and how it is worn.

Sensor frame convention used for the *nominal* mounting (before the random misalignment): the
sensor's x axis points along the segment towards superior, its z axis points out of the skin, and
y = z cross x. So a sacral (pelvis) or lumbar sensor has z posterior and y to the left; a lateral
left-thigh sensor has z to the left and y anterior; a lateral right-thigh sensor has z to the right and
y posterior; an anterior thigh sensor has z anterior and y to the right. Segment frames are ISB
(X anterior, Y superior, Z right). ``mounting`` quaternions are sensor-to-segment.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from hipback.processing import quaternion as qm
from hipback.processing.types import PLACEMENTS

ThighFace = Literal["lateral", "anterior"]


@dataclass
class SensorSpec:
    """One simulated IMU (units: Hz, deg, m, rad/s, m/s^2, uT, s).

    - ``placement``: one of ``pelvis``, ``thigh_left``, ``thigh_right``, ``lumbar_upper``.
    - ``kind``: ``"raw"`` (acc/gyr[/mag] streamed, hipback fuses) or ``"quat"`` (on-device 6D fusion
      quaternions sensor-to-world, with heading drift; ``quat_with_raw`` also adds acc/gyr).
    - ``rate_hz``: nominal output rate (50-200). ``clock_ppm``: device clock rate error.
      ``jitter_s``: std of the sampling instants around the nominal grid (clipped to 30 % of a period).
    - ``misalignment_deg``: the mounting is the nominal face orientation times a random rotation about
      a random axis with angle uniform in [0, misalignment_deg].
    - ``thigh_face``: thigh sensors on the ``lateral`` or ``anterior`` surface.
    - ``position``: sensor position in the segment frame (m, from the segment origin: the pelvis centre
      for the pelvis, the hip joint centre for a thigh, the L5/S1 level for the lumbar segment);
      ``None`` = a sensible default for the placement and face.
    - ``gyro_bias_rad_s``: std of the constant per-axis gyro bias; ``gyro_noise_rad_s`` and
      ``acc_noise_m_s2``: per-sample white noise std; ``acc_bias_m_s2``: per-axis constant bias std.
    - ``has_mag``: add a magnetometer (earth field ``mag_field_ut`` with inclination ``mag_inclination_deg``,
      north at a random heading); ``mag_noise_ut``; ``mag_disturbance_ut``: amplitude of slowly varying
      disturbances (e.g. furniture), 0 = clean field.
    - ``heading_drift_deg_min``: for quat devices, the magnitude of the yaw drift rate about world vertical
      (sign random) plus a slowly varying random yaw (~30 s correlation) with a std of
      ``heading_walk_deg`` times sqrt(session minutes);
      ``inclination_noise_deg``: slowly varying tilt error of the on-device fusion.
    - ``soft_tissue_deg``: amplitude of the wobble of the sensor on the soft tissue after each initial
      contact of its side (``None`` = 0.5 deg on thighs, none on the pelvis and lumbar sensors);
      ``impact_acc_m_s2``: peak of the heel-strike shake of the sensor (``None`` = 10 m/s^2 on thighs,
      none elsewhere); ``impact_delay_s``: extra delay of that shake after the contact (s).
    - Datasheet error terms (0 / ``None`` = off, the easy sensor): ``gyro_scale_error`` and
      ``acc_scale_error`` (std of the per-axis sensitivity error, fraction), ``cross_axis`` (std of each
      off-diagonal sensitivity, fraction), ``gyro_bias_instability_rad_s`` (std of a slow gyro bias wander,
      ~60 s correlation), ``gyro_range_rad_s`` / ``acc_range_m_s2`` (full scale: outputs saturate there).
      ``error_profile`` names the datasheet profile the values came from
      (:mod:`hipback.simulator.device_profiles`).
    - ``device``: ``"simulated"`` or the protocol a virtual BLE device will speak it as.
    """

    placement: str
    kind: Literal["raw", "quat"] = "raw"
    rate_hz: float = 100.0
    has_mag: bool = False
    misalignment_deg: float = 20.0
    thigh_face: ThighFace = "lateral"
    position: tuple[float, float, float] | None = None
    gyro_bias_rad_s: float = 0.01
    gyro_noise_rad_s: float = 0.005
    acc_noise_m_s2: float = 0.03
    acc_bias_m_s2: float = 0.02
    mag_noise_ut: float = 0.5
    mag_field_ut: float = 48.0
    mag_inclination_deg: float = 65.0
    mag_disturbance_ut: float = 0.0
    jitter_s: float = 0.0005
    clock_ppm: float = 0.0
    heading_drift_deg_min: float = 1.0
    heading_walk_deg: float = 0.5
    inclination_noise_deg: float = 0.3
    quat_with_raw: bool = True
    soft_tissue_deg: float | None = None
    impact_acc_m_s2: float | None = None
    impact_delay_s: float = 0.0
    device: str = "simulated"
    extra: dict[str, Any] = field(default_factory=dict)
    gyro_scale_error: float = 0.0
    acc_scale_error: float = 0.0
    cross_axis: float = 0.0
    gyro_bias_instability_rad_s: float = 0.0
    gyro_range_rad_s: float | None = None
    acc_range_m_s2: float | None = None
    error_profile: str = ""

    def __post_init__(self) -> None:
        if self.placement not in PLACEMENTS:
            raise ValueError(f"unknown placement {self.placement!r}; use one of {', '.join(PLACEMENTS)}")
        if self.kind not in ("raw", "quat"):
            raise ValueError(f"sensor kind must be 'raw' or 'quat', not {self.kind!r}")
        if not 1.0 <= self.rate_hz <= 1000.0:
            raise ValueError(f"{self.placement}: rate_hz {self.rate_hz} outside 1-1000 Hz")
        if self.thigh_face not in ("lateral", "anterior"):
            raise ValueError(f"thigh_face must be 'lateral' or 'anterior', not {self.thigh_face!r}")

    @property
    def segment(self) -> str:
        """The segment the sensor is strapped to (same names as the placements)."""
        return self.placement

    def soft_tissue_amplitude_deg(self) -> float:
        if not self.placement.startswith("thigh"):
            return 0.0 if self.soft_tissue_deg is None else float(self.soft_tissue_deg)
        return 0.5 if self.soft_tissue_deg is None else float(self.soft_tissue_deg)

    def impact_amplitude_m_s2(self) -> float:
        if not self.placement.startswith("thigh"):
            return 0.0 if self.impact_acc_m_s2 is None else float(self.impact_acc_m_s2)
        return 10.0 if self.impact_acc_m_s2 is None else float(self.impact_acc_m_s2)

    def position_on_segment(self) -> np.ndarray:
        """Sensor position in the segment frame (m)."""
        if self.position is not None:
            return np.asarray(self.position, dtype=float)
        if self.placement == "pelvis":
            return np.array([-0.11, 0.06, 0.0])  # sacrum: posterior, slightly above the hip centres
        if self.placement == "lumbar_upper":
            return np.array([-0.06, 0.16, 0.0])  # L1/T12 spinous process, above the L5/S1 origin
        side = 1.0 if self.placement == "thigh_right" else -1.0
        if self.thigh_face == "lateral":
            return np.array([0.0, -0.20, side * 0.08])
        return np.array([0.075, -0.20, 0.0])

    def nominal_mounting(self) -> np.ndarray:
        """Sensor-to-segment quaternion of a perfectly placed sensor (see module docstring)."""
        x_axis = np.array([0.0, 1.0, 0.0])  # sensor x along the segment, superior
        if self.placement in ("pelvis", "lumbar_upper"):
            z_axis = np.array([-1.0, 0.0, 0.0])
        elif self.thigh_face == "anterior":
            z_axis = np.array([1.0, 0.0, 0.0])
        elif self.placement == "thigh_right":
            z_axis = np.array([0.0, 0.0, 1.0])
        else:
            z_axis = np.array([0.0, 0.0, -1.0])
        y_axis = np.cross(z_axis, x_axis)
        return qm.canonical(qm.from_matrix(np.column_stack([x_axis, y_axis, z_axis])))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["position"] = [float(v) for v in self.position_on_segment()]
        return d


def default_sensors(
    placements: tuple[str, ...] = PLACEMENTS, kind: Literal["raw", "quat"] = "raw", rate_hz: float = 100.0
) -> list[SensorSpec]:
    """One sensor per placement with default errors (lateral thighs, 20 deg maximum misalignment)."""
    return [SensorSpec(placement=p, kind=kind, rate_hz=rate_hz) for p in placements]


def ideal_sensors(placements: tuple[str, ...] = PLACEMENTS, rate_hz: float = 200.0) -> list[SensorSpec]:
    """Error-free raw sensors (no noise, bias, jitter or misalignment): for consistency checks."""
    return [
        SensorSpec(
            placement=p,
            rate_hz=rate_hz,
            misalignment_deg=0.0,
            gyro_bias_rad_s=0.0,
            gyro_noise_rad_s=0.0,
            acc_noise_m_s2=0.0,
            acc_bias_m_s2=0.0,
            mag_noise_ut=0.0,
            jitter_s=0.0,
            heading_drift_deg_min=0.0,
            heading_walk_deg=0.0,
            inclination_noise_deg=0.0,
            soft_tissue_deg=0.0,
            impact_acc_m_s2=0.0,
        )
        for p in placements
    ]
