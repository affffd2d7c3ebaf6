"""Streaming exercise blocks on calibrated segment orientations: one exercise, a whole programme.

Input of these blocks is a :class:`SegmentFrame`: sample times on the common grid and calibrated
segment-to-world quaternions per placement (what
:class:`hipback.processing.calibration_search.CalibratedRows` give after applying their calibration,
see :func:`segment_frame`). The blocks follow the contract of
:mod:`hipback.processing.blocks` (keyword-only parameters, ``update``/``finish``, results as ``*_``
attributes, chunking never changes a result).

* :class:`ExerciseBlock`: one exercise on one side. It waits for the patient to be still for ``align_s`` in
  the exercise's start posture (pelvis up direction within ``posture_tolerance_rad`` of the posture's, hips
  within ``hip_tolerance_rad``), corrects each segment's rotation about its own long axis where gravity shows
  it (a standing calibration cannot), aligns the heading of every thigh (and the upper lumbar sensor) to
  the pelvis there (:func:`hipback.processing.angles3d.heading_offset` with the posture's nominal hip
  flexion where the sagittal one is not defined; a thigh's rotation seen with its long axis steeply inclined,
  lying on the back with the knees bent, is used only when no unambiguous one is known, see
  ``yaw_ambiguity_limit``), then computes the body angles
  (:func:`hipback.processing.angles3d.body_angles`) and feeds an
  :class:`~hipback.processing.exercises.engine.ExerciseCounter`. Without such a still moment within
  ``max_wait_s`` of first facing as in the start posture (what came before is not counted) it uses
  ``initial_offsets`` (the alignment at the standing calibration, see :func:`calibration_offsets`). Where
  the frame carries a segment's gyroscope (``SegmentFrame.gyr``: on-device fusion devices that also
  deliver it), the heading of that segment between alignments comes from the gyroscope, its bias measured
  over the still alignment window (:func:`hipback.processing.angles3d.gyro_heading_drift`), not from the
  drifting fused heading.
* :class:`ProgrammeRunner`: a programme (exercises, sides, dose, order). It announces each exercise, counts
  the reps or holds that meet the form rules, passes the first broken rule's cue, and moves on to the next
  exercise when the dose is done (an exercise the worn sensors cannot measure is announced as such and
  skipped). Events are :class:`ProgrammeEvent`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from hipback.processing import quaternion as qm
from hipback.processing.angles import sagittal_inclination
from hipback.processing.angles3d import (
    body_angles,
    gyro_heading_drift,
    heading_offset,
    hip_rotation_quat,
    posture_reference,
)
from hipback.processing.blocks import Block
from hipback.processing.exercises.catalogue import Catalogue, Exercise, Posture, load_catalogue
from hipback.processing.exercises.engine import ExerciseCounter, RepResult
from hipback.processing.exercises.signals import available
from hipback.processing.exercises.stepping import SteppingDetector

FloatArray = np.ndarray
SIDES = ("left", "right")


@dataclass
class SegmentFrame:
    """Calibrated segment-to-world quaternions ``(N, 4)`` per placement on sample times ``t`` (s).

    ``gyr`` (optional, per placement): the segment's angular velocity in its own frame (rad/s, ``(N, 3)``)
    from the sensor's gyroscope, for sensors with on-device fusion that also deliver
    it; :class:`ExerciseBlock` then takes the heading between its alignments from the gyroscope
    (:func:`hipback.processing.angles3d.gyro_heading_drift`) instead of the drifting fused heading.
    ``acc_vertical`` (optional, ``(N,)``): the pelvis sensor's world-vertical acceleration (m/s^2, up
    positive, gravity removed; NaN where unknown), from which :class:`ExerciseBlock` tells walking from
    exercising (:mod:`hipback.processing.exercises.stepping`).
    """

    t: FloatArray
    segments: dict[str, FloatArray]
    gyr: dict[str, FloatArray] = field(default_factory=dict)
    acc_vertical: FloatArray | None = None

    def __len__(self) -> int:
        return len(self.t)

    def slice(self, a: int, b: int) -> SegmentFrame:
        return SegmentFrame(
            self.t[a:b],
            {p: q[a:b] for p, q in self.segments.items()},
            {p: g[a:b] for p, g in self.gyr.items()},
            None if self.acc_vertical is None else self.acc_vertical[a:b],
        )

    @staticmethod
    def concat(parts: list[SegmentFrame]) -> SegmentFrame:
        parts = [p for p in parts if len(p)]
        if not parts:
            return SegmentFrame(np.zeros(0), {})
        if len(parts) == 1:
            return parts[0]
        keys = list(parts[0].segments)
        gkeys = [k for k in parts[0].gyr if all(k in p.gyr for p in parts)]  # only where every part has it
        accs = [p.acc_vertical for p in parts]
        return SegmentFrame(
            np.concatenate([p.t for p in parts]),
            {k: np.concatenate([p.segments[k] for p in parts]) for k in keys},
            {k: np.concatenate([p.gyr[k] for p in parts]) for k in gkeys},
            # (a part without it: NaN there, which is never walking)
            None if all(a is None for a in accs) else np.concatenate(
                [np.full(len(p), np.nan) if a is None else a for p, a in zip(parts, accs, strict=True)]),
        )


def segment_frame(
    rows_k: FloatArray,
    q: Mapping[str, FloatArray],
    calibration,
    swap: bool,
    rate_hz: float,
    gyr: Mapping[str, FloatArray] | None = None,
    acc_vertical: FloatArray | None = None,
):
    """A :class:`SegmentFrame` from merged grid rows (``k``, sensor quaternions) and their calibration
    (placement -> :class:`~hipback.processing.calibration.SensorCalibration`; thighs exchanged when ``swap``).
    Placements without a calibration are left out. ``gyr``: per placement, the sensor's angular velocity on
    the same rows (rad/s, sensor frame), turned into the segment frame by the calibration; ``acc_vertical``:
    the pelvis' world-vertical acceleration on the same rows (m/s^2, :class:`SegmentFrame`)."""
    seg, rates = {}, {}
    for p, cal in (calibration or {}).items():
        src = p
        if swap and p in ("thigh_left", "thigh_right"):
            src = "thigh_right" if p == "thigh_left" else "thigh_left"
        if src in q:
            seg[p] = cal.segment_quat(q[src])
            if gyr is not None and src in gyr:
                rates[p] = segment_rate(cal, gyr[src])
    return SegmentFrame(np.asarray(rows_k, dtype=np.float64) / rate_hz, seg, rates, acc_vertical)


