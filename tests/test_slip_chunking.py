"""The slip monitor's moving check over both thighs gives the same results however the rows are chunked.

The block contract test's walk is too short for the moving check to compare any window (the first three
after calibration are its reference); this walk is 40 s long and both thigh sensors turn on the leg
mid-walk, at different times, so windows of both thighs, and both warnings, fall into the same chunks.
"""

from __future__ import annotations

import dataclasses
import math
from functools import cache

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipback.processing import CalibratedRows, CalibrationSearch, GridMerge, Rows, SensorChannel, SlipMonitor
from hipback.processing import quaternion as qm
from hipback.simulator.session import simulate

PLACEMENTS = ("pelvis", "thigh_left", "thigh_right")


@cache
def calibrated() -> tuple[CalibratedRows, ...]:
    rec = simulate("walk", seed=5, calib_s=5.0, walk_s=40.0, stand_s=5.0).recording
    merge = GridMerge(PLACEMENTS)
    out = [
        merge.update(SensorChannel(p, rec.streams[p].kind, rec.streams[p].rate_hz).update(rec.streams[p]))
        for p in PLACEMENTS
    ]
    out.append(merge.finish())
    rows = Rows.concat([r for r in out if len(r)])
    t = rows.k / 100.0
    q, omega = dict(rows.q), dict(rows.omega)
    for p, at in (("thigh_left", 29.0), ("thigh_right", 30.5)):  # each sensor turns 25 deg on the leg
        turn = qm.from_axis_angle([0.0, 1.0, 0.0], math.radians(25.0) * np.clip((t - at) / 0.5, 0, 1))
        q[p] = qm.multiply(q[p], turn)
        omega[p] = qm.rotate(qm.conjugate(turn), omega[p])  # the angular velocity in the turned sensor frame
    cs = CalibrationSearch(PLACEMENTS)
    return tuple(cs.update(dataclasses.replace(rows, q=q, omega=omega)) + cs.finish())


def run(pieces: list[CalibratedRows]) -> SlipMonitor:
    m = SlipMonitor()
    for piece in pieces:
        m.update(piece)
    m.finish()
    return m


def split(whole: tuple[CalibratedRows, ...], cuts: list[int]) -> list[CalibratedRows]:
    out = []
    for cr in whole:
        n = len(cr.rows)
        idx = sorted({c * n // 1000 for c in cuts} | {0, n})
        bounds = zip(idx[:-1], idx[1:], strict=True)
        out += [dataclasses.replace(cr, rows=cr.rows.slice(a, b)) for a, b in bounds if b > a]
    return out


@cache
def reference() -> SlipMonitor:
    return run(list(calibrated()))


def test_the_walk_reaches_the_moving_check_on_both_thighs() -> None:
    m = reference()
    sides = {p for p, _, _ in m.walk_offsets_}
    assert sides == {"thigh_left", "thigh_right"}
    times = [t for _, t, _ in m.walk_offsets_]
    assert times == sorted(times)  # one timeline over both thighs
    moving = [s for s in m.slips_ if s[2] == "moving"]
    assert {s[0] for s in moving} == {"thigh_left", "thigh_right"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 999), min_size=1, max_size=40))
def test_chunking_never_changes_the_moving_check(cuts: list[int]) -> None:
    ref = reference()
    m = run(split(calibrated(), cuts))
    assert m.walk_offsets_ == ref.walk_offsets_
    assert m.slips_ == ref.slips_
    assert m.warnings_ == ref.warnings_
    assert m.messages_ == ref.messages_
