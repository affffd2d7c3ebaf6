"""The shared streaming machinery of the event detectors (``processing/events.py``) on small, exact inputs:
the smoothing kernel and window helpers value by value, runs, the buffer's index checks, the sample rate
from the first positive step, look-back padding, look-ahead, batching, trimming, finish and the time-jump
rule of ``feature_slice`` (a step of exactly 1.5 periods is not a jump, one just above is).

A recording detector (``Probe``) logs every range handed to it with the buffered samples it may read, so
each expectation follows from the module's definitions alone.

Written for the survivors of ``python bench/mutation.py --group events``.
"""

from __future__ import annotations

import numpy as np
import pytest

from hipback.processing.events import (
    Window,
    WindowedStream,
    feature_slice,
    runs,
    smooth,
    triangular_kernel,
    window_max,
    window_min,
)
from hipback.processing.types import AngleSeries

NAN = np.nan


def series(t: list[float] | np.ndarray, x: list[float] | np.ndarray | None = None,
           acc: list[float] | None = None) -> AngleSeries:
    """``x`` in ``hip_flexion_left`` (default: 0, 1, 2, ...), every other angle 0, optional vertical acc."""
    t = np.asarray(t, dtype=np.float64)
    n = len(t)
    x = np.arange(n, dtype=np.float64) if x is None else np.asarray(x, dtype=np.float64)
    zeros = {name: np.zeros(n) for name in AngleSeries.FIELDS if name != "hip_flexion_left"}
    return AngleSeries(t=t, hip_flexion_left=x, **zeros,
                       pelvis_acc_vertical=None if acc is None else np.asarray(acc, dtype=np.float64))


def same(a: np.ndarray, b: list[float] | np.ndarray) -> bool:
    """Equal values, NaN where NaN (and the same length)."""
    return np.array_equal(np.asarray(a), np.asarray(b, dtype=np.float64), equal_nan=True)


class Probe:
    """A detector that records what the stream hands it."""

    def __init__(self, lookback: int, lookahead: int, keep: int | None = None,
                 fields: tuple[str, ...] = ("hip_flexion_left",), batch_s: float = 0.0) -> None:
        self.lookback, self.lookahead, self.keep = lookback, lookahead, keep
        self.rates: list[float] = []
        self.calls: list[tuple[int, int]] = []
        self.seen: list[np.ndarray] = []  # hip_flexion_left over [start - lookback, stop + lookahead)
        self.stream = WindowedStream(fields, self.configure, self.process, lambda: self.keep, batch_s)

    def configure(self, fs: float) -> tuple[int, int]:
        self.rates.append(fs)
        return self.lookback, self.lookahead

    def process(self, win: Window, start: int, stop: int) -> None:
        self.calls.append((start, stop))
        self.seen.append(win.get("hip_flexion_left", start - self.lookback, stop + self.lookahead).copy())


# -- kernel, smoothing, windows, runs ------------------------------------------------------------------------
def test_triangular_kernel_values() -> None:
    assert same(triangular_kernel(0), [1.0])
    assert same(triangular_kernel(1), [0.25, 0.5, 0.25])
    assert same(triangular_kernel(2), np.array([1, 2, 3, 2, 1]) / 9)
    assert same(triangular_kernel(-3), [1.0])  # a negative half width is 0
    assert same(triangular_kernel(1.7), [0.25, 0.5, 0.25])  # whole samples
    assert triangular_kernel(3).dtype == np.float64


def test_smooth_is_the_valid_part_of_a_centred_fir() -> None:
    x = np.array([0.0, 4.0, 8.0, 0.0, 4.0])
    assert same(smooth(x, np.array([0.25, 0.5, 0.25])), [4.0, 5.0, 3.0])
    assert same(smooth(x, np.array([1.0, 2.0])), [8.0, 20.0, 8.0, 8.0])  # output j uses x[j : j + 2]
    assert same(smooth(x, np.array([1.0])), x)
    assert same(smooth(x[:3], np.array([0.25, 0.5, 0.25])), [4.0])  # exactly one full window
    assert same(smooth(x[:2], np.array([0.25, 0.5, 0.25])), [])  # none
    assert same(smooth(x[:3], np.full(5, 0.2)), [])  # two samples short of a window
    assert same(smooth(np.zeros(0), np.array([1.0])), [])
    assert same(smooth(np.array([1.0, NAN, 1.0, 1.0, 1.0]), np.array([0.25, 0.5, 0.25])), [NAN, NAN, 1.0])