def segment_rate(calibration, gyr: FloatArray) -> FloatArray:
    """A sensor's angular velocity ``gyr`` (N, 3; rad/s, sensor frame) in the frame of the segment it is
    mounted on, by its :class:`~hipback.processing.calibration.SensorCalibration`."""
    return qm.rotate(qm.conjugate(calibration.q_segment_in_sensor), np.asarray(gyr, dtype=np.float64))


def calibration_offsets(frame: SegmentFrame, window: tuple[float, float]) -> dict[str, float]:
    """Heading offset (rad) of each non-pelvis segment relative to the pelvis, from the standing-neutral
    calibration window ``(t0, t1)`` (s), where every segment's orientation relative to the pelvis is the
    identity by the definition of the calibration."""
    sel = (frame.t >= window[0]) & (frame.t <= window[1])
    qp = frame.segments["pelvis"][sel]
    out = {}
    for p, q in frame.segments.items():
        if p != "pelvis":
            d = heading_offset(qp, q[sel])
            if math.isfinite(d):
                out[p] = d
    return out


def _ry(angle: float) -> FloatArray:
    return qm.from_axis_angle([0.0, 1.0, 0.0], angle)


def _yaw_correction(q: FloatArray, target: FloatArray, min_observability: float) -> float | None:
    """Rotation ``c`` (rad) about the segment's own long axis (Y) such that ``q * Ry(c)`` sees the world up
    in the direction ``target`` (segment frame) within the X-Z plane; None when the long axis is too close to
    vertical for gravity to show it (horizontal part of up below ``min_observability`` in the measured or
    the target direction). A standing calibration cannot see this rotation (it is a heading there)."""
    w, x, y, z = np.asarray(q, dtype=np.float64).T
    g = np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1)
    g = np.nanmean(g, axis=0)
    if not np.isfinite(g).all():
        return None
    if math.hypot(g[0], g[2]) < min_observability or math.hypot(target[0], target[2]) < min_observability:
        return None
    return float(math.atan2(g[0], g[2]) - math.atan2(target[0], target[2]))


def _up(q: FloatArray) -> FloatArray:
    """Mean world up direction (unit) seen in the frame of the quaternions ``q`` (N, 4); NaN if none."""
    w, x, y, z = np.asarray(q, dtype=np.float64).T
    g = np.nanmean(
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1), axis=0
    )
    return g / np.linalg.norm(g)


def _hip_from_gravity(q_pelvis: FloatArray, q_thigh: FloatArray, side: str) -> tuple[float, float] | None:
    """Hip flexion and adduction (rad, ISB signs of :func:`hipback.processing.angles3d.hip_angles`) of a
    still thigh whose rotation about its own long axis relative to the pelvis is zero, from gravity alone:
    the world up ``u_p`` seen in the pelvis frame and ``u_t`` seen in the thigh frame satisfy
    ``Rz(flexion) Rx(b) u_t = u_p``, so ``Rx(b) u_t = Rz(-flexion) u_p =: v`` with ``v_x = u_t,x`` and
    ``v_z = u_p,z``; of the two ``v_y``, the one giving the flexion nearer the heading-free sagittal one is
    taken. None where the thigh's long axis is horizontal and up along its anterior axis (``b`` undefined)
    or the directions are not finite."""
    u_p, u_t = _up(q_pelvis), _up(q_thigh)
    if not (np.isfinite(u_p).all() and np.isfinite(u_t).all()) or math.hypot(u_t[1], u_t[2]) < 0.2:
        return None
    sagittal = float(np.nanmean(sagittal_inclination(q_thigh) - sagittal_inclination(q_pelvis)))
    vx, vz = float(u_t[0]), float(u_p[2])
    vy = math.sqrt(max(0.0, 1.0 - vx * vx - vz * vz))
    best = None
    for y in (vy, -vy):
        b = math.atan2(vz, y) - math.atan2(u_t[2], u_t[1])
        f = math.atan2(u_p[1], u_p[0]) - math.atan2(y, vx)
        f, b = (math.atan2(math.sin(a), math.cos(a)) for a in (f, b))
        miss = abs(math.atan2(math.sin(f - sagittal), math.cos(f - sagittal)))
        if best is None or miss < best[0]:
            best = (miss, f, b)
    s = 1.0 if side == "right" else -1.0
    return best[1], s * best[2]


def _posture_up(posture: Posture, side: str | None) -> FloatArray:
    up = np.array(posture.pelvis_up)
    if posture.side_sign and side == "left":
        up[2] = -up[2]
    return up


