"""``process_recording`` feeds the session processor ``chunk_s`` seconds of every stream at a time (bounded
intermediate memory on long recordings): the very same results as each stream fed in one piece, for any
chunk length, with streams that start and end apart, a gap in one of them, and both orientation filters."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hipback.processing.pipeline import ProcessorConfig, process_recording
from hipback.processing.types import Recording
from hipback.simulator.sensor_spec import SensorSpec
from hipback.simulator.session import simulate
from tests.test_pipeline_event_rounds import _bits

KINDS = {"pelvis": "quat", "thigh_left": "raw", "thigh_right": "raw"}


@pytest.fixture(scope="module")
def recording() -> Recording:
    """The ``short`` scenario; the right thigh starts 1.3 s late, the pelvis ends 2 s early, and the left
    thigh loses 0.7 s in the middle."""
    sensors = [SensorSpec(p, kind=k, rate_hz=100.0) for p, k in KINDS.items()]
    rec = simulate("short", seed=9, sensors=sensors).recording
    s = rec.streams
    tr = s["thigh_right"]
    s["thigh_right"] = tr.slice(int(np.searchsorted(tr.t, tr.t[0] + 1.3)), len(tr))
    pe = s["pelvis"]
    s["pelvis"] = pe.slice(0, int(np.searchsorted(pe.t, pe.t[-1] - 2.0)))
    tl = s["thigh_left"]
    mid = len(tl) // 2
    keep = np.r_[0:mid, mid + 70 : len(tl)]
    s["thigh_left"] = dataclasses.replace(tl, t=tl.t[keep], acc=tl.acc[keep], gyr=tl.gyr[keep])
    return rec


@pytest.mark.parametrize("orientation", ["causal", "lagged"])
def test_results_do_not_depend_on_the_chunk_length(recording: Recording, orientation: str) -> None:
    """Every result bit for bit; the messages the same, in the order the data gave them (fed in one piece, the
    left thigh's gap is reported before the calibration that came earlier)."""
    cfg = ProcessorConfig(orientation=orientation)
    one_piece = process_recording(recording, cfg, chunk_s=None)
    whole = _bits(one_piece, messages=False)
    assert one_piece.calibration_state == "calibrated" and len(one_piece.strides) > 10
    for chunk_s in (60.0, 7.3, 0.95):
        res = process_recording(recording, cfg, chunk_s=chunk_s)
        assert _bits(res, messages=False) == whole, chunk_s
        assert sorted(res.messages) == sorted(one_piece.messages)
        if chunk_s < 10:
            order = [m.split(" ")[0] for m in res.messages]
            assert order.index("calibrated:") < order.index("thigh_left:")


@pytest.mark.parametrize("chunk_s", [0.0, -1.0, float("nan")])
def test_a_chunk_length_that_is_not_positive_is_refused(recording: Recording, chunk_s: float) -> None:
    with pytest.raises(ValueError, match="chunk_s"):
        process_recording(recording, chunk_s=chunk_s)