def test_window_max_and_min() -> None:
    x = np.array([1.0, 5.0, 2.0, 0.0, 3.0, 4.0])
    assert same(window_max(x, 1), [5.0, 5.0, 3.0, 4.0])
    assert same(window_min(x, 1), [1.0, 0.0, 0.0, 0.0])
    assert same(window_max(x, 0), x) and same(window_min(x, 0), x)
    assert same(window_max(x, 2), [5.0, 5.0]) and same(window_min(x, 2), [0.0, 0.0])
    assert same(window_max(x[:3], 1), [5.0]) and same(window_min(x[:3], 1), [1.0])  # one full window
    assert same(window_max(x[:2], 1), []) and same(window_min(x[:2], 1), [])
    y = np.array([1.0, NAN, 2.0, 3.0, 4.0])
    assert same(window_max(y, 1), [NAN, NAN, 4.0]) and same(window_min(y, 1), [NAN, NAN, 2.0])


@pytest.mark.parametrize(
    "mask,starts,stops",
    [
        ([], [], []),
        ([False, False], [], []),
        ([True], [0], [1]),
        ([True, True, False, True], [0, 3], [2, 4]),
        ([False, True, True, True, False, False, True, False], [1, 6], [4, 7]),
        ([0, 2, 1, 0], [1], [3]),  # truthy values count as True
    ],
)
def test_runs(mask: list, starts: list[int], stops: list[int]) -> None:
    a, b = runs(np.array(mask))
    assert a.tolist() == starts and b.tolist() == stops


# -- Window --------------------------------------------------------------------------------------------------
def test_window_get_by_absolute_index_and_its_bounds() -> None:
    win = Window({"x": np.array([10.0, 11.0, 12.0, 13.0])}, base=5, fs=2.0)
    assert (win.base, win.fs) == (5, 2.0)
    assert same(win.get("x", 5, 9), [10.0, 11.0, 12.0, 13.0])  # the whole buffer
    assert same(win.get("x", 6, 8), [11.0, 12.0])
    assert same(win.get("x", 7, 7), [])
    for start, stop in ((4, 6), (8, 10), (7, 6)):
        with pytest.raises(IndexError, match=rf"^samples \[{start}, {stop}\) are not buffered "
                                             r"\(buffer starts at 5\)$"):
            win.get("x", start, stop)


# -- WindowedStream ------------------------------------------------------------------------------------------
def test_whole_series_with_lookback_padding_and_lookahead() -> None:
    p = Probe(lookback=2, lookahead=3)
    s = p.stream
    assert s.fields == ("t", "hip_flexion_left")
    s.feed(series(np.arange(10) / 100))
    assert p.rates == [pytest.approx(100.0)] and s.fs == pytest.approx(100.0)
    assert (s.lookback, s.lookahead, s.n) == (2, 3, 10)
    assert p.calls == [(0, 7)]  # sample 6 has its look-ahead 7, 8, 9
    assert same(p.seen[0], [NAN, NAN, *range(10)])  # padded with NaN before sample 0
    assert not s.finished
    s.finish()
    assert s.finished
    assert p.calls == [(0, 7), (7, 10)]
    assert same(p.seen[1], [5, 6, 7, 8, 9, NAN, NAN, NAN])  # padded with NaN after the last sample
    assert s.done == 10


def test_padding_is_as_long_as_the_lookback() -> None:
    p = Probe(lookback=4, lookahead=0)
    p.stream.feed(series(np.arange(3) / 10))
    assert p.calls == [(0, 3)] and same(p.seen[0], [NAN, NAN, NAN, NAN, 0, 1, 2])


def test_sample_rate_from_the_first_positive_finite_step() -> None:
    p = Probe(lookback=0, lookahead=0)
    p.stream.feed(series([0.0, NAN, 1.0, 1.0, 1.5, 1.6, 1.7]))  # steps: NaN, NaN, 0, 0.5, 0.1, 0.1
    assert p.rates == [2.0] and p.stream.fs == 2.0


def test_rate_unknown_until_a_positive_step_arrives() -> None:
    p = Probe(lookback=1, lookahead=0)
    s = p.stream
    s.feed(series([0.0]))
    assert s.fs is None and p.rates == [] and p.calls == []
    with pytest.raises(RuntimeError, match=r"^the sample rate is not known yet$"):
        s.window()
    s.flush()  # nothing is final before the rate is known
    assert p.calls == []
    s.feed(series([0.0], [7.0]))  # a zero step: still unknown
    assert s.fs is None and s.buffered == 2
    s.feed(series([0.25], [8.0]))
    assert p.rates == [4.0]
    assert p.calls == [(0, 3)] and same(p.seen[0], [NAN, 0.0, 7.0, 8.0])
    s.feed(series([0.5], [9.0]))
    assert p.rates == [4.0]  # configured once
    assert p.calls[-1] == (3, 4)
    win = s.window()
    assert win.fs == 4.0 and win.base == s.base


