"""Sensor orientation: VQF for raw IMUs, checked pass-through for quaternion devices.

Frames and units: quaternions are scalar first ``(w, x, y, z)``, sensor-to-world. VQF's world frame
has Z up (9D: East-North-Up; 6D: Z up with an arbitrary, slowly drifting heading). acc in m/s^2
(specific force), gyr in rad/s, mag in any consistent unit (VQF only uses its direction and norm).

Raw path (:class:`OrientationEstimator`)
    A thin wrapper around ``vqf.VQF`` (Laidig & Seel 2023) with default parameters. One VQF object lives
    for the whole stream and ``updateBatch`` is called per chunk, so feeding a stream in chunks gives
    bit-identical quaternions to feeding it in one piece (VQF's state simply continues). The wrapper
    adds no signal processing of its own: on undisturbed data it returns exactly what VQF standalone
    returns (checked on BROAD in ``tests/test_orientation.py`` and ``bench/processing_bench.py``).

    * 6D (gyr + acc) by default; 9D when a magnetometer stream is given and ``use_mag`` is not False.
      VQF's 9D estimate only corrects the heading (its inclination equals the 6D inclination), so a
      disturbed magnetometer cannot spoil the sagittal angles hipback reports.
    * Sample times: VQF needs a fixed sampling time; the nominal ``rate_hz`` is used. Timing jitter
      (a few percent) is ignored, which costs less than resampling raw gyro data would.
    * Gaps: when consecutive valid samples are more than ``reset_gap_s`` apart (default 0.2 s) the
      filter state is reset (``resetState``) and re-initialised from the next accelerometer sample; the
      gyro bias estimate is carried over. Nothing is integrated across a gap (that would invent motion
      that was never measured). Each reset starts a new ``segment`` number. Shorter dropouts (a few
      lost packets) do not reset: the filter continues with the next sample, missing only the rotation
      during the dropout, which its accelerometer correction removes; a reset would instead restart
      the inclination from a single accelerometer sample, which is worse during movement. (The
      pipeline never interpolates angles across any gap longer than 2.5 sample periods.)
    * Samples with NaN/inf in acc or gyr are skipped (output NaN) and do not advance the filter.

Fixed-lag raw path (:class:`LaggedOrientationEstimator`; ``hipback process``'s default for raw sensors)
    Offline (forward-backward) VQF over overlapping windows: a bounded delay (``block_s + lag_s``) instead
    of the causal filter's lag, whose accelerometer correction turns walking accelerations into inclination
    errors that last seconds. Output comes block by block, later than the input; runs are turned onto one
    heading and blended where blocks meet, and take the gyroscope bias from a causal VQF running beside them
    (so the heading drifts no more than the causal filter's). Both estimators share one interface:
    ``update`` returns the samples whose orientation became final (the causal one: all of them, at once),
    ``finish`` the rest.

Quaternion path (:func:`check_quaternions`)
    Device quaternions are normalised; rows with NaN/inf or a norm outside ``1 +/- tol`` before
    normalisation are flagged (counted) and zero-norm rows become NaN, never a silent identity.
    :func:`gyroscope_agreement` tells whether a device's quaternions follow its own gyroscope (the file
    importer's test of a device's orientation output before trusting it).

BROAD metric (:func:`orientation_errors`)
    Error quaternion in the world frame ``q_est * conj(q_ref)``; total error = its rotation angle,
    inclination error = the angle left after removing its rotation about world Z, heading error = that
    Z rotation (Laidig et al., Data 2021). For 6D estimates the constant heading offset between the
    filter's world frame and the reference world frame is removed first (circular mean over the scored
    samples), as 6D fusion cannot know north.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import vqf

from hipback.processing import quaternion as quat
from hipback.processing.blocks import SMALL_CHUNK
from hipback.processing.quaternion import FloatArray


@dataclass
class OrientationOutput:
    """Result of one ``update`` or ``finish`` call: :class:`OrientationEstimator`'s ``update`` returns every
    input sample, :class:`LaggedOrientationEstimator`'s the samples that became final (``t`` their times).

    ``quat`` is sensor-to-world, NaN for skipped samples; ``segment`` numbers the continuous pieces
    (a new number after each gap reset); ``rest`` is VQF's rest detection.
    """

    t: FloatArray
    quat: FloatArray
    segment: np.ndarray
    rest: np.ndarray
    resets: list[float] = field(default_factory=list)
    skipped: int = 0


class OrientationEstimator:
    """Streaming VQF orientation for one raw IMU (see the module docstring).

    :param rate_hz: nominal sampling rate of acc/gyr (and mag) in Hz.
    :param use_mag: True: 9D (mag required); False: 6D; None: 9D when mag samples are given.
    :param params: VQF parameters (keyword arguments of ``vqf.VQF``); None for VQF's defaults.
    :param reset_gap_s: a time step between valid samples larger than this resets the filter (s).
    """

    def __init__(
        self,
        rate_hz: float,
        use_mag: bool | None = None,
        params: dict[str, Any] | None = None,
        reset_gap_s: float = 0.2,
    ) -> None:
        if not np.isfinite(rate_hz) or rate_hz <= 0:
            raise ValueError(f"sampling rate must be positive, got {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.ts = 1.0 / self.rate_hz
        self.use_mag = use_mag
        self.params = dict(params or {})
        self.gap_s = max(float(reset_gap_s), 2.5 * self.ts)
        self._vqf = vqf.VQF(self.ts, **self.params)
        self._last_t: float | None = None
        self._segment = 0
        self._mode: str | None = None if use_mag is None else ("9D" if use_mag else "6D")

    @property
    def mode(self) -> str:
        """``"6D"`` or ``"9D"`` (decided at the first sample when ``use_mag`` is None)."""
        return self._mode or "6D"

    def update(
        self, t: FloatArray, acc: FloatArray, gyr: FloatArray, mag: FloatArray | None = None
    ) -> OrientationOutput:
        """Process the next samples (times strictly increasing, continuing the previous chunk).

        In 9D mode, magnetometer rows that are NaN (or a chunk without ``mag``) are passed to VQF as zero
        vectors, which VQF skips: orientation continues from gyr/acc with the last heading correction.
        """
        t = np.asarray(t, dtype=np.float64)
        n = len(t)
        if self._mode is None:
            self._mode = "9D" if mag is not None else "6D"
        if 0 < n <= SMALL_CHUNK and (self._mode == "6D" or mag is not None):
            fast = self._update_small(t, acc, gyr, mag if self._mode == "9D" else None)
            if fast is not None:
                return fast
        out_q = np.full((n, 4), np.nan)
        seg = np.full(n, -1, dtype=np.int64)
        rest = np.zeros(n, dtype=bool)
        resets: list[float] = []
        if n == 0:
            return OrientationOutput(t, out_q, seg, rest)
        acc = np.asarray(acc, dtype=np.float64)
        gyr = np.asarray(gyr, dtype=np.float64)
        use9 = self._mode == "9D"
        if use9:
            mag = np.zeros((n, 3)) if mag is None else np.asarray(mag, dtype=np.float64)
            mag = np.where(np.isfinite(mag).all(axis=1, keepdims=True), mag, 0.0)
        # a sum of squares is finite iff every component is (1-D: cheaper than axis-1 reductions)
        with np.errstate(over="ignore", invalid="ignore"):
            sq = np.einsum("ij,ij->i", acc, acc) + np.einsum("ij,ij->i", gyr, gyr)
            ok = np.isfinite(sq) & np.isfinite(t)
        if ok.all():  # the common case in one call (the same VQF calls as below: identical results)
            first = t[0] - (self._last_t if self._last_t is not None else t[0])
            if first <= self.gap_s and (n == 1 or float(np.max(np.diff(t))) <= self.gap_s):
                g, ac = np.ascontiguousarray(gyr), np.ascontiguousarray(acc)
                if use9:
                    r = self._vqf.updateBatch(g, ac, np.ascontiguousarray(mag))
                    q = r["quat9D"]
                else:
                    r = self._vqf.updateBatch(g, ac)
                    q = r["quat6D"]
                self._last_t = float(t[-1])
                seg = np.full(n, self._segment, dtype=np.int64)
                return OrientationOutput(t, q, seg, np.asarray(r["restDetected"], dtype=bool), resets, 0)
        idx = np.flatnonzero(ok)
        skipped = int(n - len(idx))
        if len(idx) == 0:
            return OrientationOutput(t, out_q, seg, rest, resets, skipped)
        tv = t[idx]
        prev = np.concatenate(([self._last_t if self._last_t is not None else tv[0]], tv[:-1]))
        breaks = np.flatnonzero(tv - prev > self.gap_s)
        bounds = np.concatenate(([0], breaks, [len(idx)]))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            if b <= a:
                continue
            if a in breaks:
                self._reset()
                resets.append(float(tv[a]))
            sel = idx[a:b]
            g = np.ascontiguousarray(gyr[sel])
            ac = np.ascontiguousarray(acc[sel])
            if use9:
                r = self._vqf.updateBatch(g, ac, np.ascontiguousarray(mag[sel]))
                out_q[sel] = r["quat9D"]
            else:
                r = self._vqf.updateBatch(g, ac)
                out_q[sel] = r["quat6D"]
            rest[sel] = r["restDetected"]
            seg[sel] = self._segment
        self._last_t = float(tv[-1])
        return OrientationOutput(t, out_q, seg, rest, resets, skipped)

    def _update_small(
        self, t: FloatArray, acc: FloatArray, gyr: FloatArray, mag: FloatArray | None
    ) -> OrientationOutput | None:
        """:meth:`update`'s common case for a live chunk of a few samples, decided on Python floats: every
        row finite (in 9D, ``mag`` given and finite too), no time step above ``reset_gap_s``; None otherwise
        (then :meth:`update` decides row by row). The same single ``updateBatch`` call as :meth:`update`'s,
        so the same quaternions.

        The sum of all squares is finite exactly when every row's is (the terms are not negative), except
        when only the total overflows, which falls back to the row-by-row path."""
        acc = np.asarray(acc, dtype=np.float64)
        gyr = np.asarray(gyr, dtype=np.float64)
        if acc.shape != (len(t), 3) or gyr.shape != acc.shape:
            return None  # (the row-by-row path says what is wrong)
        total = float(np.vdot(acc, acc)) + float(np.vdot(gyr, gyr))
        if mag is not None:
            mag = np.asarray(mag, dtype=np.float64)
            if mag.shape != acc.shape:
                return None
            total += float(np.vdot(mag, mag))
        if not math.isfinite(total):
            return None
        tl = t.tolist()
        prev = tl[0] if self._last_t is None else self._last_t
        for x in tl:
            if not (math.isfinite(x) and x - prev <= self.gap_s):
                return None
            prev = x
        g, ac = np.ascontiguousarray(gyr), np.ascontiguousarray(acc)
        if mag is None:
            q = (r := self._vqf.updateBatch(g, ac))["quat6D"]
        else:
            q = (r := self._vqf.updateBatch(g, ac, np.ascontiguousarray(mag)))["quat9D"]
        self._last_t = tl[-1]
        seg = np.empty(len(tl), dtype=np.int64)
        seg.fill(self._segment)
        return OrientationOutput(t, q, seg, r["restDetected"], [], 0)

    def finish(self) -> OrientationOutput:
        """Nothing is held back (every :meth:`update` returns all its samples): an empty output."""
        return _empty_output([])

    def _reset(self) -> None:
        bias, sigma = self._vqf.getBiasEstimate()
        self._vqf.resetState()
        self._vqf.setBiasEstimate(bias, float(sigma))
        self._segment += 1


class LaggedOrientationEstimator:
    """Fixed-lag smoothed 6D orientation of one raw IMU: offline VQF over overlapping windows, streaming.

    Why: the causal filter corrects its inclination with the acceleration low-passed (causally) in an almost
    inertial frame, and that filter's lag turns the accelerations of walking into inclination errors that
    last seconds; offline VQF (Laidig & Seel 2023) filters forward and backward and has no such lag. This
    block gets most of the offline estimate with a bounded delay.

    How: each continuous piece of the stream is cut into blocks of ``block_s`` (sample counts from the
    piece's first sample, so the chunking never changes a result). Block ``j`` becomes final once
    ``lag_s`` of samples after its end are in; its quaternions come from ``vqf.offlineVQF`` run over the
    piece's samples from ``preroll_s`` before the block's start to ``lag_s`` after its end. Every run has
    its own 6D heading: a run is turned about world Z onto the previous run over the samples both cover
    after the previous block's end (the circular mean of :func:`heading_offset`), and the first
    ``min(lag_s, block_s)`` of each block blend from the previous run into the new one (normalised linear
    interpolation, weight rising linearly), so the output has no step where blocks meet.

    Gyroscope bias: a causal VQF runs beside the blocks over every sample as it comes (its state continues
    across the whole stream, reset at a gap with its bias kept, as :class:`OrientationEstimator`'s), and
    each run gets the gyroscope less that filter's bias estimate at its block's last sample, with the run's
    own bias estimation off. An offline run left to estimate the bias itself starts from none and has only its
    16 s: while the patient moves it does not learn a bias of 0.5 deg/s, and its heading turns with it
    (measured on the exercise cohort: the thigh's heading relative to the pelvis changed by up to 8.2 deg
    within 15 s, p95 1.9 deg, against 1.5 / 0.5 deg for the causal filter; on BROAD the heading RMSE went
    0.46 / 3.86 / 5.06 -> 0.75 / 9.20 / 6.33 deg against causal when each run carried on the last run's own
    estimate). With the causal filter's bias the heading changes as the causal filter's (1.4 / 0.5 deg; BROAD
    heading 0.46 / 3.85 / 5.05 deg) and the inclination keeps the smoothing's gain (BROAD 0.43 / 1.72 / 1.25
    causal -> 0.31 / 1.02 / 1.02 deg).

    Units and frames as :class:`OrientationEstimator` (6D only: Z up, arbitrary heading). Outputs
    (:class:`OrientationOutput`) hold the samples that became final, in input order, up to
    ``block_s + lag_s`` after they came in; :meth:`finish` returns the rest (the last blocks are computed
    from the samples there are). A time step larger than ``reset_gap_s`` between valid samples ends a piece:
    its remaining blocks are computed at once and the next piece starts a new ``segment`` (its first
    sample's time is listed in ``resets``). Rows with NaN/inf acc or gyr are left out of the runs and give
    NaN (counted in ``skipped``).

    :param rate_hz: nominal sampling rate of acc/gyr (Hz).
    :param lag_s: samples after a block that its estimate uses (s): the delay beyond the block.
    :param block_s: length of the blocks (s).
    :param preroll_s: samples before a block that its estimate uses (s).
    :param params: VQF parameters (of the causal filter beside the blocks and of ``vqf.offlineVQF``'s runs,
        whose bias estimation is always off), None for VQF's defaults.
    :param reset_gap_s: a time step between valid samples larger than this starts a new piece (s).
    """

    def __init__(
        self,
        rate_hz: float,
        lag_s: float = 4.0,
        block_s: float = 2.0,
        preroll_s: float = 10.0,
        params: dict[str, Any] | None = None,
        reset_gap_s: float = 0.2,
    ) -> None:
        if not np.isfinite(rate_hz) or rate_hz <= 0:
            raise ValueError(f"sampling rate must be positive, got {rate_hz}")
        if not block_s > 0 or not lag_s >= 0 or not preroll_s >= 0:
            raise ValueError("block_s must be positive, lag_s and preroll_s not negative")
        self.rate_hz = float(rate_hz)
        self.ts = 1.0 / self.rate_hz
        self.lag_s, self.block_s, self.preroll_s = float(lag_s), float(block_s), float(preroll_s)
        self.params = dict(params or {})
        self.gap_s = max(float(reset_gap_s), 2.5 * self.ts)
        self._nb = max(1, round(self.block_s * self.rate_hz))
        self._nl = round(self.lag_s * self.rate_hz)
        self._npre = round(self.preroll_s * self.rate_hz)
        self._segment = 0
        self._last_t: float | None = None
        # the causal filter beside the blocks, for its gyroscope bias estimate (rad/s) only
        self._causal = vqf.VQF(self.ts, **self.params)
        self._last_bias = np.zeros(3)
        self._run_params = {**self.params, "motionBiasEstEnabled": False, "restBiasEstEnabled": False}
        self._new_piece()

    #: 6D only (the interface of :class:`OrientationEstimator`: a magnetometer is never used)
    use_mag = False
    mode = "6D"

    def _new_piece(self) -> None:
        self._t = np.zeros(0)
        self._acc = np.zeros((0, 3))
        self._gyr = np.zeros((0, 3))
        self._bias = np.zeros((0, 3))  # the causal filter's bias estimate at each held sample
        self._off = 0  # piece index of the buffer's first row
        self._n = 0  # samples of the piece so far
        self._next = 0  # piece index of the next block to emit
        self._tail: FloatArray | None = None  # previous run over [next, next + len(tail)), heading-aligned

    def update(
        self, t: FloatArray, acc: FloatArray, gyr: FloatArray, mag: FloatArray | None = None
    ) -> OrientationOutput:
        """Take the next samples (times increasing, continuing the previous call); return the final ones.

        The output's samples are the earliest not yet returned, in input order (a prefix of what is held);
        ``mag`` is accepted for the interface of :class:`OrientationEstimator` and not used (6D only).
        """
        t = np.asarray(t, dtype=np.float64)
        acc = np.asarray(acc, dtype=np.float64).reshape(-1, 3)
        gyr = np.asarray(gyr, dtype=np.float64).reshape(-1, 3)
        out: list[OrientationOutput] = []
        resets: list[float] = []
        with np.errstate(over="ignore", invalid="ignore"):
            sq = np.einsum("ij,ij->i", acc, acc) + np.einsum("ij,ij->i", gyr, gyr)
            ok = np.isfinite(sq) & np.isfinite(t)
        start = 0
        for i in np.flatnonzero(ok):
            if self._last_t is not None and t[i] - self._last_t > self.gap_s:
                self._append(t[start:i], acc[start:i], gyr[start:i], out)
                self._flush(out)
                self._segment += 1
                self._new_piece()
                bias, sigma = self._causal.getBiasEstimate()
                self._causal.resetState()
                self._causal.setBiasEstimate(bias, float(sigma))
                resets.append(float(t[i]))
                start = i
            self._last_t = float(t[i])
        self._append(t[start:], acc[start:], gyr[start:], out)
        return self._join(out, resets)

    def finish(self) -> OrientationOutput:
        """Compute and return the samples not yet returned (the last blocks, from the samples there are)."""
        out: list[OrientationOutput] = []
        self._flush(out)
        self._new_piece()
        return self._join(out, [])

    def _append(self, t: FloatArray, acc: FloatArray, gyr: FloatArray, out: list) -> None:
        if len(t):
            self._t = np.concatenate([self._t, t])
            self._acc = np.concatenate([self._acc, acc])
            self._gyr = np.concatenate([self._gyr, gyr])
            self._bias = np.concatenate([self._bias, self._causal_bias(acc, gyr)])
            self._n += len(t)
        while self._next + self._nb + self._nl <= self._n:
            out.append(self._block())

    def _causal_bias(self, acc: FloatArray, gyr: FloatArray) -> FloatArray:
        """The causal filter's bias estimate after each of these samples (rows with NaN/inf skip the filter
        and repeat the estimate before them)."""
        with np.errstate(over="ignore", invalid="ignore"):
            ok = np.isfinite(np.einsum("ij,ij->i", acc, acc) + np.einsum("ij,ij->i", gyr, gyr))
        if ok.all():
            b = self._causal.updateBatch(np.ascontiguousarray(gyr), np.ascontiguousarray(acc))["bias"]
        else:
            fill = np.vstack([self._last_bias, np.zeros((int(ok.sum()), 3))])
            if ok.any():
                r = self._causal.updateBatch(np.ascontiguousarray(gyr[ok]), np.ascontiguousarray(acc[ok]))
                fill[1:] = r["bias"]
            b = fill[np.cumsum(ok)]  # each row: the estimate after the last valid sample up to it
        if len(b):
            self._last_bias = b[-1].copy()
        return b

    def _flush(self, out: list) -> None:
        while self._next < self._n:
            out.append(self._block())

    def _block(self) -> OrientationOutput:
        s = self._next
        e = min(s + self._nb, self._n)
        lo, hi = max(self._off, s - self._npre), min(self._n, e + self._nl)
        a, b = lo - self._off, hi - self._off
        gyr, acc = self._gyr[a:b], self._acc[a:b]
        with np.errstate(over="ignore", invalid="ignore"):
            ok = np.isfinite(np.einsum("ij,ij->i", acc, acc) + np.einsum("ij,ij->i", gyr, gyr))
        q = np.full((hi - lo, 4), np.nan)
        rest = np.zeros(hi - lo, dtype=bool)
        if ok.any():
            bias = self._bias[e - 1 - self._off]
            g, ac = np.ascontiguousarray(gyr[ok] - bias), np.ascontiguousarray(acc[ok])
            r = vqf.offlineVQF(g, ac, None, self.ts, self._run_params)
            q[ok] = r["quat6D"]
            rest[ok] = np.asarray(r["restDetected"], dtype=bool)
        tail = self._tail
        if tail is not None:
            prev = tail[: min(len(tail), hi - s)]
            cur = q[s - lo : s - lo + len(prev)]
            both = np.isfinite(prev).all(axis=1) & np.isfinite(cur).all(axis=1)
            if both.any():
                psi = heading_offset(cur, prev, both)
                q = quat.multiply(quat.from_axis_angle([0.0, 0.0, 1.0], -psi), q)
                cur = q[s - lo : s - lo + len(prev)]
            n = min(len(prev), e - s)
            w = (np.arange(n) + 1.0) / (n + 1.0)
            p, c = prev[:n], cur[:n]
            c = np.where((np.einsum("ij,ij->i", p, c) < 0)[:, None], -c, c)
            blend = quat.normalize((1.0 - w)[:, None] * p + w[:, None] * c)
            good = np.isfinite(blend).all(axis=1)
            q[s - lo : s - lo + n][good] = blend[good]
        self._tail = q[e - lo :].copy() if e < hi else None
        res = OrientationOutput(
            self._t[s - self._off : e - self._off].copy(),
            q[s - lo : e - lo].copy(),
            np.full(e - s, self._segment, dtype=np.int64),
            rest[s - lo : e - lo].copy(),
            [],
            int((~ok[s - lo : e - lo]).sum()),
        )
        self._next = e
        keep = max(self._off, e - self._npre)
        cut = keep - self._off
        self._t, self._acc, self._gyr, self._bias = (
            self._t[cut:], self._acc[cut:], self._gyr[cut:], self._bias[cut:]
        )
        self._off = keep
        return res

    def _join(self, parts: list[OrientationOutput], resets: list[float]) -> OrientationOutput:
        if not parts:
            return _empty_output(resets)
        return OrientationOutput(
            np.concatenate([p.t for p in parts]),
            np.concatenate([p.quat for p in parts]),
            np.concatenate([p.segment for p in parts]),
            np.concatenate([p.rest for p in parts]),
            resets,
            sum(p.skipped for p in parts),
        )


def _empty_output(resets: list[float]) -> OrientationOutput:
    empty = np.zeros(0)
    return OrientationOutput(empty, np.zeros((0, 4)), empty.astype(np.int64), empty.astype(bool), resets)


@dataclass
class QuaternionCheck:
    """Normalised device quaternions; ``invalid`` rows (NaN, zero, far from unit) became NaN, ``non_unit``
    rows were plausible but renormalised."""

    quat: FloatArray
    invalid: int
    non_unit: int


def check_quaternions(q: FloatArray, tol: float = 0.05) -> QuaternionCheck:
    """Normalise device quaternions; count NaN rows and rows whose norm is outside ``1 +/- tol``.

    Rows that are NaN, zero or far from unit norm (outside ``1 +/- 10*tol``) become NaN: such a
    quaternion is corrupt, not merely unnormalised.
    """
    q = quat.as_quat(q)
    # the values of np.linalg.norm / quat.normalize (same products and reduction), without their per-call
    # overhead, which dominates on the few rows of a live chunk
    norm = np.sqrt(np.add.reduce(q * q, axis=-1))
    dev = np.abs(norm - 1.0)
    # the common case: every row finite and unit (NaN fails the comparison)
    if np.maximum.reduce(dev, axis=None, initial=0.0) <= tol:
        return QuaternionCheck(q / norm[..., None], 0, 0)  # (norms near 1: nothing to silence)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = q / norm[..., None]
    bad = ~np.isfinite(norm) | (norm < 1e-9) | (dev > 10 * tol)
    non_unit = ~bad & (dev > tol)
    out[bad] = np.nan
    return QuaternionCheck(out, int(bad.sum()), int(non_unit.sum()))


@dataclass
class GyroscopeAgreement:
    """How closely a device's orientation output follows its own gyroscope (:func:`gyroscope_agreement`).

    ``quiet_rows``: sample pairs compared (both finite, gyroscope slower than the quiet limit);
    ``residual_p90_rad_s``: 90th percentile of ``|w_q - gyr - bias|`` over them (rad/s; NaN when no pair
    was compared), where ``w_q`` is the angular velocity between consecutive device quaternions (sensor
    frame) and ``bias`` the per-axis median of ``w_q - gyr`` (the gyroscope's offset, which the device's
    fusion removes)."""

    quiet_rows: int
    residual_p90_rad_s: float


def gyroscope_agreement(
    q: FloatArray, gyr: FloatArray, rate_hz: float, quiet_rad_s: float = 0.5
) -> GyroscopeAgreement:
    """Compare a device's quaternions with its own gyroscope on the quiet samples (see
    :class:`GyroscopeAgreement`).

    A device whose fusion works turns its orientation output as its gyroscope says, up to the gyroscope's
    offset: the bias-removed residual stays at the gyroscope's noise (hundredths of a rad/s). An output
    that jitters between values (a magnetometer-disturbed heading that keeps jumping back), holds and
    jumps, or is shifted in time against the gyroscope leaves a residual of tenths of a rad/s to several
    rad/s. Only quiet samples (gyroscope slower than ``quiet_rad_s``) are compared, so a delay of the
    orientation output by a sample or two, which costs little, does not count against the device during
    fast movement.

    ``q``: (N, 4) scalar-first sensor-to-world quaternions; ``gyr``: (N, 3) rad/s, sensor frame; samples on
    a uniform grid at ``rate_hz`` (a time gap makes a pair look turned: the caller passes rows without
    gaps or accepts that).
    """
    q = quat.as_quat(q)
    g = np.asarray(gyr, dtype=np.float64)
    if len(q) < 2:
        return GyroscopeAgreement(0, float("nan"))
    prev, cur = q[:-1], q[1:]
    d = quat.multiply(quat.conjugate(prev), cur)
    sign = np.where(d[:, 0] < 0, -2.0, 2.0) * rate_hz
    w_q = d[:, 1:] * sign[:, None]
    gg = g[1:]
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(w_q).all(axis=1) & np.isfinite(gg).all(axis=1)
        ok &= np.linalg.norm(np.where(np.isfinite(gg), gg, 0.0), axis=1) < quiet_rad_s
    if not ok.any():
        return GyroscopeAgreement(0, float("nan"))
    diff = w_q[ok] - gg[ok]
    resid = np.linalg.norm(diff - np.median(diff, axis=0), axis=1)
    return GyroscopeAgreement(int(ok.sum()), float(np.percentile(resid, 90)))


def heading_offset(q_est: FloatArray, q_ref: FloatArray, mask: np.ndarray | None = None) -> float:
    """Constant heading (rotation about world Z, rad) best mapping the ``q_ref`` world onto ``q_est``'s.

    Circular mean over ``mask`` of the Z-rotation of ``q_est * conj(q_ref)`` (NaN rows ignored).
    """
    d = quat.multiply(quat.normalize(q_est), quat.conjugate(quat.normalize(q_ref)))
    psi = 2.0 * np.arctan2(d[:, 3], d[:, 0])
    ok = np.isfinite(psi) if mask is None else (np.isfinite(psi) & mask)
    return float(np.arctan2(np.sin(psi[ok]).mean(), np.cos(psi[ok]).mean()))


def orientation_errors(
    q_est: FloatArray, q_ref: FloatArray, mask: np.ndarray | None = None, align_heading: bool = False
) -> dict[str, float]:
    """BROAD error metrics in degrees: ``total_rmse_deg``, ``heading_rmse_deg``, ``inclination_rmse_deg``.

    ``mask`` selects the scored samples (BROAD's ``movement``); NaN reference rows are skipped.
    ``align_heading`` removes a constant heading offset first (for 6D estimates).
    """
    q_est = quat.normalize(q_est)
    q_ref = quat.normalize(q_ref)
    if align_heading:
        psi = heading_offset(q_est, q_ref, mask)
        q_est = quat.multiply(quat.from_axis_angle([0.0, 0.0, 1.0], -psi), q_est)
    d = quat.multiply(q_est, quat.conjugate(q_ref))
    total = 2.0 * np.arccos(np.clip(np.abs(d[:, 0]), 0.0, 1.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        heading = 2.0 * np.arctan(np.abs(d[:, 3] / d[:, 0]))
    incl = 2.0 * np.arccos(np.clip(np.sqrt(d[:, 0] ** 2 + d[:, 3] ** 2), 0.0, 1.0))
    ok = np.isfinite(d).all(axis=1)
    if mask is not None:
        ok &= np.asarray(mask, dtype=bool)

    def rmse(x: FloatArray) -> float:
        return float(np.degrees(np.sqrt(np.mean(x[ok] ** 2))))

    return {
        "total_rmse_deg": rmse(total),
        "heading_rmse_deg": rmse(heading),
        "inclination_rmse_deg": rmse(incl),
    }
