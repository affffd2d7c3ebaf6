"""Per-sensor clock models: device time (or sample index) -> host UTC seconds.

A notification arrives after the samples it carries were taken: ``arrival = device_time + offset + latency``
with ``latency >= 0`` (radio, connection interval, OS queues). The models keep, per window of device time, the
packet with the smallest ``arrival - device_time`` (a lower envelope, latency close to its floor), fit
``offset + drift * t`` to those minima by least squares (drift bounded, 200 ppm by default), and map samples
with the fit.

- :class:`ClockModel` for devices with timestamps (hipback v1, Movella DOT): detects device clock jumps (a
  residual below zero, which latency cannot explain, or one far above the envelope for a sustained stretch),
  re-anchors and reports them in :attr:`ClockModel.jumps`.
- Devices without timestamps (WitMotion) use the sample index times the nominal period as device time
  (:class:`ArrivalClock`); the drift bound is wider (the device's own rate error), and gaps are detected from
  the arrival times (losses leave a lasting step in the residual; a late burst does not) and reported in
  :attr:`ArrivalClock.gaps`.

``map(decoded)`` is the one call a session needs: it feeds the packet to the model and returns UTC times for
its samples (monotonic within a sensor; never later than the packet's arrival).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from hipback.ingest.devices.base import DecodedSamples, FloatArray

#: packets of up to this many samples are mapped on Python floats (the same values as with numpy, whose fixed
#: cost per call dominates on a few values)
SMALL_PACKET = 16

#: event records (clock jumps, arrival gaps) kept in memory: the most recent ones; the counters count them all
MAX_EVENT_RECORDS = 256


@dataclass(frozen=True)
class ClockJump:
    """A device clock discontinuity: at ``arrival_time`` the device-to-host offset changed by ``delta_s``."""

    device_time_s: float
    arrival_time: float
    delta_s: float


@dataclass(frozen=True)
class ArrivalGap:
    """Samples estimated lost by a device without sequence numbers (from arrival times)."""

    after_index: int  # index of the last sample before the gap (0-based, counting received samples + gaps)
    after_time_utc: float  # mapped time of that sample (s)
    arrival_time: float  # arrival of the first packet after the gap
    missing: int


def _plausible_times(t: FloatArray, arrival: float, last_out: float) -> FloatArray:
    """Sample times of one packet made physically plausible.

    A sample cannot have been taken after its packet arrived (the packet is shifted back so its last
    sample is at ``arrival`` at the latest), and a sensor's times keep increasing across packets (fit
    updates move the mapping by small amounts; times less than 1 us after ``last_out`` are nudged past it,
    1 us apart, so that they stay distinct as UTC seconds, whose resolution is 0.24 us).
    """
    excess = t[-1] - arrival
    if excess > 0:
        t = t - excess
    if len(t) and t[0] < last_out + 1e-6:
        t = np.maximum(t, last_out + 1e-6 * np.arange(1, len(t) + 1))
    return t


def _small_times(
    xs: list[float], env: _Envelope, arrival: float, last_out: float
) -> tuple[FloatArray, float]:
    """``_plausible_times(xs + env.predict(xs), arrival, last_out)`` of a few device times given as Python
    floats, and the last of those times: the same IEEE operations in the same order on Python floats (numpy's
    fixed cost per call dominates on a few values); a packet nudged past ``last_out`` keeps numpy's
    ``maximum`` (its NaN rules)."""
    offset, slope, x_ref = env.offset, env.slope, env.x_ref
    ts = [x + (offset + slope * (x - x_ref)) for x in xs]
    excess = ts[-1] - arrival
    if excess > 0:
        ts = [t - excess for t in ts]
    t = np.array(ts)
    if ts[0] < last_out + 1e-6:
        t = np.maximum(t, last_out + 1e-6 * np.arange(1, len(t) + 1))
        return t, float(t[-1])
    return t, ts[-1]


def _sorted(values: FloatArray) -> list[float] | None:
    """The values of a 1-D array as a sorted list, for computing numpy's order statistics on Python floats;
    None for an empty array or one holding NaN or a zero (numpy's partition leaves +0.0 and -0.0, which
    compare equal, in an order a sorted list need not match, and that order can decide the sign of a zero
    result): there the caller takes numpy's own."""
    vals = values.tolist()
    if not vals or 0.0 in vals or any(v != v for v in vals):
        return None
    vals.sort()
    return vals