def test_empty_chunks_change_nothing() -> None:
    p = Probe(lookback=0, lookahead=0)
    s = p.stream
    s.feed(series([]))
    assert (s.n, s.buffered, s.fs) == (0, 0, None)
    s.feed(series([0.0, 0.5]))
    s.feed(series([]))
    assert s.n == 2 and p.calls == [(0, 2)]


def test_single_sample_chunks_are_handed_out_in_batches() -> None:
    p = Probe(lookback=1, lookahead=2, batch_s=0.05)  # 5 samples at 100 Hz
    s = p.stream
    for i in range(16):
        s.feed(series([i / 100], [float(i)]))
        if i == 1:
            assert s.fs == pytest.approx(100.0) and s._batch == 5
    # sample i is final once i + 2 has arrived; a batch is handed out when 5 are waiting
    assert p.calls == [(0, 5), (5, 10)]
    assert s.n == 16 and s.done == 10
    s.flush()
    assert p.calls[-1] == (10, 14) and s.done == 14
    s.flush()  # nothing new: not called again
    assert p.calls == [(0, 5), (5, 10), (10, 14)]
    s.finish()
    assert p.calls[-1] == (14, 16) and same(p.seen[-1], [13, 14, 15, NAN, NAN])


def test_batch_of_at_least_one_sample() -> None:
    p = Probe(lookback=0, lookahead=0, batch_s=0.0)
    s = p.stream
    for i in range(4):
        s.feed(series([i / 10]))
    assert s._batch == 1
    assert p.calls == [(0, 2), (2, 3), (3, 4)]


def test_batch_rounds_to_whole_samples() -> None:
    p = Probe(lookback=0, lookahead=0, batch_s=0.26)  # 2.6 samples at 10 Hz -> 3
    s = p.stream
    for i in range(8):
        s.feed(series([i / 10]))
    assert s._batch == 3
    assert p.calls == [(0, 3), (3, 6)]


def test_default_batch_is_a_quarter_second() -> None:
    calls: list[tuple[int, int]] = []
    s = WindowedStream(["hip_flexion_left"], lambda fs: (0, 0), lambda w, a, b: calls.append((a, b)))
    assert s.batch_s == 0.25
    for i in range(10):
        s.feed(series([i / 20]))
    assert s._batch == 5 and calls == [(0, 5), (5, 10)]


def test_buffer_is_trimmed_to_the_lookback() -> None:
    p = Probe(lookback=2, lookahead=0)
    s = p.stream
    s.feed(series([0.0]))
    s.feed(series([0.1], [1.0]))
    assert s.base == 0 and s.buffered == 2  # done 2: keeps [0, 2)
    for i in range(2, 6):
        s.feed(series([i / 10], [float(i)]))
        assert s.base == i - 1 and s.buffered == 2  # trimmed by one sample at a time
        assert same(p.seen[-1], [i - 2, i - 1, i])


def test_buffer_keeps_what_the_detector_asks_for() -> None:
    p = Probe(lookback=2, lookahead=3, keep=1)
    s = p.stream
    s.feed(series(np.arange(10) / 100))
    assert s.done == 7 and s.base == 1 and s.buffered == 9
    win = s.window()
    assert same(win.get("hip_flexion_left", 1, 10), range(1, 10))
    p.keep = 100  # never more than the look-back allows
    s.feed(series([0.1], [10.0]))
    assert s.done == 8 and s.base == 6 and s.buffered == 5
    p.keep = None
    s.feed(series([0.11], [11.0]))
    assert s.done == 9 and s.base == 7


def test_no_trim_below_the_buffer_start() -> None:
    p = Probe(lookback=2, lookahead=0, keep=-5)
    s = p.stream
    s.feed(series(np.arange(4) / 10))
    assert s.base == -2 and s.buffered == 6  # nothing to cut: keep is before the padding
    assert same(s.window().get("hip_flexion_left", -2, 4), [NAN, NAN, 0, 1, 2, 3])


def test_finish_is_final() -> None:
    p = Probe(lookback=1, lookahead=1)
    s = p.stream
    s.feed(series([0.0, 0.5, 1.0]))
    s.finish()
    assert p.calls == [(0, 2), (2, 3)]
    s.finish()  # a second finish does nothing
    s.flush()
    assert p.calls == [(0, 2), (2, 3)]
    with pytest.raises(RuntimeError, match=r"^this detector was already finished; create a new one for a new "
                                           r"stream$"):
        s.feed(series([1.5]))
    assert s.n == 3


