"""Per-sample body angles from calibrated segment orientations (heading-free sagittal angles).

Inputs are segment-to-world quaternions ``q_seg = q_sensor * q_segment_in_sensor`` (see
:mod:`hipback.processing.calibration`) in a world frame with Z up; segment frames are ISB (X anterior,
Y superior, Z right). Everything here is in radians.

Sagittal inclination of a segment (the one definition all sagittal angles use)::

    theta = atan2(X_w . up, Y_w . up)

where ``X_w``/``Y_w`` are the segment's anterior and superior axes in the world. It is the rotation
about the segment's own medio-lateral axis ``Z`` that takes the world vertical (projected into the
segment's sagittal plane) onto the segment's long axis, positive in the flexion sense (+Z, right-hand
rule: the anterior axis tilts up, the long axis tilts back). It uses only the vertical components of
the segment axes, so it is exactly **independent of heading** (rotation of the world about the
vertical), which makes it immune to the yaw drift of 6D fusion and to the unknown heading between
sensors. It is 0 in the standing-neutral calibration pose by construction.

Angles (AngleSeries fields):

* ``thigh_inclination_<side> = theta_thigh`` (flexion/forward positive; ~+pi/2 sitting).
* ``pelvic_tilt = -theta_pelvis`` (anterior tilt moves the pelvis' long axis forward, i.e. a
  negative rotation about +Z, so the sign is flipped to make anterior positive). The ISB pelvis angles
  (Z-X'-Y'' from a lab frame facing the walker: tilt first, then obliquity ``o``, then rotation ``r``) need
  that lab heading, which 6D sensors do not have; this heading-free tilt differs from the ISB tilt by
  ``-o * r`` and terms of third order (``atan2(sin t cos r - cos t sin o sin r, cos t cos o)``), and equals
  the tilt exactly when the tilt is the last rotation of the sequence (rotation, obliquity, tilt).
* ``hip_flexion_<side> = theta_thigh - theta_pelvis`` = thigh inclination + anterior pelvic tilt
  (``docs/biomechanics.md``: hip extension = thigh extension from vertical - anterior pelvic tilt). This is
  the rotation of the thigh relative to the pelvis about the medio-lateral axis when the two
  medio-lateral axes are parallel; with pelvic rotation/obliquity and hip ab/adduction of a few degrees
  it differs from the 3D ``thigh-relative-to-pelvis about the pelvis Z`` angle by a second-order term
  (the product of those small angles), the price of needing no shared heading.
* ``lumbar_flexion = theta_pelvis - theta_lumbar`` (upper lumbar tilting forward relative to the pelvis
  is flexion: positive).
* The joint angles (hip and lumbar flexion) are differences of inclinations in (-pi, pi] and are brought back
  into (-pi, pi]: lying on the back with a knee pulled to the chest turns the thigh's inclination past
  +-pi while the hip is flexed about 125 deg.
* ``pelvis_inclination = arccos(Y_w . up)`` unsigned (0 upright, ~pi/2 lying).
* ``pelvis_motion``: dynamic acceleration magnitude of the pelvis sensor (m/s^2): ``|R acc - g e_z|``,
  averaged causally over the last ``MOTION_WINDOW_S`` (see :class:`MotionSmoother`).
* ``pelvis_yaw_rate`` (rad/s): the world-vertical component of the pelvis sensor's angular velocity,
  ``(R omega)_z = up_s . omega`` with ``omega`` in the sensor frame and ``up_s`` the world vertical in the
  sensor frame (:func:`vertical_rate`); positive = counter-clockwise seen from above (turning left, Z up,
  right-hand rule). A rotation about the vertical is the same for the sensor and its segment, so it needs
  no calibration; it needs no heading either (only the vertical), so the yaw drift of 6D fusion enters it
  only as its drift *rate* (a slow offset).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hipback.processing.quaternion import FloatArray, rotate
from hipback.processing.types import AngleSeries

GRAVITY = 9.81
MOTION_WINDOW_S = 0.5
_SEGMENTS = ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")
_DISTAL = np.array([1, 2, 0], dtype=np.intp)  # rows of _SEGMENTS: left hip, right hip, lumbar
_PROXIMAL = np.array([0, 0, 3], dtype=np.intp)


def axes_vertical_components(q_seg: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """World-vertical (Z) components of the segment's X, Y and Z axes, from ``(..., 4)`` quaternions."""
    q = np.asarray(q_seg, dtype=np.float64)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    xz = 2.0 * (x * z - w * y)
    yz = 2.0 * (y * z + w * x)
    zz = 1.0 - 2.0 * (x * x + y * y)
    return xz, yz, zz