class ExerciseBlock(Block[SegmentFrame, list[RepResult]]):
    """One exercise on one side, from calibrated segment orientations (module docstring).

    :param exercise: catalogue entry. :param side: working side (None for exercises done with both legs).
    :param posture: the exercise's start posture (:class:`Posture`).
    :param worn: placements worn. :param hold_s: prescribed seconds per hold (None: the catalogue dose).
    :param initial_offsets: heading offsets (rad) to use without an alignment in the start posture.
    :param initial_yaw: corrections (rad) of segments about their own long axis found earlier (a lying start
        posture shows them; upright ones cannot), kept where this start posture cannot see them.
    :param initial_yaw_ambiguous: the segments of ``initial_yaw`` whose correction was found where it was
        ambiguous (``yaw_ambiguity_limit``); ``yaw_ambiguous_`` holds those of ``yaw_``.
    :param yaw_ambiguity_limit: a thigh's rotation about its own long axis seen by gravity in a start posture
        whose up direction along the thigh's long axis (the sine of the long axis' inclination above the
        horizontal) exceeds this is ambiguous: gravity shows it summed with the thigh frame's ab/adduction
        (the standing calibration takes the thigh's long axis as the vertical of a stance with the feet apart)
        times the tangent of that inclination. Such a correction replaces only an ambiguous or missing one;
        one found with the long axis nearer the horizontal (sitting, lying on the side or flat) is kept.
    :param align_s: still time in the start posture that aligns the heading (s).
    :param still_rad_s: every segment turning slower than this counts as still (rad/s).
    :param posture_tolerance_rad: pelvis up direction this close to the start posture's (rad).
    :param hip_tolerance_rad: sagittal hip flexion this close to the posture's nominal values (rad).
    :param max_wait_s: after this long without alignment, counted from the first sample with the pelvis facing
        as in the start posture, ``initial_offsets`` are used (s); samples before that first one are not
        counted (a programme begins when the patient takes its first start posture, whatever came before).
    :param realign: align again at every later still moment of ``align_s`` in the start posture while no rep
        or hold is in progress (the heading of on-device fusion drifts within a set); ``realigned_`` counts
        them, ``alignments_`` holds the time (s) of every alignment, the first included.
    :param gyro_heading: between alignments, take the heading of segments whose gyroscope the frame carries
        from the gyroscope instead of the fused heading; its bias is the mean rate over the samples of the
        last ``bias_window_s`` (s) before the alignment where every segment turned slower than
        ``bias_still_rad_s`` (rad/s) (at least the still alignment window's).
    :param step_rms_m_s2: a rep or hold whose onset, or at least ``step_share`` of whose samples, were taken
        while walking (:class:`~hipback.processing.exercises.stepping.SteppingDetector` with this threshold,
        m/s^2, on the frame's ``acc_vertical``) was a walk's steps, not the exercise: it is left out (not
        reported, not counted; the reps kept are numbered on without it; ``walking_left_out_`` counts them).
        0 turns this off; a frame without ``acc_vertical`` is never walking.
    :param step_share: see ``step_rms_m_s2`` (0-1).
    :param step_lookahead_s: the walking marks are RMS values over the trailing ``window_s`` (2 s); a rep's
        samples are judged by the marks this much later (s), centred on them, so that the first step of a
        walk, before the trailing window fills, is seen as walking too; a rep or hold is reported that much
        after its end (at once without ``acc_vertical``, and at ``finish``).
    :param counter: further keyword arguments of :class:`ExerciseCounter`.
    """

    #: how long (s) the walking marks are kept to judge a rep by: longer than any rep or hold plus the wait
    #: for the start posture (``max_wait_s``), whose samples are fed to the counter once it is found
    STEP_MEMORY_S = 300.0

    def __init__(
        self,
        *,
        exercise: Exercise,
        side: str | None,
        posture: Posture,
        worn: frozenset[str] = frozenset({"pelvis", "thigh_left", "thigh_right", "lumbar_upper"}),
        hold_s: float | None = None,
        initial_offsets: dict[str, float] | None = None,
        initial_yaw: dict[str, float] | None = None,
        initial_yaw_ambiguous: frozenset[str] = frozenset(),
        align_s: float = 1.0,
        still_rad_s: float = 0.1,
        posture_tolerance_rad: float = math.radians(35.0),
        hip_tolerance_rad: float = math.radians(14.0),
        max_wait_s: float = 60.0,
        min_yaw_observability: float = 0.5,
        yaw_ambiguity_limit: float = 0.35,
        realign: bool = True,
        gyro_heading: bool = True,
        bias_window_s: float = 30.0,
        bias_still_rad_s: float = 0.03,
        step_rms_m_s2: float = 0.6,
        step_share: float = 0.5,
        step_lookahead_s: float = 1.0,
        counter: dict | None = None,
    ) -> None:
        self.exercise = exercise
        self.side = side
        self.posture = posture
        self.worn = frozenset(worn)
        self.hold_s = hold_s
        self.initial_offsets = dict(initial_offsets or {})
        self.initial_yaw = dict(initial_yaw or {})
        self.initial_yaw_ambiguous = frozenset(initial_yaw_ambiguous)
        self.align_s = align_s
        self.still_rad_s = still_rad_s
        self.posture_tolerance_rad = posture_tolerance_rad
        self.hip_tolerance_rad = hip_tolerance_rad
        self.max_wait_s = max_wait_s
        self.min_yaw_observability = min_yaw_observability
        self.yaw_ambiguity_limit = yaw_ambiguity_limit
        self.realign = realign
        self.gyro_heading = gyro_heading
        self.bias_window_s = bias_window_s
        self.bias_still_rad_s = bias_still_rad_s
        self._calm: list[tuple[FloatArray, dict[str, FloatArray]]] = []  # calm samples' times and gyroscopes
        self.counter = dict(counter or {})
        self.step_rms_m_s2 = step_rms_m_s2
        self.step_share = step_share
        self.step_lookahead_s = step_lookahead_s
        self._held: list[RepResult] = []  # reps and holds waiting for the walking marks past their end
        self._stepping = SteppingDetector(rms_m_s2=step_rms_m_s2) if step_rms_m_s2 > 0 else None
        # (times, walking marks) of the last STEP_MEMORY_S
        self._steps: list[tuple[FloatArray, np.ndarray]] = []
        self._kept = 0  # reps and holds reported
        self.walking_left_out_ = 0  # reps and holds left out as a walk's steps
        # per segment with a gyroscope, since the last alignment: bias (rad/s, segment frame) and the last
        # sample fed (t, fused quaternion, gyroscope, heading drift)
        self._track: dict[str, tuple[FloatArray, tuple[float, FloatArray, FloatArray, float]]] = {}
        self._counter: ExerciseCounter | None = None  # made once the start posture is found (or given up)
        self._side = None if exercise.sides == "both" else side
        self._buffer: list[SegmentFrame] = []
        self._prev: dict[str, FloatArray] = {}
        self._prev_t = math.nan
        self._run_t: float | None = None
        self._t0: float | None = None  # first sample with the pelvis facing as in the start posture
        self._facing = np.zeros(0, dtype=bool)
        self.offsets_: dict[str, float] | None = None
        self.yaw_: dict[str, float] = dict(self.initial_yaw)
        # (time of the alignment window's last sample, yaw corrections from then on), in time order
        self.yaw_ambiguous_: frozenset[str] = frozenset(self.initial_yaw_ambiguous) & frozenset(self.yaw_)
        self._yaw_history: list[tuple[float, dict[str, float], frozenset[str]]] = []
        self.aligned_at_: float | None = None
        self._skip_before = -math.inf
        self._run_used = False
        self._hist: list[SegmentFrame] = []
        self.realigned_ = 0
        self.alignments_: list[float] = []
        self.reps_: list[RepResult] = []
        self._finished = False

    @property
    def measurable(self) -> bool:
        """Whether the worn sensors can count this exercise (its primary angle is available)."""
        return available(self.exercise.primary.angle, set(self.worn), self._side)

    def current(self):
        return None if self._counter is None else self._counter.current()

    def _make_counter(self, aligned: bool) -> None:
        self._counter = ExerciseCounter(
            exercise=self.exercise,
            side=self.side,
            worn=self.worn,
            hold_s=self.hold_s,
            **{"start_level": aligned, **self.counter},
        )

    def update(self, chunk: SegmentFrame) -> list[RepResult]:
        if self._finished:
            raise RuntimeError("update() after finish()")
        if len(chunk) == 0:
            return []
        self._mark_steps(chunk)
        self._held += self._update(chunk)
        return self._judged(final=False)

    def _update(self, chunk: SegmentFrame) -> list[RepResult]:
        if self.offsets_ is not None and not (self.realign and self.aligned_at_ is not None):
            return self._feed(chunk)
        good = self._good(chunk)  # once per chunk: the stillness test keeps state across samples
        if self.offsets_ is not None:
            return self._realign_loop(chunk, good, 0)
        if self._t0 is None:  # the patient has not yet turned to the start posture: nothing to keep
            facing = np.flatnonzero(self._facing)
            if len(facing) == 0:
                return []
            f = int(facing[0])
            self._t0 = float(chunk.t[f])
            chunk, good = chunk.slice(f, len(chunk)), good[f:]
        j = self._find_alignment(chunk, good)
        if j is None:
            self._buffer.append(chunk)
            return []
        if self.offsets_ is None:  # no alignment within max_wait_s: the sample j decided it
            self._buffer.append(chunk.slice(0, j + 1))
            self.offsets_ = dict(self.initial_offsets)
            self.aligned_at_ = None
            return self._release() + self._feed(chunk.slice(j + 1, len(chunk)))
        self._buffer.append(chunk.slice(int(np.searchsorted(chunk.t, self._skip_before)), j + 1))
        out = self._release()
        if self.realign:
            return out + self._realign_loop(chunk, good, j + 1)
        return out + self._feed(chunk.slice(j + 1, len(chunk)))

    def _realign_loop(self, chunk: SegmentFrame, good: np.ndarray, start: int) -> list[RepResult]:
        """Feed ``chunk[start:]``, aligning again at each new still run in the start posture while resting."""
        out: list[RepResult] = []
        while start < len(chunk):
            i = self._find_run(chunk, good, start)
            if i is None:
                out += self._feed(chunk.slice(start, len(chunk)))
                break
            out += self._feed(chunk.slice(start, i + 1))
            if self._counter is not None and self._counter.rebase():
                first = self.aligned_at_
                self._set_offsets(self._window(self._run_t, float(chunk.t[i])))
                self.aligned_at_ = first  # the first alignment; later ones are counted in realigned_
                self.realigned_ += 1
            start = i + 1
        return out

    def finish(self) -> list[RepResult]:
        if self._finished:
            return []
        out: list[RepResult] = []
        if self.offsets_ is None:
            self.offsets_ = dict(self.initial_offsets)
            out += self._release()
        self._finished = True
        if self._counter is None:
            self._make_counter(False)
        self._held += out + self._counter.finish()
        return self._judged(final=True)

    # -- internals --------------------------------------------------------------------------------------
    def _find_run(self, chunk: SegmentFrame, good: np.ndarray, start: int) -> int | None:
        """Index in ``chunk`` (from ``start``) where a new still run in the start posture reaches ``align_s``
        (once a run)."""
        for i in range(start, len(chunk)):
            g = bool(good[i])
            ti = float(chunk.t[i])
            if not g:
                self._run_t = None
                self._run_used = False
                continue
            if self._run_t is None:
                self._run_t = ti
            if not self._run_used and ti - self._run_t >= self.align_s - 1e-9:
                self._run_used = True
                return i
        return None

    def _window(self, t0: float, t1: float) -> SegmentFrame:
        frame = SegmentFrame.concat(self._hist)
        sel = (frame.t >= t0) & (frame.t <= t1)
        a = int(np.argmax(sel))
        return frame.slice(a, a + int(sel.sum()))

    def _good(self, chunk: SegmentFrame) -> np.ndarray:
        """Per sample: still, pelvis in the start posture's direction, hips at its nominal flexion."""
        qp = chunk.segments.get("pelvis")
        if qp is None:
            self._facing = np.zeros(len(chunk), dtype=bool)
            return self._facing
        still = self._still(chunk)
        w, x, y, z = qp.T
        up = np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1)
        target = _posture_up(self.posture, self._side)
        with np.errstate(invalid="ignore"):
            in_posture = np.arccos(np.clip(up @ target, -1.0, 1.0)) <= self.posture_tolerance_rad
        self._facing = in_posture
        return still & in_posture & self._hips_in_posture(chunk, up)

    def _feed(self, frame: SegmentFrame) -> list[RepResult]:
        if self.realign:
            self._hist.append(frame)
            keep = float(frame.t[-1]) - self.align_s - 1.0 if len(frame) else -math.inf
            while len(self._hist) > 1 and float(self._hist[1].t[0]) <= keep:
                self._hist.pop(0)
        segs = {
            p: (qm.multiply(q, _ry(self.yaw_[p])) if p in self.yaw_ else q)
            for p, q in self._gyro_corrected(frame).items()
        }
        angles = body_angles(frame.t, segs, self.offsets_)
        if self._counter is None:
            self._make_counter(self.aligned_at_ is not None)
        return self._counter.update(angles)

    def _mark_steps(self, chunk: SegmentFrame) -> None:
        """Mark the chunk's samples taken while walking (every chunk in order, before anything is skipped)."""
        if self._stepping is None or chunk.acc_vertical is None:
            return
        self._steps.append((chunk.t, self._stepping.update(chunk.t, chunk.acc_vertical)))
        keep = float(chunk.t[-1]) - self.STEP_MEMORY_S
        while len(self._steps) > 1 and float(self._steps[0][0][-1]) < keep:
            self._steps.pop(0)

    def _judged(self, final: bool) -> list[RepResult]:
        """The held reps and holds whose walking marks are all in (``step_lookahead_s`` past their end; every
        one at the end), without those taken while walking, numbered on; in order, the others held on."""
        out = []
        marked_to = float(self._steps[-1][0][-1]) if self._steps else -math.inf
        while self._held:
            r = self._held[0]
            if self._steps and not final and marked_to < r.t_end + self.step_lookahead_s:
                break
            self._held.pop(0)
            if self._walking(r):
                self.walking_left_out_ += 1
                continue
            self._kept += 1
            out.append(r if r.index == self._kept else replace(r, index=self._kept))
        self.reps_.extend(out)
        return out

    def _walking(self, r: RepResult) -> bool:
        """Whether ``r`` was a walk's steps: the walking mark centred on its onset (the trailing mark
        ``step_lookahead_s`` later), or the marks centred on ``step_share`` of its samples."""
        lag = self.step_lookahead_s
        parts = [(t, m) for t, m in self._steps if len(t) and t[-1] >= r.t_start + lag - 1e-9]
        if not parts:
            return False
        t = np.concatenate([t for t, _ in parts])
        m = np.concatenate([m for _, m in parts])
        inside = m[(t >= r.t_start + lag - 1e-9) & (t <= r.t_end + lag + 1e-9)]
        if not len(inside):
            return False
        return bool(inside[0]) or int(inside.sum()) >= self.step_share * len(inside)

    def _start_tracking(self, win: SegmentFrame) -> None:
        """Restart the gyroscope heading of every segment the still window ``win`` has a gyroscope for: bias
        = the window's mean rate, reference = its last sample (where the offsets were just measured)."""
        self._track = {}
        if not self.gyro_heading or not len(win):
            return
        t_end = float(win.t[-1])
        calm = [(t, g) for t, g in self._calm if len(t)]
        for p, g in win.gyr.items():
            q = win.segments.get(p)
            if q is None:
                continue
            # bias: the mean rate over the calm samples of the last bias_window_s up to the window's end, or
            # over the still window itself when there are fewer than its own samples
            parts = [gg[p][(tt >= t_end - self.bias_window_s) & (tt <= t_end)] for tt, gg in calm if p in gg]
            samples = np.concatenate(parts) if parts else np.zeros((0, 3))
            samples = samples[np.isfinite(samples).all(axis=1)]
            own = g[np.isfinite(g).all(axis=1)]
            if len(samples) < len(own):
                samples = own
            if not len(samples) or not (np.isfinite(q[-1]).all() and np.isfinite(g[-1]).all()):
                continue
            self._track[p] = (samples.mean(axis=0), (t_end, q[-1].copy(), g[-1].copy(), 0.0))

    def _gyro_corrected(self, frame: SegmentFrame) -> dict[str, FloatArray]:
        """The frame's segment quaternions with the heading drift since the last alignment removed where a
        gyroscope is tracked (samples up to the alignment's reference sample are left as they are)."""
        if not self._track:
            return frame.segments
        out = dict(frame.segments)
        for p, (bias, last) in self._track.items():
            g = frame.gyr.get(p)
            q = frame.segments.get(p)
            if g is None or q is None:
                continue
            a = int(np.searchsorted(frame.t, last[0], side="right"))
            if a >= len(frame):
                continue
            drift = gyro_heading_drift(frame.t[a:], q[a:], g[a:], bias, last)
            self._track[p] = (bias, (float(frame.t[-1]), q[-1].copy(), g[-1].copy(), float(drift[-1])))
            fixed = q.copy()
            fixed[a:] = qm.multiply(qm.from_axis_angle([0.0, 0.0, 1.0], -drift), q[a:])
            out[p] = fixed
        return out

    def _release(self) -> list[RepResult]:
        frame = SegmentFrame.concat(self._buffer)
        self._buffer = []
        return self._feed(frame) if len(frame) else []

    def _still(self, chunk: SegmentFrame) -> np.ndarray:
        """Per sample: every segment turned slower than ``still_rad_s`` since the previous sample. Samples
        where every segment turned slower than ``bias_still_rad_s`` keep their gyroscope values for the bias
        (those of the last ``bias_window_s``)."""
        prev_t = self._prev_t
        dt = np.diff(np.concatenate([[prev_t], chunk.t]))
        ok = np.ones(len(chunk), dtype=bool)
        calm = np.ones(len(chunk), dtype=bool)
        for p, q in chunk.segments.items():
            prev = self._prev.get(p, np.full(4, np.nan))
            before = np.concatenate([prev[None, :], q[:-1]])
            with np.errstate(invalid="ignore", divide="ignore"):
                rate = qm.angle_between(q, before) / dt
                ok &= rate < self.still_rad_s
                calm &= rate < self.bias_still_rad_s
            self._prev[p] = q[-1].copy()
        self._prev_t = float(chunk.t[-1])
        if self.gyro_heading and chunk.gyr:
            # older than the window before the previous chunk's end: never needed again, whatever the chunking
            while self._calm and self._calm[0][0][-1] < prev_t - self.bias_window_s:
                self._calm.pop(0)
            if calm.any():
                self._calm.append((chunk.t[calm], {p: g[calm] for p, g in chunk.gyr.items()}))
        return ok

    def _find_alignment(self, chunk: SegmentFrame, good: np.ndarray) -> int | None:
        """Index in ``chunk`` where the still run in the posture has lasted ``align_s`` (sets the offsets), or
        where ``max_wait_s`` ran out without it (offsets left unset); None when neither happened."""
        for i, g in enumerate(good.tolist()):
            ti = float(chunk.t[i])
            if self._t0 is not None and ti - self._t0 >= self.max_wait_s:
                return i  # gave up at this sample (offsets_ stays None: the caller falls back)
            if not g:
                self._run_t = None
                continue
            if self._run_t is None:
                self._run_t = ti
            if ti - self._run_t >= self.align_s - 1e-9:
                frame = SegmentFrame.concat([*self._buffer, chunk])
                sel = (frame.t >= self._run_t) & (frame.t <= ti)
                a = int(np.argmax(sel))
                self._set_offsets(frame.slice(a, a + int(sel.sum())))
                # the counter starts in the start posture: what came before is the way into it
                self._buffer = (
                    [frame.slice(a, len(frame) - len(chunk))] if a < len(frame) - len(chunk) else []
                )
                self._skip_before = self._run_t
                self._run_used = True
                return i
        return None

    def _hips_in_posture(self, chunk: SegmentFrame, up: FloatArray) -> np.ndarray:
        """Heading-free sagittal hip flexion within ``hip_tolerance_rad`` of the posture's nominal values
        (not tested lying on the side, where the sagittal angle is not defined). For one side of a posture
        whose legs differ (working and other leg at different nominal flexion), the hips must also be closer
        to this side's nominal values than to the other side's: the same posture for the other side (the
        previous set, often) is not this one's start."""
        ok = np.ones(len(chunk), dtype=bool)
        if self.posture.side_sign:
            return ok
        th_p = sagittal_inclination(chunk.segments["pelvis"])
        this = np.zeros(len(chunk))
        mirrored = np.zeros(len(chunk))
        for leg in SIDES:
            q = chunk.segments.get(f"thigh_{leg}")
            if q is None:
                continue
            working = self._side is None or leg == self._side
            nominal = self.posture.hip_flexion if working else self.posture.other_hip_flexion
            swapped = self.posture.other_hip_flexion if working else self.posture.hip_flexion
            with np.errstate(invalid="ignore"):
                flex = sagittal_inclination(q) - th_p
                ok &= np.abs(flex - nominal) <= self.hip_tolerance_rad
                this += np.abs(flex - nominal)
                mirrored += np.abs(flex - swapped)
        if self._side is not None and self.posture.hip_flexion != self.posture.other_hip_flexion:
            with np.errstate(invalid="ignore"):
                ok &= this <= mirrored
        return ok

    def yaw_at(self, t: float) -> dict[str, float]:
        """The yaw corrections (rad, per segment) in force at time ``t`` (s): those of the last alignment
        whose still window ended at or before ``t`` (``initial_yaw`` before the first). Unlike ``yaw_``,
        which holds every alignment fed so far, this does not depend on how far past ``t`` the block was
        fed."""
        yaw = self.initial_yaw
        for t_end, y, _ in self._yaw_history:
            if t_end > t:
                break
            yaw = y
        return dict(yaw)

    def yaw_ambiguous_at(self, t: float) -> frozenset[str]:
        """The segments whose yaw correction in force at time ``t`` (s, as :meth:`yaw_at`) was found where
        gravity could not tell it from ab/adduction (``yaw_ambiguity_limit``)."""
        amb = frozenset(self.initial_yaw_ambiguous) & frozenset(self.initial_yaw)
        for t_end, _, a in self._yaw_history:
            if t_end > t:
                break
            amb = a
        return amb

    def _set_offsets(self, win: SegmentFrame) -> None:
        """Yaw corrections of each segment about its own long axis (where gravity shows them), then heading
        offsets of every segment relative to the pelvis, from a still window in the start posture (and the
        gyroscope heading restarted there)."""
        self._start_tracking(win)
        g0 = _posture_up(self.posture, self._side)
        nominal_rel = {}
        yaw: dict[str, float] = dict(self.initial_yaw)
        ambiguous_yaw = set(self.initial_yaw_ambiguous) & set(yaw)
        resolved: set[str] = set()
        for p, q in win.segments.items():
            if p == "pelvis":
                target = g0
            elif p.startswith("thigh_"):
                leg = p.removeprefix("thigh_")
                working = self._side is None or leg == self._side
                flex = self.posture.hip_flexion if working else self.posture.other_hip_flexion
                nominal_rel[p] = flex
                target = qm.rotate(qm.conjugate(qm.from_axis_angle([0.0, 0.0, 1.0], flex)), g0)
            else:
                continue
            c = _yaw_correction(q, target, self.min_yaw_observability)
            if c is None:
                continue
            # a thigh whose long axis is inclined (lying on the back with the knees bent): gravity shows its
            # rotation on the femur only summed with the ab/adduction left in its frame by the standing
            # calibration (feet apart); a correction found where the long axis was near horizontal is kept
            ambiguous = p.startswith("thigh_") and abs(float(target[1])) > self.yaw_ambiguity_limit
            if ambiguous and p in yaw and p not in ambiguous_yaw:
                resolved.add(p)  # gravity then shows the ab/adduction instead (see below)
                continue
            yaw[p] = c
            if ambiguous:
                ambiguous_yaw.add(p)
            else:
                ambiguous_yaw.discard(p)
        self.yaw_ = yaw
        self.yaw_ambiguous_ = frozenset(ambiguous_yaw)
        self._yaw_history.append((float(win.t[-1]), yaw, self.yaw_ambiguous_))
        win = SegmentFrame(
            win.t, {p: (qm.multiply(q, _ry(yaw[p])) if p in yaw else q) for p, q in win.segments.items()}
        )
        qp = win.segments["pelvis"]
        offsets = {}
        for p, q in win.segments.items():
            if p == "pelvis":
                continue
            if p.startswith("thigh_"):
                leg = p.removeprefix("thigh_")
                working = self._side is None or leg == self._side
                nominal = self.posture.hip_flexion if working else self.posture.other_hip_flexion
                ref = posture_reference(qp, q, leg, nominal)
                if p in resolved:
                    # the thigh's rotation on the femur is known: gravity shows its ab/adduction here
                    hip = _hip_from_gravity(qp, q, leg)
                    if hip is not None:
                        ref = hip_rotation_quat(hip[0], hip[1], 0.0, leg)
            else:
                ref = qm.from_axis_angle([0.0, 0.0, 1.0], sagittal_inclination(q) - sagittal_inclination(qp))
            d = heading_offset(qp, q, ref)
            offsets[p] = d if math.isfinite(d) else self.initial_offsets.get(p, 0.0)
        self.offsets_ = offsets
        self.aligned_at_ = float(win.t[-1])
        self.alignments_.append(self.aligned_at_)


