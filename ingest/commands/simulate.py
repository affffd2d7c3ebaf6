"""``hipback simulate``: write a simulated session (sensor files + ground truth) to a folder."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from hipback.ingest.errors import ConfigError
from hipback.ingest.files.atomic import ensure_output_folder


def run(
    out: Path,
    seed: int = 1,
    scenario: str = "clinic_visit",
    list_only: bool = False,
    realistic: bool = False,
    device: str = "movella_dot",
) -> list[Path]:
    """Simulate ``scenario`` with ``seed`` and write one sensor file per placement (hipback's recording
    format) plus ``truth.json``, ``truth_angles.csv`` and ``truth_segments.csv`` into ``out``.

    ``realistic``: the patient is :meth:`hipback.simulator.VirtualPatient.realistic` (soft-tissue artefact,
    varied gait, imperfect calibration stance; drawn from ``seed``) wearing ``device`` (a key of
    :data:`hipback.simulator.DEVICE_PROFILES`) on every placement with that device's datasheet errors and a
    strap misalignment of 5-30 deg; otherwise the easy default patient and sensors.

    Returns the written paths. Unknown scenario or device names raise :class:`ConfigError`.
    """
    from hipback.simulator import DEVICE_PROFILES, SCENARIOS

    if list_only:
        for name, desc in SCENARIOS.items():
            typer.echo(f"{name:14s} {desc}")
        return []
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown scenario {scenario!r}; valid scenarios are: {', '.join(SCENARIOS)}.")
    if realistic and device not in DEVICE_PROFILES:
        valid = ", ".join(sorted(DEVICE_PROFILES))
        raise ConfigError(f"unknown device {device!r}; valid devices are: {valid}.")
    out = ensure_output_folder(out)

    from hipback.ingest.files import write_recording
    from hipback.simulator import simulate

    if realistic:
        session = simulate(scenario, seed=seed, **_realistic_wearer(seed, device))
    else:
        session = simulate(scenario, seed=seed)
    paths = list(write_recording(session.recording, out))
    paths += session.truth.save(out)
    summary = session.truth.summary()
    typer.echo(
        f"Simulated '{scenario}' (seed {seed}, patient {session.truth.patient.patient_id}"
        f"{f', realistic, {device}' if realistic else ''}): "
        f"{session.duration_s:.0f} s, {len(session.recording.streams)} sensors, "
        f"{summary['strides_left'] + summary['strides_right']} steady strides, "
        f"{len(session.truth.holds)} stretch holds."
    )
    for p in paths:
        typer.echo(f"  wrote {p}")
    results = out.parent / f"{out.name or 'recording'}-results"
    typer.echo(f"Process it: hipback process --out {shlex.quote(str(results))} {shlex.quote(str(out))}")
    return paths


def _realistic_wearer(seed: int, device: str) -> dict:
    """``patient`` and ``sensors`` for a realistic session: drawn from ``seed`` alone (same seed, same
    patient), every placement of the default sensor set worn as ``device``."""
    import numpy as np

    from hipback.simulator import VirtualPatient, default_sensors, profile_sensor

    rng = np.random.default_rng([seed, 9])
    patient = VirtualPatient.realistic(rng, patient_id=f"real-{seed:03d}")
    face = "lateral" if rng.uniform() < 0.7 else "anterior"
    sensors = [
        profile_sensor(
            s.placement, device, rng, thigh_face=face, misalignment_deg=float(rng.uniform(5.0, 30.0))
        )
        for s in default_sensors()
    ]
    return {"patient": patient, "sensors": sensors}
