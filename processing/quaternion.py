"""Quaternion maths shared by processing and the simulator.

Convention: unit quaternions as float arrays ``(..., 4)`` ordered scalar first ``(w, x, y, z)``,
Hamilton product, and ``q`` maps vectors from the sensor (or segment) frame to the world frame:
``v_world = q * v_sensor * conj(q)``. scipy's ``Rotation`` uses ``(x, y, z, w)``; the conversion is
done in :func:`to_scipy` / :func:`from_scipy` and nowhere else.

All functions are vectorised over leading axes and allocate no Python objects per sample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from scipy.spatial.transform import Rotation

FloatArray = NDArray[np.float64]

IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def as_quat(q: ArrayLike) -> FloatArray:
    """Return ``q`` as a float64 array of shape ``(..., 4)`` (no normalisation)."""
    arr = np.asarray(q, dtype=np.float64)
    if arr.shape[-1] != 4:
        raise ValueError(f"quaternion arrays need a last axis of length 4, got shape {arr.shape}")
    return arr


def normalize(q: ArrayLike) -> FloatArray:
    """Unit-normalise quaternions; zero-norm rows become NaN (never a silent identity)."""
    arr = as_quat(q)
    norm = np.linalg.norm(arr, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return arr / norm


def multiply(p: ArrayLike, q: ArrayLike) -> FloatArray:
    """Hamilton product ``p * q`` (broadcasting over leading axes)."""
    p = as_quat(p)
    q = as_quat(q)
    pw, px, py, pz = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
    qw, qx, qy, qz = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    # written into one preallocated array (cheaper than stacking for the few-row chunks of live streaming)
    out = np.empty(np.broadcast_shapes(p.shape, q.shape))
    out[..., 0] = pw * qw - px * qx - py * qy - pz * qz
    out[..., 1] = pw * qx + px * qw + py * qz - pz * qy
    out[..., 2] = pw * qy - px * qz + py * qw + pz * qx
    out[..., 3] = pw * qz + px * qy - py * qx + pz * qw
    return out


def conjugate(q: ArrayLike) -> FloatArray:
    """Conjugate (the inverse for unit quaternions)."""
    arr = as_quat(q).copy()
    arr[..., 1:] *= -1.0
    return arr


def rotate(q: ArrayLike, v: ArrayLike) -> FloatArray:
    """Rotate vectors ``v (..., 3)`` by unit quaternions ``q``: returns ``q * v * conj(q)``."""
    q = as_quat(q)
    v = np.asarray(v, dtype=np.float64)
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * _cross(u, v)
    return v + w * t + _cross(u, t)


def _cross(a: FloatArray, b: FloatArray) -> FloatArray:
    """Cross product over the last axis (written out: cheaper than ``np.cross`` for short arrays)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = a1 * b2 - a2 * b1
    out[..., 1] = a2 * b0 - a0 * b2
    out[..., 2] = a0 * b1 - a1 * b0
    return out


def from_axis_angle(axis: ArrayLike, angle: ArrayLike) -> FloatArray:
    """Quaternion for a rotation of ``angle`` rad about unit ``axis`` (right-hand rule)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    half = 0.5 * np.asarray(angle, dtype=np.float64)[..., None]
    return np.concatenate((np.cos(half), np.sin(half) * axis), axis=-1)


def from_rotvec(rotvec: ArrayLike) -> FloatArray:
    """Quaternion from rotation vectors ``(..., 3)`` in rad (axis times angle)."""
    rv = np.asarray(rotvec, dtype=np.float64)
    angle = np.linalg.norm(rv, axis=-1, keepdims=True)
    half = 0.5 * angle
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(angle > 1e-12, np.sin(half) / np.where(angle > 0, angle, 1.0), 0.5 - angle**2 / 48.0)
    return np.concatenate((np.cos(half), k * rv), axis=-1)


def to_rotvec(q: ArrayLike) -> FloatArray:
    """Rotation vectors ``(..., 3)`` in rad (shortest rotation, angle in [0, pi])."""
    q = as_quat(q)
    q = np.where(q[..., :1] < 0, -q, q)
    vn = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(vn, q[..., :1])
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(vn > 1e-12, angle / np.where(vn > 0, vn, 1.0), 2.0)
    return k * q[..., 1:]


def angle_between(p: ArrayLike, q: ArrayLike) -> FloatArray:
    """Angle in rad of the rotation ``p * conj(q)`` (0..pi)."""
    d = multiply(p, conjugate(q))
    return 2.0 * np.arctan2(np.linalg.norm(d[..., 1:], axis=-1), np.abs(d[..., 0]))


def to_matrix(q: ArrayLike) -> FloatArray:
    """Rotation matrices ``(..., 3, 3)`` mapping sensor-frame vectors to the world frame."""
    return to_scipy(q).as_matrix().reshape(np.shape(q)[:-1] + (3, 3))


def from_matrix(m: ArrayLike) -> FloatArray:
    """Quaternions from rotation matrices ``(..., 3, 3)``."""
    from scipy.spatial.transform import Rotation  # (imported when used: about half a second)

    m = np.asarray(m, dtype=np.float64)
    return from_scipy(Rotation.from_matrix(m.reshape(-1, 3, 3))).reshape(m.shape[:-2] + (4,))


def to_scipy(q: ArrayLike) -> Rotation:
    """The one place where (w, x, y, z) becomes scipy's (x, y, z, w)."""
    from scipy.spatial.transform import Rotation  # (imported when used: about half a second)

    q = as_quat(q).reshape(-1, 4)
    return Rotation.from_quat(q[:, [1, 2, 3, 0]])


def from_scipy(r: Rotation) -> FloatArray:
    """scipy Rotation -> (w, x, y, z) array of shape (n, 4) (or (4,) for a single rotation)."""
    xyzw = r.as_quat()
    return np.asarray(xyzw[..., [3, 0, 1, 2]], dtype=np.float64)


def canonical(q: ArrayLike) -> FloatArray:
    """Make ``w >= 0`` (q and -q are the same rotation)."""
    q = as_quat(q)
    return np.where(q[..., :1] < 0, -q, q)


def slerp(t_src: ArrayLike, q_src: ArrayLike, t_dst: ArrayLike) -> FloatArray:
    """Spherical linear interpolation of a quaternion time series onto ``t_dst``.

    ``t_dst`` outside ``[t_src[0], t_src[-1]]`` gives NaN rows (no extrapolation).
    """
    t_src = np.asarray(t_src, dtype=np.float64)
    t_dst = np.asarray(t_dst, dtype=np.float64)
    q_src = normalize(q_src)
    out = np.full(t_dst.shape + (4,), np.nan)
    if len(t_src) == 0:
        return out
    inside = (t_dst >= t_src[0]) & (t_dst <= t_src[-1])
    if len(t_src) == 1:
        out[inside] = q_src[0]
        return out
    idx = np.clip(np.searchsorted(t_src, t_dst[inside], side="right") - 1, 0, len(t_src) - 2)
    t0 = t_src[idx]
    t1 = t_src[idx + 1]
    frac = np.where(t1 > t0, (t_dst[inside] - t0) / np.where(t1 > t0, t1 - t0, 1.0), 0.0)
    q0 = q_src[idx]
    q1 = q_src[idx + 1]
    q1 = np.where(np.sum(q0 * q1, axis=-1, keepdims=True) < 0, -q1, q1)
    delta = to_rotvec(multiply(conjugate(q0), q1))
    out[inside] = multiply(q0, from_rotvec(delta * frac[:, None]))
    return out
