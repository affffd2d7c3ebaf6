"""``hipback record --config FILE``: record a real session from a TOML config (see
:mod:`hipback.ingest.config`).

Scans for the configured sensors, connects them one at a time, guides the standing calibration, stores every
sample in the local store as it arrives, shows live progress, and at the configured duration stops the
sensors, stores the results and closes the session. Ctrl-C, SIGTERM (``kill``, a service manager's stop),
SIGHUP (the terminal hung up) and a closed output (a pipe whose reader exited) stop it the same way, exit code
0; a second signal cancels at once (exit 130; what was stored stays stored, the session has no results).

With ``ble_backend = "bumble"`` the sensors are virtual: a simulated patient (``--virtual-scenario``) wears
virtual sensors of the configured kinds on a Bumble link, and the same runner records them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from hipback.ingest.config import SessionConfig, load_config
from hipback.ingest.errors import ConfigError, HipbackError, Interrupted
from hipback.ingest.live import LiveCoach
from hipback.ingest.logs import LOG_NAME, session_log
from hipback.ingest.publish import LivePublishing
from hipback.ingest.session.stats import SessionEvent, SessionOutcome
from hipback.ingest.terminal import GuardedOutput
from hipback.ingest.virtual_time import run_loop, run_virtual
from hipback.processing.holds import Prescription

if TYPE_CHECKING:
    from hipback.ingest.session.stats import SensorStats
    from hipback.ingest.store import LocalStore
    from hipback.processing.pipeline import ProcessorUpdate


logger = logging.getLogger(__name__)

#: what stops a recording as the end of its duration does (the session's results stored, exit 0): Ctrl-C,
#: ``kill`` / a service manager's stop (SIGTERM), the terminal hung up (SIGHUP)
STOP_SIGNALS = (
    (signal.SIGINT, "Ctrl-C"),
    (signal.SIGTERM, "SIGTERM"),
    *(((signal.SIGHUP, "the terminal hung up"),) if hasattr(signal, "SIGHUP") else ()),
)
OUTPUT_CLOSED = "the output was closed"


def _finishing(signum: int, frame: object) -> None:
    """A stop signal after the session's event loop ended: the session is closed and its results are being
    stored and shown, so it finishes (exit 0) instead of Python's default (SIGTERM, SIGHUP: killed half-way
    through the outcome, exit 143 / 129; Ctrl-C: "interrupted", exit 130)."""
    logger.info("stop signal %s while the finished session is being stored: it finishes", signum)


def _let_finish(sig: int) -> None:
    """Catch ``sig`` with :func:`_finishing` (main thread only; :func:`_signals_kept` puts back what was
    there when ``run`` returns)."""
    with contextlib.suppress(ValueError, OSError):  # (not the main thread)
        signal.signal(sig, _finishing)


@contextlib.contextmanager
def _signals_kept() -> Iterator[None]:
    """The stop signals' handlers as they were when ``run`` began, put back when it returns."""
    try:
        saved = {sig: signal.getsignal(sig) for sig, _ in STOP_SIGNALS}
    except (ValueError, OSError):
        saved = {}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, handler)


class _Progress:
    """The runner's callbacks fanned out to the live coaching view and the live publisher; the console's
    output, when it closes, asks the session to stop (``on_output_closed``)."""

    def __init__(self, console: Console, coach: LiveCoach, publishing: LivePublishing) -> None:
        self.console = console
        self.coach = coach
        self.publishing = publishing
        self.on_output_closed: Callable[[], None] | None = None

    def output_closed(self, exc: OSError) -> None:
        """The console's stream failed (:class:`~hipback.ingest.terminal.GuardedOutput`)."""
        if self.on_output_closed is not None:
            self.on_output_closed()

    def on_event(self, ev: SessionEvent) -> None:
        self.coach.on_event(ev)

    def on_update(self, update: ProcessorUpdate, stats: Mapping[str, SensorStats]) -> None:
        self.coach.on_update(update, stats)
        self.publishing.on_update(update, stats)


