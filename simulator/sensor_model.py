"""Sensor signals from the segment kinematics, with realistic errors.

For a sensor with mounting ``m`` (sensor-to-segment) on a segment with orientation ``q_seg`` (segment-to-
world) at position ``r`` in the segment frame:

- true orientation ``q_s = q_seg * m`` (sensor-to-world);
- gyroscope = angular velocity of ``q_s`` in the sensor frame (``2 vec(conj(q_s) dq_s/dt)``) + constant
  bias + white noise;
- accelerometer = specific force in the sensor frame ``R_s^T (a - g)`` with ``g = (0, 0, -9.81)`` and ``a``
  the second derivative of the sensor position ``p_seg + R_seg r`` (so it contains the centripetal and
  tangential terms) + constant bias + white noise;
- magnetometer (optional) = earth field (``mag_field_ut``, inclination ``mag_inclination_deg`` downwards,
  north at a random heading) plus slowly varying disturbances, in the sensor frame, + noise;
- on-device fusion quaternions (``kind="quat"``, 6D fusion without magnetometer): the true orientation
  seen from a device world frame whose heading differs by a random offset and drifts (linear rate plus a
  random walk) about world vertical, plus a slowly varying inclination error:
  ``q_out = Rz(yaw0 + drift(t)) * N(t) * q_s``.

Derivatives come from a fine uniform grid (default 1 kHz, second-order central differences) and are
interpolated to the sensor's sampling instants (uniform at ``rate_hz`` scaled by ``clock_ppm``, starting at a
random offset within the first period, with Gaussian timing jitter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hipback.processing import quaternion as qm
from hipback.processing.types import SensorStream
from hipback.simulator import body
from hipback.simulator.motion import smooth_noise
from hipback.simulator.sensor_spec import SensorSpec
from hipback.simulator.soft_tissue import SoftTissueArtefact

FloatArray = NDArray[np.float64]
GRAVITY = 9.81


def draw_mounting(spec: SensorSpec, rng: np.random.Generator) -> FloatArray:
    """Sensor-to-segment quaternion: a random rotation (angle uniform in [0, misalignment_deg] about a
    random axis, expressed in the segment frame) applied to the nominal mounting."""
    axis = rng.standard_normal(3)
    axis /= np.linalg.norm(axis)
    angle = np.radians(spec.misalignment_deg) * rng.uniform(0.0, 1.0)
    return qm.canonical(qm.multiply(qm.from_axis_angle(axis, angle), spec.nominal_mounting()))


def sample_times(spec: SensorSpec, duration: float, rng: np.random.Generator) -> FloatArray:
    period = 1.0 / (spec.rate_hz * (1.0 + spec.clock_ppm * 1e-6))
    t0 = rng.uniform(0.0, period)
    n = int(np.floor((duration - t0) / period)) + 1
    t = t0 + np.arange(n) * period
    if spec.jitter_s > 0:
        t = t + np.clip(rng.normal(0.0, spec.jitter_s, n), -0.3 * period, 0.3 * period)
    return t[(t >= 0.0) & (t <= duration)]


def _interp(t_fine: FloatArray, values: FloatArray, t: FloatArray) -> FloatArray:
    return np.column_stack([np.interp(t, t_fine, values[:, k]) for k in range(values.shape[1])])


@dataclass
class SensorTruth:
    """Error-free sensor signals at the stream's sample times (for tests and benchmarks)."""

    t: FloatArray
    quat: FloatArray  # true sensor-to-world
    position: FloatArray  # sensor position in the world (m)
    gyr: FloatArray  # rad/s, sensor frame
    acc: FloatArray  # specific force m/s^2, sensor frame
    mounting: FloatArray


def sensor_signals(
    spec: SensorSpec,
    t_fine: FloatArray,
    q_seg: FloatArray,
    omega_seg: FloatArray,
    origin: FloatArray,
    mounting: FloatArray,
    t: FloatArray,
    wobble: Wobble | None = None,
    sta: SoftTissueArtefact | None = None,
) -> SensorTruth:
    """Error-free signals of one sensor at times ``t`` from fine-grid segment kinematics (``wobble``:
    the heel-strike shake of the sensor on the soft tissue, see :class:`Wobble`; ``sta``: the soft-tissue
    artefact, see :mod:`hipback.simulator.soft_tissue`, applied between segment and mounting)."""
    dt = t_fine[1] - t_fine[0]
    r = spec.position_on_segment()
    if sta is not None:
        pos_fine = origin + body.rotate_fast(q_seg, r + sta.disp)
        q_seg = qm.multiply(q_seg, qm.from_rotvec(sta.rotvec))
        omega_seg = body.angular_velocity(q_seg, dt)
    else:
        pos_fine = origin + body.rotate_fast(q_seg, r)
    if wobble is not None:
        pos_fine += body.rotate_fast(q_seg, wobble.direction) * wobble.displacement[:, None]
    acc_world = _interp(t_fine, body.second_derivative(pos_fine, dt), t)
    acc_world[:, 2] += GRAVITY
    quat = qm.multiply(qm.slerp(t_fine, q_seg, t), mounting)
    gyr = body.rotate_fast(qm.conjugate(mounting), _interp(t_fine, omega_seg, t))
    if wobble is not None:
        w = qm.from_axis_angle(wobble.axis, np.interp(t, t_fine, wobble.theta))
        quat = qm.multiply(quat, w)
        gyr = body.rotate_fast(qm.conjugate(w), gyr) + np.outer(
            np.interp(t, t_fine, wobble.theta_dot), wobble.axis
        )
    quat = qm.canonical(quat)
    return SensorTruth(
        t=t,
        quat=quat,
        position=_interp(t_fine, pos_fine, t),
        gyr=gyr,
        acc=body.rotate_fast(qm.conjugate(quat), acc_world),
        mounting=mounting,
    )


