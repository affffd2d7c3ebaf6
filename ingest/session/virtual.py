"""Run the real session runner against virtual sensors: a simulated session streamed over a Bumble world.

:func:`run_virtual_session` builds a :class:`~hipback.ingest.ble.bumble_backend.BumbleWorld`, one
:class:`~hipback.simulator.virtual_ble.VirtualSensor` per placement (speaking the chosen protocol byte for
byte and
driven by the simulated stream in scaled real time), and runs
:class:`~hipback.ingest.session.runner.SessionRunner`
through the unchanged bleak code path with the Bumble backend. The outcome carries each virtual sensor's
ledger (what was sent, dropped, truncated, skipped) for comparison with what was stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hipback.ingest.ble.bumble_backend import BumbleWorld
from hipback.ingest.ble.connect import backend_for
from hipback.ingest.config import PrescriptionConfig, SensorConfig, SessionConfig
from hipback.ingest.session.runner import SessionRunner, session_gc
from hipback.ingest.session.stats import SensorStats, SessionEvent, SessionIdentity, SessionOutcome
from hipback.ingest.virtual_time import run_virtual
from hipback.processing.pipeline import ProcessorUpdate
from hipback.processing.types import SensorStream

if TYPE_CHECKING:
    from hipback.ingest.programme import Programme
    from hipback.ingest.store import LocalStore
    from hipback.simulator.devices import DeviceTwin
    from hipback.simulator.exercises import VisitSession
    from hipback.simulator.session import SimulatedSession

    #: a simulated session a virtual session streams: a scenario's or a visit with a programme
    Simulated = SimulatedSession | VisitSession


def _twin(kind: str) -> type[DeviceTwin]:
    """The virtual twin class of ``kind``: the rate a virtual session asks of it (``DEFAULT_RATE_HZ``) and
    whether it streams its own orientation (``NEEDS_QUAT``)."""
    from hipback.simulator.devices import twin_class

    return twin_class(kind)


def stream_for(sim: Simulated, placement: str, kind: str) -> SensorStream:
    """The simulated stream a virtual device of ``kind`` sends.

    A device that always streams its own orientation (WitMotion's Euler angles: its twin's ``NEEDS_QUAT``)
    needs quaternions; when the simulated sensor is raw the sensor's true orientation stands in for the
    device's fusion output.
    """
    stream = sim.recording.streams[placement]
    if _twin(kind).NEEDS_QUAT and stream.quat is None:
        truth = sim.sensor_truth[placement]
        stream = SensorStream(
            placement=placement,
            kind="quat",
            t=stream.t,
            rate_hz=stream.rate_hz,
            quat=np.asarray(truth.quat),
            acc=stream.acc,
            gyr=stream.gyr,
            mag=stream.mag,
            device=stream.device,
            meta=stream.meta,
        )
    return stream


def virtual_config(
    sensor_kinds: Mapping[str, str],
    addresses: Mapping[str, str],
    *,
    patient_id: str = "SIM-0001",
    store: Path | str = "hipback.sqlite",
    calibration_s: float = 5.0,
    rates: Mapping[str, float] | None = None,
    max_batch: Mapping[str, int] | None = None,
    prescription: PrescriptionConfig | None = None,
    max_sensor_lag_s: float | None = 2.0,
    modes: Mapping[str, str | None] | None = None,
) -> SessionConfig:
    """A session config for virtual sensors (Bumble backend, fixed addresses).

    ``modes``: placement -> device output mode (as a real config names it, e.g. ``raw`` for a hipback v1
    sensor without on-device fusion); default: the profile's default mode.
    """
    sensors = [
        SensorConfig(
            placement=p,
            kind=k,
            address=addresses[p],
            rate_hz=(rates or {}).get(p, _twin(k).DEFAULT_RATE_HZ),
            max_batch=(max_batch or {}).get(p),
            mode=(modes or {}).get(p),
        )
        for p, k in sensor_kinds.items()
    ]
    return SessionConfig(
        patient_id=patient_id,
        sensors=sensors,
        prescription=prescription or PrescriptionConfig(),
        store=Path(store),
        ble_backend="bumble",
        scan_timeout_s=5.0,
        calibration_s=calibration_s,
        max_sensor_lag_s=max_sensor_lag_s,
    )


async def run_virtual_session_async(
    sim: Simulated,
    sensor_kinds: Mapping[str, str],
    store: LocalStore,
    *,
    faults: Mapping[str, Any] | None = None,
    lead_s: float = 2.0,
    calibration_s: float = 5.0,
    patient_id: str | None = None,
    session_id: str | None = None,
    on_update: Callable[[ProcessorUpdate, dict[str, SensorStats]], None] | None = None,
    on_event: Callable[[SessionEvent], None] | None = None,
    on_session: Callable[[SessionIdentity], None] | None = None,
    stop_event: asyncio.Event | None = None,
    max_batch: Mapping[str, int] | None = None,
    process: bool = True,
    world: BumbleWorld | None = None,
    until_s: float | None = None,
    clock_offsets: Mapping[str, float] | None = None,
    connect_lock: asyncio.Lock | None = None,
    first_index: int = 1,
    programme: Programme | None = None,
) -> SessionOutcome:
    """Async form of :func:`run_virtual_session` taking an open store.

    Runs on the world's clock: on a :class:`hipback.ingest.virtual_time.VirtualTimeLoop` (as
    :func:`run_virtual_session` uses) that is simulated time. ``lead_s``: seconds between the world starting
    and simulation time 0 (sensors connect meanwhile,
    so the session starts with the scenario's first sample). ``until_s``: stop at this simulation time instead
    of the end of the streams. ``clock_offsets``: placement -> device clock at simulation time 0 (s; default
    1000 s), e.g. to restart a device with a later clock. ``connect_lock``: share the adapter's connect lock
    with other sessions on the same ``world``; ``first_index``: numbering of the virtual devices (names and
    addresses); ``programme``: a guided exercise programme (:class:`hipback.ingest.programme.Programme`).
    """
    from hipback.simulator.virtual_ble import VirtualSensor, VirtualSensorSet

    own_world = world is None
    world = world or BumbleWorld()
    sensors = []
    for i, (placement, kind) in enumerate(sensor_kinds.items(), start=first_index):
        sensors.append(
            VirtualSensor(
                world,
                kind,
                stream_for(sim, placement, kind),
                index=i,
                faults=(faults or {}).get(placement),
                clock_offset_s=(clock_offsets or {}).get(placement, 1000.0),
            )
        )
    vset = VirtualSensorSet(world, sensors)
    t0 = world.monotonic() + lead_s
    await vset.start(world_t0=t0)
    addresses = {p: s.address for p, s in zip(sensor_kinds, sensors, strict=True)}
    config = virtual_config(
        sensor_kinds,
        addresses,
        patient_id=patient_id or _patient(sim),
        calibration_s=calibration_s,
        max_batch=max_batch,
        modes={p: s.initial_mode() for p, s in zip(sensor_kinds, sensors, strict=True)},
        # no lag allowance: the live pipeline waits for every sensor, so a virtual session's results do not
        # depend on how the machine schedules the world (which runs faster than real time); real sessions
        # release rows of a sensor more than 2 s behind (SessionConfig.max_sensor_lag_s)
        max_sensor_lag_s=None,
    )
    config.programme = programme

    def finished() -> bool:
        if until_s is not None:
            return world.monotonic() - t0 >= until_s
        return vset.finished

    runner = SessionRunner(
        config,
        store,
        backend=backend_for("bumble", world),
        on_update=on_update,
        on_event=on_event,
        on_session=on_session,
        stop_event=stop_event,
        clock=world.clock,
        session_id=session_id,
        source_finished=finished,
        process=process,
        connect_lock=connect_lock,
        meta={
            "virtual": True,
            "scenario": sim.recording.meta.get("scenario"),
            "seed": sim.recording.meta.get("seed"),
            "sim_t0_utc": world.now() + lead_s,
        },
    )
    try:
        with world.activate():
            outcome = await runner.run()
    finally:
        if own_world:
            await world.close()
        else:
            await vset.close()
    outcome.ledgers = {p: s.ledger for p, s in zip(sensor_kinds, sensors, strict=True)}
    for p, s in zip(sensor_kinds, sensors, strict=True):
        outcome.ledgers[p].sim_t0_session = t0 - runner.start_monotonic  # sim time 0 on the session timeline
        outcome.ledgers[p].injected = list(s.injector.log)
    return outcome


def _patient(sim: Simulated) -> str:
    pid = str(sim.recording.meta.get("patient_id") or "SIM-0001")
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in pid)[:64] or "SIM-0001"


def run_virtual_session(
    sim: Simulated,
    sensor_kinds: Mapping[str, str],
    store_path: str | Path,
    speed: float | None = None,
    faults: Mapping[str, Any] | None = None,
    synchronous: str = "FULL",
    **kwargs: Any,
) -> SessionOutcome:
    """Stream a simulated session through virtual BLE sensors into the session runner and a local store.

    The session runs on simulated time (:class:`hipback.ingest.virtual_time.VirtualTimeLoop`): as fast as the
    CPU allows by default, or paced at ``speed`` times real time to watch it; the results are the same.

    ``sensor_kinds``: placement -> device kind (``hipback_v1``, ``movella_dot``, ``witmotion``: any kind with
    a profile and a virtual twin); ``faults``: placement ->
    :class:`hipback.simulator.virtual_ble.SensorFaults`; ``synchronous``: the store's SQLite ``synchronous``
    setting (:class:`hipback.ingest.store.LocalStore`); other keywords as :func:`run_virtual_session_async`.
    """
    from hipback.ingest.store import LocalStore

    store = LocalStore(store_path, synchronous=synchronous)
    try:
        session = run_virtual_session_async(sim, sensor_kinds, store, faults=faults, **kwargs)
        with session_gc():
            return run_virtual(session, pace=speed)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()