@dataclass
class ProgrammeItem:
    """One exercise of a programme on one side (None: both legs), with its dose for that side."""

    exercise: str
    side: str | None = None
    reps: int | None = None  # None: the catalogue dose
    holds: int | None = None
    hold_s: float | None = None

    def target(self, ex: Exercise) -> int:
        if ex.kind == "hold":
            return self.holds or ex.dose.holds
        return self.reps or ex.dose.reps


@dataclass
class ProgrammeEvent:
    """Something the live view shows or says: ``announce``, ``rep``, ``hold``, ``cue``, ``item_done``,
    ``not_measurable``, ``programme_done`` (``t`` in s on the session timeline; ``result`` for reps and
    holds).

    Events of a programme item also carry its prescription, so that results can be reported against it
    without the programme: ``exercise``, ``side`` (None: both legs), ``prescribed`` (reps or holds to count
    in this item), ``hold_s`` (seconds per hold, or of the final hold of a reps-with-hold exercise; None for
    plain reps), ``counted`` (reps or holds of this item counted so far, this event included).
    """

    t: float
    kind: str
    text: str
    item: int
    result: RepResult | None = None
    exercise: str | None = None
    side: str | None = None
    prescribed: int | None = None
    hold_s: float | None = None
    counted: int = 0


def item_text(ex: Exercise, item: ProgrammeItem) -> str:
    """A programme item as the patient hears it: the exercise, its side and its dose
    ("Lift, left side, 3 holds of 20 seconds")."""
    side = f", {item.side} side" if item.side else ""
    n = item.target(ex)
    if ex.kind == "hold":
        hold_s = item.hold_s or ex.dose.hold_s
        dose = f"{n} hold{'s' if n != 1 else ''} of {hold_s:.0f} seconds"
    else:
        dose = f"{n} rep{'s' if n != 1 else ''}"
        if ex.kind == "reps_hold":
            dose += f", hold the last one for {(item.hold_s or ex.dose.final_hold_s):.0f} seconds"
    return f"{ex.title}{side}, {dose}"


