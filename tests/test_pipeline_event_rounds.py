"""The session processor feeds its event detectors in rounds (``ProcessorConfig.hold_step_s``, the hold
detector; ``event_step_s``, the stride detectors, the activity classifier and the summary) while the angle
path runs at every live step. A session with walking, a stretch hold per side (one arching), a raw thigh
sensor and quaternion sensors, streamed in chunks of 1, 2, 5 and 11 samples at live steps of 0.02-0.1 s,
must give the very same bits with the rounds as when every block runs at every step (the rounds set to
zero), and the same as in batch; every stride, hold and bout is polled exactly once. A due round runs at
:meth:`SessionProcessor.run_events` (after the step's angles were handed out) or else before the next step:
no angle row waits for the detectors longer than that, and :meth:`SessionProcessor.flush` feeds the rest."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from hipback.processing.pipeline import ProcessorConfig, SessionProcessor, SessionResults, process_recording
from hipback.processing.types import Recording
from hipback.simulator.sensor_spec import SensorSpec
from hipback.simulator.session import simulate

KINDS = {"pelvis": "quat", "thigh_left": "raw", "thigh_right": "quat", "lumbar_upper": "quat"}


@pytest.fixture(scope="module")
def session() -> tuple[Recording, tuple]:
    """The ``short`` scenario (calibration, a walk, a 5 s stretch hold per side, the right one arching)."""
    sensors = [SensorSpec(p, kind=k, rate_hz=100.0) for p, k in KINDS.items()]
    rec = simulate("short", seed=5, sensors=sensors).recording
    return rec, _bits(process_recording(rec))


def _bits(res: SessionResults, messages: bool = True) -> tuple:
    """Everything a session produced, at full precision."""
    a = res.angles
    angles = tuple(
        (name, None if getattr(a, name) is None else np.asarray(getattr(a, name)).tobytes())
        for name in ("t", *a.FIELDS, *a.OPTIONAL, "implausible")
    )
    kinds = ("strides", "bouts", "holds", "activity", "gaps")
    events = tuple(repr([vars(x) for x in getattr(res, kind)]) for kind in kinds)
    return (
        angles,
        events,
        repr(res.calibration),
        res.calibration_state,
        tuple(res.warnings),
        tuple(res.messages) if messages else (),
        json.dumps(res.summary, sort_keys=True, default=repr),
    )


def _streamed(
    rec: Recording, size: int, step: float, **rounds: float
) -> tuple[SessionResults, dict[str, list]]:
    """Each sensor's samples ``size`` at a time in arrival order, polled after every round of feeds (as the
    session runner polls); returns the results and everything the polls handed out."""
    streams = list(rec.streams.values())
    proc = SessionProcessor(
        {s.placement: s.kind for s in streams},
        {s.placement: s.rate_hz for s in streams},
        ProcessorConfig(live_batch_s=step, **rounds),
    )
    polled: dict[str, list] = {"strides": [], "holds": [], "activity": []}

    def take() -> None:
        upd = proc.poll()
        for kind, items in polled.items():
            items.extend(getattr(upd, kind))

    for i, a in enumerate(range(0, max(len(s) for s in streams), size)):
        for s in streams:
            if a < len(s):
                proc.feed(s.slice(a, min(a + size, len(s))))
        take()
        if i % 2:  # (as the session runner does; otherwise the next step runs the due rounds)
            proc.run_events()
    res = proc.finish()
    take()
    return res, polled


@pytest.mark.parametrize("size, step", [(1, 0.02), (2, 0.02), (5, 0.05), (11, 0.1), (2, 0.1)])
def test_event_rounds_change_no_result(session: tuple[Recording, tuple], size: int, step: float) -> None:
    rec, batch = session
    every_step, _ = _streamed(rec, size, step, hold_step_s=0.0, event_step_s=0.0)
    res, polled = _streamed(rec, size, step)
    assert _bits(res) == _bits(every_step)
    assert _bits(res) == batch
    # the session has what the rounds delay: strides on both sides, two holds (one arching), bouts
    assert {s.side for s in res.strides} == {"left", "right"}
    assert sorted((h.side, h.arching) for h in res.holds) == [("left", False), ("right", True)]
    assert len(res.activity) >= 3
    # each stride, hold and bout reached a poll exactly once
    assert sorted(repr(vars(s)) for s in polled["strides"]) == sorted(repr(vars(s)) for s in res.strides)
    assert [repr(vars(h)) for h in polled["holds"]] == [repr(vars(h)) for h in res.holds]
    assert [repr(vars(b)) for b in polled["activity"]] == [repr(vars(b)) for b in res.activity]


def test_no_events_preset_summary_is_the_same_in_rounds(session: tuple[Recording, tuple]) -> None:
    rec, _ = session
    streams = list(rec.streams.values())
    sums = []
    for rounds in ({}, {"hold_step_s": 0.0, "event_step_s": 0.0}):
        proc = SessionProcessor.default(
            {s.placement: s.kind for s in streams}, {s.placement: s.rate_hz for s in streams}, "no_events",
            live_batch_s=0.02, **rounds)
        for a in range(0, len(streams[0]), 3):
            for s in streams:
                proc.feed(s.slice(a, a + 3))
        sums.append(json.dumps(proc.finish().summary, sort_keys=True))
    assert sums[0] == sums[1]
    assert '"duration_s": 0.0' not in sums[0]


def _count_rows(proc: SessionProcessor, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Rows handed to each event block per call."""
    fed: dict[str, list[int]] = {"hold": [], "stride": [], "activity": [], "summary": []}
    blocks = {"hold": [proc.hold_detector], "stride": list(proc.stride_detectors.values()),
              "activity": [proc.activity_classifier], "summary": [proc.summary_block]}
    for name, objs in blocks.items():
        for obj in objs:
            orig = obj.update

            def counted(chunk: Any, _orig: Any = orig, _name: str = name, _first: bool = obj is objs[0],
                        ) -> Any:
                rows = len(chunk.angles if _name == "summary" else chunk)
                if _first and rows:
                    fed[_name].append(rows)
                return _orig(chunk)

            monkeypatch.setattr(obj, "update", counted)
    return fed