def test_finish_before_the_rate_is_known() -> None:
    p = Probe(lookback=1, lookahead=1)
    s = p.stream
    s.feed(series([0.0]))
    s.finish()
    assert s.finished and p.calls == [] and s.fs is None


def test_finish_hands_out_waiting_chunks() -> None:
    p = Probe(lookback=0, lookahead=0, batch_s=10.0)
    s = p.stream
    for i in range(5):
        s.feed(series([i / 10], [float(i)]))
    assert p.calls == [] and s.buffered == 5
    s.finish()
    assert p.calls == [(0, 5)] and same(p.seen[0], range(5))


def test_optional_field_missing_reads_as_nan() -> None:
    p = Probe(lookback=0, lookahead=0, keep=0, fields=("pelvis_acc_vertical", "hip_flexion_left"))
    s = p.stream
    s.feed(series([0.0, 0.1], acc=[1.0, 2.0]))
    s.feed(series([0.2, 0.3]))  # no vertical acc in this chunk
    s.feed(series([0.4], [7], acc=[3]))  # integers
    win = s.window()
    acc = win.get("pelvis_acc_vertical", 0, 5)
    assert same(acc, [1.0, 2.0, NAN, NAN, 3.0]) and acc.dtype == np.float64


# -- feature_slice -------------------------------------------------------------------------------------------
def stream_of(t: list[float], x: list[float], lookback: int = 0) -> tuple[WindowedStream, Window]:
    p = Probe(lookback=lookback, lookahead=0, batch_s=100.0)
    p.stream.feed(series(t, x))
    return p.stream, p.stream.window()


def test_feature_slice_nans_time_jumps_and_repeats() -> None:
    # 4 Hz (a quarter second per sample): a step of exactly 1.5 periods (0.375 s) is not a jump
    t = [0.0, 0.25, 0.5, 0.875, 1.25 + 2 ** -10, 1.5, 1.5, 1.75]
    x = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    s, win = stream_of(t, x)
    assert win.fs == 4.0
    assert same(feature_slice(win, "hip_flexion_left", 1, 7, 1), [0, 1, 2, 3, NAN, 5, NAN, 7])
    assert same(feature_slice(win, "hip_flexion_left", 4, 5, 0), [4.0])  # its own step is not seen
    assert same(feature_slice(win, "hip_flexion_left", 3, 5, 0), [3.0, NAN])  # two samples: checked
    assert same(win.get("hip_flexion_left", 0, 8), x)  # the buffer itself is untouched


def test_feature_slice_margin_and_padding() -> None:
    s, win = stream_of([0.0, 0.5, 1.0, 1.5], [1.0, 2.0, 3.0, 4.0], lookback=2)
    assert same(feature_slice(win, "hip_flexion_left", 0, 2, 2), [NAN, NAN, 1, 2, 3, 4])
    assert same(feature_slice(win, "t", 1, 3, 1), [0.0, 0.5, 1.0, 1.5])


def test_time_jumps_follow_the_buffer_as_it_grows() -> None:
    """The jump flags are computed once per buffer: a window taken after more samples (one of them after a
    jump) sees the new jump, and the first sample of any slice is never flagged."""
    p = Probe(lookback=0, lookahead=0, keep=0, batch_s=100.0)
    p.stream.feed(series([0.0, 0.25, 0.5], [0.0, 1.0, 2.0]))
    win = p.stream.window()
    assert same(feature_slice(win, "hip_flexion_left", 0, 3, 0), [0, 1, 2])
    assert same(win.jumps(), [False, False, False])
    p.stream.feed(series([1.5, 1.75], [3.0, 4.0]))  # a step of 1 s at 4 Hz
    p.stream.flush()
    win = p.stream.window()
    assert same(feature_slice(win, "hip_flexion_left", 0, 5, 0), [0, 1, 2, NAN, 4])
    assert same(feature_slice(win, "hip_flexion_left", 3, 5, 0), [3, 4])


def test_a_stream_of_times_alone() -> None:
    """No fields but ``t``: chunks are consolidated as they are for fields (the time column)."""
    seen: list[np.ndarray] = []
    s = WindowedStream((), lambda fs: (0, 0), lambda win, a, b: seen.append(win.get("t", a, b).copy()),
                       lambda: 0, 100.0)
    s.feed(series([0.0, 0.5]))
    s.feed(series([1.0]))
    s.flush()
    assert len(seen) == 1 and same(seen[0], [0.0, 0.5, 1.0])
