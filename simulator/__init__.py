"""Virtual patients and virtual sensors with known ground truth (demo, tests, benchmarks).

Public API::

    from hipback.simulator import (simulate, SimulatedSession, GroundTruth, VirtualPatient, SensorSpec,
                           SCENARIOS, make_cohort)
    s = simulate("clinic_visit", seed=1)          # or simulate("short", walk_s=20), simulate(Scenario(...))
    s.recording   # processing.types.Recording, one SensorStream per SensorSpec (placement keys)
    s.truth       # GroundTruth: segment quaternions, angles, strides, holds, activities, mounting

World frame z up, x = initial walking direction, y left; segment frames ISB (X anterior, Y superior,
Z right). See :mod:`hipback.simulator.body` for the angle definitions and
:mod:`hipback.simulator.sensor_model` for the
sensor model.
"""

from hipback.simulator.body import segment_angles
from hipback.simulator.patient import VirtualPatient
from hipback.simulator.scenarios import SCENARIOS, Scenario, Step, build_scenario
from hipback.simulator.sensor_model import SensorTruth
from hipback.simulator.sensor_spec import SensorSpec, default_sensors, ideal_sensors
from hipback.simulator.session import SimulatedSession, make_cohort, simulate
from hipback.simulator.truth import GroundTruth, TruthActivity, TruthHold, TruthStride

__all__ = [
    "SCENARIOS",
    "GroundTruth",
    "Scenario",
    "SensorSpec",
    "SensorTruth",
    "SimulatedSession",
    "Step",
    "TruthActivity",
    "TruthHold",
    "TruthStride",
    "VirtualPatient",
    "build_scenario",
    "default_sensors",
    "ideal_sensors",
    "make_cohort",
    "segment_angles",
    "simulate",
]
