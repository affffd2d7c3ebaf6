"""In-use accelerometer bias of one raw IMU from its still moments (a streaming block).

Why: a raw accelerometer's constant offset ``b`` (sensor frame, m/s^2) tilts the inclination a 6D filter
takes from gravity by about ``|b_perp| / g`` rad (``b_perp``: the part of ``b`` across gravity), a different
tilt in every posture. A standing calibration absorbs the standing tilt only, so a posture far from standing
(lying, sitting, bent over) keeps the difference: about 1 deg for 0.2 m/s^2 (0.02 g).

How (multi-position calibration in use): when the sensor is still its accelerometer measures gravity alone,
``|a - b| = g0`` in every orientation. The stream is cut into blocks of ``block_s`` (sample counts from the
first sample, so the chunking never moves a block); a block is *still* when its gyroscope varies by less
than ``still_gyr_rad_s`` (range of each axis: independent of the gyroscope's own bias), its mean rate is
below ``max_gyr_rad_s``, its accelerometer's standard deviation (each axis) is below ``still_acc_m_s2``,
its mean magnitude is within ``max_bias_m_s2 * sqrt(3)`` of ``gravity`` and it holds no gap or invalid
sample. Each still block's mean specific force goes into a bin of its direction (cells of about
``bin_deg``), so long stillness in one posture (standing, lying) counts once per direction, not per second.

At the end of each still period (the first block that is not still after one or more still blocks: a point
the samples determine) the offset and ``g0`` are fitted by Gauss-Newton least squares of
``|m_i - b| - g0`` over the bins' means ``m_i`` (``g0`` free: local gravity, and a common scale error of
the three axes, do not leak into ``b``). The fit is trusted only when

* at least ``min_directions`` bins are filled;
* the directions spread over the sphere: the condition number of the fit's Jacobian (columns: the three
  unit directions and the constant) is at most ``max_condition`` (directions all within a cone, such as
  standing and sitting only, leave the offset along the cone's axis undetermined);
* each axis' estimate is within ``max_bias_m_s2`` (plausible zero-g offsets of consumer MEMS
  accelerometers: Bosch BMI270 +/-20 mg typical, ST LSM6DSO +/-20 mg typical, TDK MPU-6050 +/-50 mg (x, y)
  and +/-80 mg (z); the default 0.1 g bounds them all);
* its statistical uncertainty (``sigma_fit_``, each axis: ``s^2 (J^T J)^-1`` with ``s`` the RMS residual, at
  least ``noise_floor_m_s2``) is at most ``max_sigma_m_s2``.

Stated uncertainty (``sigma_``): the statistical part above understates the real error, because the fit
has no per-axis scale or cross-axis terms and these errors are systematic: the same in every still block of a
direction, so they do not average out and the few residuals (6 to 15 directions, 2 to 11 degrees of
freedom) show only the part the fit cannot absorb. To first order a sensitivity matrix ``I + M`` changes the
magnitude of a still block's specific force ``g u`` (``u`` its unit direction, sensor frame) by
``g u^T M u``: only the symmetric part of ``M`` (per-axis scale ``M_jj``, cross-axis ``M_jk``) matters, a
rotation of the axes does not. With the entries of ``M`` independent, zero-mean, of standard deviation
``scale_error`` on the diagonal and ``cross_axis`` off it, the misfits ``dr_i = g u_i^T M u_i`` have the
covariance ``C_ij = g^2 (sum_j scale_error^2 u_ij^2 u_lj^2 + sum_(j != k) cross_axis^2 u_ij u_ik u_lj u_lk)``
and move the least-squares solution by ``-(J^T J)^-1 J^T dr``: the covariance ``P C P^T`` (``P = (J^T J)^-1
J^T``, its offset rows; ``sigma_systematic_``). Part of those misfits shows in the residuals (expected sum
of squares ``trace((I - H) C)``, ``H = J P``), so the noise left in them is ``s_n^2 = (r^T r - trace((I - H)
C)) / (N - 4)`` (at least ``noise_floor_m_s2`` squared); ``sigma_`` per axis is the square root of the
diagonal of ``s_n^2 (J^T J)^-1 + P C P^T``.
Default ``scale_error`` 0.004 and ``cross_axis`` 0.01 (fractions, 1 sigma): the sensitivity and cross-axis
figures of the supported raw devices' datasheets as the project reads them
(:mod:`hipback.simulator.device_profiles`: Bosch BMI270 sensitivity about +-0.4 % and cross-axis about +-1 %,
typical values, i.e. 1 sigma by Bosch's convention; ST LSM6DSO +-1 % each as a 3-sigma tolerance; the larger
of each is taken); a device whose own figures are known passes them (``acc_bias_params`` of the sensor
channel). The trust test above uses the statistical part only (it rejects fits the data do not support;
the systematic part does not depend on the data's scatter).

Output: for each input sample the bias to subtract (m/s^2, sensor frame, (N, 3)): the last trusted estimate
that differs from the applied one by at least ``min_change_m_s2`` (an estimate once applied stays applied
until a better trusted one replaces it), from the first sample after the block that ended the still period
(going forward only: nothing already filtered changes). Before the first trusted fit it is ``initial`` (zero
by default; a value kept from an earlier session of the same device goes here).

Results: ``estimate_`` (the last fit, trusted or not; None before the first), ``sigma_`` (its stated
standard uncertainty per axis, statistical and systematic), ``sigma_fit_`` (the statistical part),
``sigma_systematic_`` (the part from the unmodelled scale and cross-axis errors), ``gravity_`` (its
``g0``), ``condition_``, ``n_directions_``, ``trusted_`` (the last fit passed the checks), ``applied_`` (the
bias subtracted now), ``updates_`` (list of ``(t, bias, sigma)``: each newly applied estimate, subtracted
from the samples after time ``t`` (s, the last sample of the block that ended the still period), and its
stated sigma), ``reference_acc_`` (the mean specific force of the
first still period, m/s^2, sensor frame, raw: the posture :class:`~hipback.processing.channel.SensorChannel`
keeps its output frame in; None before it ended).

Not modelled in the fit: per-axis scale and cross-axis errors (a common scale of the three axes is absorbed
by ``g0``; the rest enters the stated uncertainty as above), temperature drift (a later fit follows it).
"""