@dataclass
class Wobble:
    """Motion of a sensor on the soft tissue, on the fine grid: a rotation ``theta`` (rad, rate
    ``theta_dot``) about the sensor-frame ``axis`` applied after the mounting, and a displacement
    ``displacement`` (m) along the segment-frame unit vector ``direction``."""

    axis: FloatArray
    theta: FloatArray
    theta_dot: FloatArray
    direction: FloatArray
    displacement: FloatArray


def soft_tissue_wobble(
    spec: SensorSpec,
    motion_t: FloatArray,
    phase: FloatArray,
    envelope: FloatArray,
    f0: float,
    rng: np.random.Generator,
    left_offset: float = 0.5,
    sizes: tuple[FloatArray, FloatArray] | None = None,
) -> Wobble | None:
    """Transient of a sensor on soft tissue after each initial contact (None if disabled): a damped ~12 Hz
    rotation of about ``soft_tissue_deg`` and a damped ~15 Hz shake mostly along the segment with a peak
    acceleration of about ``impact_acc_m_s2`` (the impact travelling up the leg), both the ringing of the
    wobbling soft tissue struck by the heel strike (:func:`motion.impact_response`: causal, starting at
    the contact, ``impact_delay_s`` later than on a thigh next to the foot, first in the direction of the
    blow, decaying within ~0.1 s). A thigh sensor shakes after the contacts of its side, a sacral or lumbar
    one after both sides' contacts. ``sizes``: each contact's size (right, left;
    :func:`motion.contact_sizes`), which scales its shake; None: every contact alike. (The Gaussian-windowed
    wavelets used before shook the sensor some 20-30 ms *before* the contact, lobes of -0.6 of the peak,
    which no real recording shows.)"""
    amp = np.radians(spec.soft_tissue_amplitude_deg())
    impact = spec.impact_amplitude_m_s2()
    if amp <= 0 and impact <= 0:
        return None
    from hipback.simulator.motion import contact_index, ic_wavelet_time, impact_pulses, impact_response

    ph = np.nan_to_num(phase, nan=0.0)
    height = np.asarray(envelope, dtype=float)
    if spec.placement.startswith("thigh"):
        left = spec.placement == "thigh_left"
        offset = left_offset if left else 0.0
        since_ic = ic_wavelet_time(ph, f0, offset=offset, per_stride=1)
        if sizes is not None:
            size = sizes[1] if left else sizes[0]
            height = height * size[contact_index(ph, offset, len(size))]
    else:  # both sides' contacts: the nearest one
        a = ic_wavelet_time(ph, f0, offset=0.0, per_stride=1)
        b = ic_wavelet_time(ph, f0, offset=left_offset, per_stride=1)
        right = np.abs(a) <= np.abs(b)
        since_ic = np.where(right, a, b)
        if sizes is not None:
            height = height * np.where(right, sizes[0][contact_index(ph, 0.0, len(sizes[0]))],
                                       sizes[1][contact_index(ph, left_offset, len(sizes[1]))])
    since_ic = since_ic - spec.impact_delay_s
    dt = float(motion_t[1] - motion_t[0])
    pulses = impact_pulses(since_ic, height)
    theta = amp * impact_response(pulses, dt, 12.0, peak="displacement")
    axis = rng.standard_normal(3)
    axis /= np.linalg.norm(axis)
    disp = impact * impact_response(pulses, dt, 15.0)
    direction = np.array([0.3 * rng.standard_normal(), 1.0, 0.3 * rng.standard_normal()])
    direction /= np.linalg.norm(direction)
    return Wobble(axis, theta, np.gradient(theta, motion_t[1] - motion_t[0]), direction, disp)