def sagittal_inclination(q_seg: FloatArray) -> FloatArray:
    """Heading-free sagittal inclination ``atan2(X_w.z, Y_w.z)`` in rad (see module docstring)."""
    xz, yz, _ = axes_vertical_components(q_seg)
    return np.arctan2(xz, yz)


def long_axis_inclination(q_seg: FloatArray) -> FloatArray:
    """Unsigned angle between the segment's superior axis and the world vertical (rad)."""
    xz, yz, zz = axes_vertical_components(q_seg)
    return np.arctan2(np.hypot(xz, zz), yz)  # (xz, yz, zz) is a unit vector: well conditioned near 0


def vertical_rate(q_sensor: FloatArray, omega: FloatArray) -> FloatArray:
    """Angular velocity about the world vertical (rad/s, counter-clockwise seen from above positive) from
    sensor-to-world quaternions ``(N, 4)`` and the sensor-frame angular velocity ``(N, 3)`` (rad/s): the
    third row of the rotation matrix (the world's Z axis in the sensor frame) times ``omega``. Elementwise
    per row (the same value however the rows are chunked); NaN where either input is NaN."""
    xz, yz, zz = axes_vertical_components(q_sensor)
    w = np.asarray(omega, dtype=np.float64)
    return xz * w[..., 0] + yz * w[..., 1] + zz * w[..., 2]


def dynamic_acceleration(q_sensor: FloatArray, acc: FloatArray) -> FloatArray:
    """``|R(q) acc - g e_z|`` (m/s^2): specific force in the world minus gravity, per sample."""
    a_w = rotate(q_sensor, acc)
    a_w[..., 2] -= GRAVITY
    return np.linalg.norm(a_w, axis=-1)


class MotionSmoother:
    """Causal moving average over ``window`` samples, chunk-invariant (each output from its own window).

    The first ``window - 1`` outputs after the start, and any output whose window holds a NaN, are NaN.
    """

    def __init__(self, window: int) -> None:
        self.window = max(int(window), 1)
        self._tail = np.full(self.window - 1, np.nan)

    def update(self, x: FloatArray) -> FloatArray:
        x = np.asarray(x, dtype=np.float64)
        if len(x) == 0:
            return np.zeros(0)
        buf = np.concatenate([self._tail, x])
        self._tail = buf[len(buf) - (self.window - 1) :] if self.window > 1 else np.zeros(0)
        # the view sliding_window_view(buf, window) gives, built directly (a fraction of its per-call cost),
        # and its mean(axis=1) as that computes it (the same row sums, divided by the window)
        item = buf.itemsize
        view = np.ndarray((len(x), self.window), dtype=np.float64, buffer=buf, strides=(item, item))
        return np.add.reduce(view, axis=1) / self.window


def joint_angle(theta_distal: FloatArray, theta_proximal: FloatArray) -> FloatArray:
    """The joint angle ``theta_distal - theta_proximal`` (rad) in (-pi, pi]: two inclinations in (-pi, pi]
    differ by up to 2 pi. Values already in range are returned unchanged (bit for bit)."""
    d = theta_distal - theta_proximal
    # fmax skips NaN: the largest magnitude below pi means every value is in range (the wrap test below
    # only when some value is at or beyond +-pi, without an errstate context on every call)
    if not np.fmax.reduce(np.abs(d), axis=None, initial=0.0) >= np.pi:
        return d
    with np.errstate(invalid="ignore"):
        return np.where(d > np.pi, d - 2.0 * np.pi, np.where(d <= -np.pi, d + 2.0 * np.pi, d))