def _print_outcome(console: Console, outcome: SessionOutcome, log_path: Path | None = None) -> None:
    table = Table(title=f"Session {outcome.session_id} ({outcome.stopped_by})")
    for col in ("placement", "kind", "samples", "rate", "gaps", "lost", "rejected", "reconnects", "battery"):
        table.add_column(col)
    for p, s in outcome.stats.items():
        table.add_row(
            p,
            s.kind,
            str(s.samples),
            f"{s.rate_hz:.1f} Hz",
            str(s.gaps),
            str(s.missing),
            str(sum(s.rejected.values())),
            str(s.reconnects),
            "-" if s.battery_pct is None else f"{s.battery_pct:.0f} %",
        )
    console.print(table)
    if outcome.results is not None:
        summary = outcome.results.summary
        for side in ("left", "right"):
            v = summary.get(f"peak_hip_extension_{side}_deg")
            if v is not None:
                console.print(f"peak hip extension {side}: {v:.1f}°")
    if outcome.processing_error:
        where = f" (details in {log_path})" if log_path is not None else ""
        console.print(f"live processing stopped: {outcome.processing_error}{where}; every sample is stored "
                      f"and `hipback report {outcome.session_id}` processes them again.", style="red")
    failed = {p: s for p, s in outcome.stats.items() if s.store_errors}
    if failed:  # e.g. a full disk: say once what was not stored (the log has every failed write)
        first = next(e for s in failed.values() for e in s.errors if e.startswith("store:"))
        counts = ", ".join(f"{p} {s.store_errors}" for p, s in failed.items())
        console.print(f"some samples were not stored ({counts} failed writes; first: {first[6:].strip()}); "
                      "everything else is stored.", style="red")


async def _record(
    config: SessionConfig,
    store: LocalStore,
    session_id: str | None,
    progress: _Progress,
    scenario: str,
    speed: float,
) -> SessionOutcome:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    requests = 0

    def stop_requested(why: str) -> None:
        """The first request finishes the session; a second signal cancels at once."""
        nonlocal requests
        requests += 1
        if requests == 1:
            progress.console.print(
                f"Stopping ({why}): finishing the session (press Ctrl-C again to cancel at once) ..."
            )
            stop.set()
        elif requests == 2 and main_task is not None and why != OUTPUT_CLOSED:
            main_task.cancel()  # (more requests change nothing: the session is being closed)

    handled = []
    for sig, why in STOP_SIGNALS:
        try:
            loop.add_signal_handler(sig, stop_requested, why)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / no such signal here
            pass
    progress.on_output_closed = lambda: loop.call_soon_threadsafe(stop_requested, OUTPUT_CLOSED)
    try:
        if config.ble_backend == "bumble":
            return await _record_virtual(config, store, session_id, progress, stop, scenario, speed)
        from hipback.ingest.ble.connect import backend_for
        from hipback.ingest.session.runner import run_session

        return await run_session(
            config,
            store,
            backend=backend_for("bleak"),
            on_update=progress.on_update,
            on_event=progress.on_event,
            on_session=progress.publishing.on_session,
            stop_event=stop,
            session_id=session_id,
        )
    finally:
        progress.on_output_closed = None
        for sig in handled:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)  # (puts back Python's default, not what was there before)
            _let_finish(sig)


async def _record_virtual(
    config: SessionConfig,
    store: LocalStore,
    session_id: str | None,
    progress: _Progress,
    stop: asyncio.Event,
    scenario: str,
    speed: float,
) -> SessionOutcome:
    """Virtual sensors at the configured addresses, worn by a simulated patient, recorded by the runner."""
    from hipback.ingest.ble.bumble_backend import BumbleWorld
    from hipback.ingest.ble.connect import backend_for
    from hipback.ingest.session.runner import SessionRunner
    from hipback.ingest.session.virtual import stream_for
    from hipback.simulator import SCENARIOS, SensorSpec, simulate
    from hipback.simulator.virtual_ble import VirtualSensor, VirtualSensorSet

    if scenario not in SCENARIOS:
        raise ConfigError(
            f"--virtual-scenario must be one of {', '.join(sorted(SCENARIOS))}, not {scenario!r}."
        )
    sim = simulate(scenario, seed=1, sensors=[SensorSpec(s.placement, kind="quat") for s in config.sensors])
    world = BumbleWorld()
    sensors = [
        VirtualSensor(world, s.kind, stream_for(sim, s.placement, s.kind), index=i, address=s.address)
        for i, s in enumerate(config.sensors, start=1)
    ]
    vset = VirtualSensorSet(world, sensors)
    await vset.start(world.monotonic() + 2.0)
    runner = SessionRunner(
        config,
        store,
        backend=backend_for("bumble", world),
        on_update=progress.on_update,
        on_event=progress.on_event,
        on_session=progress.publishing.on_session,
        stop_event=stop,
        clock=world.clock,
        session_id=session_id,
        source_finished=lambda: vset.finished,
        meta={"virtual": True, "scenario": scenario},
    )
    try:
        with world.activate():
            return await runner.run()
    finally:
        await world.close()


def run(
    config_path: Path,
    session_id: str | None = None,
    virtual_scenario: str = "short",
    speed: float = 1.0,
    console: Console | None = None,
) -> SessionOutcome:
    """Load the config, record, print the outcome; returns it. A stop signal once the session's event loop
    ended lets it finish (:func:`_finishing`)."""
    with _signals_kept():
        return _run(config_path, session_id, virtual_scenario, speed, console)


