"""Sensor error models of the supported devices, from their datasheets.

Each profile turns datasheet figures into :class:`hipback.simulator.sensor_spec.SensorSpec` error terms.
Conversions: white noise std per sample = noise density x sqrt(bandwidth), with the bandwidth taken as half
the output rate (the devices low-pass their outputs near Nyquist); a "typical" (1 sigma) datasheet value is
used as the std, a +- tolerance without a sigma statement as 3 sigma (Bosch's convention: typical = 1 sigma,
min/max = 3 sigma, stated by Bosch Sensortec support for the BMI2xx family). Turn-on biases are what is
left after the device's own offset calibration; the on-device fusion of quaternion devices also estimates
its gyro bias, so their residual is smaller.

Sources. [S]: the figure was read in the cited document for this project (25 Nov 2026: the datasheet
tables as published, via the pages named); [A]: assumed, not found in a readable source, with the reason
for the value used:

- **Movella DOT** (Movella DOT user manual XD0502P; its sensor tables could not be read here):
  gyroscope +-2000 deg/s, noise density 0.007 deg/s/sqrt(Hz), in-run bias stability 10 deg/h;
  accelerometer +-16 g, noise density 120 ug/sqrt(Hz) [A: these are the Xsens MTi-1 series figures
  (table "Characteristics of IMU Xsens MTi-1 sensors", Transactions on Aerospace Research 2023,
  doi:10.2478/tar-2023-0022 [S]); the DOT is Xsens' consumer sensor with the same range and filter, its
  own tables are assumed equal]; factory calibrated ("making it more accurate repeatable and robust",
  manual section 3 [S]); sensitivity and axis alignment residuals 0.2 % [A: no figure published for the
  DOT; the MTi-1 non-linearity 0.1-0.5 % FS [S] bounds it]; inertial data sampled at 800 Hz inside and
  integrated to the 60 Hz output (manual section 3.1 [S]); on-device Xsens fusion streamed 1-60 Hz live,
  120 Hz recorded (docs/devices.md [S]); sample times from the sensor clock (``SampleTimeFine``, 1 MHz,
  u32, manual section 4.2.5 [S]), so the timing jitter is small.
- **WitMotion WT901BLE / WT901BLECL** (InvenSense MPU-9250 inside; MPU-9250 product specification
  PS-MPU-9250A-01 rev 1.0, tables 1 and 2 [S]): gyroscope +-2000 deg/s, rate noise spectral density
  0.01 deg/s/sqrt(Hz), initial zero-rate output tolerance +-5 deg/s (WitMotion's own calibration removes
  most of it: residual 0.5 deg/s [A]), sensitivity scale factor tolerance +-3 %, cross-axis sensitivity
  +-2 %; accelerometer +-16 g, noise power spectral density 300 ug/sqrt(Hz), initial sensitivity tolerance
  +-3 %, zero-g initial calibration tolerance +-60 mg (X, Y) and +-80 mg (Z), cross-axis +-2 % [S]; no
  factory calibration of sensitivity beyond the chip's. Output 0.2-200 Hz with no timestamp in the packet
  (docs/devices.md [S]): the host stamps arrivals, so sample times jitter by milliseconds [A: 3 ms, a BLE
  connection-event scale]. On-device Euler angles (converted to quaternions), heading from its own fusion.
- **DIY BMI270** (Bosch BMI270 datasheet BST-BMI270-DS000, key figures [S]): gyroscope +-125..+-2000
  deg/s, noise density 0.007 deg/s/sqrt(Hz) (performance mode), zero-rate offset +-0.5 deg/s (a typical
  value, i.e. 1 sigma by Bosch's convention, stated by Bosch Sensortec in its community forum [S]);
  accelerometer +-2..+-16 g, noise density 160 ug/sqrt(Hz) (0.16 mg) [S]; zero-g offset +-20 mg,
  sensitivity error ~+-0.4 % after the gyro's CRT self-calibration and cross-axis ~+-1 % [A: the
  datasheet's own table could not be read here; values of the BMI2xx family's class]. DIY firmware
  commonly configures +-8 g / +-1000 deg/s.
- **DIY LSM6DSO** (ST LSM6DSO datasheet DS12140 rev 2; its noise notes, p. 10 [S]): gyroscope noise
  density 3.8 mdps/sqrt(Hz), accelerometer noise 70 ug/sqrt(Hz) (high-performance mode, independent of
  the output rate, notes 6 and 8 [S] - the figures themselves [A: table 2 not readable here, the values of
  ST's product summary]); zero-rate level +-1 deg/s, zero-g level +-20 mg, sensitivity tolerance +-1 %,
  cross-axis ~+-1 % [A, the same]; 104 Hz output rate (one of its ODRs, p. 10 [S]).

The magnetometer and the on-device fusion errors (heading drift, inclination noise) keep the
:class:`SensorSpec` defaults unless stated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hipback.simulator.sensor_spec import SensorSpec

G = 9.81
DPS = math.pi / 180.0
UG = 1e-6 * G

#: name -> datasheet-derived values (SI units) and stream settings.
DEVICE_PROFILES: dict[str, dict[str, Any]] = {
    "movella_dot": {
        "kind": "quat",
        "rate_hz": 60.0,
        "gyro_noise_density": 0.007 * DPS,
        "acc_noise_density": 120.0 * UG,
        "gyro_bias_rad_s": 0.1 * DPS,
        "gyro_bias_instability_rad_s": 10.0 / 3600.0 * DPS,
        "acc_bias_m_s2": 0.005 * G,
        "gyro_scale_error": 0.002,
        "acc_scale_error": 0.002,
        "cross_axis": 0.002,
        "gyro_range_rad_s": 2000.0 * DPS,
        "acc_range_m_s2": 16.0 * G,
        "jitter_s": 0.0002,
        "heading_drift_deg_min": 1.0,
        "inclination_noise_deg": 0.3,
    },
    "witmotion_wt901ble": {
        "kind": "quat",
        "rate_hz": 100.0,
        "gyro_noise_density": 0.01 * DPS,
        "acc_noise_density": 300.0 * UG,
        "gyro_bias_rad_s": 0.5 * DPS,
        "gyro_bias_instability_rad_s": 0.05 * DPS,
        "acc_bias_m_s2": 0.02 * G,  # +-60 mg (X, Y; Z +-80 mg) as 3 sigma
        "gyro_scale_error": 0.01,  # +-3 % as 3 sigma
        "acc_scale_error": 0.01,
        "cross_axis": 0.007,  # +-2 % as 3 sigma
        "gyro_range_rad_s": 2000.0 * DPS,
        "acc_range_m_s2": 16.0 * G,
        "jitter_s": 0.003,
        "heading_drift_deg_min": 3.0,
        "inclination_noise_deg": 0.6,
    },
    "diy_bmi270": {
        "kind": "raw",
        "rate_hz": 100.0,
        "gyro_noise_density": 0.007 * DPS,
        "acc_noise_density": 160.0 * UG,
        "gyro_bias_rad_s": 0.5 * DPS,
        "gyro_bias_instability_rad_s": 0.02 * DPS,
        "acc_bias_m_s2": 0.02 * G,
        "gyro_scale_error": 0.004,
        "acc_scale_error": 0.005,
        "cross_axis": 0.004,
        "gyro_range_rad_s": 1000.0 * DPS,
        "acc_range_m_s2": 8.0 * G,
        "jitter_s": 0.0005,
    },
    "diy_lsm6dso": {
        "kind": "raw",
        "rate_hz": 104.0,
        "gyro_noise_density": 0.0038 * DPS,
        "acc_noise_density": 70.0 * UG,
        "gyro_bias_rad_s": 0.33 * DPS,  # +-1 deg/s as 3 sigma
        "gyro_bias_instability_rad_s": 0.02 * DPS,
        "acc_bias_m_s2": 0.0067 * G,  # +-20 mg as 3 sigma
        "gyro_scale_error": 0.0033,
        "acc_scale_error": 0.0033,
        "cross_axis": 0.004,
        "gyro_range_rad_s": 1000.0 * DPS,
        "acc_range_m_s2": 8.0 * G,
        "jitter_s": 0.0005,
    },
}

#: Realistic heel-strike shake of a thigh sensor strapped on soft tissue (see
#: :mod:`hipback.simulator.soft_tissue`): rotation amplitude (deg) and peak acceleration (m/s^2) ranges.
THIGH_WOBBLE_DEG = (0.8, 2.5)
THIGH_IMPACT_M_S2 = (8.0, 25.0)
#: The same for a sacral or upper-lumbar sensor (less soft tissue over bone, further from the foot: the
#: impact arrives attenuated and 10-50 ms later; "a few mm and 1-3 deg" of sacral STA, Leardini 2005 and
#: Peters 2010; the delay and damping of the transient from foot to trunk, Whittle 1999 [B]). The peak
#: acceleration range: the real recordings' sacral transients measure 1.9 (Movella DOT walk) and 2.5-2.7
#: m/s^2 (qmt) per contact (median, ``bench/realism.py``), where 2-8 m/s^2 gave the virtual walkers 2.2 /
#: 3.4 / 5.2 (p10 / median / p90) measured the same way, and 1-4 m/s^2 gives 1.7 / 2.7 / 4.3.
TRUNK_WOBBLE_DEG = (0.2, 0.8)
TRUNK_IMPACT_M_S2 = (1.0, 4.0)
TRUNK_IMPACT_DELAY_S = (0.01, 0.05)
#: A thigh sensor on a loose strap or over thick soft tissue (``make_cohort(..., loose_straps=share)``): the
#: qmt full-body recording's thigh sensors (``../shared/data/qmt-full-body``, measured by
#: ``bench/realism.py``, at the feet's heel strikes) shake 6.8 deg (interquartile 5.4-8.1) after each heel
#: strike, with transients of 31 m/s^2 (22-46) and 400 deg/s, where the Movella DOT walk's thighs shake
#: 1.4 deg and the ranges above give 0.9-1.7 deg and 7-11 m/s^2 (per-walker medians, p10-p90) measured the
#: same way; these ranges give about 4-9 deg and 18-35 m/s^2 measured so (the measure sees about 0.85 of
#: the rotation amplitude and 0.45 of the peak acceleration).
LOOSE_THIGH_WOBBLE_DEG = (5.0, 10.0)
LOOSE_THIGH_IMPACT_M_S2 = (40.0, 80.0)


def profile_sensor(
    placement: str,
    profile: str,
    rng: np.random.Generator | None = None,
    *,
    rate_hz: float | None = None,
    **overrides: Any,
) -> SensorSpec:
    """A :class:`SensorSpec` with the datasheet errors of ``profile`` (a key of :data:`DEVICE_PROFILES`).

    With ``rng``, the strap's soft-tissue shake is drawn: thighs from :data:`THIGH_WOBBLE_DEG` /
    :data:`THIGH_IMPACT_M_S2`, sacral and lumbar sensors from :data:`TRUNK_WOBBLE_DEG` /
    :data:`TRUNK_IMPACT_M_S2` / :data:`TRUNK_IMPACT_DELAY_S`; ``overrides`` set any other :class:`SensorSpec`
    field.
    """
    if profile not in DEVICE_PROFILES:
        raise KeyError(f"unknown device profile {profile!r}; valid: {', '.join(sorted(DEVICE_PROFILES))}")
    d = DEVICE_PROFILES[profile]
    rate = float(rate_hz or d["rate_hz"])
    bandwidth = rate / 2.0
    kw: dict[str, Any] = {
        "placement": placement,
        "kind": d["kind"],
        "rate_hz": rate,
        "gyro_noise_rad_s": d["gyro_noise_density"] * math.sqrt(bandwidth),
        "acc_noise_m_s2": d["acc_noise_density"] * math.sqrt(bandwidth),
        "gyro_bias_rad_s": d["gyro_bias_rad_s"],
        "acc_bias_m_s2": d["acc_bias_m_s2"],
        "gyro_scale_error": d["gyro_scale_error"],
        "acc_scale_error": d["acc_scale_error"],
        "cross_axis": d["cross_axis"],
        "gyro_bias_instability_rad_s": d["gyro_bias_instability_rad_s"],
        "gyro_range_rad_s": d["gyro_range_rad_s"],
        "acc_range_m_s2": d["acc_range_m_s2"],
        "jitter_s": d["jitter_s"],
        "error_profile": profile,
    }
    for k in ("heading_drift_deg_min", "inclination_noise_deg"):
        if k in d:
            kw[k] = d[k]
    if rng is not None and placement.startswith("thigh"):
        kw["soft_tissue_deg"] = float(rng.uniform(*THIGH_WOBBLE_DEG))
        kw["impact_acc_m_s2"] = float(rng.uniform(*THIGH_IMPACT_M_S2))
    elif rng is not None:
        kw["soft_tissue_deg"] = float(rng.uniform(*TRUNK_WOBBLE_DEG))
        kw["impact_acc_m_s2"] = float(rng.uniform(*TRUNK_IMPACT_M_S2))
        kw["impact_delay_s"] = float(rng.uniform(*TRUNK_IMPACT_DELAY_S))
    kw.update(overrides)
    return SensorSpec(**kw)
