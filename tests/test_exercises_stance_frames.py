"""The truth of a primary measured from the start of a rep is in the frames the standing calibration defines.

hipback's neutral is the calibration stance: each segment's superior axis is that stance's vertical. A
patient who stands with the hips slightly flexed and the feet apart has segment frames a few degrees off the
anatomical ones, and a change of ab/adduction at a flexed hip (clamshell) then differs between the two by
degrees. Error-free sensors through the pipeline measure the stance-frame change; the truth must be that.
"""

from __future__ import annotations

import math

import numpy as np

from hipback.processing.angles3d import body_angles
from hipback.processing.exercises import load_catalogue
from hipback.processing.exercises.signals import signal
from hipback.processing.exercises.stream import ExerciseBlock, calibration_offsets, recording_frame
from hipback.simulator.exercises import ExerciseSet, simulate_programme, stance_frames
from hipback.simulator.patient import VirtualPatient
from hipback.simulator.sensor_spec import ideal_sensors

CAT = load_catalogue()


def test_error_free_sensors_measure_the_truth_of_a_clamshell_with_a_flexed_stance() -> None:
    patient = VirtualPatient(
        stance_hip_flexion_left_deg=4.0, stance_hip_flexion_right_deg=4.0, stance_abduction_deg=2.0
    )
    prog = [ExerciseSet("clamshell", "right", 3)]
    sess = simulate_programme(prog, seed=5, patient=patient, sensors=ideal_sensors(("pelvis", "thigh_left",
                                                                                    "thigh_right")))
    frame, cal = recording_frame(sess.recording)
    ex = CAT["clamshell"]
    ts = sess.truth.sets[0]
    a, b = np.searchsorted(frame.t, [ts.t_start - 3.5, ts.t_end + 2.0])
    blk = ExerciseBlock(
        exercise=ex,
        side="right",
        posture=CAT.postures[ex.start_posture],
        worn=frozenset(frame.segments),
        initial_offsets=calibration_offsets(frame, cal["pelvis"].window),
    )
    for k in range(a, b, 25):
        blk.update(frame.slice(k, min(k + 25, b)))
    blk.finish()
    assert len(blk.reps_) == len(ts.reps) == 3
    truth = sess.truth
    anatomical = signal(body_angles(truth.t, truth.segment_quat), ex.primary.angle, "right")
    in_stance = signal(
        body_angles(truth.t, stance_frames(truth.t, truth.segment_quat, truth.calibration_window)),
        ex.primary.angle,
        "right",
    )
    for d, tr in zip(blk.reps_, ts.reps, strict=True):
        assert abs(math.degrees(d.primary_peak_rad - tr.primary_peak_rad)) < 0.6
        rep = (truth.t >= tr.t_start) & (truth.t <= tr.t_end)
        onset = np.searchsorted(truth.t, tr.t_onset)
        assert tr.primary_peak_rad == float(np.max(in_stance[rep]) - in_stance[onset])
        # the same change in the anatomical frames is more than a degree larger
        assert math.degrees(np.max(anatomical[rep]) - anatomical[onset] - tr.primary_peak_rad) > 1.0


def test_stance_frames_make_the_calibration_stance_neutral() -> None:
    patient = VirtualPatient(stance_hip_flexion_right_deg=5.0, stance_abduction_deg=3.0, stance_tilt_deg=4.0)
    sess = simulate_programme([ExerciseSet("knee_drops", "left", 1)], seed=2, patient=patient)
    truth = sess.truth
    w = truth.calibration_window
    sel = (truth.t >= w[0]) & (truth.t <= w[1])
    anat = body_angles(truth.t, truth.segment_quat)
    cal = body_angles(truth.t, stance_frames(truth.t, truth.segment_quat, w))
    # the stance is not the anatomical neutral, but it is the calibrated one
    assert np.degrees(np.abs(anat["hip_flexion_right"][sel]).mean()) > 4.0
    for k in ("hip_flexion", "hip_adduction", "hip_rotation"):
        for side in ("left", "right"):
            assert np.degrees(np.abs(cal[f"{k}_{side}"][sel]).max()) < 0.5, (k, side)
