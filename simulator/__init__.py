"""Virtual patients and virtual sensors with known ground truth (demo, tests, benchmarks).

Public API::

    from hipback.simulator import (simulate, SimulatedSession, GroundTruth, VirtualPatient, SensorSpec,
                           SCENARIOS, make_cohort)
    s = simulate("clinic_visit", seed=1)          # or simulate("short", walk_s=20), simulate(Scenario(...))
    s.recording   # processing.types.Recording, one SensorStream per SensorSpec (placement keys)
    s.truth       # GroundTruth: segment quaternions, angles, strides, initial contacts, holds, activities
    # a patient as hard as a real one, wearing Movella DOTs with their datasheet errors:
    p = VirtualPatient.realistic(np.random.default_rng(4))
    s = simulate("walk", seed=4, patient=p, sensors=[profile_sensor(x, "movella_dot") for x in placements])
    make_cohort(30, seed=1, realistic=True)       # the benchmark cohort

``simulate()`` with the default ``VirtualPatient()`` and ``default_sensors()`` is the easy patient of the
first simulator (no soft-tissue artefact, a fixed gait curve, an ideal stance), kept for unit tests of
algorithm logic; :mod:`hipback.simulator.soft_tissue`, :mod:`hipback.simulator.device_profiles` and
:meth:`VirtualPatient.realistic` document the realism and its sources.

World frame z up, x = initial walking direction, y left; segment frames ISB (X anterior, Y superior,
Z right). See :mod:`hipback.simulator.body` for the angle definitions and
:mod:`hipback.simulator.sensor_model` for the
sensor model.
"""

from hipback.simulator.body import segment_angles
from hipback.simulator.device_profiles import DEVICE_PROFILES, profile_sensor
from hipback.simulator.patient import VirtualPatient
from hipback.simulator.scenarios import SCENARIOS, Scenario, Step, build_scenario
from hipback.simulator.sensor_model import SensorTruth
from hipback.simulator.sensor_spec import SensorSpec, default_sensors, ideal_sensors
from hipback.simulator.session import SimulatedSession, make_cohort, simulate
from hipback.simulator.truth import GroundTruth, TruthActivity, TruthHold, TruthStride

__all__ = [
    "DEVICE_PROFILES",
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
    "profile_sensor",
    "segment_angles",
    "simulate",
]
