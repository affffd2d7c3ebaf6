"""``simulate()``: a virtual patient session with sensor streams and ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hipback.processing.types import Recording
from hipback.simulator import body
from hipback.simulator.motion import contact_sizes, generate
from hipback.simulator.patient import VirtualPatient
from hipback.simulator.scenarios import SCENARIOS, Scenario, build_scenario
from hipback.simulator.sensor_model import (
    SensorTruth,
    draw_mounting,
    make_stream,
    sample_times,
    sensor_signals,
    soft_tissue_wobble,
)
from hipback.simulator.sensor_spec import SensorSpec, default_sensors
from hipback.simulator.soft_tissue import soft_tissue_artefact
from hipback.simulator.truth import GroundTruth, build_truth

#: 2026-01-05T08:00:00Z: a fixed UTC anchor so simulated sessions are reproducible.
DEFAULT_START_UTC = 1767600000.0
SIMULATOR_VERSION = "1"


@dataclass
class SimulatedSession:
    """A simulated recording with its ground truth.

    ``sensor_truth[placement]`` holds the error-free signals of each sensor at its sample times (true
    sensor-to-world quaternion, position, gyr, acc), for consistency tests and orientation benchmarks.
    """

    recording: Recording
    truth: GroundTruth
    scenario: Scenario
    sensor_truth: dict[str, SensorTruth] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return float(self.truth.t[-1])


def simulate(
    scenario: str | Scenario = "clinic_visit",
    seed: int = 1,
    patient: VirtualPatient | None = None,
    sensors: list[SensorSpec] | None = None,
    *,
    truth_rate_hz: float = 100.0,
    fine_rate_hz: float = 500.0,
    start_utc: float | None = DEFAULT_START_UTC,
    **timing: Any,
) -> SimulatedSession:
    """Simulate one session.

    ``scenario``: a name from :data:`SCENARIOS` (``timing`` keyword arguments go to its builder, e.g.
    ``walk_s=20``) or a :class:`Scenario`. ``patient`` defaults to ``VirtualPatient()``; ``sensors`` to one
    raw 100 Hz sensor per placement (see :func:`default_sensors`). Everything random comes from ``seed``
    (motion and each sensor draw from their own streams, so adding a sensor leaves the others unchanged).
    """
    if scenario == "exercises":  # the virtual patient doing the exercise catalogue (own motion and truth)
        from hipback.simulator.exercises import simulate_scenario

        return simulate_scenario(seed, patient, sensors, **timing)  # type: ignore[return-value]
    if isinstance(scenario, str):
        if scenario not in SCENARIOS:
            raise KeyError(f"unknown scenario {scenario!r}; valid names: {', '.join(sorted(SCENARIOS))}")
        scen = build_scenario(scenario, **timing)
    else:
        if timing:
            raise TypeError("timing keywords only apply to a scenario given by name")
        scen = scenario
    patient = patient or VirtualPatient()
    sensors = list(sensors) if sensors is not None else default_sensors()
    placements = [s.placement for s in sensors]
    if len(set(placements)) != len(placements):
        raise ValueError(f"one sensor per placement, got {placements}")

    motion = generate(scen, patient, np.random.default_rng([seed, 0]), dt=1.0 / fine_rate_hz)
    dt = motion.t[1] - motion.t[0]
    quats = body.segment_quats(motion.ch)
    origins = body.segment_origins(motion.ch, quats, patient)
    duration = float(motion.t[-1])

    streams = {}
    sensor_truth = {}
    mounting = {}
    sensor_errors: dict[str, dict] = {}
    omega_cache: dict[str, np.ndarray] = {}
    sizes = contact_sizes(motion.phase, seed, motion.left_offset)  # one heel strike shakes every sensor
    for k, spec in enumerate(sensors):
        rng = np.random.default_rng([seed, 1, k])
        seg = spec.segment
        if seg not in omega_cache:
            omega_cache[seg] = body.angular_velocity(quats[seg], dt)
        mount = draw_mounting(spec, rng)
        t = sample_times(spec, duration, rng)
        wobble = soft_tissue_wobble(
            spec,
            motion.t,
            motion.phase,
            motion.envelope,
            1.0 / patient.stride_time_s,
            rng,
            left_offset=motion.left_offset,
            sizes=sizes,
        )
        sta = soft_tissue_artefact(
            spec.placement,
            spec.thigh_face,
            patient.soft_tissue,
            motion.ch,
            motion.phase,
            motion.envelope,
            motion.left_offset,
            np.random.default_rng([seed, 2, k]),
        )
        st = sensor_signals(spec, motion.t, quats[seg], omega_cache[seg], origins[seg], mount, t, wobble, sta)
        streams[spec.placement], sensor_errors[spec.placement] = make_stream(
            spec, st, rng, np.random.default_rng([seed, 3, k])
        )
        if sta is not None:
            sensor_errors[spec.placement]["soft_tissue"] = sta.gains
        sensor_truth[spec.placement] = st
        mounting[spec.placement] = mount
    del omega_cache

    sacrum = SensorSpec("pelvis").position_on_segment()
    sacrum_acc = body.second_derivative(origins["pelvis"] + body.rotate_fast(quats["pelvis"], sacrum), dt)
    truth = build_truth(motion, quats, sacrum_acc, patient, sensors, mounting, truth_rate_hz, scen.name, seed)
    truth.meta.update(
        {"simulator_version": SIMULATOR_VERSION, "fine_rate_hz": fine_rate_hz, "sensor_errors": sensor_errors,
         # each heel strike's size (the right leg's contacts, the left's; by the rounded gait phase)
         "contact_sizes": {"right": sizes[0].tolist(), "left": sizes[1].tolist()}}
    )
    recording = Recording(
        streams=streams,
        start_utc=start_utc,
        meta={
            "source": "simulator",
            "scenario": scen.name,
            "seed": seed,
            "patient_id": patient.patient_id,
            "simulator_version": SIMULATOR_VERSION,
        },
    )
    return SimulatedSession(recording=recording, truth=truth, scenario=scen, sensor_truth=sensor_truth)


#: the share of the realistic cohort's patients whose thigh sensors sit on loose straps (see make_cohort)
LOOSE_STRAPS_SHARE = 0.2


def make_cohort(
    n: int, seed: int, realistic: bool = False, loose_straps: float | None = None
) -> list[tuple[VirtualPatient, list[SensorSpec]]]:
    """``n`` varied patients with varied sensor sets.

    ``realistic=False`` (the easy cohort of the first simulator, unchanged): raw or on-device-fusion
    devices, 50-200 Hz, lateral/anterior thighs, with or without magnetometer and lumbar sensor, sometimes
    one thigh only. ``realistic=True``: patients from :meth:`VirtualPatient.realistic` (soft-tissue
    artefact, varied gait curves, imperfect calibration stance) wearing one device model each with its
    datasheet errors (:mod:`hipback.simulator.device_profiles`: Movella DOT at 60 Hz live or 120 Hz
    recorded, WitMotion WT901BLE at 100 Hz, DIY BMI270 at 100 Hz or LSM6DSO at 104 Hz), strapped with up
    to 30 deg misalignment.

    ``loose_straps`` (0-1, realistic cohort only; default :data:`LOOSE_STRAPS_SHARE`, one patient in five):
    the share of patients whose thigh sensors sit on a loose strap
    (:data:`hipback.simulator.device_profiles.LOOSE_THIGH_WOBBLE_DEG` and ``LOOSE_THIGH_IMPACT_M_S2``: the
    heel strike's shake of a real recording's thigh sensors, one of the two real walkers at hand,
    ``bench/realism.py``); drawn from a random stream of its own, so the cohort is otherwise the same
    patient for patient, and ``0`` gives exactly the cohort without loose straps.
    """
    if loose_straps is None:
        loose_straps = LOOSE_STRAPS_SHARE if realistic else 0.0
    if not 0.0 <= loose_straps <= 1.0:
        raise ValueError(f"loose_straps is a share between 0 and 1, not {loose_straps!r}")
    if realistic:
        cohort = _realistic_cohort(n, seed)
        return _loosen(cohort, seed, loose_straps) if loose_straps > 0 else cohort
    if loose_straps > 0:
        raise ValueError("loose_straps applies to the realistic cohort (realistic=True) only")
    rng = np.random.default_rng([seed, 7])
    cohort = []
    for i in range(n):
        patient = VirtualPatient.random(rng, patient_id=f"sim-{seed:03d}-{i + 1:03d}")
        kind = "quat" if rng.uniform() < 0.35 else "raw"
        rate = float(rng.choice([60.0, 120.0]) if kind == "quat" else rng.choice([50.0, 100.0, 104.0, 200.0]))
        thighs = ["thigh_left", "thigh_right"]
        if rng.uniform() < 0.15:
            thighs = [str(rng.choice(thighs))]
        placements = ["pelvis", *thighs] + (["lumbar_upper"] if rng.uniform() < 0.5 else [])
        face = "lateral" if rng.uniform() < 0.7 else "anterior"
        has_mag = kind == "raw" and rng.uniform() < 0.3
        sensors = [
            SensorSpec(
                placement=p,
                kind=kind,
                rate_hz=rate,
                has_mag=has_mag,
                thigh_face=face,
                misalignment_deg=float(rng.uniform(5.0, 20.0)),
                gyro_bias_rad_s=float(rng.uniform(0.002, 0.02)),
                heading_drift_deg_min=float(rng.uniform(0.2, 3.0)),
                jitter_s=float(rng.uniform(0.0, 0.002)),
            )
            for p in placements
        ]
        cohort.append((patient, sensors))
    return cohort


def _loosen(
    cohort: list[tuple[VirtualPatient, list[SensorSpec]]], seed: int, share: float
) -> list[tuple[VirtualPatient, list[SensorSpec]]]:
    """The cohort with the thigh sensors of about ``share`` of the patients on loose straps (see
    :func:`make_cohort`)."""
    from dataclasses import replace

    from hipback.simulator.device_profiles import LOOSE_THIGH_IMPACT_M_S2, LOOSE_THIGH_WOBBLE_DEG

    rng = np.random.default_rng([seed, 9])
    out = []
    for patient, sensors in cohort:
        loose = rng.uniform() < share
        draws = [(float(rng.uniform(*LOOSE_THIGH_WOBBLE_DEG)), float(rng.uniform(*LOOSE_THIGH_IMPACT_M_S2)))
                 for _ in sensors]
        out.append((patient, [
            replace(s, soft_tissue_deg=w, impact_acc_m_s2=a) if loose and s.placement.startswith("thigh")
            else s
            for s, (w, a) in zip(sensors, draws, strict=True)
        ]))
    return out


def _realistic_cohort(n: int, seed: int) -> list[tuple[VirtualPatient, list[SensorSpec]]]:
    from hipback.simulator.device_profiles import profile_sensor

    rng = np.random.default_rng([seed, 8])
    profiles = ("movella_dot", "movella_dot", "witmotion_wt901ble", "diy_bmi270", "diy_lsm6dso")
    cohort = []
    for i in range(n):
        patient = VirtualPatient.realistic(rng, patient_id=f"real-{seed:03d}-{i + 1:03d}")
        profile = str(profiles[int(rng.integers(len(profiles)))])
        rate = float(rng.choice([60.0, 120.0])) if profile == "movella_dot" else None
        thighs = ["thigh_left", "thigh_right"]
        if rng.uniform() < 0.1:
            thighs = [str(rng.choice(thighs))]
        placements = ["pelvis", *thighs] + (["lumbar_upper"] if rng.uniform() < 0.4 else [])
        face = "lateral" if rng.uniform() < 0.7 else "anterior"
        sensors = [
            profile_sensor(
                p,
                profile,
                rng,
                rate_hz=rate,
                thigh_face=face,
                misalignment_deg=float(rng.uniform(5.0, 30.0)),
            )
            for p in placements
        ]
        cohort.append((patient, sensors))
    return cohort
