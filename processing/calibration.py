"""Sensor-to-segment calibration without an external reference (standing pose + functional movement).

Result per sensor: ``q_segment_in_sensor`` (the segment's ISB axes expressed in the sensor frame, as a
quaternion), so that ``q_segment_to_world = q_sensor_to_world * q_segment_in_sensor``; its conjugate is the
sensor-to-segment rotation. Plus a quality score 0..1 with the reasons and flags.

Method
------
1. **Vertical (segment Y, superior)** from a standing-still period: the world "up" seen in the sensor frame,
   ``conj(q) * e_z * q``, averaged over the window. Standing neutral is the zero reference, so this *is*
   the segment's superior axis. The window is found automatically (:class:`StandingFinder`: every worn
   sensor still -- angular speed below ``still_gyr_rad_s`` -- for at least ``min_standing_s``, with each
   sensor's x axis within 45 deg of vertical as the placement guide prescribes, which rules out sitting)
   or marked by the caller.
2. **Medio-lateral axis (segment Z, right)**, perpendicular to Y:

   * *Thighs, functional*: during walking / leg swings the thigh rotates mostly about its medio-lateral
     axis. The angular velocity (from the orientation, so quaternion and raw devices are treated alike) is
     projected onto the plane perpendicular to Y and its principal direction is taken (PCA over samples
     faster than ``motion_gyr_rad_s``). The eigenvalue ratio measures how planar the movement was. The
     angular velocity is low-passed first (:func:`swing_rate`, 6 Hz, zero phase): a sensor on a loose
     strap rings by several degrees after each heel strike, at rates above the swing's and about any axis,
     which would otherwise decide the principal direction and the sign below.
   * *Sign of the thigh axis* (which way is flexion). Two functional cues, both from the fact that flexion
     is the forward swing:
     (a) range asymmetry: gait and leg swings reach more flexion (~30-35 deg) than extension (~10-20 deg)
     from standing neutral, and (b) speed asymmetry: the forward swing is short (swing ~40 % of a stride)
     and fast, the backward rotation during stance is long and slow, so the largest angular rates are
     in the flexion direction. Score = ``2 * a + log(p99(w) / |p1(w)|)`` where a = (max + min) / (max - min)
     of the candidate inclination; positive means the candidate sign is flexion. The placement prior (sensor
     z out of the skin, face lateral or anterior, x roughly up; the simulator and Movella DOT convention)
     gives a second, independent sign. When the functional score is confident (``|score| > sign_margin``)
     it wins; if it disagrees with the prior of a *lateral* thigh sensor, the sensor sits on the other leg
     (flag ``wrong_side``); otherwise the prior is used and the quality drops.
   * *Uncertainty of the thigh axis* (``ml_uncertainty_deg``), a check between methods: the functional
     axis is compared with the normal of the plane the world vertical sweeps in the sensor frame during the
     same movement (:func:`plane_axis`, from inclinations only), and with the functional axis of each half of
     the movement; the largest disagreement is the uncertainty (above ``ml_disagreement_deg`` the quality
     drops). Without functional movement it is the misplacement tolerance (the prior's). The session
     processor lowers each stride's confidence by it.
   * *Pelvis, from walking* (:func:`walking_ml_axis`): the pelvis tilts twice per stride (once per step)
     but drops on the swing side (obliquity) and rotates once per stride (Perry & Burnfield 2010, pelvis
     in gait; ``docs/biomechanics.md``). So half a stride apart, the tilting part of the angular velocity
     (about the medio-lateral axis) repeats and the obliquity part (about the anterior axis) reverses:
     the eigenvector of the largest eigenvalue of the symmetrised lag covariance of the horizontal angular
     velocity at half the stride period (the lag, 0.7-2 s, where the covariance repeats best) is the
     medio-lateral axis, that of the most negative one the anterior axis. Uncertainty: the angle between
     the axes found on the even and on the odd stride-long blocks of the walk. Used when it is below
     ``ml_disagreement_deg`` and within ``misplacement_rad`` of the placement prior (beyond that the
     sensor or the walk is not what the method assumes: prior, flagged in the reasons); the sign is the
     prior's (the sensor's facing). A yaw error of the pelvis axis scales the sagittal tilt by cos(error)
     and mixes in sin(error) of the obliquity (up to +-2 deg at 30 deg with +-4 deg of obliquity).
   * *Pelvis without walking, upper lumbar*: placement prior, sensor face posterior (z out of the skin):
     anterior X = -(z projected onto the horizontal plane); the sign is the sensor's facing.
3. **Checks**: upside down (x pointing down: flagged, the angles are still right because Y is measured),
   wrong side (above), poor stillness, no functional movement (prior only), large misplacement (the
   functional axis more than 30 deg from the prior face's axis). Slipping during the session is checked by
   the pipeline (:mod:`hipback.processing.pipeline`, slip check: a later standing-still period in which one
   segment's inclination disagrees with the calibration while the other segments agree).
4. **Not used (yet)**: a forward lean to confirm the pelvis' facing (the prior decides it) and heading
   agreement between sensors (6D fusion gives each sensor its own heading).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hipback.processing import quaternion as quat
from hipback.processing.angles import GRAVITY, axes_vertical_components, sagittal_inclination
from hipback.processing.quaternion import FloatArray

E_Z = np.array([0.0, 0.0, 1.0])
SENSOR_X = np.array([1.0, 0.0, 0.0])
SENSOR_Z = np.array([0.0, 0.0, 1.0])


@dataclass
class SensorCalibration:
    """Calibration of one sensor (see module docstring). Angles in rad, times in s."""

    placement: str
    q_segment_in_sensor: FloatArray
    quality: float
    reasons: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    method: str = "standing+prior"
    window: tuple[float, float] = (math.nan, math.nan)
    face: str = ""
    ml_uncertainty_deg: float = math.nan

    @property
    def q_sensor_to_segment(self) -> FloatArray:
        """Rotation from sensor coordinates to segment coordinates (conjugate of ``q_segment_in_sensor``)."""
        return quat.conjugate(self.q_segment_in_sensor)

    def segment_quat(self, q_sensor: FloatArray) -> FloatArray:
        """Segment-to-world quaternions from sensor-to-world quaternions."""
        return quat.multiply(q_sensor, self.q_segment_in_sensor)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SensorCalibration:
        """The calibration :meth:`to_dict` wrote (e.g. read back from a ``summary.json``); ValueError with
        the field at fault when ``d`` is not one (the quaternion must be four finite numbers of norm 1 within
        1e-6, the quality a number in [0, 1])."""
        if not isinstance(d, Mapping):
            raise ValueError("a sensor calibration must be a mapping of its fields")
        placement = d.get("placement")
        if not isinstance(placement, str) or not placement:
            raise ValueError("placement is missing")
        q = d.get("q_segment_in_sensor")
        if (
            not isinstance(q, list | tuple) or len(q) != 4
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in q)
            or abs(math.sqrt(sum(float(v) ** 2 for v in q)) - 1.0) > 1e-6
        ):
            raise ValueError(f"{placement}: q_segment_in_sensor must be a unit quaternion of four numbers")
        quality = d.get("quality")
        if not isinstance(quality, int | float) or isinstance(quality, bool) or not 0.0 <= quality <= 1.0:
            raise ValueError(f"{placement}: quality must be a number between 0 and 1")
        texts = {k: d.get(k, []) for k in ("reasons", "flags")}
        for k, v in texts.items():
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ValueError(f"{placement}: {k} must be a list of texts")
        method, face = d.get("method", "standing+prior"), d.get("face", "")
        if not isinstance(method, str) or not isinstance(face, str):
            raise ValueError(f"{placement}: method and face must be texts")
        window = d.get("window_s", [math.nan, math.nan])
        unc = d.get("ml_uncertainty_deg")
        try:
            win = (float(window[0]), float(window[1]))
            ml_unc = math.nan if unc is None else float(unc)
        except (TypeError, ValueError, IndexError, KeyError):
            msg = f"{placement}: window_s must be two numbers, ml_uncertainty_deg a number"
            raise ValueError(msg) from None
        return cls(placement, np.array([float(v) for v in q]), float(quality), list(texts["reasons"]),
                   list(texts["flags"]), method, win, face, ml_unc)

    def to_dict(self) -> dict[str, object]:
        return {
            "placement": self.placement,
            "q_segment_in_sensor": [float(v) for v in self.q_segment_in_sensor],
            "quality": round(float(self.quality), 3),
            "reasons": list(self.reasons),
            "flags": list(self.flags),
            "method": self.method,
            "window_s": [float(self.window[0]), float(self.window[1])],
            "face": self.face,
            "ml_uncertainty_deg": (
                None if not math.isfinite(self.ml_uncertainty_deg) else round(self.ml_uncertainty_deg, 1)
            ),
        }


def acc_offset_tilt(
    q_segment_in_sensor: FloatArray, offset_cal: FloatArray, offset: FloatArray, gravity: float = GRAVITY
) -> FloatArray:
    """The sensor-frame rotation (quaternion, scalar first) that keeps a calibration valid when the
    accelerometer offset subtracted before the orientation filter changes (raw sensors,
    :class:`~hipback.processing.acc_bias.AccBiasEstimator`).

    At rest a 6D filter's world vertical in the sensor frame is the direction of ``a - b`` (``a`` the specific
    force, ``b`` the offset subtracted, m/s^2, sensor frame). The calibration measured the vertical ``u`` (the
    segment's superior axis, ``q_segment_in_sensor``'s y axis) with ``offset_cal`` subtracted, so its
    posture's specific force was ``a_c = gravity * u + offset_cal``; with ``offset`` subtracted the filter
    shows that posture's vertical as ``u' = normalize(a_c - offset) = normalize(gravity * u - delta_b)``,
    ``delta_b = offset - offset_cal``. Returns ``h``, the shortest rotation taking ``u`` to ``u'``:
    ``q_sensor * h`` shows the calibration posture as the calibration saw it, and every other posture is
    corrected relative to it (the offset's tilt differs between postures; the calibration absorbed only its
    own posture's). Exactly the identity when the offsets are equal."""
    if np.array_equal(np.asarray(offset, dtype=np.float64), np.asarray(offset_cal, dtype=np.float64)):
        return np.array([1.0, 0.0, 0.0, 0.0])
    u = quat.rotate(np.asarray(q_segment_in_sensor, dtype=np.float64), np.array([0.0, 1.0, 0.0]))
    u = u / np.linalg.norm(u)
    delta = np.asarray(offset, dtype=np.float64) - np.asarray(offset_cal, dtype=np.float64)
    v = gravity * u - delta
    v = v / np.linalg.norm(v)
    h = np.concatenate(([1.0 + float(u @ v)], np.cross(u, v)))
    return h / np.linalg.norm(h)


def up_in_sensor(q: FloatArray) -> FloatArray:
    """World up (+Z) expressed in the sensor frame, ``(N, 3)`` (the third row of the rotation matrix)."""
    return np.stack(axes_vertical_components(q), axis=-1)


def angular_velocity(q: FloatArray, rate_hz: float, q_prev: FloatArray | None = None) -> FloatArray:
    """Sensor-frame angular velocity (rad/s) from consecutive orientations on a uniform grid.

    Row k is the rotation from sample k-1 to k (``q_prev`` is sample -1; without it row 0 is NaN).
    Uses ``2 * vec(conj(q[k-1]) * q[k])`` (sign of the scalar part made positive), i.e. ``2 sin(a/2)`` for
    the rotation angle ``a`` per sample: within 0.1 % of the exact angle up to 0.15 rad per sample
    (15 rad/s at 100 Hz), and much cheaper than the exact logarithm.
    """
    q = np.asarray(q, dtype=np.float64)
    prev = np.empty_like(q)
    if len(q):
        prev[0] = np.nan if q_prev is None else q_prev
        prev[1:] = q[:-1]
    w0, x0, y0, z0 = prev[:, 0], -prev[:, 1], -prev[:, 2], -prev[:, 3]
    w1, x1, y1, z1 = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    dw = w0 * w1 - x0 * x1 - y0 * y1 - z0 * z1
    scale = np.where(dw < 0, -2.0, 2.0) * rate_hz
    dv = np.empty((len(q), 3))  # written column by column: cheaper than stacking for short chunks
    dv[:, 0] = (w0 * x1 + x0 * w1 + y0 * z1 - z0 * y1) * scale
    dv[:, 1] = (w0 * y1 - x0 * z1 + y0 * w1 + z0 * x1) * scale
    dv[:, 2] = (w0 * z1 + x0 * y1 - y0 * x1 + z0 * w1) * scale
    return dv


def swing_rate(omega: FloatArray, rate_hz: float, cutoff_hz: float) -> FloatArray:
    """The angular velocity ``omega`` (rad/s, ``(N, 3)`` on a uniform grid at ``rate_hz``) low-passed without
    phase shift (second-order Butterworth forward and backward, ``cutoff_hz``; NaN rows stay NaN and count as
    0 inside the filter): the segment's own swing without the ringing of the soft tissue under the strap.

    A thigh swings at the stride frequency and its first harmonics (about 1-5 Hz: joint kinematics of walking
    are low-passed at about 6 Hz, Winter 2009, *Biomechanics and Motor Control of Human Movement*, 4th ed.,
    ch. 3); a sensor on soft tissue rings at 10-20 Hz after each heel strike (Wakeling & Nigg 2001, *J Appl
    Physiol* 90:412), by several degrees on a loose strap, with rates above the swing's. Returned unchanged
    when the cut-off is not below the Nyquist frequency or the series is too short to filter."""
    from scipy.signal import butter, sosfiltfilt

    omega = np.asarray(omega, dtype=np.float64)
    sos = butter(2, cutoff_hz, fs=rate_hz, output="sos") if 0 < cutoff_hz < 0.5 * rate_hz else None
    if sos is None or len(omega) <= 3 * (2 * len(sos) + 1):
        return omega
    ok = np.isfinite(omega).all(axis=1)
    out = sosfiltfilt(sos, np.where(ok[:, None], omega, 0.0), axis=0)
    out[~ok] = np.nan
    return out


def frame_from_axes(y_axis: FloatArray, z_hint: FloatArray) -> FloatArray:
    """Quaternion whose columns are X, Y, Z (ISB) given Y and an approximate Z (made orthogonal to Y)."""
    y = y_axis / np.linalg.norm(y_axis)
    z = z_hint - np.dot(z_hint, y) * y
    z = z / np.linalg.norm(z)
    x = np.cross(y, z)
    return quat.canonical(quat.from_matrix(np.column_stack([x, y, z])))


def mean_direction(v: FloatArray) -> tuple[FloatArray, float]:
    """Mean unit direction of row vectors (NaN rows ignored) and their RMS spread in rad."""
    v = v[np.isfinite(v).all(axis=1)]
    m = v.mean(axis=0)
    u = m / np.linalg.norm(m)
    spread = float(np.sqrt(np.mean(np.arccos(np.clip(v @ u, -1.0, 1.0)) ** 2)))
    return u, spread


def _unit(v: FloatArray) -> FloatArray:
    return v / np.linalg.norm(v)


def prior_ml_axis(placement: str, up: FloatArray, face: str) -> FloatArray:
    """Medio-lateral (right) axis in sensor coordinates from the placement prior (z out of the skin)."""
    n = SENSOR_Z - np.dot(SENSOR_Z, up) * up
    if np.linalg.norm(n) < 0.2:  # z nearly vertical: fall back to sensor y
        n = np.array([0.0, 1.0, 0.0]) - up[1] * up
    n = _unit(n)
    if placement in ("pelvis", "lumbar_upper"):
        return _unit(np.cross(-n, up))  # X = -n (posterior face), Z = X x Y
    if face == "anterior":
        return _unit(np.cross(n, up))  # X = n
    return n if placement == "thigh_right" else -n  # lateral face points to the segment's own side


@dataclass
class FunctionalAxis:
    """Principal rotation axis of a thigh (sensor frame, sign not yet resolved) and its quality."""

    axis: FloatArray
    ratio: float
    n_samples: int


def functional_axis(
    omega: FloatArray, up: FloatArray, min_rate: float, min_samples: int
) -> FunctionalAxis | None:
    """PCA of the angular velocity projected perpendicular to ``up`` (rows faster than ``min_rate``)."""
    w = omega[np.isfinite(omega).all(axis=1)]
    w = w - np.outer(w @ up, up)
    w = w[np.linalg.norm(w, axis=1) > min_rate]
    if len(w) < min_samples:
        return None
    cov = w.T @ w / len(w)
    vals, vecs = np.linalg.eigh(cov)
    ratio = float(vals[2] / max(vals[1], 1e-12))
    return FunctionalAxis(_unit(vecs[:, 2]), ratio, len(w))


def plane_axis(q_motion: FloatArray, min_spread_rad: float = math.radians(5.0)) -> FloatArray | None:
    """Medio-lateral axis as the normal of the plane the world vertical sweeps in the sensor frame.

    A thigh swinging about its medio-lateral axis (horizontal) keeps the world vertical perpendicular to it,
    so the vertical, seen from the sensor, moves on the great circle around that axis: the axis is the
    eigenvector of the smallest eigenvalue of the vertical's second moment. Independent of the angular
    velocity (it uses inclinations only), hence a check of :func:`functional_axis`. None when the vertical
    moved less than ``min_spread_rad`` (no swing to define a plane).
    """
    up = up_in_sensor(q_motion[np.isfinite(q_motion).all(axis=1)])
    if len(up) < 10:
        return None
    vals, vecs = np.linalg.eigh(up.T @ up / len(up))
    if math.sqrt(max(vals[1], 0.0)) < math.sin(min_spread_rad):
        return None
    return _unit(vecs[:, 0])


def walking_ml_axis(
    omega: FloatArray, up: FloatArray, rate_hz: float, stride_s: tuple[float, float] = (0.7, 2.0)
) -> tuple[FloatArray, float] | None:
    """Pelvis medio-lateral axis from walking (sensor frame, sign not resolved) and its uncertainty (deg).

    ``omega``: sensor-frame angular velocity (rad/s) on a uniform grid at ``rate_hz`` (NaN rows: no data);
    ``up``: the world vertical in the sensor frame (standing). Method: the module docstring (pelvis from
    walking); the horizontal angular velocity is taken in a 2-D basis perpendicular to ``up``, the
    anterior axis is the eigenvector of the most negative eigenvalue of the symmetrised lag covariance at
    half the stride period, the medio-lateral axis is perpendicular to it and to ``up``. Uncertainty: the
    angle between the axes from the even and the odd stride-long blocks of the walk. None when the
    movement is shorter than two of the longest strides or shows no stride rhythm (covariance at the best
    lag in ``stride_s`` below a quarter of the total).
    """
    w = np.where(np.isfinite(omega).all(axis=1)[:, None], omega, 0.0)
    t = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = _unit(t - (t @ up) * up)
    basis = np.column_stack([e1, np.cross(up, e1)])
    w2 = w @ basis
    lo, hi = round(stride_s[0] * rate_hz), round(stride_s[1] * rate_hz)
    total = float(np.sum(w2 * w2)) / max(len(w2), 1)
    if len(w2) < 2 * hi or total <= 0:
        return None
    corr = [float(np.sum(w2[:-lag] * w2[lag:])) / (len(w2) - lag) for lag in range(lo, hi + 1)]
    best = int(np.argmax(corr))
    if corr[best] < 0.25 * total:
        return None
    stride = lo + best
    half = max(1, round(stride / 2))
    prod = w2[:-half, :, None] * w2[half:, None, :]  # w(t) w(t + half)^T
    block = (np.arange(len(prod)) // stride) % 2
    axes = []
    for sel in (block == 0, block == 1, np.ones(len(prod), dtype=bool)):
        m = prod[sel].sum(axis=0)
        _, vecs = np.linalg.eigh(m + m.T)
        axes.append(_unit(np.cross(basis @ vecs[:, 0], up)))
    return axes[2], axis_angle_deg(axes[0], axes[1])


def axis_angle_deg(a: FloatArray, b: FloatArray) -> float:
    """Angle between two axes (sign ignored), degrees."""
    return math.degrees(math.acos(min(1.0, abs(float(a @ b)))))


def sign_score(q_sensor: FloatArray, omega: FloatArray, q_c: FloatArray, rate_hz: float) -> float:
    """Positive when the candidate calibration ``q_c`` makes the forward swing positive (module doc)."""
    th = sagittal_inclination(quat.multiply(q_sensor, q_c))
    th = th[np.isfinite(th)]
    z_axis = quat.rotate(q_c, np.array([0.0, 0.0, 1.0]))
    w = omega[np.isfinite(omega).all(axis=1)] @ z_axis
    if len(th) < 10 or len(w) < 10:
        return 0.0
    hi, lo = np.percentile(th, [98, 2])
    asym = (hi + lo) / max(hi - lo, 1e-6)
    whi, wlo = np.percentile(w, [99, 1])
    speed = math.log(max(whi, 1e-3) / max(-wlo, 1e-3))
    return float(2.0 * asym + np.clip(speed, -2.0, 2.0))


@dataclass
class CalibrationSettings:
    """Thresholds of the calibration (rad/s, s, rad; ``swing_cutoff_hz`` in Hz: the low-pass of the thigh's
    angular velocity before its functional axis, sign and uncertainty are taken, :func:`swing_rate`)."""

    still_gyr_rad_s: float = 0.2
    min_standing_s: float = 3.0
    max_standing_s: float = 5.0
    max_x_tilt_rad: float = math.radians(45.0)
    motion_gyr_rad_s: float = 0.8
    min_motion_s: float = 2.0
    ml_wait_s: float = 20.0
    sign_margin: float = 0.3
    misplacement_rad: float = math.radians(30.0)
    ml_disagreement_deg: float = 10.0
    swing_cutoff_hz: float = 6.0


#: the reason a thigh calibration gives when it found no functional movement, and what it costs its quality
NO_MOVEMENT_REASON = (
    "no walking or leg swing found: medio-lateral axis from the placement prior (face lateral)"
)
NO_MOVEMENT_PENALTY = 0.3


def calibrate_sensor(
    placement: str,
    q_stand: FloatArray | None,
    q_motion: FloatArray | None,
    rate_hz: float,
    window: tuple[float, float],
    settings: CalibrationSettings | None = None,
    *,
    up: FloatArray | None = None,
) -> SensorCalibration:
    """Calibrate one sensor from its standing-window orientations and (thighs) a functional-motion period.

    ``q_stand``: sensor-to-world quaternions during standing; ``q_motion``: those after standing (uniform
    grid at ``rate_hz``) in which to look for walking or leg swings (None or empty: prior only). ``up``
    instead of ``q_stand``: the world vertical in the sensor frame at standing, known already (a unit
    vector; from an earlier calibration of the same strapping, :func:`refine_axis`); the standing
    window's checks are then the earlier calibration's.
    """
    s = settings or CalibrationSettings()
    reasons: list[str] = []
    flags: list[str] = []
    quality = 1.0
    if up is None:
        if q_stand is None:
            raise ValueError("calibrate_sensor needs the standing orientations or the vertical (up)")
        up, spread = mean_direction(up_in_sensor(q_stand))
        if spread > math.radians(2.0):
            quality -= 0.2
            reasons.append(f"standing window not very still ({math.degrees(spread):.1f} deg spread)")
    else:
        up = _unit(np.asarray(up, dtype=np.float64))
    if up[0] < 0:
        flags.append("upside_down")
        reasons.append(
            "sensor is upside down (x points down); angles are still computed from the measured vertical"
        )
        quality -= 0.1
    thigh = placement.startswith("thigh")
    ml_unc = math.nan
    face = "posterior" if not thigh else "lateral"
    method = "standing+prior"
    z_axis = prior_ml_axis(placement, up, face)
    if thigh:
        fa = None
        omega = None
        if q_motion is not None and len(q_motion) > 2:
            omega = swing_rate(angular_velocity(q_motion, rate_hz), rate_hz, s.swing_cutoff_hz)
            fa = functional_axis(omega, up, s.motion_gyr_rad_s, int(s.min_motion_s * rate_hz))
        if fa is None:
            quality -= NO_MOVEMENT_PENALTY
            ml_unc = math.degrees(s.misplacement_rad)
            reasons.append(NO_MOVEMENT_REASON)
        else:
            lat = prior_ml_axis(placement, up, "lateral")
            ant = prior_ml_axis(placement, up, "anterior")
            face = "lateral" if abs(fa.axis @ lat) >= abs(fa.axis @ ant) else "anterior"
            prior = lat if face == "lateral" else ant
            off = math.acos(min(1.0, abs(float(fa.axis @ prior))))
            if off > s.misplacement_rad:
                reasons.append(f"sensor rotated {math.degrees(off):.0f} deg from a {face} placement")
                quality -= 0.1
            cand = fa.axis if fa.axis @ prior >= 0 else -fa.axis
            ml_unc = _ml_uncertainty(q_motion, omega, up, fa, s)
            if ml_unc > s.ml_disagreement_deg:
                quality -= 0.15
                reasons.append(
                    f"medio-lateral axis uncertain by {ml_unc:.0f} deg "
                    "(rotation axis and swing plane disagree)"
                )
            score = sign_score(q_motion, omega, frame_from_axes(up, cand), rate_hz)
            method = "standing+functional"
            if fa.ratio < 4.0:
                quality -= 0.15
                reasons.append(f"movement not clearly planar (axis ratio {fa.ratio:.1f})")
            if abs(score) <= s.sign_margin:
                quality -= 0.2
                reasons.append("flexion direction not confirmed by the movement; placement prior used")
            elif score < 0:
                cand = -cand
                if face == "lateral":
                    flags.append("wrong_side")
                    reasons.append("sensor faces medially for this side: it is probably on the other leg")
                else:
                    flags.append("unexpected_facing")
                    reasons.append(
                        "anterior sensor appears to face backwards; flexion direction from movement"
                    )
                quality -= 0.3
            z_axis = cand
    if placement == "pelvis" and q_motion is not None and len(q_motion) > 2:
        found = walking_ml_axis(angular_velocity(q_motion, rate_hz), up, rate_hz)
        if found is not None:
            axis, unc = found
            axis = axis if axis @ z_axis >= 0 else -axis
            off = math.acos(min(1.0, float(axis @ z_axis)))
            if unc <= s.ml_disagreement_deg and off <= s.misplacement_rad:
                z_axis, ml_unc, method = axis, unc, "standing+walking"
            else:
                reasons.append(
                    f"pelvis axis from walking not used (uncertain by {unc:.0f} deg, "
                    f"{math.degrees(off):.0f} deg from the placement prior)"
                )
    q_c = frame_from_axes(up, z_axis)
    return SensorCalibration(
        placement=placement,
        q_segment_in_sensor=q_c,
        quality=float(np.clip(quality, 0.0, 1.0)),
        reasons=reasons,
        flags=flags,
        method=method,
        window=window,
        face=face,
        ml_uncertainty_deg=ml_unc,
    )


def needs_axis(cal: SensorCalibration) -> bool:
    """True for a calibration whose medio-lateral axis came from the placement prior alone although
    movement could give it: a thigh without walking or leg swings, a pelvis without walking (when it was
    made)."""
    if cal.placement.startswith("thigh"):
        return NO_MOVEMENT_REASON in cal.reasons
    return cal.placement == "pelvis" and cal.method == "standing+prior"


def refine_axis(
    cal: SensorCalibration, q_motion: FloatArray, rate_hz: float, settings: CalibrationSettings | None = None
) -> SensorCalibration:
    """An earlier calibration of a thigh or pelvis sensor (same strapping) whose medio-lateral axis came
    from the placement prior, with the axis (thigh: its sign and uncertainty too) now taken from
    ``q_motion`` (sensor-to-world quaternions on a uniform grid at ``rate_hz``: this recording's walking,
    or a thigh's leg swings), the vertical kept from ``cal`` (its segment Y axis in the sensor frame).
    ``cal`` itself when it needs no axis (:func:`needs_axis`) or ``q_motion`` holds no such movement. The
    quality is the new one, at most the earlier one without its no-movement penalty (so the earlier
    standing window's faults stay); the earlier reasons other than the no-movement one are kept."""
    if not needs_axis(cal):
        return cal
    y = quat.rotate(cal.q_segment_in_sensor, np.array([0.0, 1.0, 0.0]))
    new = calibrate_sensor(cal.placement, None, q_motion, rate_hz, cal.window, settings, up=y)
    if new.method == "standing+prior":
        return cal
    earlier = [r for r in cal.reasons if r != NO_MOVEMENT_REASON]
    penalty = NO_MOVEMENT_PENALTY if NO_MOVEMENT_REASON in cal.reasons else 0.0
    new.quality = float(min(new.quality, cal.quality + penalty))
    new.reasons = earlier + new.reasons
    new.flags = sorted(set(cal.flags) | set(new.flags), key=(cal.flags + new.flags).index)
    return new


def _ml_uncertainty(
    q_motion: FloatArray, omega: FloatArray, up: FloatArray, fa: FunctionalAxis, s: CalibrationSettings
) -> float:
    """Uncertainty (deg) of a thigh's functional medio-lateral axis: the largest of the disagreement with the
    swing-plane normal (:func:`plane_axis`, projected perpendicular to the standing vertical like the
    functional axis) and between the functional axes of the first and second half of the fast samples; NaN
    when neither check is possible."""
    out = math.nan
    pa = plane_axis(q_motion)
    if pa is not None:
        pa = pa - (pa @ up) * up
        if np.linalg.norm(pa) > 0.5:
            out = axis_angle_deg(_unit(pa), fa.axis)
    w = omega[np.isfinite(omega).all(axis=1)]
    perp = w - np.outer(w @ up, up)
    w = w[np.linalg.norm(perp, axis=1) > s.motion_gyr_rad_s]  # the samples the functional axis used
    n = len(w) // 2
    halves = [functional_axis(x, up, s.motion_gyr_rad_s, 10) for x in (w[:n], w[n:])]
    if halves[0] is not None and halves[1] is not None:
        half = axis_angle_deg(halves[0].axis, halves[1].axis)
        out = half if math.isnan(out) else max(out, half)
    return out


class StandingFinder:
    """Streaming search for the first standing-still window on the common grid.

    Feed per-row stillness (bool) and per-row "x near vertical" (bool) for all sensors combined via
    :meth:`update` with absolute row indices; it returns ``(start, stop)`` row indices (stop exclusive)
    once a run of still rows reached ``max_standing`` rows or ended after at least ``min_standing`` rows.
    Decisions depend only on the data, not on the chunking.
    """

    def __init__(self, min_rows: int, max_rows: int) -> None:
        self.min_rows = min_rows
        self.max_rows = max_rows
        self._run_start: int | None = None
        self.found: tuple[int, int] | None = None

    def update(self, first_row: int, ok: np.ndarray) -> tuple[int, int] | None:
        if self.found is not None:
            return self.found
        for j, good in enumerate(ok.tolist()):
            row = first_row + j
            if good:
                if self._run_start is None:
                    self._run_start = row
                if row + 1 - self._run_start >= self.max_rows:
                    self.found = (self._run_start, row + 1)
                    return self.found
            else:
                if self._run_start is not None and row - self._run_start >= self.min_rows:
                    self.found = (self._run_start, row)
                    return self.found
                self._run_start = None
        return None

    def reset(self) -> None:
        self._run_start = None
        self.found = None
