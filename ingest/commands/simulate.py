"""``hipback simulate``: write a simulated session (sensor files + ground truth) to a folder."""

from __future__ import annotations

from pathlib import Path

import typer

from hipback.ingest.errors import ConfigError
from hipback.ingest.files.atomic import ensure_output_folder


def run(out: Path, seed: int = 1, scenario: str = "clinic_visit", list_only: bool = False) -> list[Path]:
    """Simulate ``scenario`` with ``seed`` and write one sensor file per placement (hipback's recording
    format) plus ``truth.json``, ``truth_angles.csv`` and ``truth_segments.csv`` into ``out``.

    Returns the written paths. Unknown scenario names raise :class:`ConfigError`.
    """
    from hipback.simulator import SCENARIOS

    if list_only:
        for name, desc in SCENARIOS.items():
            typer.echo(f"{name:14s} {desc}")
        return []
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown scenario {scenario!r}; valid scenarios are: {', '.join(SCENARIOS)}.")
    out = ensure_output_folder(out)

    from hipback.ingest.files import write_recording
    from hipback.simulator import simulate

    session = simulate(scenario, seed=seed)
    paths = list(write_recording(session.recording, out))
    paths += session.truth.save(out)
    summary = session.truth.summary()
    typer.echo(
        f"Simulated '{scenario}' (seed {seed}, patient {session.truth.patient.patient_id}): "
        f"{session.duration_s:.0f} s, {len(session.recording.streams)} sensors, "
        f"{summary['strides_left'] + summary['strides_right']} steady strides, "
        f"{len(session.truth.holds)} stretch holds."
    )
    for p in paths:
        typer.echo(f"  wrote {p}")
    return paths