def _median(values: FloatArray) -> float:
    """``float(np.median(values))`` of a 1-D array, from a sorted list (the middle value, or the mean of
    the two middle values as numpy takes it: their sum halved); numpy's own where :func:`_sorted` declines."""
    vals = _sorted(values)
    if vals is None:
        return float(np.median(values))
    k = len(vals) // 2
    return vals[k] if len(vals) % 2 else (vals[k - 1] + vals[k]) / 2


def _percentile(values: FloatArray, q: float) -> float:
    """``float(np.percentile(values, q))`` of a 1-D array, from a sorted list: numpy's default ("linear")
    method with its operations in its order (the index ``(n - 1) * (q / 100)``, and the interpolation
    between the two neighbours from the nearer one); numpy's own where :func:`_sorted` declines."""
    vals = _sorted(values)
    if vals is None:
        return float(np.percentile(values, q))
    n = len(vals)
    index = (n - 1) * (q / 100)
    if index < n - 1:
        i = math.floor(index)
        below, above = vals[i], vals[i + 1]
    else:  # at the end numpy takes the last value on both sides, at index -1
        i = -1
        below = above = vals[-1]
    gamma = index - i
    diff = above - below
    return above - diff * (1 - gamma) if gamma >= 0.5 else below + diff * gamma


def _mean(values: FloatArray) -> float:
    """``float(values.mean())`` of a 1-D float64 array: numpy's sum over the count, without the method's
    Python-level set-up."""
    return float(np.add.reduce(values)) / len(values)


class _Envelope:
    """Lower-envelope line fit of ``y = arrival - x`` against ``x`` (per-bin minima, least squares, bounded
    slope)."""

    def __init__(self, bin_s: float, window_s: float, max_slope: float) -> None:
        self.bin_s = bin_s
        self.window_s = window_s
        self.max_slope = max_slope
        self.bins: deque[list[float]] = deque()  # [bin_key, x_at_min, y_min]
        self.offset = math.nan  # y at x = x_ref
        self.slope = 0.0
        self.x_ref = 0.0

    def reset(self) -> None:
        self.bins.clear()
        self.offset = math.nan
        self.slope = 0.0

    def add(self, x: float, y: float) -> None:
        """Add one observation; refits when a bin completes (or on every new minimum while bins are few)."""
        key = math.floor(x / self.bin_s)
        bins = self.bins
        if bins and bins[-1][0] == key:
            b = bins[-1]
            if y >= b[2]:
                return
            b[1], b[2] = x, y
            if len(bins) >= 4 and not math.isnan(self.offset):
                return  # only completed bins enter the fit once there are enough of them
        elif bins and key < bins[-1][0]:
            # x went backwards (should not happen after jump handling): restart the envelope
            bins.clear()
            bins.append([key, x, y])
        else:
            bins.append([key, x, y])
        while bins and x - bins[0][1] > self.window_s:
            bins.popleft()
        self._fit()

    def _fit(self) -> None:
        b = np.array(self.bins, dtype=np.float64)
        if len(b) >= 4:
            b = b[:-1]  # the bin still filling may hold only a late packet: use completed bins
        xs, ys = b[:, 1], b[:, 2]
        self.x_ref = float(self.bins[-1][1])
        if len(b) < 3 or xs[-1] - xs[0] < 2 * self.bin_s:
            # too short to fit a drift: the smallest latency-floor value seen, carried with the current slope
            self.offset = float(np.min(ys + self.slope * (self.x_ref - xs)))
            return
        keep: np.ndarray | None = None  # None: every bin (the first pass)
        for _ in range(2):  # least squares, then again without bins far above the line (stalled seconds)
            xk, yk = (xs, ys) if keep is None else (xs[keep], ys[keep])
            xm = xk - _mean(xk)
            denom = float(np.dot(xm, xm))
            slope = float(np.dot(xm, yk - _mean(yk)) / denom) if denom > 0 else 0.0
            if slope > self.max_slope:  # np.clip, NaN kept
                slope = self.max_slope
            elif slope < -self.max_slope:
                slope = -self.max_slope
            resid = ys - slope * (xs - self.x_ref)
            kept = resid if keep is None else resid[keep]
            centre = _median(kept)
            mad = _median(np.abs(kept - centre)) + 1e-4
            keep = resid < centre + 5 * mad
        self.slope = slope
        # the lower envelope: a low quantile of the bin minima (latency floors vary, e.g. with the phase of
        # the sample clock against the connection events; the mean would sit inside that band)
        self.offset = _percentile(resid[keep], 5)

    def predict(self, x: FloatArray | float) -> FloatArray:
        """Fitted ``arrival - x`` (the offset incl. the latency floor) at ``x``."""
        return self.offset + self.slope * (np.asarray(x, dtype=np.float64) - self.x_ref)

    @property
    def ready(self) -> bool:
        return not math.isnan(self.offset)


