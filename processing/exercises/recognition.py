"""Unguided recognition: which exercise, which side, how many reps or holds, from a recorded session.

Batch, on the calibrated :class:`~hipback.processing.exercises.stream.SegmentFrame` of a whole recording:

1. **Episodes**: the pelvis' up direction is classed per sample (upright, supine, prone, lying on the left or
   right side: the nearest of +Y, +X, -X, -Z, +Z in the pelvis frame; quadruped counts as prone). An episode
   is a span of at least ``min_episode_s`` with one class (the class of each sample smoothed by a majority
   over
   ``smooth_s``), extended by ``overrun_s`` (up to the next episode of that class) for exercises that leave
   their start posture's class.
2. **Candidates**: every catalogue exercise (and side) that the worn sensors can count and whose start posture
   has the episode's class runs as an :class:`~hipback.processing.exercises.stream.ExerciseBlock` over windows
   of ``window_s`` starting at the episode's start and at each still period of at least ``min_rest_s`` in it
   (it aligns in its own start posture and never counts without that alignment; a fresh alignment per window
   keeps the heading drift of on-device fusion from accumulating).
3. **Score** of each rep or hold a candidate found (only those whose movement started in the episode's
class): the distance between the observed angles at the peak (the middle of a hold) and the exercise's
``[signature]``: ``sqrt(mean(((observed - nominal) / scale)^2))`` with ``scale_rad`` (15 deg), plus
``kind_penalty`` when a reps exercise held its peak for at least
   ``hold_as_reps_s`` (or the target was not reached).
4. **Selection**: greedily by distance, each rep or hold not overlapping one already chosen and closer than
   ``max_distance``; then each chosen exercise's other reps or holds within ``reclaim_gap_s`` of its chosen
   ones (closer than ``reclaim_distance``: a faulty rep looks less like the signature); consecutive chosen
   ones of the same exercise and side form a set.

What it returns is a reading of the recording for the clinician's review, not a certainty: each set carries
its mean distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hipback.processing.angles3d import body_angles
from hipback.processing.exercises.catalogue import Catalogue, load_catalogue
from hipback.processing.exercises.engine import RepResult
from hipback.processing.exercises.signals import available, signal
from hipback.processing.exercises.stream import ExerciseBlock, SegmentFrame, _ry

CLASSES = {
    "upright": (0, 1, 0),
    "supine": (1, 0, 0),
    "prone": (-1, 0, 0),
    "side_z": (0, 0, 1),
    "side_mz": (0, 0, -1),
}
_NAMES = list(CLASSES)
_DIRS = np.array([CLASSES[k] for k in _NAMES], dtype=float)


@dataclass
class RecognisedSet:
    exercise: str
    side: str | None
    t_start: float
    t_end: float
    count: int
    distance: float
    results: list[RepResult] = field(default_factory=list)


def _up(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.asarray(q).T
    return np.nan_to_num(
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1)
    )


def _class_at(frame: SegmentFrame, t: float) -> str:
    i = int(np.clip(np.searchsorted(frame.t, t), 0, len(frame) - 1))
    return _NAMES[int(_class_of(_up(frame.segments["pelvis"][i : i + 1]))[0])]


def _class_of(up: np.ndarray) -> np.ndarray:
    return np.argmax(up @ _DIRS.T, axis=1)


def _posture_class(cat: Catalogue, posture: str, side: str | None) -> str:
    up = np.array(cat.postures[posture].pelvis_up)
    if cat.postures[posture].side_sign and side == "left":
        up[2] = -up[2]
    return _NAMES[int(np.argmax(_DIRS @ up))]


def episodes(
    frame: SegmentFrame, smooth_s: float = 2.0, min_episode_s: float = 5.0
) -> list[tuple[str, int, int]]:
    """(class name, start index, stop index) of the spans with one pelvis posture class."""
    q = frame.segments["pelvis"]
    w, x, y, z = q.T
    up = np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1)
    cls = _class_of(np.nan_to_num(up))
    dt = float(np.median(np.diff(frame.t))) if len(frame) > 1 else 0.01
    k = max(1, int(round(smooth_s / dt)))
    onehot = np.eye(len(_NAMES))[cls]
    c = np.cumsum(np.vstack([np.zeros((1, len(_NAMES))), onehot]), axis=0)
    lo = np.clip(np.arange(len(cls)) - k // 2, 0, len(cls))
    hi = np.clip(np.arange(len(cls)) + k // 2 + 1, 0, len(cls))
    sm = np.argmax(c[hi] - c[lo], axis=1)
    out = []
    start = 0
    for i in range(1, len(sm) + 1):
        if i == len(sm) or sm[i] != sm[start]:
            if (i - start) * dt >= min_episode_s:
                out.append((_NAMES[int(sm[start])], start, i))
            start = i
    return out


def _rest_starts(frame: SegmentFrame, still_rad_s: float, min_rest_s: float) -> list[int]:
    """Indices where a still period (every segment slower than ``still_rad_s``) of ``min_rest_s`` begins."""
    from hipback.processing import quaternion as qm

    dt = np.diff(frame.t)
    ok = np.ones(len(frame) - 1, dtype=bool)
    for q in frame.segments.values():
        with np.errstate(invalid="ignore", divide="ignore"):
            ok &= qm.angle_between(q[1:], q[:-1]) / dt < still_rad_s
    d = np.diff(np.concatenate([[0], ok.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    keep = (frame.t[np.minimum(stops, len(frame) - 1)] - frame.t[starts]) >= min_rest_s
    return [int(x) for x in starts[keep]]


def _observed(block: ExerciseBlock, frame: SegmentFrame, t: float, keys: list[str], side) -> dict[str, float]:
    i = int(np.clip(np.searchsorted(frame.t, t), 0, len(frame) - 1))
    one = frame.slice(i, i + 1)
    segs = {p: (q if p not in block.yaw_ else _q_yaw(q, block.yaw_[p])) for p, q in one.segments.items()}
    ang = body_angles(one.t, segs, block.offsets_ or {})
    return {k: float(signal(ang, k, side)[0]) for k in keys}


def _q_yaw(q: np.ndarray, c: float) -> np.ndarray:
    from hipback.processing import quaternion as qm

    return qm.multiply(q, _ry(c))


def _candidates(
    ep, cls, cat, names, worn, initial_offsets, scale_rad, kind_penalty, hold_as_reps_s, out
) -> None:
    """Run every candidate exercise of class ``cls`` over the window ``ep``; appends to ``out``
    (distance, rep or hold, exercise, side)."""
    for name in names:
        ex = cat[name]
        for side in ("left", "right") if ex.sides == "each" else (None,):
            if _posture_class(cat, ex.start_posture, side) != cls:
                continue
            if not available(ex.primary.angle, set(worn), side):
                continue
            block = ExerciseBlock(
                exercise=ex,
                side=side,
                posture=cat.postures[ex.start_posture],
                worn=worn,
                initial_offsets=initial_offsets,
                max_wait_s=math.inf,
            )
            block.update(ep)
            block.finish()
            keys = [k for k in ex.signature if available(k, set(worn), side)]
            for r in block.reps_:
                if _class_at(ep, r.t_onset) != cls or (ex.kind != "hold" and _class_at(ep, r.t_peak) != cls):
                    continue  # did not start (a rep: did not peak) in this exercise's posture
                t_obs = 0.5 * (r.t_start + r.t_end) if r.kind == "hold" else r.t_peak
                obs = _observed(block, ep, t_obs, keys, None if ex.sides == "both" else side)
                d2 = [((obs[k] - ex.signature[k]) / scale_rad) ** 2 for k in keys if math.isfinite(obs[k])]
                dist = math.sqrt(sum(d2) / len(d2)) if d2 else 1.0
                if ex.kind == "reps" and r.hold_s >= hold_as_reps_s:
                    dist += kind_penalty
                if not r.target_met:
                    dist += 0.5 * kind_penalty
                out.append((dist, r, name, None if ex.sides == "both" else side))


def recognise(
    frame: SegmentFrame,
    *,
    worn: frozenset[str],
    initial_offsets: dict[str, float] | None = None,
    catalogue: Catalogue | None = None,
    decimate: int = 2,
    scale_rad: float = math.radians(15.0),
    kind_penalty: float = 1.0,
    hold_as_reps_s: float = 3.0,
    max_distance: float = 1.0,
    overrun_s: float = 40.0,
    window_s: float = 60.0,
    still_rad_s: float = 0.1,
    min_rest_s: float = 2.0,
    reclaim_distance: float = 3.0,
    reclaim_gap_s: float = 8.0,
    exercises: list[str] | None = None,
) -> list[RecognisedSet]:
    """Recognise the exercise sets of a recording (module docstring); sets in time order."""
    cat = catalogue or load_catalogue()
    if decimate > 1:
        frame = SegmentFrame(frame.t[::decimate], {p: q[::decimate] for p, q in frame.segments.items()})
    candidates: list[tuple[float, RepResult, str, str | None]] = []
    names = exercises or sorted(cat.exercises)
    eps = episodes(frame)
    rests = _rest_starts(frame, still_rad_s, min_rest_s)
    for i, (cls, a, b) in enumerate(eps):
        # an exercise may leave its start posture's class (a forward fold ends facing down): the candidates
        # also see ``overrun_s`` beyond the episode, up to the next episode of the same class
        nxt = next((e[1] for e in eps[i + 1 :] if e[0] == cls), len(frame))
        b = min(nxt, int(np.searchsorted(frame.t, frame.t[b - 1] + overrun_s)))
        # one window from each rest (still period) of the episode: each run aligns afresh, so heading drift
        # of the devices between sets does not accumulate
        starts = [a] + [int(r) for r in rests if a < r < b]
        for w0 in starts:
            w1 = min(b, int(np.searchsorted(frame.t, frame.t[w0] + window_s)))
            ep = frame.slice(max(a, w0 - 1), w1)
            if len(ep) < 2:
                continue
            _candidates(
                ep,
                cls,
                cat,
                names,
                worn,
                initial_offsets,
                scale_rad,
                kind_penalty,
                hold_as_reps_s,
                candidates,
            )
    candidates.sort(key=lambda c: c[0])
    chosen: list[tuple[float, RepResult, str, str | None]] = []
    for c in candidates:
        if c[0] > max_distance:
            break
        r = c[1]
        if any(r.t_start <= o[1].t_end and o[1].t_start <= r.t_end for o in chosen):
            continue
        chosen.append(c)
    # a rep done with a fault looks less like the exercise's signature: once a set is recognised, the same
    # candidate's other reps or holds next to it (within ``reclaim_gap_s``, not overlapping a chosen one,
    # closer than ``reclaim_distance``) belong to it too
    chosen.sort(key=lambda c: c[1].t_start)
    changed = True
    while changed:
        changed = False
        keys = {(c[2], c[3]) for c in chosen}
        for c in candidates:
            if (c[2], c[3]) not in keys or c[0] > reclaim_distance or any(c[1] is o[1] for o in chosen):
                continue
            r = c[1]
            if any(r.t_start <= o[1].t_end and o[1].t_start <= r.t_end for o in chosen):
                continue
            same = [o for o in chosen if (o[2], o[3]) == (c[2], c[3])]
            if any(
                abs(r.t_start - o[1].t_end) <= reclaim_gap_s or abs(o[1].t_start - r.t_end) <= reclaim_gap_s
                for o in same
            ):
                chosen.append(c)
                changed = True
        chosen.sort(key=lambda c: c[1].t_start)
    sets: list[RecognisedSet] = []
    for dist, r, name, side in chosen:
        if sets and sets[-1].exercise == name and sets[-1].side == side:
            s = sets[-1]
            s.results.append(r)
            s.count += 1
            s.t_end = r.t_end
            s.distance += (dist - s.distance) / s.count
        else:
            sets.append(RecognisedSet(name, side, r.t_start, r.t_end, 1, dist, [r]))
    return sets