from __future__ import annotations

import math

import numpy as np

from hipback.processing.angles import GRAVITY
from hipback.processing.blocks import Block
from hipback.processing.types import SensorStream


class AccBiasEstimator(Block[SensorStream, np.ndarray]):
    """Accelerometer offset of one raw IMU from its still moments (see the module docstring).

    Input: consecutive chunks (:class:`~hipback.processing.types.SensorStream` with ``t`` in s, ``acc`` in
    m/s^2 and ``gyr`` in rad/s, sensor frame; times increasing). Output per chunk: the (N, 3) bias to subtract
    from each sample's acceleration (m/s^2, sensor frame).

    :param rate_hz: nominal sampling rate (Hz); a block is ``round(block_s * rate_hz)`` samples.
    :param block_s: length of the still test's blocks (s).
    :param still_gyr_rad_s: largest range (max - min) of each gyroscope axis in a still block (rad/s).
    :param max_gyr_rad_s: largest mean gyroscope rate of a still block (rad/s; above any plausible gyroscope
        bias, below slow turning).
    :param still_acc_m_s2: largest standard deviation of each accelerometer axis in a still block (m/s^2).
    :param bin_deg: size of the direction bins (deg).
    :param min_directions: fewest filled direction bins for a trusted fit.
    :param max_condition: largest condition number of the fit's Jacobian for a trusted fit.
    :param max_bias_m_s2: largest plausible offset per axis (m/s^2).
    :param max_sigma_m_s2: largest standard uncertainty per axis of a trusted fit (m/s^2).
    :param noise_floor_m_s2: smallest RMS residual used for the uncertainty (m/s^2): a few bins that happen
        to fit exactly do not make the estimate certain.
    :param scale_error: standard deviation of each axis' sensitivity error (fraction; module docstring).
    :param cross_axis: standard deviation of each cross-axis sensitivity term (fraction; module docstring).
    :param min_change_m_s2: a trusted fit replaces the applied bias when it differs from it by at least this
        much on some axis (m/s^2).
    :param initial: the bias applied before the first trusted fit (m/s^2, sensor frame; None: zero).
    :param gravity: nominal magnitude of gravity (m/s^2).
    """

    def __init__(
        self,
        rate_hz: float,
        *,
        block_s: float = 1.0,
        still_gyr_rad_s: float = 0.05,
        max_gyr_rad_s: float = 0.4,
        still_acc_m_s2: float = 0.1,
        bin_deg: float = 15.0,
        min_directions: int = 6,
        max_condition: float = 15.0,
        max_bias_m_s2: float = 0.1 * GRAVITY,
        max_sigma_m_s2: float = 0.05,
        noise_floor_m_s2: float = 0.01,
        scale_error: float = 0.004,
        cross_axis: float = 0.01,
        min_change_m_s2: float = 0.005,
        initial: tuple[float, float, float] | None = None,
        gravity: float = GRAVITY,
    ) -> None:
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"sampling rate must be positive, got {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.block_s = block_s
        self.still_gyr_rad_s = still_gyr_rad_s
        self.max_gyr_rad_s = max_gyr_rad_s
        self.still_acc_m_s2 = still_acc_m_s2
        self.bin_deg = bin_deg
        self.min_directions = min_directions
        self.max_condition = max_condition
        self.max_bias_m_s2 = max_bias_m_s2
        self.max_sigma_m_s2 = max_sigma_m_s2
        self.noise_floor_m_s2 = noise_floor_m_s2
        self.scale_error = scale_error
        self.cross_axis = cross_axis
        self.min_change_m_s2 = min_change_m_s2
        self.initial = initial
        self.gravity = gravity
        self._n = max(2, int(round(block_s * self.rate_hz)))
        self._max_step = 2.5 / self.rate_hz
        self._buf_t: list[np.ndarray] = []
        self._buf_a: list[np.ndarray] = []
        self._buf_g: list[np.ndarray] = []
        self._buffered = 0
        self._last_t = -math.inf  # time of the last sample of the previous block
        self._in_still = False
        self._period = [np.zeros(3), 0]  # sum of the running still period's block means, their count
        # direction bins: key -> [sum of block means (3), count]
        self._bins: dict[tuple[int, int, int], list] = {}
        self._cell = 2.0 * math.sin(math.radians(bin_deg) / 2.0)  # chord of bin_deg on the unit sphere
        self._finished = False
        self.applied_ = np.zeros(3) if initial is None else np.asarray(initial, dtype=np.float64).copy()
        self.estimate_: np.ndarray | None = None
        self.sigma_: np.ndarray | None = None
        self.sigma_fit_: np.ndarray | None = None
        self.sigma_systematic_: np.ndarray | None = None
        self.gravity_: float | None = None
        self.condition_: float | None = None
        self.n_directions_ = 0
        self.trusted_ = False
        self.updates_: list[tuple[float, tuple[float, ...], tuple[float, ...]]] = []
        self.reference_acc_: np.ndarray | None = None

    def applied_at(self, t: np.ndarray) -> np.ndarray:
        """The offset subtracted from a sample at each time ``t`` (s; (N,) -> (N, 3), m/s^2, sensor frame)
        by the updates so far: an update made at ``t_u`` applies to the times after it (a grid row at ``t``
        is interpolated towards the sample at or after it, so it takes that sample's offset). Times before
        the first update, and NaN, get ``initial``."""
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        table = np.array([self._initial_vector(), *[u[1] for u in self.updates_]], dtype=np.float64)
        if len(table) == 1:
            return np.broadcast_to(table[0], (len(t), 3)).copy()
        times = np.array([u[0] for u in self.updates_], dtype=np.float64)
        idx = np.searchsorted(times, np.where(np.isnan(t), -np.inf, t), side="left")
        return table[idx]

    def _initial_vector(self) -> np.ndarray:
        return np.zeros(3) if self.initial is None else np.asarray(self.initial, dtype=np.float64).reshape(3)

    # -- streaming -----------------------------------------------------------------------------------------
    def update(self, chunk: SensorStream) -> np.ndarray:
        """Take the next samples; return the bias to subtract from each (m/s^2, (N, 3))."""
        if self._finished:
            raise RuntimeError("update() after finish()")
        t = np.asarray(chunk.t, dtype=np.float64)
        n = len(t)
        out = np.empty((n, 3))
        if n == 0:
            return out
        acc = np.asarray(chunk.acc, dtype=np.float64).reshape(n, 3)
        gyr = np.asarray(chunk.gyr, dtype=np.float64).reshape(n, 3)
        i = 0
        while i < n:
            take = min(n - i, self._n - self._buffered)
            out[i : i + take] = self.applied_
            self._buf_t.append(t[i : i + take])
            self._buf_a.append(acc[i : i + take])
            self._buf_g.append(gyr[i : i + take])
            self._buffered += take
            i += take
            if self._buffered == self._n:
                self._end_block()
        return out

    def finish(self) -> np.ndarray:
        """No more samples: an incomplete last block is dropped; a still period running to the end is fitted
        (for the results; nothing is left to apply it to). Returns an empty (0, 3) array."""
        if not self._finished:
            self._finished = True
            if self._in_still:
                self._end_period()
                self._fit(apply=False, t_next=math.nan)
        return np.zeros((0, 3))

    def _end_block(self) -> None:
        t = np.concatenate(self._buf_t)
        a = np.concatenate(self._buf_a)
        g = np.concatenate(self._buf_g)
        self._buf_t, self._buf_a, self._buf_g, self._buffered = [], [], [], 0
        prev, self._last_t = self._last_t, float(t[-1])
        still = self._still(t, a, g, prev)
        if still:
            m = a.mean(axis=0)
            u = m / np.linalg.norm(m)
            key = tuple(int(v) for v in np.floor(u / self._cell))
            b = self._bins.get(key)
            if b is None:
                self._bins[key] = [m.copy(), 1]
            else:
                b[0] += m
                b[1] += 1
            self._period[0] = self._period[0] + m
            self._period[1] += 1
            self._in_still = True
        elif self._in_still:
            self._in_still = False
            self._end_period()
            # applied from the sample after this block: the first sample of the next block
            self._fit(apply=True, t_next=float(t[-1]))

    def _end_period(self) -> None:
        if self.reference_acc_ is None:
            self.reference_acc_ = self._period[0] / self._period[1]
        self._period = [np.zeros(3), 0]

    def _still(self, t: np.ndarray, a: np.ndarray, g: np.ndarray, prev: float) -> bool:
        if not (np.isfinite(a).all() and np.isfinite(g).all()):
            return False
        steps = np.diff(t)
        if (len(steps) and steps.max() > self._max_step) or (
            math.isfinite(prev) and t[0] - prev > self._max_step
        ):
            return False
        if float((g.max(axis=0) - g.min(axis=0)).max()) > self.still_gyr_rad_s:
            return False
        if float(np.linalg.norm(g.mean(axis=0))) > self.max_gyr_rad_s:
            return False
        if float(a.std(axis=0).max()) > self.still_acc_m_s2:
            return False
        mag = float(np.linalg.norm(a.mean(axis=0)))
        return abs(mag - self.gravity) <= self.max_bias_m_s2 * math.sqrt(3.0)

    # -- the fit ---------------------------------------------------------------------------------------------
    def _fit(self, apply: bool, t_next: float) -> None:
        self.n_directions_ = len(self._bins)
        if self.n_directions_ < 4:  # fewer points than unknowns
            return
        m = np.array([s / c for s, c in self._bins.values()])
        b = np.zeros(3)
        g0 = float(np.median(np.linalg.norm(m, axis=1)))
        jac = np.zeros((len(m), 4))
        for _ in range(20):
            d = m - b
            nd = np.linalg.norm(d, axis=1)
            r = nd - g0
            jac = np.column_stack([-d / nd[:, None], -np.ones(len(m))])
            step = np.linalg.lstsq(jac, -r, rcond=None)[0]
            b, g0 = b + step[:3], g0 + float(step[3])
            if np.abs(step).max() < 1e-7:
                break
        d = m - b
        nd = np.linalg.norm(d, axis=1)
        r = nd - g0
        jac = np.column_stack([-d / nd[:, None], -np.ones(len(m))])
        sv = np.linalg.svd(jac, compute_uv=False)
        cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else math.inf
        dof = max(len(m) - 4, 1)
        s2 = max(float(r @ r) / dof, self.noise_floor_m_s2**2)
        try:
            inv = np.linalg.inv(jac.T @ jac)
            sigma_fit = np.sqrt(np.maximum(np.diag(s2 * inv)[:3], 0.0))
            proj = inv @ jac.T  # the least-squares solution's sensitivity to the residuals
            c_mis = self._misfit_covariance(d / nd[:, None], g0)
            sigma_sys = np.sqrt(np.maximum(np.diag(proj[:3] @ c_mis @ proj[:3].T), 0.0))
            # the residuals' expected sum of squares holds the misfits' unabsorbed part, trace((I - H) C):
            # what is left of it is noise (at least the noise floor)
            unabsorbed = float(np.trace(c_mis) - np.trace(jac @ proj @ c_mis))
            s2_noise = max((float(r @ r) - unabsorbed) / dof, self.noise_floor_m_s2**2)
            sigma = np.sqrt(np.maximum(np.diag(s2_noise * inv)[:3], 0.0) + sigma_sys**2)
        except np.linalg.LinAlgError:
            sigma_fit = np.full(3, math.inf)
            sigma_sys = np.full(3, math.inf)
            sigma = np.full(3, math.inf)
        if not np.all(np.isfinite(sigma_fit)):
            sigma_sys = np.full(3, math.inf)
            sigma = np.full(3, math.inf)
        self.estimate_, self.sigma_, self.gravity_, self.condition_ = b, sigma, g0, cond
        self.sigma_fit_, self.sigma_systematic_ = sigma_fit, sigma_sys
        self.trusted_ = bool(
            self.n_directions_ >= self.min_directions
            and cond <= self.max_condition
            and np.all(np.abs(b) <= self.max_bias_m_s2)
            and np.all(sigma_fit <= self.max_sigma_m_s2)
        )
        if apply and self.trusted_ and np.abs(b - self.applied_).max() >= self.min_change_m_s2:
            self.applied_ = b.copy()
            self.updates_.append((t_next, tuple(b.tolist()), tuple(sigma.tolist())))

    def _misfit_covariance(self, u: np.ndarray, g0: float) -> np.ndarray:
        """Covariance (m/s^2)^2, (K, K), of the misfits ``g0 u_i^T M u_i`` that a sensitivity error ``M``
        (independent entries: ``scale_error`` on the diagonal, ``cross_axis`` off it) adds to the fit's
        residuals at the unit directions ``u`` (K, 3; module docstring)."""
        var = np.full((3, 3), float(self.cross_axis) ** 2)
        np.fill_diagonal(var, float(self.scale_error) ** 2)
        # the coefficient of M_jk in the misfit of direction i is u_ij u_ik
        coef = (u[:, :, None] * u[:, None, :]).reshape(len(u), 9)
        return g0 * g0 * (coef * var.reshape(9)) @ coef.T
