"""One sensor's channel: validation, orientation, resampling onto the common grid (a streaming block).

Input: consecutive :class:`~hipback.processing.types.SensorStream` chunks of one sensor. Output
(:class:`GridChunk`): the grid rows ``k`` (time ``k / grid_rate_hz`` s) that became final, with the sensor's
orientation (sensor-to-world quaternion, scalar first) and, when ``acceleration`` is on, two features of its
acceleration (m/s^2; NaN without accelerometer samples): the world-vertical component with gravity removed
(up positive) and the magnitude of the acceleration with gravity removed. Both need only the vertical row of
the rotation: ``(R a)_z = u . a`` with ``u`` world up in the sensor frame, and
``|R a - g e_z|^2 = |a|^2 - 2 g (R a)_z + g^2``. With ``gyroscope`` on (quaternion devices that also deliver
their gyroscope, for the exercise blocks' heading between alignments), also the gyroscope (rad/s, sensor
frame), resampled linearly like the acceleration (NaN across a gap and next to a sample without it).

1. **Validation.** Samples whose time is not after the previous accepted sample (time going backwards,
   duplicates) are dropped and counted; NaN/inf samples are skipped; non-unit quaternions are counted. The
   log (``messages_``) says each kind of such event, and each gap, in full the first ten times, then as a
   count at most once per minute of stream time and at :meth:`SensorChannel.finish` (the counters and
   ``gaps_`` keep every one), so a sensor that keeps losing packets does not grow it for hours.
   With ``acc_bias`` on, a raw device's accelerometer offset is estimated in use from its still moments
   (:class:`~hipback.processing.acc_bias.AccBiasEstimator`) and subtracted before the orientation filter and
   the acceleration features; an estimate is applied from the first sample after the still period that
   produced it (going forward only: the filter's state is kept and its inclination moves to the corrected
   one with its own accelerometer time constant), none before the estimate is trusted (or ``initial`` of
   ``acc_bias_params``, for example a value kept from an earlier session of the same device). With
   ``acc_bias_keep_frame`` (the default) the output keeps the frame the sensor had in its first still
   posture (the calibration stance of a session that starts with one): each output quaternion is turned,
   in the sensor frame, by the constant tilt that the applied offset's change moved that posture's gravity
   direction by, so the inclination of every other posture is corrected relative to it and a calibration
   measured before the estimate was trusted stays valid (a constant sensor-frame rotation is what a
   mounting calibration absorbs). The acceleration features use the filter's own orientation. The
   session processor turns ``acc_bias_keep_frame`` off and keeps the frame of the calibration's own
   posture instead (:class:`~hipback.processing.calibration_search.AccOffsetFrame`): a sensor's first still
   posture may be a table it lay on before it was strapped on. The first trusted estimate is reported in
   ``messages_`` (its size, uncertainty, still postures and from when it is subtracted).
2. **Orientation** (:mod:`hipback.processing.orientation`): VQF for raw devices, normalised pass-through for
   quaternion devices. A time step above ``gap_factor`` sample periods is a gap: reported (``gaps_``),
   VQF is reset after ``reset_gap_s``, nothing is interpolated across it. Raw devices' filter is chosen by
   ``orientation``: ``"causal"`` (:class:`~hipback.processing.orientation.OrientationEstimator`, the
   default: a sample's orientation comes with it) or ``"lagged"``
   (:class:`~hipback.processing.orientation.LaggedOrientationEstimator`: fixed-lag smoothed, 6D, better
   inclination while walking, its heading drifts more, a sample's orientation comes up to its
   ``block_s + lag_s`` later). The channel holds each sample's time and acceleration until its orientation
   comes back, then goes on as for the causal filter; :meth:`SensorChannel.finish` flushes the filter.
3. **Resampling** (:mod:`hipback.processing.resample`) onto ``k / grid_rate_hz``: slerp between the two
   neighbouring samples (acceleration, gyroscope: linear), NaN across a gap. Each grid value depends only on
   its two neighbours, so the chunking does not change any output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hipback.processing import quaternion as qm
from hipback.processing.acc_bias import AccBiasEstimator
from hipback.processing.angles import GRAVITY, axes_vertical_components
from hipback.processing.blocks import SMALL_CHUNK, Block
from hipback.processing.orientation import (
    LaggedOrientationEstimator,
    OrientationEstimator,
    OrientationOutput,
    check_quaternions,
)
from hipback.processing.resample import GridResampler
from hipback.processing.types import Gap, SensorStream


@dataclass
class GridChunk:
    """Grid rows of one sensor: row indices ``k`` (int64), ``quat`` (N, 4) sensor-to-world, ``acc`` (N, 2)
    vertical acceleration and acceleration magnitude, both without gravity (m/s^2; NaN where not
    available; see the module docstring); ``gyr`` (N, 3) the sensor's gyroscope (rad/s, sensor frame; NaN
    where not available) from channels with ``gyroscope`` on, else None."""

    placement: str
    k: np.ndarray
    quat: np.ndarray
    acc: np.ndarray
    #: the channel's first grid row and the row up to which (exclusive) it is final, after this chunk
    first_k: int | None = None
    next_k: int | None = None
    gyr: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.k)


def take(s: SensorStream, idx: np.ndarray) -> SensorStream:
    """The samples ``idx`` of a stream (a new stream)."""

    def cut(a: Any) -> Any:
        return None if a is None else a[idx]

    return SensorStream(
        placement=s.placement,
        kind=s.kind,
        t=s.t[idx],
        rate_hz=s.rate_hz,
        quat=cut(s.quat),
        acc=cut(s.acc),
        gyr=cut(s.gyr),
        mag=cut(s.mag),
        seq=cut(s.seq),
        device=s.device,
        meta=s.meta,
    )


def _acc_features_small(q: np.ndarray, a: np.ndarray) -> list[list[float]]:
    """The acceleration features of :meth:`SensorChannel.update` for a few rows, as a list of rows
    ``[vertical, magnitude]``: the world-vertical acceleration without gravity and the magnitude without
    gravity (m/s^2), from the sensor-to-world quaternions ``q`` (N, 4) and the accelerations ``a`` (N, 3,
    m/s^2). The elementwise arithmetic of the numpy version on Python floats (``axes_vertical_components``,
    then ``(R a)_z``), the sum of squares of ``a`` by the same numpy call."""
    a_sq = np.einsum("ij,ij->i", a, a).tolist()
    rows = []
    two_g, g2 = 2.0 * GRAVITY, GRAVITY**2
    for (w, x, y, z), (a0, a1, a2), e in zip(q.tolist(), a.tolist(), a_sq, strict=True):
        ux = 2.0 * (x * z - w * y)
        uy = 2.0 * (y * z + w * x)
        uz = 1.0 - 2.0 * (x * x + y * y)
        vertical = ux * a0 + uy * a1 + uz * a2
        sq = e - two_g * vertical + g2
        rows.append([vertical - GRAVITY, math.sqrt(0.0 if sq < 0.0 else sq)])  # (NaN stays NaN)
    return rows


#: the raw sensors' orientation filters (:class:`SensorChannel`'s ``orientation``)
ORIENTATION_FILTERS = ("causal", "lagged")


@dataclass
class _Kind:
    said: int = 0
    unsaid: int = 0  # events counted since the last message of this kind
    since: float = 0.0  # stream time (s) of the first of them
    next_t: float = -math.inf  # stream time (s) from which the next count is said


class _Notes:
    """A block's log (``messages``) that stays bounded: each kind of message is said in full the first
    ``first`` times, then at most once per ``every_s`` of stream time as a count (``"thigh_left: 37 more gaps
    since t=61.20 s"``), and what is left at :meth:`flush`. A sensor that loses a packet every second would
    otherwise add a line per loss for as long as the session lasts."""

    def __init__(self, placement: str, messages: list[str], first: int = 10, every_s: float = 60.0) -> None:
        self.placement = placement
        self.messages = messages
        self.first = first
        self.every_s = every_s
        self._kinds: dict[str, _Kind] = {}

    def say(self, kind: str, t: float, text: str, count: int = 1) -> None:
        """One event of ``kind`` at stream time ``t`` (s): ``text`` in full, or counted (``count`` of what
        the kind counts)."""
        k = self._kinds.setdefault(kind, _Kind())
        if k.said < self.first:
            self.messages.append(text)
            k.said += 1
            k.next_t = t + self.every_s
            return
        if not k.unsaid:
            k.since = t
        k.unsaid += count
        if t >= k.next_t:
            self._count(kind, k)
            k.next_t = t + self.every_s

    def flush(self) -> None:
        """Say the counts not said yet."""
        for kind, k in self._kinds.items():
            if k.unsaid:
                self._count(kind, k)

    def _count(self, kind: str, k: _Kind) -> None:
        self.messages.append(f"{self.placement}: {k.unsaid} more {kind} since t={k.since:.2f} s")
        k.unsaid = 0


class SensorChannel(Block[SensorStream, GridChunk]):
    """One sensor from samples to grid rows (see the module docstring).

    :param placement: body placement of the sensor (``pelvis``, ``thigh_left``, ...).
    :param kind: ``"quat"`` (device quaternions) or ``"raw"`` (acc/gyr(/mag), orientation by VQF).
    :param rate_hz: the sensor's nominal sampling rate (Hz).
    :param grid_rate_hz: rate of the common grid (Hz).
    :param use_mag: raw sensors: True 9D, False 6D, None 9D when magnetometer samples come (``"lagged"``:
        always 6D; True is refused).
    :param vqf_params: VQF parameters (keyword arguments of ``vqf.VQF``), None for its defaults.
    :param gap_factor: a time step above this many sample periods is a gap.
    :param reset_gap_s: a gap longer than this (s) resets VQF.
    :param acceleration: also resample the world-frame acceleration (None: for the pelvis and the thighs,
        the sensors whose acceleration processing uses: the pelvis' for activity and initial contacts, the
        thighs' for the heel-strike impact).
    :param gyroscope: quaternion devices: also resample the gyroscope (``GridChunk.gyr``, rad/s, sensor frame,
        linear between neighbouring samples, NaN across a gap and next to a sample without a gyroscope value
        or with an invalid quaternion);
        for exercise blocks, whose heading between alignments comes from it (raw devices: ignored, their
        orientation already comes from the gyroscope).
    :param orientation: raw sensors' filter: ``"causal"`` or ``"lagged"`` (see the module docstring;
        quaternion devices: ignored).
    :param acc_bias: raw sensors: estimate the accelerometer offset in use and subtract it (see the module
        docstring; on by default: it stays off until the still postures spread enough, which walks with
        standing rarely do; quaternion devices: ignored, their fusion is the device's).
    :param acc_bias_params: keyword arguments of
        :class:`~hipback.processing.acc_bias.AccBiasEstimator` other than ``rate_hz`` (None: its defaults).
    :param acc_bias_keep_frame: with ``acc_bias``: keep the output frame of the first still posture (see
        the module docstring); False: the corrected inclination in absolute terms (for a calibration
        measured after the estimate is trusted, or none).
    """

    def __init__(
        self,
        placement: str,
        kind: str,
        rate_hz: float,
        *,
        grid_rate_hz: float = 100.0,
        use_mag: bool | None = None,
        vqf_params: dict[str, Any] | None = None,
        gap_factor: float = 2.5,
        reset_gap_s: float = 0.2,
        acceleration: bool | None = None,
        gyroscope: bool = False,
        orientation: str = "causal",
        acc_bias: bool = True,
        acc_bias_params: dict[str, Any] | None = None,
        acc_bias_keep_frame: bool = True,
    ) -> None:
        if orientation not in ORIENTATION_FILTERS:
            names = ", ".join(ORIENTATION_FILTERS)
            raise ValueError(f"orientation must be one of {names}, not {orientation!r}")
        if orientation == "lagged" and use_mag:
            raise ValueError("the lagged orientation filter is 6D only: not with use_mag=True")
        self.placement = placement
        self.kind = kind
        self.rate_hz = float(rate_hz)
        self.grid_rate_hz = float(grid_rate_hz)
        self.use_mag = use_mag
        self.vqf_params = vqf_params
        self.gap_factor = gap_factor
        self.reset_gap_s = reset_gap_s
        self.acceleration = acceleration
        self.gyroscope = gyroscope
        self.orientation = orientation
        self.acc_bias = acc_bias
        self.acc_bias_params = acc_bias_params
        self.acc_bias_keep_frame = acc_bias_keep_frame
        self._frame_cache: tuple[tuple[float, ...], np.ndarray] | None = None
        self._held_b = np.zeros((0, 3))
        self._bias = (
            AccBiasEstimator(self.rate_hz, **(acc_bias_params or {})) if acc_bias and kind == "raw" else None
        )
        self._gyr_on = bool(gyroscope) and kind == "quat"
        used = placement in ("pelvis", "thigh_left", "thigh_right")
        self._acc_on = used if acceleration is None else bool(acceleration)
        self._gap_s = gap_factor / self.rate_hz
        self._est: OrientationEstimator | LaggedOrientationEstimator | None = None
        if kind == "raw" and orientation == "lagged":
            self._est = LaggedOrientationEstimator(self.rate_hz, params=vqf_params, reset_gap_s=reset_gap_s)
        elif kind == "raw":
            self._est = OrientationEstimator(self.rate_hz, use_mag, vqf_params, reset_gap_s)
        # the lagged filter's samples (times, accelerations) held until their orientation comes back
        self._delayed = isinstance(self._est, LaggedOrientationEstimator)
        self._held_t = np.zeros(0)
        self._held_acc = np.zeros((0, 3))
        self._resampler = GridResampler(self.grid_rate_hz, self._gap_s)
        self._last_t: float | None = None
        self._finished = False
        self.dropped_backwards_ = 0
        self.invalid_ = 0
        self.non_unit_ = 0
        self.gaps_: list[Gap] = []
        self.messages_: list[str] = []
        self._notes = _Notes(placement, self.messages_)

    @property
    def acc_bias_(self) -> np.ndarray | None:
        """The accelerometer offset subtracted now (m/s^2, sensor frame; None without the estimator)."""
        return None if self._bias is None else self._bias.applied_.copy()

    @property
    def acc_bias_estimator_(self) -> AccBiasEstimator | None:
        """The offset estimator (its results: estimate, uncertainty, checks, updates), None without it."""
        return self._bias

    @property
    def first_k(self) -> int | None:
        """First grid row this sensor covers (None before its first sample)."""
        return self._resampler.first_k

    @property
    def next_k(self) -> int | None:
        """Grid rows before this one are final for this sensor (None before its first sample)."""
        return self._resampler.next_k

    def _empty(self) -> GridChunk:
        return GridChunk(
            self.placement,
            np.zeros(0, dtype=np.int64),
            np.zeros((0, 4)),
            np.zeros((0, 2)),
            self.first_k,
            self.next_k,
            np.zeros((0, 3)) if self._gyr_on else None,
        )

    def update(self, chunk: SensorStream) -> GridChunk:
        """Next samples of this sensor (times continuing the previous chunk); returns the new grid rows."""
        if self._finished:
            raise RuntimeError("update() after finish()")
        t = np.asarray(chunk.t, dtype=np.float64)
        if len(t) == 0:
            return self._empty()
        prev = -np.inf if self._last_t is None else self._last_t
        small = len(t) <= SMALL_CHUNK
        if small:  # a live chunk: the same comparisons and differences on Python floats
            tl = t.tolist()
            increasing = tl[0] > prev and math.isfinite(tl[-1])
            for j in range(1, len(tl)):
                if not tl[j] - tl[j - 1] > 0:
                    increasing = False
                    break
            d = None
        else:
            d = t[1:] - t[:-1] if len(t) > 1 else None  # (np.diff's values, without its per-call overhead)
            # (ufunc reductions: the values of d.min() / d.max() without their Python wrappers)
            increasing = bool(
                t[0] > prev and math.isfinite(t[-1]) and (d is None or np.minimum.reduce(d) > 0)
            )
        if increasing:
            # the common case (times finite and increasing: NaN fails the comparisons) without masks
            big = [0] if self._last_t is not None and t[0] - self._last_t > self._gap_s else []
            if small:
                big += [j for j in range(1, len(tl)) if tl[j] - tl[j - 1] > self._gap_s]
            elif d is not None and float(np.maximum.reduce(d)) > self._gap_s:
                big += (np.flatnonzero(d > self._gap_s) + 1).tolist()
        else:
            finite_t = np.isfinite(t)
            running = np.maximum.accumulate(np.concatenate([[prev], np.where(finite_t, t, -np.inf)]))[:-1]
            keep = finite_t & (t > running)
            n_drop = int(len(t) - keep.sum())
            if n_drop:
                self.dropped_backwards_ += n_drop
                idx = np.flatnonzero(keep)
                # (stream time of the note: the last sample kept, else the last accepted before)
                t_note = float(t[idx[-1]]) if len(idx) else (self._last_t or 0.0)
                self._notes.say(
                    "samples dropped because their time did not move forward", t_note,
                    f"{self.placement}: {n_drop} sample(s) dropped because their time did not move forward",
                    n_drop,
                )
                chunk = take(chunk, idx)
                t = t[idx]
                if len(t) == 0:
                    return self._empty()
            first = t[0] if self._last_t is None else self._last_t
            steps = np.diff(np.concatenate([[first], t]))
            big = np.flatnonzero(steps > self._gap_s).tolist()
        for j in big:
            t0 = float(t[j - 1]) if j > 0 else float(self._last_t)  # type: ignore[arg-type]
            gap = Gap(self.placement, t0, float(t[j]), max(int(round((t[j] - t0) * self.rate_hz)) - 1, 0))
            self.gaps_.append(gap)
            self._notes.say(
                "gaps (segments split, nothing interpolated across them)", gap.t_start,
                f"{self.placement}: gap of {gap.t_end - gap.t_start:.2f} s at t={gap.t_start:.2f} s "
                "(segments split, nothing interpolated across it)",
            )
        self._last_t = tl[-1] if small and increasing else float(t[-1])
        live = tl if small and increasing else None  # the live chunk as it came: lists throughout
        if self._est is not None:
            assert chunk.acc is not None and chunk.gyr is not None
            mag = None if self._est.use_mag is False else chunk.mag
            acc, bias = chunk.acc, None
            if self._bias is not None:
                was_trusted = bool(self._bias.updates_)
                bias = self._bias.update(chunk)
                acc = np.asarray(acc, dtype=np.float64) - bias
                if not was_trusted and self._bias.updates_:
                    self._first_offset_message()
            out = self._est.update(t, acc, chunk.gyr, mag)
            if not self._delayed:  # the causal filter: every sample's orientation came back at once
                return self._grid(t, live, self._skipped(out), acc, None, self._frame(bias))
            t_out, a_out, b_out = self._released(t, acc, out, bias)
            return self._grid(t_out, None, self._skipped(out), a_out, None, self._frame(b_out))
        assert chunk.quat is not None
        chk = check_quaternions(chunk.quat)
        if chk.invalid:
            self.invalid_ += chk.invalid
            self._notes.say(
                "invalid quaternions (NaN or far from unit norm) skipped", float(t[-1]),
                f"{self.placement}: {chk.invalid} invalid quaternion(s) (NaN or far from unit norm) skipped",
                chk.invalid,
            )
        if chk.non_unit:
            self.non_unit_ += chk.non_unit
            self._notes.say("non-unit quaternions renormalised", float(t[-1]),
                            f"{self.placement}: {chk.non_unit} non-unit quaternion(s) renormalised",
                            chk.non_unit)
        return self._grid(t, live, chk.quat, chunk.acc, chunk.gyr)

    def finish(self) -> GridChunk:
        """Flush the orientation filter: the held samples' rows (the causal filter holds none).

        A grid row is final once a sample at or after it came, so nothing else is held back."""
        if self._finished:
            return self._empty()
        self._finished = True
        if self._bias is not None:
            self._bias.finish()
        if self._est is None:
            self._notes.flush()
            return self._empty()
        out = self._est.finish()
        bias = None if self._bias is None else np.zeros((0, 3))
        t, a, b = self._released(np.zeros(0), np.zeros((0, 3)), out, bias)
        rows = self._grid(t, None, self._skipped(out), a, None, self._frame(b))
        self._notes.flush()  # the counts not said yet
        return rows

    def _first_offset_message(self) -> None:
        """Say, in plain words, that the accelerometer offset was first estimated and from when it is
        subtracted (m/s^2: its length and the largest standard uncertainty of an axis; s: stream time)."""
        est = self._bias
        assert est is not None
        t, b, sigma = est.updates_[0]
        self.messages_.append(
            f"{self.placement}: accelerometer offset estimated ({float(np.linalg.norm(b)):.3f} m/s^2 "
            f"+- {max(sigma):.3f}) from {est.n_directions_} still postures; "
            f"angles corrected from {t:.0f} s on"
        )

    def _skipped(self, out: OrientationOutput) -> np.ndarray:
        """The filter's quaternions; its skipped (NaN) samples counted and reported."""
        if out.skipped:
            self.invalid_ += out.skipped
            t = float(out.t[-1]) if len(out.t) else (self._last_t or 0.0)
            self._notes.say("raw samples with NaN skipped", t,
                            f"{self.placement}: {out.skipped} raw sample(s) with NaN skipped", out.skipped)
        return out.quat

    def _released(
        self, t: np.ndarray, acc: np.ndarray, out: OrientationOutput, bias: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Hold the new samples ``t``, ``acc`` (and the offsets ``bias`` subtracted from them) behind those
        held; return the times, accelerations and offsets of the earliest ones, whose orientations ``out``
        holds (the filter returns them in input order)."""
        held_t = np.concatenate((self._held_t, t))
        held_acc = np.concatenate((self._held_acc, np.asarray(acc, dtype=np.float64).reshape(-1, 3)))
        n = len(out.t)
        if n > len(held_t) or not np.array_equal(out.t, held_t[:n]):
            raise RuntimeError(f"{self.placement}: the orientation filter returned samples out of order")
        self._held_t, self._held_acc = held_t[n:], held_acc[n:]
        if bias is None:
            return held_t[:n], held_acc[:n], None
        held_b = np.concatenate((self._held_b, bias))
        self._held_b = held_b[n:]
        return held_t[:n], held_acc[:n], held_b[:n]

    def _frame(self, bias: np.ndarray | None) -> np.ndarray | None:
        """The sensor-frame rotations (N, 4) that keep the output in the first still posture's frame, for
        samples whose subtracted offsets are ``bias`` (see the module docstring); None where nothing turns."""
        if bias is None or not self.acc_bias_keep_frame or len(bias) == 0:
            return None
        assert self._bias is not None
        a0 = self._bias.reference_acc_
        if a0 is None:
            return None
        b0 = np.zeros(3) if self._bias.initial is None else np.asarray(self._bias.initial, dtype=np.float64)
        change = np.flatnonzero(np.any(bias[1:] != bias[:-1], axis=1)) + 1
        if len(change) == 0:
            if np.array_equal(bias[0], b0):
                return None  # the initial offset throughout: nothing turns (before the first estimate)
            if self._frame_cache is not None and self._frame_cache[0] == tuple(bias[0].tolist()):
                return np.broadcast_to(self._frame_cache[1], (len(bias), 4))
        out = np.empty((len(bias), 4))
        start = 0
        for end in [*change.tolist(), len(bias)]:
            key = tuple(bias[start].tolist())
            if self._frame_cache is None or self._frame_cache[0] != key:
                # the rotation taking the posture's up direction with the initial offset removed onto the one
                # with this offset removed (VQF's, at rest): q_out = q * g keeps the first
                v_ref = a0 - b0
                v_new = a0 - bias[start]
                v_ref = v_ref / np.linalg.norm(v_ref)
                v_new = v_new / np.linalg.norm(v_new)
                g = np.concatenate(([1.0 + float(v_ref @ v_new)], np.cross(v_ref, v_new)))
                self._frame_cache = (key, g / np.linalg.norm(g))
            out[start:end] = self._frame_cache[1]
            start = end
        return out

    def _grid(
        self,
        t: np.ndarray,
        tl: list[float] | None,
        q: np.ndarray,
        a: np.ndarray | None,
        gyr: np.ndarray | None,
        frame: np.ndarray | None = None,
    ) -> GridChunk:
        """Acceleration features and resampling of samples whose orientation ``q`` is known: times ``t``
        (``tl``: the same as a list when they are the live chunk as it came, else None), accelerations ``a``
        (m/s^2, sensor frame, None without), gyroscope ``gyr`` (rad/s, for ``gyroscope`` channels); ``frame``
        (N, 4): sensor-frame rotations applied to ``q`` after the acceleration features (``q * frame``)."""
        if len(t) == 0:
            return self._empty()
        qf = q if frame is None else qm.multiply(q, frame)
        # a channel without acceleration output resamples the orientation only (its acc rows are all NaN)
        acc = None
        if self._acc_on and a is None:
            acc = np.full((len(t), 2), np.nan)
        elif self._acc_on and len(t) <= SMALL_CHUNK:
            acc_rows = _acc_features_small(q, a)
            if tl is not None and not self._gyr_on:
                ks, qo, ao = self._resampler.push_lists(t, tl, qf, acc_rows)
                assert ao is not None
                return GridChunk(self.placement, ks, qo, ao, self.first_k, self.next_k)
            acc = np.array(acc_rows, dtype=np.float64).reshape(len(acc_rows), 2)
        elif self._acc_on:
            acc = np.full((len(t), 2), np.nan)
            ux, uy, uz = axes_vertical_components(q)
            vertical = ux * a[:, 0] + uy * a[:, 1] + uz * a[:, 2]  # (R a)_z
            acc[:, 0] = vertical - GRAVITY
            with np.errstate(invalid="ignore"):
                sq = np.einsum("ij,ij->i", a, a) - 2.0 * GRAVITY * vertical + GRAVITY**2
                acc[:, 1] = np.sqrt(np.maximum(sq, 0.0))
        if not self._gyr_on:
            if tl is not None and acc is None:
                ks, qo, ao = self._resampler.push_lists(t, tl, qf, None)
            else:
                ks, qo, ao = self._resampler.push(t, qf, acc)
            if ao is None:
                ao = np.full((len(ks), 2), np.nan)
            return GridChunk(self.placement, ks, qo, ao, self.first_k, self.next_k)
        # the gyroscope resampled with the acceleration features (one interpolation: the same elementwise
        # operations per column, so the acceleration's values do not change); a chunk without it is NaN
        g = np.full((len(t), 3), np.nan) if gyr is None else np.asarray(gyr, dtype=np.float64)
        both = g if acc is None else np.concatenate((acc, g), axis=1)
        ks, qo, so = self._resampler.push(t, qf, both)
        assert so is not None
        if acc is None:
            return GridChunk(
                self.placement, ks, qo, np.full((len(ks), 2), np.nan), self.first_k, self.next_k, so
            )
        return GridChunk(self.placement, ks, qo, so[:, :2], self.first_k, self.next_k, so[:, 2:])