class ClockModel:
    """Device time (s, unwrapped) -> host UTC (s), fitted online per sensor.

    ``nominal_rate_hz`` is the output rate (used for devices without timestamps, see :meth:`map`).
    ``max_drift_ppm`` bounds the fitted drift; ``jump_threshold_s`` is the residual beyond which a device
    clock jump is suspected; a positive (late) residual must last ``jump_confirm_s`` of device time to count
    as a jump, unless it exceeds ``max_latency_s``: no stall delays a packet longer than the BLE supervision
    timeout (at most 32 s) before the link drops, so such a packet tells a jump of the device clock at once.
    """

    def __init__(
        self,
        nominal_rate_hz: float,
        *,
        max_drift_ppm: float = 200.0,
        bin_s: float = 1.0,
        window_s: float = 120.0,
        jump_threshold_s: float = 0.5,
        jump_confirm_s: float = 2.0,
        max_latency_s: float = 32.0,
    ) -> None:
        self.nominal_rate_hz = float(nominal_rate_hz)
        self.env = _Envelope(bin_s, window_s, max_drift_ppm * 1e-6)
        self.jump_threshold_s = jump_threshold_s
        self.jump_confirm_s = jump_confirm_s
        self.max_latency_s = max_latency_s
        self.jumps: list[ClockJump] = []  # the most recent MAX_EVENT_RECORDS
        self.jump_count = 0  # every jump since the start
        self._suspects: list[tuple[float, float]] = []
        self._last_out = -math.inf
        self._last_x = -math.inf
        self._arrival: ArrivalClock | None = None

    # -- public ---------------------------------------------------------------------------------------------
    @property
    def offset_s(self) -> float:
        """Current fitted ``utc - device_time`` at the latest observation (includes the latency floor)."""
        return self.env.offset

    @property
    def drift_ppm(self) -> float:
        """How fast the device clock runs against the host clock (ppm; positive = device clock fast)."""
        return -self.env.slope * 1e6

    def observe(self, device_time_s: float, arrival_time: float) -> ClockJump | None:
        """Feed one (device time of a packet's last sample, arrival time) pair; returns a jump when one is
        found."""
        x, y = float(device_time_s), float(arrival_time) - float(device_time_s)
        env = self.env
        backwards = x < self._last_x - 1e-3
        self._last_x = x
        if not env.ready:
            env.add(x, y)
            return None
        r = y - (env.offset + env.slope * (x - env.x_ref))  # float(env.predict(x)), on Python floats
        if backwards:  # device time went backwards (a restart or a reset of its clock)
            return self._reanchor([(x, y)], x, arrival_time, r)
        if r < -self.jump_threshold_s:  # the device clock jumped forward: latency cannot be negative
            return self._reanchor([(x, y)], x, arrival_time, r)
        if r > self.max_latency_s:  # later than any stall can make it: the device clock jumped backwards
            return self._reanchor([(x, y)], x, arrival_time, r)
        if r > self.jump_threshold_s:  # late: a stall (clears by itself) or the device clock jumped backwards
            self._suspects.append((x, y))
            if (
                self._suspects[-1][0] - self._suspects[0][0] >= self.jump_confirm_s
                and len(self._suspects) >= 3
            ):
                delta = min(s[1] for s in self._suspects) - float(env.predict(x))
                return self._reanchor(self._suspects, x, arrival_time, delta)
            return None
        self._suspects.clear()
        env.add(x, y)
        return None

    def to_utc(self, device_time_s: FloatArray | float) -> FloatArray:
        """Map device times with the current fit (no update)."""
        x = np.asarray(device_time_s, dtype=np.float64)
        # while a late stretch is only suspected, the old fit stays (a stall is likelier than a jump)
        return x + self.env.predict(x)

    def map(self, decoded: DecodedSamples) -> FloatArray:
        """Observe a decoded packet and return UTC times of its samples (empty for an empty packet).

        Devices without timestamps (``device_time_s is None``) go through an internal :class:`ArrivalClock`;
        the losses it detects (decided up to ``decision_s`` after the gap) are listed in :attr:`gaps` only,
        not in ``decoded.gaps`` (which holds what the decoder found from sequence numbers / timestamps).
        """
        if decoded.n == 0:
            return np.zeros(0)
        if decoded.device_time_s is None:
            if self._arrival is None:
                self._arrival = ArrivalClock(self.nominal_rate_hz)
            return self._arrival.map_packet(decoded.n, decoded.arrival_time)
        dt = np.asarray(decoded.device_time_s, dtype=np.float64)
        arrival = decoded.arrival_time
        if len(dt) > SMALL_PACKET:
            self.observe(float(dt[-1]), arrival)
            return self._finish(self.to_utc(dt), arrival)
        # a few samples: the same IEEE operations as to_utc and _plausible_times, on Python floats
        xs = dt.tolist()
        self.observe(xs[-1], arrival)
        t, self._last_out = _small_times(xs, self.env, arrival, self._last_out)
        return t

    @property
    def gaps(self) -> list[ArrivalGap]:
        """The most recent gaps estimated from arrival times (devices without timestamps only)."""
        return [] if self._arrival is None else self._arrival.gaps

    @property
    def arrival_missing(self) -> int:
        """Samples lost in every gap estimated from arrival times since the start."""
        return 0 if self._arrival is None else self._arrival.missing_total

    # -- internals ------------------------------------------------------------------------------------------
    def _reanchor(
        self, points: list[tuple[float, float]], x: float, arrival: float, delta: float
    ) -> ClockJump:
        jump = ClockJump(device_time_s=x, arrival_time=float(arrival), delta_s=float(delta))
        self.jumps.append(jump)
        self.jump_count += 1
        del self.jumps[:-MAX_EVENT_RECORDS]
        self._suspects = []
        self.env.reset()
        for px, py in sorted(points):
            self.env.add(px, py)
        self._last_out = -math.inf if delta < 0 else self._last_out
        return jump

    def _finish(self, t: FloatArray, arrival: float) -> FloatArray:
        t = _plausible_times(t, arrival, self._last_out)
        self._last_out = float(t[-1])
        return t


