"""Scripted sessions: a scenario is a list of steps (postures, walks, stretch holds).

Transitions between different postures are inserted by the simulator (minimum-jerk, durations in
:data:`TRANSITION_S`), so a scenario only lists what the patient is asked to do. Every builder takes
keyword arguments for its timing, so tests can make short sessions: ``build_scenario("clinic_visit",
walk_s=20, hold_s=8)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

StepKind = Literal["stand", "walk", "sit", "lie", "kneel", "hold"]

#: Seconds of the automatic transition between postures (pose classes, see :func:`pose_class`).
TRANSITION_S: dict[tuple[str, str], float] = {
    ("stand", "kneel"): 3.0,
    ("kneel", "stand"): 3.0,
    ("kneel", "kneel"): 3.0,  # switching the kneeling leg
    ("stand", "sit"): 2.5,
    ("sit", "stand"): 2.5,
    ("sit", "lie"): 3.0,
    ("lie", "sit"): 3.0,
}
DEFAULT_TRANSITION_S = 3.0


@dataclass
class Step:
    """One scripted activity.

    ``kind``: ``stand`` (still), ``walk`` (with U-turns every ``corridor_m``), ``sit``, ``lie`` (supine),
    ``kneel`` (half-kneeling rest, ``side`` = the leg whose knee is on the ground), ``hold`` (kneeling
    hip-flexor stretch of ``side``: shift forward, hold ``duration_s``, shift back; ``arching`` = the
    patient arches the back during the hold).
    """

    kind: StepKind
    duration_s: float
    side: str | None = None
    arching: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("stand", "walk", "sit", "lie", "kneel", "hold"):
            raise ValueError(f"unknown step kind {self.kind!r}")
        if self.kind in ("kneel", "hold") and self.side not in ("left", "right"):
            raise ValueError(f"a {self.kind} step needs side 'left' or 'right'")
        if self.duration_s <= 0:
            raise ValueError(f"step {self.kind} needs a positive duration")
        if self.kind == "walk" and self.duration_s < 4.0:
            raise ValueError("a walk step needs at least 4 s (gait starts and stops smoothly)")


def pose_class(step: Step) -> tuple[str, str | None]:
    """Steps with the same pose class join without a transition (walks start and end standing; a hold
    starts and ends in the kneeling pose of its side)."""
    if step.kind in ("stand", "walk"):
        return ("stand", None)
    if step.kind in ("kneel", "hold"):
        return ("kneel", step.side)
    return (step.kind, None)


@dataclass
class Scenario:
    """A named list of steps; the first step should be ``stand`` (the calibration)."""

    name: str
    steps: list[Step]
    description: str = ""

    @property
    def scripted_duration_s(self) -> float:
        """Sum of the step durations (transitions and hold shifts come on top)."""
        return sum(s.duration_s for s in self.steps)


def _stretch_block(
    holds_per_side: int,
    hold_s: float,
    rest_s: float,
    arching: tuple[tuple[str, int], ...],
    sides=("left", "right"),
) -> list[Step]:
    steps: list[Step] = []
    for side in sides:
        steps.append(Step("kneel", rest_s, side=side))
        for i in range(holds_per_side):
            steps.append(Step("hold", hold_s, side=side, arching=(side, i) in arching))
            steps.append(Step("kneel", rest_s, side=side))
    return steps


def clinic_visit(
    calib_s: float = 10.0,
    walk_s: float = 60.0,
    stand_s: float = 5.0,
    holds_per_side: int = 2,
    hold_s: float = 30.0,
    rest_s: float = 5.0,
    sit_s: float = 30.0,
    lie_s: float = 20.0,
    arching: tuple[tuple[str, int], ...] = (("left", 1), ("right", 0)),
    corridor_m: float = 10.0,
    sit_and_lie: bool = True,
) -> Scenario:
    """``sit_and_lie=False`` ends the visit standing after the stretches (the demo continues with a guided
    exercise programme there, see :func:`hipback.simulator.exercises.simulate_visit`)."""
    steps = [
        Step("stand", calib_s),
        Step("walk", walk_s, options={"corridor_m": corridor_m}),
        Step("stand", stand_s),
    ]
    steps += _stretch_block(holds_per_side, hold_s, rest_s, arching)
    steps.append(Step("stand", stand_s))
    if sit_and_lie:
        steps += [
            Step("sit", sit_s),
            Step("lie", lie_s),
            Step("sit", 3.0),
            Step("stand", stand_s),
        ]
    return Scenario("clinic_visit", steps, SCENARIOS["clinic_visit"])


def walk(
    calib_s: float = 10.0, walk_s: float = 120.0, stand_s: float = 5.0, corridor_m: float = 20.0
) -> Scenario:
    steps = [
        Step("stand", calib_s),
        Step("walk", walk_s, options={"corridor_m": corridor_m}),
        Step("stand", stand_s),
    ]
    return Scenario("walk", steps, SCENARIOS["walk"])


def stretch(
    calib_s: float = 10.0,
    holds_per_side: int = 3,
    hold_s: float = 30.0,
    rest_s: float = 5.0,
    stand_s: float = 5.0,
    arching: tuple[tuple[str, int], ...] = (("left", 2), ("right", 1)),
) -> Scenario:
    steps = [Step("stand", calib_s)]
    steps += _stretch_block(holds_per_side, hold_s, rest_s, arching)
    steps.append(Step("stand", stand_s))
    return Scenario("stretch", steps, SCENARIOS["stretch"])


def short(
    calib_s: float = 6.0,
    walk_s: float = 10.0,
    stand_s: float = 2.0,
    hold_s: float = 5.0,
    rest_s: float = 1.0,
    arching: tuple[tuple[str, int], ...] = (("right", 0),),
) -> Scenario:
    steps = [Step("stand", calib_s), Step("walk", walk_s), Step("stand", stand_s)]
    steps += _stretch_block(1, hold_s, rest_s, arching)
    steps.append(Step("stand", stand_s))
    return Scenario("short", steps, SCENARIOS["short"])


def day(
    calib_s: float = 10.0,
    walk_s: float = 90.0,
    sit_s: float = 75.0,
    lie_s: float = 60.0,
    hold_s: float = 30.0,
    stand_s: float = 8.0,
) -> Scenario:
    steps = [
        Step("stand", calib_s),
        Step("walk", walk_s, options={"corridor_m": 25.0}),
        Step("stand", stand_s),
        Step("sit", sit_s),
        Step("stand", stand_s),
        Step("walk", walk_s * 0.7, options={"corridor_m": 15.0}),
        Step("stand", stand_s),
    ]
    steps += _stretch_block(2, hold_s, 5.0, (("left", 1), ("right", 1)))
    steps += [
        Step("stand", stand_s),
        Step("sit", sit_s * 0.8),
        Step("lie", lie_s),
        Step("sit", 5.0),
        Step("stand", stand_s),
        Step("walk", walk_s, options={"corridor_m": 40.0}),
        Step("stand", stand_s),
    ]
    return Scenario("day", steps, SCENARIOS["day"])


def exercises(calib_s: float = 10.0, walk_s: float = 10.0, stand_s: float = 4.0) -> Scenario:
    """The scripted start of the ``exercises`` scenario (calibration, a short walk for the thighs' functional
    calibration); the exercises themselves are simulated by :mod:`hipback.simulator.exercises`, to which
    :func:`hipback.simulator.simulate` hands this scenario."""
    steps = [Step("stand", calib_s), Step("walk", walk_s), Step("stand", stand_s)]
    return Scenario("exercises", steps, SCENARIOS["exercises"])


#: Scenario name -> one-line description.
SCENARIOS: dict[str, str] = {
    "clinic_visit": "stand 10 s (calibration), walk 60 s with turns, kneeling hip-flexor stretch "
    "2 x 30 s per side (one hold per side arching), stand, sit 30 s, lie 20 s (~5 min)",
    "walk": "stand 10 s (calibration), walk 120 s with turns, stand (~2.3 min)",
    "stretch": "stand 10 s (calibration), kneeling hip-flexor stretch 3 x 30 s per side, "
    "one arching per side (~4 min)",
    "short": "stand 6 s (calibration), walk 10 s, one 5 s stretch hold per side (right one arching) (~50 s)",
    "day": "longer mixed session: walks, sitting, stretching, lying (~11 min)",
    # every catalogue exercise: simulated by hipback.simulator.exercises (simulate() hands it over)
    "exercises": "stand 10 s (calibration), walk 10 s, then every catalogue exercise (both sides where "
    "one-sided), each with a faulty rep or hold (~22 min)",
}

BUILDERS: dict[str, Callable[..., Scenario]] = {
    "clinic_visit": clinic_visit,
    "walk": walk,
    "stretch": stretch,
    "short": short,
    "day": day,
    "exercises": exercises,
}


def build_scenario(name: str, **timing: Any) -> Scenario:
    """The scenario ``name`` with optional timing overrides (keyword arguments of its builder)."""
    if name not in BUILDERS:
        raise KeyError(f"unknown scenario {name!r}; valid names: {', '.join(sorted(BUILDERS))}")
    return BUILDERS[name](**timing)