def announcement(ex: Exercise, item: ProgrammeItem) -> str:
    return f"Next: {item_text(ex, item)}."


def programme_text(items: list[ProgrammeItem], catalogue: Catalogue | None = None) -> str:
    """The whole programme in one sentence, said when a session starts: its items in order, each announced
    again when it is due ("Exercise programme: 1. Glute bridge, 3 reps; 2. ... Each is announced when it is
    next.")."""
    cat = catalogue or load_catalogue()
    if not items:
        return "Exercise programme: no exercises."
    listed = "; ".join(f"{i}. {item_text(cat[it.exercise], it)}" for i, it in enumerate(items, 1))
    return f"Exercise programme: {listed}. Each is announced when it is next."


def result_text(r: RepResult, counted: int, target: int) -> str:
    """What the patient hears after a rep or hold: counted or not, and where the set stands (``counted``
    reps or holds of ``target`` so far, this one included)."""
    word = "hold" if r.kind == "hold" else "rep"
    held = f", held {r.hold_s:.0f} seconds" if r.kind == "hold" else ""
    if r.counted:
        return f"{word.capitalize()} {counted} of {target} counted{held}."
    return f"That {word} did not count{held}: {counted} of {target} so far."


class ProgrammeRunner(Block[SegmentFrame, list[ProgrammeEvent]]):
    """Guides a programme (module docstring); ``events_``: all events; ``results_[i]``: reps/holds of item i.

    :param programme: the items in order. :param worn: placements worn.
    :param initial_offsets: heading offsets from the standing calibration (:func:`calibration_offsets`).
    :param catalogue: exercise catalogue (None: the shipped one).
    :param block: further keyword arguments of :class:`ExerciseBlock`.
    """

    def __init__(
        self,
        *,
        programme: list[ProgrammeItem],
        worn: frozenset[str] = frozenset({"pelvis", "thigh_left", "thigh_right", "lumbar_upper"}),
        initial_offsets: dict[str, float] | None = None,
        catalogue: Catalogue | None = None,
        block: dict | None = None,
    ) -> None:
        self.programme = list(programme)
        self.worn = frozenset(worn)
        self.initial_offsets = dict(initial_offsets or {})
        self.catalogue = catalogue
        self.block = dict(block or {})
        self._cat = catalogue or load_catalogue()
        for it in self.programme:
            self._cat[it.exercise]  # unknown names fail here, with the known ones listed
        self.index_ = -1
        self.events_: list[ProgrammeEvent] = []
        self.results_: list[list[RepResult]] = [[] for _ in self.programme]
        self.done_ = False
        self._block: ExerciseBlock | None = None
        self._recent: list[SegmentFrame] = []
        self._block_prev: ExerciseBlock | None = None
        self._finished = False

    @property
    def current_item(self) -> ProgrammeItem | None:
        return self.programme[self.index_] if 0 <= self.index_ < len(self.programme) else None

    def counted(self, i: int | None = None) -> int:
        i = self.index_ if i is None else i
        return sum(1 for r in self.results_[i] if r.counted) if 0 <= i < len(self.programme) else 0

    def update(self, chunk: SegmentFrame) -> list[ProgrammeEvent]:
        if self._finished:
            raise RuntimeError("update() after finish()")
        out: list[ProgrammeEvent] = []
        if len(chunk) == 0:
            return out
        if self.index_ < 0:
            self._next(float(chunk.t[0]), out)
        self._remember(chunk)
        while self._block is not None and len(chunk):
            new = self._block.update(chunk)
            cut = self._results(new, out)
            if cut is None:
                break
            # results can come a little after their end (smoothing, alignment buffer): the next exercise
            # gets every remembered sample after the cut, whatever the chunking
            recent = SegmentFrame.concat(self._recent)
            chunk = recent.slice(int(np.searchsorted(recent.t, cut, side="right")), len(recent))
        self.events_.extend(out)
        return out

    def _remember(self, chunk: SegmentFrame) -> None:
        self._recent.append(chunk)
        keep = float(self.block.get("max_wait_s", 60.0)) + 5.0
        t_end = float(chunk.t[-1])
        while len(self._recent) > 1 and float(self._recent[1].t[0]) < t_end - keep:
            self._recent.pop(0)

    def finish(self) -> list[ProgrammeEvent]:
        if self._finished:
            return []
        self._finished = True
        out: list[ProgrammeEvent] = []
        if self._block is not None:
            self._results(self._block.finish(), out, final=True)
            self._block = None
        self.events_.extend(out)
        return out

    def _results(self, new: list[RepResult], out: list[ProgrammeEvent], final: bool = False) -> float | None:
        """Record results; when the dose is done, move on and return the time after which samples belong to
        the next exercise."""
        i = self.index_
        item = self.programme[i]
        ex = self._cat[item.exercise]
        for r in new:
            self.results_[i].append(r)
            n = self.counted(i)
            out.append(self._event(r.t_end, r.kind, result_text(r, n, item.target(ex)), i, r))
            if r.cue:
                out.append(self._event(r.t_end, "cue", r.cue, i, r))
            if n >= item.target(ex) and not final:
                out.append(self._event(r.t_end, "item_done", f"{ex.title} done.", i))
                self._next(r.t_end, out)
                return r.t_end
        return None

    def _event(
        self, t: float, kind: str, text: str, i: int, result: RepResult | None = None
    ) -> ProgrammeEvent:
        """An event of item ``i``, carrying the item's prescription (:class:`ProgrammeEvent`)."""
        item = self.programme[i]
        ex = self._cat[item.exercise]
        hold_s = item.hold_s or (ex.dose.hold_s if ex.kind == "hold" else ex.dose.final_hold_s)
        return ProgrammeEvent(
            t,
            kind,
            text,
            i,
            result,
            exercise=ex.name,
            side=item.side,
            prescribed=item.target(ex),
            hold_s=float(hold_s) if ex.kind != "reps" and hold_s else None,
            counted=self.counted(i),
        )

    def _next(self, t: float, out: list[ProgrammeEvent]) -> None:
        if self._block is not None:
            self._block_prev = self._block
        self._block = None
        while True:
            self.index_ += 1
            if self.index_ >= len(self.programme):
                self.done_ = True
                out.append(ProgrammeEvent(t, "programme_done", "Programme done. Well done!", self.index_))
                return
            item = self.programme[self.index_]
            ex = self._cat[item.exercise]
            prev = self._block_prev
            block = ExerciseBlock(
                exercise=ex,
                side=item.side,
                posture=self._cat.postures[ex.start_posture],
                worn=self.worn,
                hold_s=item.hold_s,
                initial_offsets=self.initial_offsets,
                # the previous block's corrections at the cut, not those of alignments it found in the
                # samples after it (how many it was fed past the cut depends on the chunking)
                initial_yaw=None if prev is None else prev.yaw_at(t),
                initial_yaw_ambiguous=frozenset() if prev is None else prev.yaw_ambiguous_at(t),
                **self.block,
            )
            if not block.measurable:
                out.append(
                    self._event(
                        t,
                        "not_measurable",
                        f"{ex.title} cannot be counted with the sensors worn ({ex.note}); skipped.",
                        self.index_,
                    )
                )
                continue
            out.append(self._event(t, "announce", announcement(ex, item), self.index_))
            self._block = block
            return