def _device_errors(
    spec: SensorSpec,
    truth: SensorTruth,
    gyr: FloatArray,
    acc: FloatArray,
    errors: dict[str, Any],
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray]:
    """Scale-factor and cross-axis errors, slow gyro bias wander and range saturation (datasheet terms, see
    :mod:`hipback.simulator.device_profiles`). Draws from its own random stream, so sensors without these
    errors are unchanged."""
    if not (
        spec.gyro_scale_error
        or spec.acc_scale_error
        or spec.cross_axis
        or spec.gyro_bias_instability_rad_s
        or spec.gyro_range_rad_s
        or spec.acc_range_m_s2
    ):
        return gyr, acc
    n = len(truth.t)
    for name, true, scale_std in (
        ("gyro", truth.gyr, spec.gyro_scale_error),
        ("acc", truth.acc, spec.acc_scale_error),
    ):
        m = np.diag(rng.normal(0.0, scale_std, 3)) if scale_std else np.zeros((3, 3))
        if spec.cross_axis:
            off = rng.normal(0.0, spec.cross_axis, (3, 3))
            np.fill_diagonal(off, 0.0)
            m = m + off
        if m.any():
            delta = true @ m.T
            if name == "gyro":
                gyr = gyr + delta
            else:
                acc = acc + delta
            errors[f"{name}_sensitivity_error"] = m.tolist()
    if spec.gyro_bias_instability_rad_s and n > 1:
        wander = spec.gyro_bias_instability_rad_s * np.column_stack(
            [smooth_noise(rng, truth.t, 60.0) for _ in range(3)]
        )
        gyr = gyr + wander
    if spec.gyro_range_rad_s:
        gyr = np.clip(gyr, -spec.gyro_range_rad_s, spec.gyro_range_rad_s)
    if spec.acc_range_m_s2:
        acc = np.clip(acc, -spec.acc_range_m_s2, spec.acc_range_m_s2)
    return gyr, acc


def make_stream(
    spec: SensorSpec,
    truth: SensorTruth,
    rng: np.random.Generator,
    error_rng: np.random.Generator | None = None,
) -> tuple[SensorStream, dict[str, Any]]:
    """Add the sensor's errors to its error-free signals and package them as a :class:`SensorStream`.

    ``error_rng`` draws the datasheet terms (scale, cross-axis, bias wander), separately from ``rng`` so
    sensors without them produce the same streams as before these terms existed.

    Returns the stream and the drawn error values (for the ground truth: gyro/acc bias, heading offset
    and drift of quat devices, magnetic north)."""
    t = truth.t
    n = len(t)
    gyro_bias = rng.normal(0.0, spec.gyro_bias_rad_s, 3)
    acc_bias = rng.normal(0.0, spec.acc_bias_m_s2, 3)
    gyr = truth.gyr + gyro_bias + rng.normal(0.0, spec.gyro_noise_rad_s, (n, 3))
    acc = truth.acc + acc_bias + rng.normal(0.0, spec.acc_noise_m_s2, (n, 3))
    errors: dict[str, Any] = {"gyro_bias_rad_s": gyro_bias.tolist(), "acc_bias_m_s2": acc_bias.tolist()}
    # no ground truth (mounting, heading offsets) in the stream's meta: it ends up in recording files
    meta: dict = {"simulated": True, "spec": spec.to_dict()}
    mag = None
    if spec.has_mag:
        north = rng.uniform(-np.pi, np.pi)
        inc = np.radians(spec.mag_inclination_deg)
        field = spec.mag_field_ut * np.array(
            [np.cos(inc) * np.cos(north), np.cos(inc) * np.sin(north), -np.sin(inc)]
        )
        b_world = np.broadcast_to(field, (n, 3)).copy()
        if spec.mag_disturbance_ut > 0:
            b_world += spec.mag_disturbance_ut * np.column_stack(
                [smooth_noise(rng, t, 20.0) for _ in range(3)]
            )
        mag = qm.rotate(qm.conjugate(truth.quat), b_world) + rng.normal(0.0, spec.mag_noise_ut, (n, 3))
        errors["mag_north_heading_rad"] = float(north)
    quat = None
    if spec.kind == "quat":
        minutes = t / 60.0
        rate = np.radians(spec.heading_drift_deg_min) * rng.choice([-1.0, 1.0])
        walk = (
            np.radians(spec.heading_walk_deg)
            * np.sqrt(max(t[-1] / 60.0, 1e-9))
            * (smooth_noise(rng, t, 30.0) if n > 1 else np.zeros(n))
        )
        yaw0 = rng.uniform(-np.pi, np.pi)
        yaw = yaw0 + rate * minutes + walk
        drift = qm.from_axis_angle(np.array([0.0, 0.0, 1.0]), yaw)
        inc_err = np.radians(spec.inclination_noise_deg) * np.column_stack(
            [smooth_noise(rng, t, 2.0), smooth_noise(rng, t, 2.0), np.zeros(n)]
        )
        quat = qm.canonical(qm.multiply(qm.multiply(drift, qm.from_rotvec(inc_err)), truth.quat))
        errors["heading_offset_rad"] = float(yaw0)
        errors["heading_drift_rad_min"] = float(rate)
    gyr, acc = _device_errors(spec, truth, gyr, acc, errors, error_rng or np.random.default_rng([0, 3]))
    keep_raw = spec.kind == "raw" or spec.quat_with_raw
    return SensorStream(
        placement=spec.placement,
        kind=spec.kind,
        t=t,
        rate_hz=spec.rate_hz,
        quat=quat,
        acc=acc if keep_raw else None,
        gyr=gyr if keep_raw else None,
        mag=mag,
        seq=np.arange(n, dtype=np.int64),
        device=spec.device,
        meta=meta,
    ), errors
