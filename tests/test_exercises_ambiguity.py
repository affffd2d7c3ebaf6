"""The exercise block's handling of what gravity cannot tell apart, and the angle of a noisy hold.

* Lying on the back with the knees bent, gravity shows a thigh sensor's rotation on the femur only summed with
  the ab/adduction the standing calibration left in the thigh frame: a correction found where the thigh's
  long axis was near the horizontal (sitting, lying on the side) is kept there; an ambiguous one is replaced.
* The angle of a hold is the angle held, not the top of the noise around it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.angles3d import hip_rotation_quat
from hipback.processing.exercises import ExerciseCounter, load_catalogue
from hipback.processing.exercises.stream import ExerciseBlock, SegmentFrame, _hip_from_gravity

CAT = load_catalogue()
RATE = 100.0
#: pelvis lying on its back: anterior (X) up, superior (Y) along world X, right (Z) along world Y
SUPINE = qm.from_axis_angle(np.array([1.0, 1.0, 1.0]) / math.sqrt(3.0), -2.0 * math.pi / 3.0)
UPRIGHT = qm.from_axis_angle([1.0, 0.0, 0.0], math.pi / 2.0)  # standing or sitting: superior (Y) up
ERR = math.radians(6.0)  # the thigh frame turned about its own long axis on the femur
ADD = math.radians(3.0)  # ab/adduction left in the thigh frame by a stance with the feet apart


def _frame(q_pelvis, flexion: float, seconds: float = 3.0) -> SegmentFrame:
    """Still pelvis and thighs: both hips at ``flexion`` (rad) with the frame errors above."""
    n = int(seconds * RATE)
    seg = {"pelvis": np.tile(q_pelvis, (n, 1))}
    for side in ("left", "right"):
        rel = hip_rotation_quat(flexion, ADD, 0.0, side)
        q = qm.multiply(qm.multiply(q_pelvis, rel), qm.from_axis_angle([0.0, 1.0, 0.0], ERR))
        seg[f"thigh_{side}"] = np.tile(q, (n, 1))
    return SegmentFrame(np.arange(n) / RATE, seg)


def _aligned(exercise: str, frame: SegmentFrame, **kw) -> ExerciseBlock:
    ex = CAT[exercise]
    blk = ExerciseBlock(
        exercise=ex,
        side=None if ex.sides == "both" else "right",
        posture=CAT.postures[ex.start_posture],
        worn=frozenset({"pelvis", "thigh_left", "thigh_right"}),
        **kw,
    )
    blk.update(frame)
    assert blk.aligned_at_ is not None
    return blk


def test_pelvis_helpers_face_as_the_postures_say():
    up = qm.rotate(qm.conjugate(SUPINE), np.array([0.0, 0.0, 1.0]))
    assert up == pytest.approx([1.0, 0.0, 0.0], abs=1e-12)
    up = qm.rotate(qm.conjugate(UPRIGHT), np.array([0.0, 0.0, 1.0]))
    assert up == pytest.approx([0.0, 1.0, 0.0], abs=1e-12)


def test_lying_with_the_knees_bent_keeps_an_unambiguous_correction():
    supine = _frame(SUPINE, math.radians(45.0))
    fresh = _aligned("happy_baby", supine)
    # without anything better, the ambiguous correction is taken (and marked so); it holds the ab/adduction
    assert fresh.yaw_ambiguous_ == {"thigh_left", "thigh_right"}
    assert abs(fresh.yaw_["thigh_right"] + ERR) > math.radians(2.0)
    known = {"thigh_left": 0.1, "thigh_right": -0.2, "pelvis": 0.05}
    kept = _aligned("happy_baby", supine, initial_yaw=known)
    assert kept.yaw_["thigh_left"] == 0.1 and kept.yaw_["thigh_right"] == -0.2
    assert kept.yaw_ambiguous_ == frozenset()
    assert kept.yaw_["pelvis"] == pytest.approx(fresh.yaw_["pelvis"])  # the pelvis lies flat: not ambiguous
    # an ambiguous earlier correction is replaced by this one
    replaced = _aligned(
        "happy_baby", supine, initial_yaw=known, initial_yaw_ambiguous=frozenset({"thigh_left"})
    )
    assert replaced.yaw_["thigh_left"] == pytest.approx(fresh.yaw_["thigh_left"])
    assert replaced.yaw_["thigh_right"] == -0.2
    assert replaced.yaw_ambiguous_ == {"thigh_left"}


def test_sitting_shows_the_rotation_on_the_femur_without_the_ab_adduction():
    seated = _frame(UPRIGHT, math.radians(85.0))
    blk = _aligned(
        "seated_forward_bend",
        seated,
        initial_yaw={"thigh_left": -0.3, "thigh_right": 0.3},
        initial_yaw_ambiguous=frozenset({"thigh_left"}),
    )
    # the thighs' long axes are near the horizontal: the correction replaces any earlier one
    assert blk.yaw_ambiguous_ == frozenset()
    assert blk.yaw_ambiguous_at(0.0) == {"thigh_left"} and blk.yaw_ambiguous_at(10.0) == frozenset()
    assert blk.yaw_at(0.0) == {"thigh_left": -0.3, "thigh_right": 0.3}
    for side in ("left", "right"):
        assert blk.yaw_[f"thigh_{side}"] == pytest.approx(-ERR, abs=math.radians(0.6))


def test_the_angle_of_a_noisy_hold_is_the_angle_held():
    ex = CAT["knee_to_chest_double"]
    t = np.arange(0.0, 24.0, 1.0 / RATE)
    held = math.radians(115.0)
    ramp = np.clip((t - 4.0) / 2.0, 0.0, 1.0) - np.clip((t - 18.0) / 2.0, 0.0, 1.0)
    flex = math.radians(45.0) + ramp * (held - math.radians(45.0))
    noise = math.radians(2.0) * np.sign(np.sin(2 * math.pi * t / 1.6))  # slow flips, as fused inclination
    flex = np.where(ramp >= 1.0, flex + noise, flex)
    frame = {"t": t, "hip_flexion_left": flex, "hip_flexion_right": flex}
    for k in ("hip_adduction", "hip_rotation"):
        frame[f"{k}_left"] = frame[f"{k}_right"] = np.zeros(len(t))
    for k in ("pelvic_tilt", "pelvis_up_y", "pelvis_up_z", "lumbar_flexion", "lumbar_rotation"):
        frame[k] = np.zeros(len(t))
    frame["pelvis_up_x"] = np.ones(len(t))

    def peak(**kw) -> float:
        c = ExerciseCounter(exercise=ex, hold_s=10.0, **kw)
        c.update(frame)
        c.finish()
        assert len(c.reps_) == 1
        return c.reps_[0].primary_peak_rad

    assert peak() == pytest.approx(held, abs=math.radians(0.5))
    # the top of the noise, as the largest sample
    assert peak(hold_peak_s=0.0) == pytest.approx(held + math.radians(2.0), abs=math.radians(0.2))


def test_with_the_rotation_known_gravity_gives_the_ab_adduction_and_the_heading_follows():
    supine = _frame(SUPINE, math.radians(45.0))
    turn = qm.from_axis_angle([0.0, 1.0, 0.0], -ERR)
    fixed = {p: q if p == "pelvis" else qm.multiply(q, turn) for p, q in supine.segments.items()}
    for side in ("left", "right"):
        f, a = _hip_from_gravity(fixed["pelvis"], fixed[f"thigh_{side}"], side)
        assert f == pytest.approx(math.radians(45.0), abs=1e-9)
        assert a == pytest.approx(ADD, abs=1e-9)
    # the sensors share one world heading here: an alignment that knows the rotation finds no heading offset
    known = {"thigh_left": -ERR, "thigh_right": -ERR}
    kept = _aligned("happy_baby", supine, initial_yaw=known)
    fresh = _aligned("happy_baby", supine)
    for p in ("thigh_left", "thigh_right"):
        assert kept.offsets_[p] == pytest.approx(0.0, abs=1e-9)
        assert abs(fresh.offsets_[p]) > math.radians(1.0)