@dataclass
class ProgrammeSummary:
    """Per item: counted and attempted reps/holds against the dose (for reports)."""

    items: list[dict] = field(default_factory=list)


def summarise(runner: ProgrammeRunner) -> ProgrammeSummary:
    cat = runner._cat
    items = []
    for i, item in enumerate(runner.programme):
        ex = cat[item.exercise]
        res = runner.results_[i]
        items.append(
            {
                "exercise": ex.name,
                "side": item.side,
                "prescribed": item.target(ex),
                "attempted": len(res),
                "counted": sum(1 for r in res if r.counted),
                "cues": [r.cue for r in res if r.cue],
            }
        )
    return ProgrammeSummary(items)


def recording_frame(
    recording,
    rate_hz: float = 100.0,
    slip_monitor: bool = False,
    acc_bias: bool = True,
    acc_bias_params: dict[str, dict] | None = None,
    acc_bias_frame: str = "calibration",
) -> tuple[SegmentFrame, dict]:
    """Batch helper: the pipeline's own blocks (sensor channels, grid merge, calibration search and, with
    ``slip_monitor``, the slip monitor) run over a :class:`~hipback.processing.types.Recording`; returns the
    calibrated :class:`SegmentFrame` of the whole recording and the calibration (placement ->
    ``SensorCalibration``; its ``window`` is the standing window).

    The slip monitor is off by default here: in exercise sessions it takes a split or wide stance for a
    slipped thigh sensor and re-measures the thigh's vertical there, which spoils that thigh's calibration.

    Sensors with on-device fusion that also deliver their gyroscope get it in the frame (``gyr``, resampled
    linearly onto the grid, NaN across gaps), so that exercise blocks take the heading between alignments
    from it (:class:`ExerciseBlock`). ``acc_bias`` and ``acc_bias_params`` (placement -> the
    ``AccBiasEstimator``'s keyword arguments) are the sensor channels' (raw devices' accelerometer offset
    estimated in use); as in the session processor, the channels give the filter's own orientation and
    :class:`~hipback.processing.calibration_search.AccOffsetFrame` keeps the calibration posture's frame
    (``acc_bias_frame="calibration"``); ``"first_still"`` instead has each channel keep the frame of its
    stream's first still posture (``acc_bias_keep_frame``, the earlier design, for comparison)."""
    if acc_bias_frame not in ("calibration", "first_still"):
        raise ValueError(f"acc_bias_frame must be 'calibration' or 'first_still', not {acc_bias_frame!r}")
    from hipback.processing.calibration_search import AccOffsetFrame, CalibrationSearch
    from hipback.processing.channel import SensorChannel
    from hipback.processing.merge import GridMerge, Rows
    from hipback.processing.slip import SlipMonitor
    from hipback.processing.types import PLACEMENTS

    placements = tuple(p for p in PLACEMENTS if p in recording.streams)
    merge = GridMerge(placements, rate_hz=rate_hz)
    rows: list[Rows] = []
    channels: list[SensorChannel] = []
    for p in placements:
        s = recording.streams[p]
        ch = SensorChannel(
            p,
            s.kind,
            s.rate_hz,
            grid_rate_hz=rate_hz,
            acc_bias=acc_bias,
            acc_bias_params=(acc_bias_params or {}).get(p),
            acc_bias_keep_frame=acc_bias_frame == "first_still",
        )
        channels.append(ch)
        rows.append(merge.update(ch.update(s)))
        rows.append(merge.update(ch.finish()))
    rows.append(merge.finish())
    gyr = {p: _grid_gyro(recording.streams[p], rate_hz) for p in placements}
    gyr = {p: g for p, g in gyr.items() if g is not None}
    search = CalibrationSearch(placements, rate_hz=rate_hz)
    slip = SlipMonitor(rate_hz=rate_hz)
    frames: list[SegmentFrame] = []
    pieces = []
    for r in rows:
        if len(r):
            pieces += search.update(r)
    pieces += search.finish()

    def frame_of(piece) -> SegmentFrame:
        k = piece.rows.k
        rates = {p: _rows_of(k, *g) for p, g in gyr.items()}
        return segment_frame(k, piece.rows.q, piece.calibration, piece.swap, rate_hz, rates,
                             piece.rows.acc[:, 0])

    offset_frame = AccOffsetFrame(
        {
            c.placement: est
            for c in channels
            if (est := c.acc_bias_estimator_) is not None and acc_bias_frame == "calibration"
        },
        rate_hz,
    )
    for cr in pieces:
        cr = offset_frame.apply(cr)
        for piece in slip.update(cr) if slip_monitor else [cr]:
            if piece.calibration is not None and len(piece.rows):
                frames.append(frame_of(piece))
    for piece in slip.finish() if slip_monitor else []:
        if piece.calibration is not None and len(piece.rows):
            frames.append(frame_of(piece))
    return SegmentFrame.concat(frames), dict(search.calibration_ or {})