def session_to_continue(store: LocalStore, given: str, patient_id: str) -> str:
    """The id of the stored session ``--session`` names (its id, a unique prefix of at least 4 characters, or
    ``latest``: this patient's most recently started unfinished session), checked before anything is opened:
    it must exist, be unfinished and be this patient's; otherwise :class:`ConfigError` (exit 2), and no
    session is created (``--session`` continues a session, it never names a new one)."""
    new = "omit --session to open a new one"
    if given == "latest":
        sid = store.latest_open_session(patient_id)
        if sid is None:
            raise ConfigError(
                f"--session latest: {patient_id} has no unfinished session in {store.path}; {new}."
            )
        return sid
    try:
        row = store.find_session(given, "--session")
    except ConfigError as exc:
        raise ConfigError(f"{str(exc).rstrip('.')}; {new}.") from None
    if row["patient_id"] != patient_id:
        raise ConfigError(f"--session {row['id']} is a session of another patient, not of {patient_id} (the "
                          f"config's patient); {new}.")
    if row["end_utc"] is not None:
        raise ConfigError(f"--session {row['id']} is finished and cannot be continued; {new}.")
    return str(row["id"])


def _run(
    config_path: Path,
    session_id: str | None,
    virtual_scenario: str,
    speed: float,
    console: Console | None,
) -> SessionOutcome:
    from hipback.ingest.session.runner import session_gc
    from hipback.ingest.store import LocalStore

    config = load_config(config_path)
    if not 0.1 <= speed <= 50:
        raise ConfigError(f"--speed must be between 0.1 and 50, not {speed}.")
    if speed != 1.0 and config.ble_backend != "bumble":
        raise ConfigError('--speed only applies to virtual sensors (ble_backend = "bumble").')
    output = None
    if console is None:
        output = GuardedOutput(sys.stdout)
        console = Console(file=output)  # type: ignore[arg-type]  (a text stream in all but name)
    prescription = Prescription(config.prescription.holds_per_side, config.prescription.hold_s)
    try:
        store = LocalStore(config.store)
    except HipbackError:  # damaged, newer, read-only, full: the store's own sentence (exit 3)
        raise
    except Exception as exc:
        raise HipbackError(f"{config.store}: the local store cannot be opened ({exc}).") from None
    if session_id is not None:
        try:
            session_id = session_to_continue(store, session_id, config.patient_id)
        except BaseException:
            store.close()
            raise
    try:
        with (
            session_log(config.store.parent / LOG_NAME) as log_path,
            LiveCoach(console, prescription=prescription) as coach,
            LivePublishing(config.store, config.patient_id) as publishing,
        ):
            progress = _Progress(console, coach, publishing)
            if output is not None:
                output.on_closed = progress.output_closed
            session = _record(config, store, session_id, progress, virtual_scenario, speed)
            # virtual sensors run on simulated time, paced at ``speed`` times real time
            bumble = config.ble_backend == "bumble"
            try:
                with session_gc():
                    outcome = run_virtual(session, pace=speed) if bumble else run_loop(session)
            except asyncio.CancelledError:  # a second stop request: the session was closed without results
                raise Interrupted(
                    f"cancelled: the session was closed at once; everything received is stored in "
                    f"{config.store}, without the session's results (`hipback report` and `export` process "
                    "it again)."
                ) from None
            publishing.finish(outcome)
    finally:
        store.close()
    _print_outcome(console, outcome, log_path)
    console.print(f"stored in {config.store}; {publishing.status()}")
    check_outcome(outcome)
    if output is not None and output.is_closed:  # said where it can still be read (the view went quiet)
        with contextlib.suppress(OSError):
            print(f"hipback: the output was closed, so session {outcome.session_id} was stopped; everything "
                  f"received and its results are stored in {config.store}.", file=sys.stderr)
    return outcome


def check_outcome(outcome: SessionOutcome) -> None:
    """Raise :class:`HipbackError` (exit 2) for a session that ended without sensors that could stream, or
    without any sample; what was received is stored either way."""
    if outcome.stopped_by == "sensors_failed":
        reasons = "; ".join(f"{p}: {st.failed.rstrip('.')}" for p, st in outcome.stats.items() if st.failed)
        raise HipbackError(
            f"no sensor can stream as configured ({reasons}), so session {outcome.session_id} stopped; what "
            "was received is stored."
        )
    if outcome.empty and outcome.stopped_by != "cancelled":
        raise HipbackError(
            f"no sensor delivered any sample, so session {outcome.session_id} holds no data and has no "
            f"results (check that the sensors are charged, worn and streaming, then record again)."
        )