def compute_angles(
    t: FloatArray,
    segments: dict[str, FloatArray | None],
    pelvis_motion: FloatArray | None = None,
    pelvis_acc_vertical: FloatArray | None = None,
    thigh_acc: tuple[FloatArray | None, FloatArray | None] = (None, None),
    pelvis_yaw_rate: FloatArray | None = None,
) -> AngleSeries:
    """Angles for one block of common-timeline samples.

    :param t: sample times (s), shape (N,).
    :param segments: segment-to-world quaternions (N, 4) per placement (``pelvis``, ``thigh_left``,
        ``thigh_right``, ``lumbar_upper``); missing placements or NaN rows give NaN angles.
    :param pelvis_motion: already smoothed dynamic acceleration of the pelvis (N,), or None (NaN).
    :param pelvis_acc_vertical: the pelvis' world-vertical acceleration (N,) in m/s^2 (up positive, gravity
        removed), or None.
    :param thigh_acc: magnitude of the left and of the right thigh sensor's acceleration with gravity removed
        (N,) in m/s^2, or None each.
    :param pelvis_yaw_rate: the pelvis' angular velocity about the world vertical (N,) in rad/s
        (counter-clockwise seen from above positive, :func:`vertical_rate`), or None.
    """
    names = [name for name in _SEGMENTS if segments.get(name) is not None]
    q: FloatArray | None = None
    if len(names) == 1:
        q = np.asarray(segments[names[0]], dtype=np.float64)[None]
    elif names:
        q = np.stack([np.asarray(segments[name], dtype=np.float64) for name in names])
    return compute_angles_stacked(t, names, q, pelvis_motion, pelvis_acc_vertical, thigh_acc, pelvis_yaw_rate)


def compute_angles_stacked(
    t: FloatArray,
    names: Sequence[str],
    q_seg: FloatArray | None,
    pelvis_motion: FloatArray | None = None,
    pelvis_acc_vertical: FloatArray | None = None,
    thigh_acc: tuple[FloatArray | None, FloatArray | None] = (None, None),
    pelvis_yaw_rate: FloatArray | None = None,
) -> AngleSeries:
    """:func:`compute_angles` of segment orientations held as one array (as the live pipeline computes them):
    ``q_seg[i]`` (N, 4) is the segment-to-world quaternion of placement ``names[i]`` (of ``pelvis``,
    ``thigh_left``, ``thigh_right``, ``lumbar_upper``, in any order), ``q_seg`` shape ``(len(names), N, 4)``
    (None when ``names`` is empty). Placements not named give NaN angles; the other parameters are
    :func:`compute_angles`'s. The same values as :func:`compute_angles` of the same quaternions by placement.
    """
    n = len(t)
    # every segment's inclination from the one stacked array, and the three joint angles from one difference:
    # the same elementwise values as one segment and one angle at a time, with a fraction of the numpy calls
    # on the few rows of a live step. th4 rows: _SEGMENTS order, NaN for a segment not given.
    incl_p = None
    if names:
        xz, yz, zz = axes_vertical_components(q_seg)  # type: ignore[arg-type]
        th = np.arctan2(xz, yz)  # sagittal_inclination
        if tuple(names) == _SEGMENTS:
            th4 = th
        else:
            th4 = np.full((len(_SEGMENTS), n), np.nan)
            th4[[_SEGMENTS.index(name) for name in names]] = th
        if "pelvis" in names:
            i = names.index("pelvis")
            incl_p = np.arctan2(np.hypot(xz[i], zz[i]), yz[i])  # long_axis_inclination
    else:
        th4 = np.full((len(_SEGMENTS), n), np.nan)
    # hip flexion left/right = thigh - pelvis, lumbar flexion = pelvis - upper lumbar
    joints = joint_angle(th4[_DISTAL], th4[_PROXIMAL])
    th_p = th4[0]
    return AngleSeries(
        t=np.asarray(t, dtype=np.float64),
        hip_flexion_left=joints[0],
        hip_flexion_right=joints[1],
        pelvic_tilt=-th_p,
        lumbar_flexion=joints[2],
        thigh_inclination_left=th4[1],
        thigh_inclination_right=th4[2],
        pelvis_inclination=np.full(n, np.nan) if incl_p is None else incl_p,
        pelvis_motion=np.full(n, np.nan) if pelvis_motion is None else np.asarray(pelvis_motion, np.float64),
        pelvis_acc_vertical=None if pelvis_acc_vertical is None else np.asarray(pelvis_acc_vertical, float),
        thigh_acc_left=None if thigh_acc[0] is None else np.asarray(thigh_acc[0], float),
        thigh_acc_right=None if thigh_acc[1] is None else np.asarray(thigh_acc[1], float),
        pelvis_yaw_rate=None if pelvis_yaw_rate is None else np.asarray(pelvis_yaw_rate, float),
    )
