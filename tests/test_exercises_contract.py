"""The block contract (hipback.processing.blocks) for the exercise blocks: chunking never changes a result
(hypothesis chooses the cuts), one-sample chunks, parameters round-trip, update after finish raises.

Uses the shared helpers of tests/test_block_contract.py on an exercise session of the virtual patient.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipback.processing.angles3d import body_angles
from hipback.processing.blocks import params_equal
from hipback.processing.exercises import ExerciseCounter, load_catalogue
from hipback.processing.exercises.stream import (
    ExerciseBlock,
    ProgrammeItem,
    ProgrammeRunner,
    SegmentFrame,
    recording_frame,
)
from hipback.simulator.exercises import ExerciseSet, simulate_programme
from tests.test_block_contract import Case, assert_same, cut_points

CAT = load_catalogue()


@cache
def session():
    prog = [
        ExerciseSet("clamshell", "right", 3, faults=(1,)),
        ExerciseSet("knee_to_chest_double", None, 2, faults=(1,), hold_s=6.0, short_hold_s=3.0),
    ]
    return simulate_programme(prog, seed=21)


@cache
def frame() -> SegmentFrame:
    fr, _ = recording_frame(session().recording)
    a = int(fr.t.searchsorted(session().truth.sets[0].t_start - 4.0))
    return fr.slice(a, len(fr))


@cache
def angles() -> dict:
    fr = frame()
    return body_angles(fr.t, fr.segments)


def _split_frame(f: SegmentFrame, cuts: list[int]) -> list[SegmentFrame]:
    return [f.slice(a, b) for a, b in cut_points(len(f), cuts)]


def _split_angles(a: dict, cuts: list[int]) -> list[dict]:
    return [{k: v[x:y] for k, v in a.items()} for x, y in cut_points(len(a["t"]), cuts)]


def _flat(outs):
    return [x for o in outs for x in o]


CASES = [
    Case(
        "ExerciseCounter",
        lambda: ExerciseCounter(exercise=CAT["clamshell"], side="right"),
        angles,
        _split_angles,
        _flat,
        ("reps_", "cues_"),
    ),
    Case(
        "ExerciseBlock",
        lambda: ExerciseBlock(exercise=CAT["clamshell"], side="right", posture=CAT.postures["side_lying"]),
        frame,
        _split_frame,
        _flat,
        ("reps_", "offsets_", "yaw_", "aligned_at_"),
    ),
    Case(
        "ProgrammeRunner",
        lambda: ProgrammeRunner(
            programme=[
                ProgrammeItem("clamshell", "right", reps=2),
                ProgrammeItem("knee_to_chest_double", holds=1, hold_s=6.0),
            ]
        ),
        frame,
        _split_frame,
        _flat,
        ("events_", "results_", "index_", "done_"),
    ),
]


def run(case: Case, cuts: list[int]):
    block = case.make()
    outs = [block.update(chunk) for chunk in case.split(case.whole(), cuts)]
    outs.append(block.finish())
    return case.digest(outs), {name: getattr(block, name) for name in case.results}


@cache
def reference(name: str):
    return run(next(c for c in CASES if c.name == name), [])


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def case(request) -> Case:
    return request.param


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, 999), min_size=1, max_size=40))
def test_chunking_never_changes_a_result(case: Case, cuts: list[int]):
    out, attrs = run(case, cuts)
    ref_out, ref_attrs = reference(case.name)
    assert_same(out, ref_out, case.name)
    assert_same(attrs, ref_attrs, case.name)


def test_small_chunks_give_the_same_result(case: Case):
    out, attrs = run(case, list(range(1, 1000)))
    ref_out, ref_attrs = reference(case.name)
    assert_same(out, ref_out, case.name)
    assert_same(attrs, ref_attrs, case.name)


def test_the_input_exercises_the_blocks():
    out, attrs = reference("ProgrammeRunner")
    kinds = [e.kind for e in attrs["events_"]]
    assert kinds.count("announce") == 2 and "item_done" in kinds and attrs["done_"]
    assert len(reference("ExerciseCounter")[1]["reps_"]) == 3


def test_parameters_round_trip(case: Case):
    b = case.make()
    assert params_equal(b.clone().get_params(), b.get_params())


def test_update_after_finish_raises(case: Case):
    b = case.make()
    b.finish()
    first = case.split(case.whole(), [500])[0]
    with pytest.raises(RuntimeError):
        b.update(first)


def test_the_next_item_starts_from_the_corrections_in_force_at_the_cut(monkeypatch):
    """The block of the next item gets the previous block's yaw corrections as they were when its dose was
    done: a block fed past that point (a larger chunk) may align again in its start posture, and that
    alignment must not reach the next item."""
    from hipback.processing.exercises import stream

    handed: list[dict] = []
    make = stream.ExerciseBlock.__init__

    def record(self, *args, **kwargs):
        handed.append(dict(kwargs.get("initial_yaw") or {}))
        make(self, *args, **kwargs)

    monkeypatch.setattr(stream.ExerciseBlock, "__init__", record)

    def handover(cuts: list[int]) -> dict:
        handed.clear()
        runner = ProgrammeRunner(programme=[ProgrammeItem("clamshell", "right", reps=2),
                                            ProgrammeItem("knee_to_chest_double", holds=1, hold_s=6.0)])
        for chunk in _split_frame(frame(), cuts):
            runner.update(chunk)
        runner.finish()
        assert len(handed) == 2 and handed[0] == {}
        return handed[1]

    whole, small = handover([]), handover(list(range(1, 1000)))
    assert set(whole) == {"pelvis", "thigh_left", "thigh_right"}
    assert whole == small


def test_yaw_at_is_the_last_alignment_ended_by_then():
    block = ExerciseBlock(exercise=CAT["clamshell"], side="right", posture=CAT.postures["side_lying"],
                          initial_yaw={"pelvis": 0.5})
    for chunk in _split_frame(frame(), []):
        block.update(chunk)
    history = block._yaw_history
    assert len(history) >= 2
    (t1, y1, _), (t2, y2, _) = history[0], history[1]
    assert block.yaw_at(t1 - 1e-6) == {"pelvis": 0.5}
    assert block.yaw_at(t1) == y1 and block.yaw_at(t2 - 1e-6) == y1 and block.yaw_at(t2) == y2
    assert block.yaw_at(float("inf")) == block.yaw_