@pytest.mark.parametrize("live_caller", [True, False])
@pytest.mark.parametrize("hold_step_s, event_step_s", [(0.25, 1.0), (0.1, 0.5), (0.0, 0.0)])
def test_no_row_waits_longer_than_its_round(
    session: tuple[Recording, tuple],
    monkeypatch: pytest.MonkeyPatch,
    hold_step_s: float,
    event_step_s: float,
    live_caller: bool,
) -> None:
    rec, _ = session
    streams = list(rec.streams.values())
    proc = SessionProcessor(
        {s.placement: s.kind for s in streams},
        {s.placement: s.rate_hz for s in streams},
        ProcessorConfig(live_batch_s=0.02, hold_step_s=hold_step_s, event_step_s=event_step_s),
    )
    need = {"hold": max(1, math.ceil(hold_step_s * 100.0)), "stride": max(1, math.ceil(event_step_s * 100.0))}
    need["activity"] = need["summary"] = need["stride"]
    fed = _count_rows(proc, monkeypatch)
    rows = 0
    deferred = {name: 0 for name in fed}  # polls after which a due round waited for run_events
    for a in range(0, 2000, 2):  # the first 20 s: calibration and most of the walk
        for s in streams:
            proc.feed(s.slice(a, a + 2))
        step = len(proc.poll().angles)  # the step's angles are handed out before its due rounds run
        rows += step
        for name, calls in fed.items():
            waiting = rows - sum(calls)
            assert 0 <= waiting < need[name] + step, name
            deferred[name] += waiting >= need[name]
        if live_caller:
            proc.run_events()
            for name, calls in fed.items():
                waiting = rows - sum(calls)
                assert 0 <= waiting < need[name], name
    assert rows > 1000
    # every round so far became due in a step and ran only after that step's angles were polled
    assert all(deferred[name] >= len(calls) for name, calls in fed.items()), deferred
    for name, calls in fed.items():
        assert calls and min(calls) >= need[name], name  # one call per round, none smaller
        assert len(calls) <= rows // need[name]
    proc.flush()  # the rest now
    rows += len(proc.poll().angles)
    assert all(sum(calls) == rows for calls in fed.values())
    proc.flush()  # nothing left: no empty call
    assert all(sum(calls) == rows for calls in fed.values())


@pytest.mark.parametrize("name", ["hold_step_s", "event_step_s"])
@pytest.mark.parametrize("value", [-0.1, math.nan, "1"])
def test_round_lengths_must_be_seconds(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must be a number of seconds >= 0, not "):
        ProcessorConfig(**{name: value})  # type: ignore[arg-type]
    assert ProcessorConfig(**{name: 0}) is not None