class ArrivalClock:
    """Sample times for devices without timestamps: index x nominal period, fitted to arrival times.

    Sample ``k`` (counting received samples plus estimated losses) is at ``k / rate`` on a virtual device
    clock whose offset and rate error (bounded by ``max_rate_error``) are fitted from the arrival lower
    envelope. After an arrival gap longer than ``gap_threshold_s``, the residuals of the following arrivals
    decide, once they have stopped falling for ``settle_s`` (at the latest after ``decision_s``): a late
    burst drains back to the envelope (nothing lost), a loss leaves a step of ``missing / rate``. Samples
    are never timed later than their arrival.
    """

    def __init__(
        self,
        nominal_rate_hz: float,
        *,
        max_rate_error: float = 0.05,
        bin_s: float = 1.0,
        window_s: float = 60.0,
        gap_threshold_s: float | None = None,
        decision_s: float = 2.0,
        settle_s: float = 1.0,
    ) -> None:
        self.period = 1.0 / float(nominal_rate_hz)
        self.env = _Envelope(bin_s, window_s, max_rate_error)
        self.gap_threshold_s = gap_threshold_s if gap_threshold_s is not None else max(4 * self.period, 0.08)
        self.decision_s = decision_s
        self.settle_s = settle_s
        self.gaps: list[ArrivalGap] = []  # the most recent MAX_EVENT_RECORDS
        self.missing_total = 0  # samples lost in every gap since the start
        self._k = 0  # index of the next sample
        self._last_arrival: float | None = None
        self._recent: deque[float] = deque(maxlen=256)  # residuals of normal packets
        self._pending: dict | None = None
        self._last_out = -math.inf

    def map_packet(self, n: int, arrival_time: float) -> FloatArray:
        """Times of ``n`` samples that arrived together at ``arrival_time``.

        The sample indices are float64 (exact below 2^53); up to ``SMALL_PACKET`` of them as Python floats,
        mapped by :func:`_small_times` (the same IEEE operations as numpy's)."""
        k0 = self._k
        ks: FloatArray | list[float]
        if n <= SMALL_PACKET:
            ks = [float(k0 + i) for i in range(n)]
        else:
            ks = k0 + np.arange(n, dtype=np.float64)
        x_last = float(ks[-1]) * self.period
        y = arrival_time - x_last
        env = self.env
        gap_before = (
            self._last_arrival is not None and arrival_time - self._last_arrival > self.gap_threshold_s
        )
        self._last_arrival = arrival_time
        self._k += n
        if not env.ready:
            env.add(x_last, y)
            self._recent.append(0.0)
            return self._times(ks, arrival_time)
        r = y - (env.offset + env.slope * (x_last - env.x_ref))  # float(env.predict(x_last)), on floats
        if gap_before and r > 2 * self.period:
            gap = {"after": int(ks[0]) - 1, "after_time": self._last_out, "arrival0": arrival_time}
            if self._pending is None:
                self._pending = {"start": arrival_time, "first": arrival_time, "hist": [], "gaps": []}
            # a gap while another is undecided (a loss right after a stall, say): one decision for both,
            # taken once the residuals after the latest gap have settled
            self._pending["start"] = arrival_time
            gap["at"] = len(self._pending["hist"])
            self._pending["gaps"].append(gap)
        if self._pending is not None:
            p = self._pending
            p["hist"].append((arrival_time, r))
            now = arrival_time
            if (now - p["start"] >= self.decision_s or now - p["first"] >= 3 * self.decision_s
                    or self._settled(p, now)):
                missing = self._decide(p)
                ks = [k + missing for k in ks] if isinstance(ks, list) else ks + missing
            else:
                # provisional times while undecided: on the fitted envelope as if nothing was lost. A late
                # burst (the usual case: a stalled link delivering its backlog) is then timed right; after a
                # real loss these samples are early by ``missing / rate`` until the decision (at most
                # ``decision_s``). Timing them from their arrival instead would stack a whole burst onto
                # one instant, which breaks every rate-based computation downstream.
                return self._times(ks, arrival_time)
        else:
            self._recent.append(r)
            env.add(x_last, y)
        return self._times(ks, arrival_time)

    def _times(self, ks: FloatArray | list[float], arrival: float) -> FloatArray:
        """The times of samples ``ks`` (indices) on the fitted envelope, made plausible."""
        if isinstance(ks, list):
            t, self._last_out = _small_times([k * self.period for k in ks], self.env, arrival, self._last_out)
            return t
        x = ks * self.period
        return self._finish(x + self.env.predict(x), arrival)

    def _decide(self, p: dict) -> int:
        """Decide a pending stretch of gaps: the samples lost (0 for late bursts), attributed to the gap after
        which the residuals stayed up; advances the sample index by them."""
        self._pending = None
        hist = np.array([r for _, r in p["hist"]])
        cut = p["hist"][-1][0] - self.settle_s
        settled = hist[[a >= cut for a, _ in p["hist"]]]
        level = float(np.min(settled if settled.size else hist))
        floor = float(np.percentile(self._recent, 10)) if self._recent else 0.0
        top = float(np.percentile(self._recent, 90)) if self._recent else 0.0
        missing = int(round((level - floor) / (self.period * (1.0 + self.env.slope))))
        if level - top < 0.5 * self.period:
            # within the usual spread of arrival delays: without sequence numbers a loss this small cannot be
            # told from jitter, and inventing one would split the data
            missing = 0
        if missing < 1:
            return 0
        # the loss is at the earliest gap after which the residual never fell back below the new level
        bar = level - 0.5 * self.period
        gap = next((g for g in p["gaps"] if hist[g["at"]:].min() >= bar), p["gaps"][-1])
        self.gaps.append(
            ArrivalGap(gap["after"], gap["after_time"], arrival_time=gap["arrival0"], missing=missing)
        )
        del self.gaps[:-MAX_EVENT_RECORDS]
        self.missing_total += missing
        self._k += missing
        return missing

    def _settled(self, p: dict, now: float) -> bool:
        """True when the residuals after a gap have stopped falling for ``settle_s``.

        A late burst drains: each packet of the backlog arrives about at once, so the residual falls by one
        period per sample until the link has caught up. A loss leaves the residual level at about
        ``missing / rate``. Deciding once the fall has stopped (rather than after a fixed time) keeps both
        cases right when delivery is slow or bursty, and decides a real loss early.
        """
        if now - p["start"] < self.settle_s:
            return False
        cut = now - self.settle_s
        older = [r for a, r in p["hist"] if a < cut]
        recent = [r for a, r in p["hist"] if a >= cut]
        if not older or len(recent) < 3:
            return False
        return min(older) - min(recent) < 0.5 * self.period

    def _finish(self, t: FloatArray, arrival: float) -> FloatArray:
        t = _plausible_times(t, arrival, self._last_out)
        self._last_out = float(t[-1])
        return t
