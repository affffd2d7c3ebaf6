"""``hipback simulate``: write a simulated session (sensor files + ground truth) to a folder.

A folder that already holds a recording or a simulated session (any file this command writes, or a sensor file
in hipback's recording format) is never replaced silently: ``--overwrite`` says so. The session is written
into a private temporary folder next to ``--out`` first; a new folder is then renamed into place, an existing
one receives all the files in one step that Ctrl-C cannot split (the files of the earlier simulation that
this one does not write, e.g. ``truth.json`` when the new scenario is ``exercises``, go in the same step), so
an interrupted or failed run leaves either the earlier files or the complete new session, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hipback.ingest.errors import ConfigError
from hipback.ingest.files.atomic import check_output_folder, fsync_dir, interrupts_deferred, private_mkdir

if TYPE_CHECKING:
    from hipback.simulator.session import SimulatedSession

#: the ground-truth files a simulated session may hold (:meth:`hipback.simulator.GroundTruth.save`; the
#: ``exercises`` scenario writes ``truth_exercises.json`` instead of the other three)
TRUTH_FILES = ("truth.json", "truth_angles.csv", "truth_segments.csv", "truth_exercises.json")

#: the device worn by ``--realistic`` when ``--device`` is not given
DEFAULT_DEVICE = "movella_dot"


def earlier_files(out: Path) -> list[str]:
    """The names of the files in ``out`` that a simulated session would replace or that belong to a recording:
    a sensor file per placement, ``session.json``, the ground truth (:data:`TRUTH_FILES`) and any ``*.csv``
    file in hipback's recording format; empty when ``out`` is not a folder."""
    from hipback.ingest.files.detect import HIPBACK_MAGIC
    from hipback.ingest.files.recording import SESSION_FILE
    from hipback.processing.types import PLACEMENTS

    if not out.is_dir():
        return []
    known = {f"{p}.csv" for p in PLACEMENTS} | {SESSION_FILE, *TRUTH_FILES}
    found = {name for name in known if (out / name).exists()}
    for f in out.glob("*.csv"):
        if f.name in found or not f.is_file():
            continue
        try:
            with open(f, encoding="utf-8", errors="replace") as fh:
                if fh.readline().startswith(HIPBACK_MAGIC):
                    found.add(f.name)
        except OSError:
            continue
    return sorted(found)


def run(
    out: Path | None,
    seed: int = 1,
    scenario: str = "clinic_visit",
    list_only: bool = False,
    realistic: bool = False,
    device: str | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Simulate ``scenario`` with ``seed`` and write one sensor file per placement (hipback's recording
    format, sample times in s) plus the ground truth (``truth.json``, ``truth_angles.csv`` in degrees and
    ``truth_segments.csv``; ``truth_exercises.json`` for the ``exercises`` scenario) into ``out``.

    ``list_only``: print the scenarios and write nothing (``out`` may be None). ``realistic``: the patient is
    :meth:`hipback.simulator.VirtualPatient.realistic` (soft-tissue artefact, varied gait, imperfect
    calibration stance; drawn from ``seed``) wearing ``device`` (a key of
    :data:`hipback.simulator.DEVICE_PROFILES`, default :data:`DEFAULT_DEVICE`) on every placement with that
    device's datasheet errors and a strap misalignment of 5-30 deg; otherwise the easy default patient and
    sensors (a ``device`` without ``realistic`` is refused). A folder already holding a recording or a
    simulated session (:func:`earlier_files`) is replaced only with ``overwrite``; see the module docstring
    for how it is written.

    Returns the written paths. Unknown scenario or device names, a missing ``out`` and the refusals above
    raise :class:`ConfigError` before any work.
    """
    from hipback.simulator import DEVICE_PROFILES, SCENARIOS

    if list_only:
        for name, desc in SCENARIOS.items():
            typer.echo(f"{name:14s} {desc}")
        return []
    if out is None:
        raise ConfigError("give --out FOLDER, the folder to write the simulated session into.")
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown scenario {scenario!r}; valid scenarios are: {', '.join(SCENARIOS)}.")
    if device is not None and not realistic:
        raise ConfigError(f"--device {device} chooses the sensors of the realistic patient and needs "
                          "--realistic (without it the default patient wears hipback's default sensors).")
    device = device or DEFAULT_DEVICE
    if realistic and device not in DEVICE_PROFILES:
        valid = ", ".join(sorted(DEVICE_PROFILES))
        raise ConfigError(f"unknown device {device!r}; valid devices are: {valid}.")
    out = check_output_folder(out)
    earlier = earlier_files(out)
    if earlier and not overwrite:
        shown = ", ".join(earlier[:4]) + (", ..." if len(earlier) > 4 else "")
        raise ConfigError(f"{out} already holds a recording or simulated session ({shown}); give another "
                          "--out folder, or add --overwrite to replace it.")
    try:
        private_mkdir(out.parent)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise ConfigError(f"cannot create the output folder {out}: {reason}.") from None

    from hipback.simulator import simulate

    if realistic:
        session = simulate(scenario, seed=seed, **_realistic_wearer(seed, device))
    else:
        session = simulate(scenario, seed=seed)
    paths = _write_session(session, out, earlier)
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


def _write_session(session: SimulatedSession, out: Path, earlier: list[str]) -> list[Path]:
    """Write ``session``'s recording and ground truth into ``out`` through a private temporary folder next to
    it (every file 0600 and flushed to disk): renamed into place when ``out`` does not exist, else its files
    moved into ``out`` together with Ctrl-C held back, and the files of ``earlier`` this session does not
    write removed in the same step. Returns the paths in ``out``."""
    from hipback.ingest.files import write_recording

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name or 'recording'}.", suffix=".tmp", dir=out.parent))
    try:
        staged = [p.name for p in write_recording(session.recording, tmp)]
        staged += [Path(p).name for p in session.truth.save(tmp)]
        for name in staged:
            os.chmod(tmp / name, 0o600)
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(tmp)
        if not out.exists():
            tmp.rename(out)
        else:
            with interrupts_deferred():
                for name in staged:
                    os.replace(tmp / name, out / name)
                for name in set(earlier) - set(staged):
                    with contextlib.suppress(FileNotFoundError):
                        (out / name).unlink()
            fsync_dir(out)
        fsync_dir(out.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [out / name for name in staged]


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