def _grid_gyro(stream, rate_hz: float, gap_factor: float = 2.5) -> tuple[int, FloatArray] | None:
    """The gyroscope of an on-device fusion sensor on the grid ``k / rate_hz``: ``(first k, (M, 3) rad/s)``,
    linear between neighbouring samples (strictly increasing finite times), NaN across steps longer than
    ``gap_factor`` sample periods; None for raw sensors (their orientation already comes from the gyroscope)
    or without gyroscope samples."""
    from hipback.processing.resample import GridResampler

    if stream.kind != "quat" or stream.gyr is None or stream.quat is None or len(stream.t) < 2:
        return None
    t = np.asarray(stream.t, dtype=np.float64)
    g = np.asarray(stream.gyr, dtype=np.float64)
    q = np.asarray(stream.quat, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(g).all(axis=1) & np.isfinite(q).all(axis=1)
    t, g, q = t[ok], g[ok], q[ok]
    keep = np.concatenate([[True], np.diff(t) > 0]) if len(t) else np.zeros(0, dtype=bool)
    while len(t) and not keep.all():  # samples not after the previous kept one are dropped
        t, g, q = t[keep], g[keep], q[keep]
        keep = np.concatenate([[True], np.diff(t) > 0])
    if len(t) < 2:
        return None
    res = GridResampler(rate_hz, gap_factor / float(stream.rate_hz))
    k, _, gk = res.push(t, q, g)
    if not len(k) or gk is None:
        return None
    full = np.full((int(k[-1] - k[0]) + 1, 3), np.nan)
    full[k - k[0]] = gk
    return int(k[0]), full


def _rows_of(k: np.ndarray, k0: int, values: FloatArray) -> FloatArray:
    """``values`` (from grid row ``k0`` on) at the grid rows ``k``; NaN outside."""
    idx = np.asarray(k, dtype=np.int64) - k0
    inside = (idx >= 0) & (idx < len(values))
    out = np.full((len(idx), values.shape[1]), np.nan)
    out[inside] = values[idx[inside]]
    return out
