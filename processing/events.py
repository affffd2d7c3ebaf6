"""Shared machinery for the streaming event detectors (gait, holds, activity).

Every detector in hipback is *one* implementation that serves streaming and batch: it is fed consecutive
chunks of one uniform-rate :class:`~hipback.processing.types.AngleSeries` of any size (one sample up to the
whole session) and must give bit-identical results whatever the chunking. :class:`WindowedStream` makes that
easy to get right:

* Samples are buffered with their **absolute index** (0 = first sample of the stream).
* The sample rate is taken from the first two samples with a positive time step (``fs = 1 / dt``), so it does
  not depend on how the stream was cut.
* A detector declares a fixed look-back and look-ahead (samples). Index ``i`` is handed to the detector
  ("final") only once samples ``i + lookahead`` have arrived; its per-sample features may then use samples
  ``[i - lookback, i + lookahead]`` and nothing else. Before the first sample and after the last one (at
  :meth:`WindowedStream.finish`) the stream is padded with NaN rows, so edge samples see exactly the same
  neighbourhood in batch and streaming.
* Per-sample features are computed with :func:`smooth` / :func:`window_max` etc., which evaluate each output
  from its own window with a fixed operation order (explicit shifted sums, no cumulative sums, no IIR
  filters), so the floating-point result of a sample does not depend on where the buffer happens to start.
* Detectors keep whatever sparse state they need (extrema, run boundaries) in Python and tell the stream how
  far back raw samples must be kept (``keep_from``), which bounds memory.

NaN propagates through :func:`smooth` and the window helpers, so a feature next to a gap is NaN and a
detector never builds an event across a gap. A time step larger than 1.5 sample periods (a time jump) is
treated like a NaN sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from hipback.processing.types import AngleSeries, FloatArray


def triangular_kernel(half_width: int) -> FloatArray:
    """Normalised triangular smoothing kernel of ``2 * half_width + 1`` taps (symmetric: no time shift)."""
    h = max(int(half_width), 0)
    k = np.concatenate([np.arange(1, h + 2), np.arange(h, 0, -1)]).astype(np.float64)
    return k / k.sum()


def smooth(x: FloatArray, kernel: FloatArray) -> FloatArray:
    """Centred FIR smoothing, ``valid`` part only: output ``j`` uses ``x[j : j + len(kernel)]``.

    Evaluated as an explicit sum of shifted slices so that every output sample is computed by the same
    sequence of floating-point operations wherever the input starts (chunking invariance). NaN anywhere in
    an output's window gives NaN.
    """
    n_out = len(x) - len(kernel) + 1
    if n_out <= 0:
        return np.zeros(0)
    out = kernel[0] * x[0:n_out]
    for k in range(1, len(kernel)):
        out = out + kernel[k] * x[k : k + n_out]
    return out


def window_max(x: FloatArray, half_width: int) -> FloatArray:
    """Max over ``[j - w, j + w]`` for each centre with a full window (``valid``); NaN-propagating."""
    w = 2 * half_width + 1
    if len(x) < w:
        return np.zeros(0)
    return sliding_window_view(x, w).max(axis=1)


def window_min(x: FloatArray, half_width: int) -> FloatArray:
    """Min over ``[j - w, j + w]`` for each centre with a full window (``valid``); NaN-propagating."""
    w = 2 * half_width + 1
    if len(x) < w:
        return np.zeros(0)
    return sliding_window_view(x, w).min(axis=1)


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop indices (stop exclusive) of the runs of True in a 1-D boolean array."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    d = np.diff(m.astype(np.int8))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


class Window:
    """Read access to the buffered samples of a :class:`WindowedStream` by absolute sample index."""

    def __init__(self, data: dict[str, FloatArray], base: int, fs: float) -> None:
        self._data = data
        self.base = base
        self.fs = fs
        self._jump_t: FloatArray | None = None  # the ``t`` array the cached jump flags belong to
        self._jump = np.zeros(0, dtype=bool)

    def jumps(self) -> NDArray[np.bool_]:
        """Per buffered sample: True where its time step from the previous buffered sample is larger than
        1.5 sample periods or not forward (a gap in the timeline); False for the first. Computed once per
        buffer (the flags of a sample depend only on its own and its predecessor's time)."""
        t = self._data["t"]
        if self._jump_t is not t:
            jump = np.zeros(len(t), dtype=bool)
            if len(t) > 1:
                dt = np.diff(t)
                with np.errstate(invalid="ignore"):
                    jump[1:] = (dt > 1.5 / self.fs) | (dt <= 0)
            self._jump, self._jump_t = jump, t
        return self._jump

    def get(self, name: str, start: int, stop: int) -> FloatArray:
        """Samples ``[start, stop)`` (absolute indices) of one field; must lie inside the buffer."""
        a, b = start - self.base, stop - self.base
        arr = self._data[name]
        if a < 0 or b > len(arr) or b < a:
            raise IndexError(f"samples [{start}, {stop}) are not buffered (buffer starts at {self.base})")
        return arr[a:b]


#: ``process(window, start, stop)``: indices ``[start, stop)`` became final; the window holds at least
#: ``[start - lookback, stop + lookahead)``.
ProcessFn = Callable[[Window, int, int], None]


class WindowedStream:
    """Chunk buffer that hands out final sample ranges with a fixed look-back/look-ahead (see module doc).

    ``fields``: names of AngleSeries fields to keep (``t`` is always kept). ``configure(fs)`` is called once
    the rate is known and returns ``(lookback, lookahead)`` in samples. ``process`` is called with each new
    final range. ``keep_from()`` returns the oldest absolute index the detector still needs (or None).
    ``batch_s``: new samples are handed to ``process`` once at least this much (s) became final (or at
    :meth:`flush` / :meth:`finish`), which keeps the per-call cost low for one-sample chunks without
    changing any result.
    """

    def __init__(
        self,
        fields: Sequence[str],
        configure: Callable[[float], tuple[int, int]],
        process: ProcessFn,
        keep_from: Callable[[], int | None] = lambda: None,
        batch_s: float = 0.25,
    ) -> None:
        self.fields = ("t", *fields)
        # a part's values of the fields, as a tuple (attrgetter of one name gives the value itself)
        get = attrgetter(*self.fields)
        self._getter: Callable[[AngleSeries], tuple] = get if len(self.fields) > 1 else lambda c: (get(c),)
        self._configure = configure
        self._process = process
        self._keep_from = keep_from
        self.batch_s = batch_s
        self._batch = 1
        self._data: dict[str, FloatArray] = {f: np.zeros(0) for f in self.fields}
        self._parts: list[AngleSeries] = []  # chunks not yet appended to _data (see feed)
        self.base = 0  # absolute index of the first buffered row
        self.n = 0  # samples received
        self.done = 0  # indices [0, done) were handed to process()
        self.fs: float | None = None
        self.lookback = 0
        self.lookahead = 0
        self.finished = False

    # -- input ---------------------------------------------------------------------------------
    def feed(self, chunk: AngleSeries) -> None:
        if self.finished:
            raise RuntimeError("this detector was already finished; create a new one for a new stream")
        m = len(chunk.t)
        if m == 0:
            return
        self._parts.append(chunk)
        self.n += m
        if self.fs is None:
            self._consolidate()
            self._try_configure()
        # work once at least ``batch_s`` of new final samples are in: small live chunks then cost about
        # what large ones cost per sample; the results are the same (process() is chunking-invariant)
        if self.fs is not None and self.n - self.lookahead - self.done >= self._batch:
            self._consolidate()
            self._run(self.n - self.lookahead)

    def flush(self) -> None:
        """Hand every sample that is final now to the detector (without waiting for a full batch)."""
        if self.fs is not None and not self.finished:
            self._consolidate()
            self._run(self.n - self.lookahead)

    def _consolidate(self) -> None:
        if not self._parts:
            return
        parts, self._parts = self._parts, []
        columns = zip(*map(self._getter, parts), strict=True)  # per field: its values in the parts
        for f, values in zip(self.fields, columns, strict=True):
            if any(v is None for v in values):  # an optional field that is None: NaN
                values = tuple(_field(c, f) for c in parts)
            # concatenated onto the float64 buffer: the same values as converting each part first
            self._data[f] = np.concatenate([self._data[f], *values])

    def finish(self) -> None:
        if self.finished:
            return
        self._consolidate()
        if self.fs is not None:
            self._append_nan(self.lookahead)
            self._run(self.n)
        self.finished = True

    @property
    def buffered(self) -> int:
        """Number of samples held in the buffer now (bounded by the detector's look-back needs)."""
        return len(self._data["t"]) + sum(len(c.t) for c in self._parts)

    def window(self) -> Window:
        """Read access to the samples buffered now (only valid once the rate is known)."""
        if self.fs is None:
            raise RuntimeError("the sample rate is not known yet")
        return Window(self._data, self.base, self.fs)

    # -- internals -----------------------------------------------------------------------------
    def _try_configure(self) -> None:
        t = self._data["t"]
        dt = np.diff(t)
        ok = np.flatnonzero(np.isfinite(dt) & (dt > 0))
        if len(ok) == 0:
            return
        self.fs = float(1.0 / dt[ok[0]])
        self._batch = max(1, round(self.batch_s * self.fs))
        self.lookback, self.lookahead = self._configure(self.fs)
        # pad the stream start with NaN rows so index 0 has a full (NaN) look-back
        pad = self.lookback
        for f in self.fields:
            self._data[f] = np.concatenate([np.full(pad, np.nan), self._data[f]])
        self.base = -pad

    def _append_nan(self, count: int) -> None:
        for f in self.fields:
            self._data[f] = np.concatenate([self._data[f], np.full(count, np.nan)])

    def _run(self, stop: int) -> None:
        if stop <= self.done:
            return
        assert self.fs is not None
        self._process(Window(self._data, self.base, self.fs), self.done, stop)
        self.done = stop
        keep = self.done - self.lookback
        k = self._keep_from()
        if k is not None:
            keep = min(keep, k)
        cut = keep - self.base
        if cut > 0:
            for f in self.fields:
                self._data[f] = self._data[f][cut:]
            self.base = keep


def _field(chunk: AngleSeries, name: str) -> FloatArray:
    """A field of a chunk as float64 (an optional field that is None: NaN)."""
    v = getattr(chunk, name)
    return np.full(len(chunk.t), np.nan) if v is None else np.asarray(v, dtype=np.float64)


def feature_slice(win: Window, name: str, start: int, stop: int, margin: int) -> FloatArray:
    """Field ``name`` over ``[start - margin, stop + margin)`` with time jumps (> 1.5 periods) set to NaN.

    A sample whose time step from its predecessor is larger than 1.5 sample periods is NaN-ed (a gap in the
    timeline). The first sample of the slice cannot be checked, so callers use a margin one sample larger
    than their features need.
    """
    x = win.get(name, start - margin, stop + margin).copy()
    a = start - margin - win.base
    # the time-jump flags of the buffer (computed once per window), from the slice's second sample on
    x[1:][win.jumps()[a + 1 : a + len(x)]] = np.nan
    return x
