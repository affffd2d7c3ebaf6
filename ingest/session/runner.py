"""The session runner: scan, connect one sensor at a time, stream concurrently, store every sample, process
live.

Structure (one asyncio loop; device protocols and BLE practice: ``docs/devices.md``):

- **Discovery**: configured addresses, or the first free sensor of each configured kind found by a scan.
- **One supervisor task per sensor**: connect under the shared connect lock with
  ``bleak_retry_connector.establish_connection`` and ask for a larger ATT MTU
  (:func:`hipback.ingest.ble.connect.connect_one`); the sensor's profile then says everything that differs
  per device kind (:meth:`SessionRunner._setup`: configuration reads, the payload mode that the firmware has
  and the MTU carries, battery, subscription, start sequence); the battery is asked for again every
  ``profile.battery.interval_s``. Then wait for a disconnect and reconnect with backoff until the session
  stops. Each disconnect becomes one gap (reason ``"disconnect"``) once data flows again.
- **Notification callbacks only enqueue** ``(bytes, arrival time)``.
- **One consumer task** decodes (:mod:`hipback.ingest.devices`), maps device time to the session timeline
  (:class:`hipback.ingest.clock.ClockModel`), writes the samples to the store (durable when ``add_samples``
  returns), records gaps, and feeds :class:`hipback.processing.pipeline.SessionProcessor`; updates go to
  ``on_update``.
- **Guided calibration**: once every sensor streams, a ``calibration_start`` event ("Stand still for 5
  seconds"), then the window is marked in the processor and ``calibration_done`` is sent.
- **Stop** (stop event, duration, end of a virtual source, or cancellation such as Ctrl-C): stop sequences,
  disconnect, drain the queue, finish processing, store the results and close the session. A killed process
  loses nothing already stored.

Timeline: inside the session everything is in session seconds (``clock.monotonic()`` since the start:
arrival times, sample times, gaps, events); UTC is ``start_utc`` plus session seconds, added once where
rows leave for the store. ``clock`` (:class:`hipback.ingest.timesource.Clock`, default the system's) is the
only source of "now": a virtual session hands in its world's clock, which runs on simulated time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from bleak import BleakClient

from hipback.ingest.ble.connect import (
    Backend,
    FoundSensor,
    assign_sensors,
    connect_one,
    current_mtu,
    scan_sensors,
    wanted_satisfied,
)
from hipback.ingest.clock import ClockModel
from hipback.ingest.config import SensorConfig, SessionConfig
from hipback.ingest.devices import DecodedSamples, DeviceConfig, DeviceProfile, DeviceSetupError, get_profile
from hipback.ingest.devices.base import Decoder
from hipback.ingest.errors import ConfigError
from hipback.ingest.results import store_rows
from hipback.ingest.session.spool import AngleSpool
from hipback.ingest.session.stats import (
    Reservoir,
    SensorStats,
    SessionEvent,
    SessionIdentity,
    SessionOutcome,
)
from hipback.ingest.session.writer import StoreWriter
from hipback.ingest.timesource import SYSTEM_CLOCK, Clock
from hipback.processing.pipeline import ProcessorConfig, ProcessorUpdate, SessionProcessor
from hipback.processing.types import SensorKind, SensorStream

if TYPE_CHECKING:
    from hipback.ingest.store import LocalStore

logger = logging.getLogger(__name__)

#: terminal escape sequences and other control characters, left out of error texts shown to the user
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x1f\x7f]")

#: Battery level (%) below which the UI is told once per sensor.
LOW_BATTERY_PCT = 15
#: How often live results are polled from the processor (s on the session's clock).
POLL_INTERVAL_S = 0.02
#: consecutive connections whose set-up fails with the same :class:`DeviceSetupError` (the device cannot
#: stream as configured: no payload mode fits its firmware and link, or it answers a set-up request with an
#: error every time) before the sensor is left out
SETUP_FAILURES_LIMIT = 3
#: Session seconds between two "clock jumped" events of one sensor: the first jump is said at once, later ones
#: at most this often with their count (a sensor whose clock jumps at every packet would otherwise make an
#: event, a store row and a line per batch for as long as the session lasts); ``SensorStats.clock_jumps``
#: counts every jump
CLOCK_JUMP_REPEAT_S = 60.0
#: Allocations (of container objects, net of deallocations) between two collections of the garbage collector's
#: youngest generation while a session runs (:func:`session_gc`; Python's default is 700).
GC_THRESHOLD0 = 20_000


@contextlib.contextmanager
def session_gc(threshold0: int = GC_THRESHOLD0) -> Iterator[None]:
    """The garbage collector's settings for a process that runs a session (``hipback record``, a virtual
    session): every object alive on entry (modules, configuration, a simulated patient) leaves the collector's
    generations (``gc.freeze``), so that no collection traverses it again, and the youngest generation is
    collected after ``threshold0`` allocations instead of Python's 700 (the live path allocates many
    short-lived objects that reference counting frees). Both are undone on exit. The collector only frees
    reference cycles: nothing the session computes or stores depends on it.
    """
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(threshold0, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


@dataclass
class _CalibrationWindow:
    """The standing calibration the runner asks for: ``waiting`` for every sensor's first sample,
    ``running`` from ``t0`` (session s, the latest first sample) for ``calibration_s``, then ``done``."""

    state: str = "waiting"
    t0: float = 0.0


@dataclass
class _Link:
    """Run-time state of one configured sensor."""

    cfg: SensorConfig
    found: FoundSensor
    profile: DeviceProfile
    mode: str
    rate_hz: float
    stats: SensorStats
    decoder: Decoder
    clock: ClockModel
    client: BleakClient | None = None
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    ever_connected: bool = False
    disconnect_pending: bool = False
    disconnect_t: float | None = None
    arrival_missing_seen: int = 0
    absorb_arrival_gap: bool = False
    low_battery_warned: bool = False
    jumps_seen: int = 0
    jumps_unsaid: int = 0  # clock jumps since the last "clock_jump" event
    next_jump_event_t: float = -math.inf  # session s before which a new jump is only counted
    config: DeviceConfig | None = None  # what the configuration reads of the current connection said
    battery_task: asyncio.Future[None] | None = None
    kind_of_mode: tuple[str, SensorKind] | None = None  # (mode, the profile's sensor kind of it)
    mode_message: str | None = None  # the last "mode" event's message (said once, not at every reconnect)

    @property
    def placement(self) -> str:
        return self.cfg.placement

    @property
    def sensor_kind(self) -> SensorKind:
        """The profile's sensor kind of the current mode (asked once per mode: read for every packet)."""
        known = self.kind_of_mode
        if known is None or known[0] != self.mode:
            known = self.kind_of_mode = (self.mode, self.profile.sensor_kind(self.mode))
        return known[1]


#: one notification as the callback queues it: the sensor's link, the bytes, the arrival in session seconds
#: and in ``time.perf_counter()`` seconds
_Arrival = tuple[_Link, bytes, float, float]


class _Inbox:
    """The notifications waiting for the consumer, in arrival order: the BLE callbacks put them, the one
    consumer takes all there are at once (what it used ``asyncio.Queue`` for, without the size limit, task
    counting and several getters it did not use, whose bookkeeping ran for every notification)."""

    def __init__(self) -> None:
        self._items: list[_Arrival] = []
        self._waiter: asyncio.Future[None] | None = None  # the consumer's, while it waits

    def put(self, item: _Arrival) -> None:
        """Queue one notification and wake the consumer if it waits."""
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def take_all(self) -> list[_Arrival]:
        """Every notification waiting, oldest first (none left)."""
        items, self._items = self._items, []
        return items

    async def wait(self) -> None:
        """Return once a notification is waiting (at once when one is)."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter


def _uncount_recovered(rejected: dict[str, int], n: int) -> None:
    """Take ``n`` packets that were counted as refused out of order off the live count: a later packet showed
    the device clock had restarted and returned their samples (the decoder's own statistics, which replace
    the live counts at the end, no longer count them either)."""
    left = rejected.get("out_of_order", 0) - n
    if left > 0:
        rejected["out_of_order"] = left
    else:
        rejected.pop("out_of_order", None)

class SessionRunner:
    """Runs one recording session (see the module docstring).

    Args:
        config: the validated session configuration.
        store: a :class:`hipback.ingest.store.LocalStore` (``open_session``, ``add_sensor``, ``add_samples``,
            ``add_gap``, ``add_event``, ``put_results``, ``close_session``).
        backend: bleak backend choice (:func:`hipback.ingest.ble.connect.backend_for`).
        on_update: called with ``(ProcessorUpdate, stats)`` when the live output has something new.
        on_event: called with each :class:`SessionEvent` (calibration prompts, disconnects, ...).
        on_session: called with the session's :class:`SessionIdentity` once it is opened, before any data.
        stop_event: set it to end the session cleanly.
        clock: the source of "now" (default: the system's clocks; virtual sessions: simulated time).
        session_id: continue this stored session instead of opening a new one.
        connect_lock: share one lock between runners on the same adapter.
        source_finished: returns True when a virtual source has no more data (ends the session).
        process: run the live processing (False: record only).
        meta: extra session metadata for the store.
    """

    def __init__(
        self,
        config: SessionConfig,
        store: LocalStore,
        *,
        backend: Backend | None = None,
        on_update: Callable[[ProcessorUpdate, dict[str, SensorStats]], None] | None = None,
        on_event: Callable[[SessionEvent], None] | None = None,
        on_session: Callable[[SessionIdentity], None] | None = None,
        stop_event: asyncio.Event | None = None,
        clock: Clock = SYSTEM_CLOCK,
        session_id: str | None = None,
        connect_lock: asyncio.Lock | None = None,
        source_finished: Callable[[], bool] | None = None,
        process: bool = True,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.backend = backend or Backend()
        self.on_update = on_update
        self.on_event = on_event
        self.on_session = on_session
        self.stop_event = stop_event or asyncio.Event()
        self.clock = clock
        self.resume_session_id = session_id
        self.connect_lock = connect_lock or asyncio.Lock()
        self.source_finished = source_finished
        self.process = process
        self.meta = dict(meta or {})
        self.start_monotonic = 0.0  # clock.monotonic() at the session start (session time 0)
        self.links: dict[str, _Link] = {}
        self.events: list[SessionEvent] = []
        self.session_id = ""
        self.start_utc = 0.0
        self._inbox = _Inbox()
        self._stopping = False
        self._processor: SessionProcessor | None = None
        self._spool: AngleSpool | None = None  # the angle rows, stored as they come
        self._processing_error: str | None = None
        # per packet: real time to durable storage and to its live angle, session time to its angle (a
        # bounded uniform sample in sessions of more than LATENCY_SAMPLES packets)
        self._lat_stored = Reservoir(seed=1)
        self._lat_angle = Reservoir(seed=2)
        # (last sample t, arrival perf, arrival session time) of each packet waiting for its live angle
        self._angle_wait: deque[tuple[float, float, float]] = deque()
        self._lat_angle_session = Reservoir(seed=3)
        self._angles_flowing = False
        self._angle_rows = 0
        self._angle_t_end = -np.inf
        self._last_poll = 0.0
        self._calibration = _CalibrationWindow()
        self._stopped_by = ""
        self._store_failing: set[str] = set()  # placements (or write kinds) whose last store write failed
        # Store writes run on the event loop, coalesced into one transaction per sensor and interval
        # (ingest/session/writer.py).
        self._writer: StoreWriter | None = None

    # ---------------------------------------------------------------------------------------------------
    def _event(self, kind: str, message: str, placement: str | None = None, **data: Any) -> None:
        t = self.session_time() if self.start_utc else 0.0
        ev = SessionEvent(kind, message, t, placement, data)
        self.events.append(ev)
        if self.session_id:
            payload = {"message": message, "placement": placement, **data}
            sid, t_utc = self.session_id, self.start_utc + t
            if self._writer is not None:
                self._writer.call(lambda: self.store.add_event(sid, kind, payload, t_utc), "event")
            else:
                with contextlib.suppress(Exception):
                    self.store.add_event(sid, kind, payload, t_utc)
        if self.on_event is not None:
            try:
                self.on_event(ev)
            except Exception:  # a UI bug must not stop the recording
                logger.exception("on_event callback failed")

    def _on_written(self, placement: str, stored: int, offered: int, perfs: list[float], at: float) -> None:
        st = self.links[placement].stats
        st.samples += stored
        st.duplicates_ignored += offered - stored
        for p in perfs:
            self._lat_stored.add(at - p)
        if placement in self._store_failing:
            self._store_failing.discard(placement)
            logger.warning("store: writes of %s resumed", placement)

    def _on_write_error(self, what: str, placement: str | None, exc: BaseException) -> None:
        """Count every failed write; log and keep the message once per failing stretch (a full disk fails
        every 20 ms round until space returns)."""
        key = placement or what
        if placement is not None and placement in self.links:
            self.links[placement].stats.store_errors += 1
        if key in self._store_failing:
            return
        self._store_failing.add(key)
        logger.error("store: %s%s not written: %s", what, f" of {placement}" if placement else "", exc)
        if placement is not None and placement in self.links:
            self.links[placement].stats.errors.append(f"store: {exc}")

    @property
    def stats(self) -> dict[str, SensorStats]:
        return {p: link.stats for p, link in self.links.items()}

    # -- discovery ---------------------------------------------------------------------------------------
    async def _discover(self) -> dict[str, FoundSensor]:
        wanted = [(s.placement, s.kind, s.address) for s in self.config.sensors]
        found = await scan_sensors(self.config.scan_timeout_s, self.backend, want=wanted_satisfied(wanted))
        return assign_sensors(wanted, found)

    def _make_link(self, s: SensorConfig, f: FoundSensor) -> _Link:
        profile = get_profile(s.kind)
        mode = profile.mode_or_default(s.mode)
        rate = profile.nearest_rate(s.rate_hz or 100.0)
        stats = SensorStats(s.placement, s.kind, f.address, f.name)
        return _Link(s, f, profile, mode, rate, stats, profile.make_decoder(rate, mode), ClockModel(rate))

    # -- connection --------------------------------------------------------------------------------------
    def _on_disconnected(self, link: _Link) -> None:
        if self._stopping:
            return
        link.stats.connected = False
        link.stats.disconnects += 1
        link.disconnect_pending = True
        link.disconnect_t = link.stats.last_t
        link.disconnected.set()
        self._event(
            "disconnected", f"The {link.placement} sensor disconnected; reconnecting.", link.placement
        )

    async def _setup(self, link: _Link, client: BleakClient) -> None:
        """Configure one connection as the sensor's profile says: read its configuration characteristics
        (those the device has), use the payload mode it picks for the firmware and the negotiated ATT MTU,
        subscribe, send the start sequence (with the batch cap for live latency), ask for the battery and keep
        asking every ``battery.interval_s``. Raises :class:`hipback.ingest.devices.DeviceSetupError` when no
        payload mode can stream, or when one of these GATT requests fails while the link stays up (the device
        answered with an error: :meth:`_setup_request`); the connection is then retried, and the same error
        ``SETUP_FAILURES_LIMIT`` times in a row leaves the sensor out (:meth:`_supervise`)."""
        profile = link.profile
        values = {}
        for uuid in profile.config_reads:
            if client.services.get_characteristic(uuid) is not None:
                value = await self._setup_request(
                    link, client, f"reading {profile.char_label(uuid)}", client.read_gatt_char(uuid)
                )
                values[uuid] = bytes(value)
        config = profile.parse_config(values)
        self._configure(link, config, current_mtu(client))

        def on_notify(_char: Any, data: bytearray, link: _Link = link) -> None:
            self._on_notify(link, data)

        for uuid in profile.notify_uuids(link.mode):
            what = f"subscribing to {profile.char_label(uuid)}"
            await self._setup_request(link, client, what, client.start_notify(uuid, on_notify))
        for w in profile.start_sequence(link.rate_hz, link.mode, config, max_batch=self._max_batch(link)):
            await self._setup_request(
                link,
                client,
                f"writing {w.note or 'the start sequence'} to {profile.char_label(w.char_uuid)}",
                client.write_gatt_char(w.char_uuid, w.data, response=w.response),
            )
        await self._ask_battery(link, client)
        if profile.battery is not None:
            if link.battery_task is not None:
                link.battery_task.cancel()
            link.battery_task = asyncio.ensure_future(self._poll_battery(link, client))

    async def _setup_request(self, link: _Link, client: BleakClient, what: str, request: Any) -> Any:
        """Await one GATT request of the set-up (``what`` names it for the user) and return its result.

        A request that fails while the link is still up was answered by the device with an error (a
        characteristic that cannot be read, a write it refuses): it becomes a
        :class:`hipback.ingest.devices.DeviceSetupError` naming the device and the request, so that the same
        failure on every connection leaves the sensor out instead of reconnecting for ever. A failure with
        the link gone (out of range, powered off) is a connection problem and is re-raised as it is: the
        supervisor reconnects for as long as the session runs.
        """
        try:
            return await request
        except asyncio.CancelledError:
            raise
        except DeviceSetupError:
            raise
        except Exception as exc:
            await asyncio.sleep(0)  # let a disconnection that caused the failure be reported first
            if not client.is_connected or link.disconnected.is_set():
                raise
            # one line without terminal escapes (a stack may colour its error text)
            text = _ESCAPES.sub("", (str(exc).splitlines() or [""])[0]).strip()
            reason = text[:200] or type(exc).__name__
            raise DeviceSetupError(f"{link.profile.label}: {what} failed ({reason}).") from None

    def _on_notify(self, link: _Link, data: bytearray) -> None:
        """Queue one notification of ``link`` with its arrival times: session seconds (the session's clock)
        and ``time.perf_counter()`` seconds (for the latency statistics). Runs in bleak's callback, so it only
        copies and queues; :meth:`_handle_batch` does the rest."""
        self._inbox.put((link, bytes(data), self.session_time(), time.perf_counter()))

    def _configure(self, link: _Link, config: DeviceConfig, mtu: int) -> None:
        """Take the payload mode the profile picks for this connection (the configured one when it fits).

        A new mode, or the first connection (the device's ranges), gets a new decoder that goes on where the
        previous one left off (statistics, sequence numbering, clock epochs: ``Decoder.continue_from``); a
        mode other than the configured one is announced with the profile's reason, once (a reconnection that
        comes to the same choice for the same reason says nothing again).
        """
        for note in config.notes:
            logger.info("%s sensor: %s", link.placement, note)
        choice = link.profile.choose_mode(link.cfg.mode, mtu, config)
        if choice.mode != link.mode or link.config is None:
            decoder = link.profile.make_decoder(link.rate_hz, choice.mode, config)
            decoder.continue_from(link.decoder)
            link.decoder, link.mode = decoder, choice.mode
        link.config = config
        if choice.message and choice.message != link.mode_message:
            self._event("mode", choice.message, link.placement, mode=choice.mode, mtu=mtu)
        link.mode_message = choice.message

    def _max_batch(self, link: _Link) -> int | None:
        """Samples per notification for devices that batch: the sensor's ``max_batch``, else as many as
        ``live_batch_ms`` of samples (None: as many as fit)."""
        batch = link.cfg.max_batch
        if batch is None and self.config.live_batch_ms:
            batch = max(1, int(link.rate_hz * self.config.live_batch_ms / 1000.0))
        return batch

    async def _ask_battery(self, link: _Link, client: BleakClient) -> None:
        """Read the battery characteristic, or send the poll whose reply comes with the data (as the profile
        says); a failure is logged and ignored."""
        source = link.profile.battery
        if source is None:
            return
        try:
            if source.char_uuid is not None and source.parse is not None:
                if client.services.get_characteristic(source.char_uuid) is not None:
                    value = bytes(await client.read_gatt_char(source.char_uuid))
                    self._battery_level(link, source.parse(value))
            if source.poll is not None:
                poll = source.poll
                await client.write_gatt_char(poll.char_uuid, poll.data, response=poll.response)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a battery reading must never cost the connection
            logger.debug("%s sensor: battery not read: %s", link.placement, exc)

    async def _poll_battery(self, link: _Link, client: BleakClient) -> None:
        """Ask for the battery every ``battery.interval_s`` (session s) while ``client`` stays connected."""
        source = link.profile.battery
        assert source is not None
        while True:
            await self._wait_stop(source.interval_s)
            if self._stopping or self.stop_event.is_set() or not client.is_connected:
                return
            await self._ask_battery(link, client)

    def _battery_level(self, link: _Link, pct: float) -> None:
        """A battery reading (%): into the sensor's status; below ``LOW_BATTERY_PCT`` the UI is told once."""
        link.stats.battery_pct = float(pct)
        if pct <= LOW_BATTERY_PCT and not link.low_battery_warned:
            link.low_battery_warned = True
            self._event(
                "low_battery",
                f"The {link.placement} sensor's battery is low ({pct:.0f} %).",
                link.placement,
                battery_pct=float(pct),
            )

    async def _supervise(self, link: _Link) -> None:
        """Connect, stream until the link drops, reconnect with backoff; until the session stops.

        Connection failures (out of range, radio busy, a link lost during set-up) are retried for as long as
        the session runs. A set-up that fails ``SETUP_FAILURES_LIMIT`` times in a row with the same
        :class:`DeviceSetupError` (no payload mode fits, or a configuration read, subscription or start write
        that the device answers with an error while the link stays up: :meth:`_setup_request`) will not
        work on the next try either: the sensor is left out (``stats.failed``, a ``sensor_failed`` event) and,
        when no sensor is left, the session stops (``stopped_by = "sensors_failed"``).
        """
        failures = 0
        setup_failures: tuple[str, int] = ("", 0)  # the last set-up error and how often in a row
        name = f"{link.placement} ({link.profile.label})"
        # a stop request wakes this loop before the session's own loop sees it and begins stopping: the
        # link stays as it is for the shutdown's stop sequence (it used to connect the sensor again)
        while not self._stopping and not self.stop_event.is_set():
            link.disconnected.clear()
            try:
                client = await connect_one(
                    link.found.device,
                    name,
                    self.connect_lock,
                    self.backend,
                    disconnected_callback=lambda _client: self._on_disconnected(link),
                    max_attempts=3,
                    setup=lambda client: self._setup(link, client),
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                link.stats.connect_failures += 1
                msg = str(exc).split("\n")[0][:200] or type(exc).__name__
                link.stats.errors.append(msg)
                if isinstance(exc, DeviceSetupError):
                    same = setup_failures[0] == msg
                    setup_failures = (msg, setup_failures[1] + 1 if same else 1)
                    if setup_failures[1] >= SETUP_FAILURES_LIMIT:
                        self._sensor_failed(link, msg)
                        return
                self._event(
                    "connect_failed",
                    f"Could not connect the {link.placement} sensor ({msg}); retrying.",
                    link.placement,
                )
                await self._wait_stop(min(0.5 * 2 ** min(failures, 5), 10.0))
                continue
            failures = 0
            setup_failures = ("", 0)
            link.client = client
            link.stats.connected = True
            if link.ever_connected:
                link.stats.reconnects += 1
                self._event("reconnected", f"The {link.placement} sensor is back.", link.placement)
            else:
                self._event("connected", f"The {link.placement} sensor is connected.", link.placement)
            link.ever_connected = True
            if self._stopping:
                break
            stop_wait = asyncio.ensure_future(self.stop_event.wait())
            disc_wait = asyncio.ensure_future(link.disconnected.wait())
            try:
                await asyncio.wait({stop_wait, disc_wait}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop_wait.cancel()
                disc_wait.cancel()
            if not client.is_connected:
                link.client = None

    def _sensor_failed(self, link: _Link, reason: str) -> None:
        """Leave ``link``'s sensor out of the session (it cannot stream as configured); stop the session when
        no sensor is left. What it stored before stays stored."""
        link.stats.failed = reason
        self._event(
            "sensor_failed",
            f"The {link.placement} sensor cannot stream as configured ({reason.rstrip('.')}); it is left out "
            "of this session.",
            link.placement,
            reason=reason,
        )
        if all(other.stats.failed for other in self.links.values()):
            self._stopped_by = self._stopped_by or "sensors_failed"
            self.stop_event.set()

    async def _wait_stop(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_event.wait(), seconds)

    def session_time(self) -> float:
        """Seconds since the session started (on the session's clock)."""
        return self.clock.monotonic() - self.start_monotonic

    # -- data path ---------------------------------------------------------------------------------------
    async def _consume(self) -> None:
        """Handle the notifications that arrived, all that are waiting at a time."""
        while True:
            await self._inbox.wait()
            self._handle_batch(self._inbox.take_all())

    def _handle_batch(self, batch: list[_Arrival]) -> None:
        per_link: dict[str, tuple[_Link, list[tuple[DecodedSamples, np.ndarray, float]]]] = {}
        for link, data, arrival, perf in batch:
            stats = link.stats
            stats.packets += 1
            decoded = link.decoder.feed(data, arrival)
            if decoded.rejected:
                stats.rejected[decoded.rejected] += 1
            elif decoded.extra and "recovered" in decoded.extra:  # (refused on arrival, returned now)
                _uncount_recovered(stats.rejected, int(decoded.extra["recovered"]))
            if decoded.battery_pct is not None:
                self._battery_level(link, decoded.battery_pct)
            if decoded.n == 0:
                continue
            t = link.clock.map(decoded)  # session seconds, as the arrivals (a float64 array)
            placement = link.cfg.placement
            entry = per_link.get(placement)
            if entry is None:
                per_link[placement] = (link, [(decoded, t, perf)])
            else:
                entry[1].append((decoded, t, perf))
        for link, items in per_link.values():
            self._store_and_feed(link, items)
        self._poll()
        # the event detectors' due rounds after the angles were handed out, so they do not delay them
        if self._processor is not None:
            try:
                self._processor.run_events()
            except Exception as exc:  # processing must never stop the recording
                self._processing_failed(exc)

    def _record_gaps(self, link: _Link, decoded: DecodedSamples, t: np.ndarray) -> None:
        st = link.stats
        missing = decoded.missing
        clock = link.clock
        if clock.jump_count > link.jumps_seen:
            new = clock.jump_count - link.jumps_seen
            st.clock_jumps += new
            link.jumps_seen = clock.jump_count
            link.jumps_unsaid += new
            if float(t[-1]) >= link.next_jump_event_t:
                self._say_clock_jumps(link, float(t[-1]))
        arrival_missing = clock.arrival_missing
        if arrival_missing > link.arrival_missing_seen:  # devices without timestamps: estimated from arrivals
            new = arrival_missing - link.arrival_missing_seen
            link.arrival_missing_seen = arrival_missing
            if link.absorb_arrival_gap:  # the disconnect gap already counted these
                link.absorb_arrival_gap = False
            else:
                missing += new
        t_prev = st.last_t
        if link.disconnect_pending and t_prev is not None:
            if missing == 0 and decoded.device_time_s is None:
                # no sequence/timestamps: estimate from the time step until the arrival clock decides
                missing = max(0, int(round((t[0] - t_prev) * link.rate_hz)) - 1)
                link.absorb_arrival_gap = True
            link.disconnect_pending = False
            self._add_gap(link, t_prev, float(t[0]), missing, "disconnect")
        elif missing > 0 and t_prev is not None:
            self._add_gap(link, t_prev, float(t[0]), missing, "loss")
        elif link.disconnect_pending and t_prev is None:
            link.disconnect_pending = False

    def _say_clock_jumps(self, link: _Link, now: float) -> None:
        """The ``clock_jump`` event of the jumps counted since the last one (see ``CLOCK_JUMP_REPEAT_S``)."""
        n, link.jumps_unsaid = link.jumps_unsaid, 0
        first = link.next_jump_event_t == -math.inf
        link.next_jump_event_t = now + CLOCK_JUMP_REPEAT_S
        what = "jumped" if first and n == 1 else (
            f"jumped {n} times" if first else "jumped again" if n == 1 else f"jumped {n} more times")
        self._event("clock_jump", f"The {link.placement} sensor's clock {what}; times re-anchored.",
                    link.placement, jumps=n)

    def _add_gap(self, link: _Link, t0: float, t1: float, missing: int, reason: str) -> None:
        link.stats.gaps += 1
        link.stats.missing += int(missing)
        sid, start, placement = self.session_id, self.start_utc, link.placement

        def job() -> None:
            self.store.add_gap(sid, placement, t0 + start, t1 + start, int(missing), reason)

        assert self._writer is not None
        self._writer.call(job, f"gap of {placement}")

    def _store_and_feed(self, link: _Link, items: list[tuple[DecodedSamples, np.ndarray, float]]) -> None:
        st = link.stats
        for decoded, t, _perf in items:
            self._record_gaps(link, decoded, t)
            st.last_t = float(t[-1])
            if st.first_t is None:
                st.first_t = float(t[0])

        # one packet (the usual case): its own arrays, which nothing modifies, without copies
        placement = link.cfg.placement
        if len(items) == 1:
            d, t_all, perf = items[0]
            seq, quat, acc, gyr, mag, device_time = d.seq, d.quat, d.acc, d.gyr, d.mag, d.device_time_s
            perfs = [perf]
        else:
            def cat(name: str) -> np.ndarray | None:
                parts = [getattr(d, name) for d, _, _ in items]
                if any(p is None for p in parts):
                    return None
                return np.concatenate(parts)

            t_all = np.concatenate([t for _, t, _ in items])
            seq, quat, acc, gyr, mag, device_time = (
                cat(name) for name in ("seq", "quat", "acc", "gyr", "mag", "device_time_s")
            )
            perfs = [perf for _, _, perf in items]
        assert self._writer is not None
        self._writer.samples(
            placement,
            t_all,
            {"seq": seq, "quat": quat, "acc": acc, "gyr": gyr, "mag": mag, "device_time": device_time},
            perfs,
            t_offset=self.start_utc,
        )
        if self._processor is None:
            return
        kind = link.sensor_kind
        if kind == "quat":
            if quat is None:
                return
        else:
            quat = None
            if kind == "raw" and (acc is None or gyr is None):
                return
        chunk = SensorStream(
            placement=placement,
            kind=kind,
            t=t_all,
            rate_hz=link.rate_hz,
            quat=quat,
            acc=acc,
            gyr=gyr,
            mag=mag,  # as when the stored session is processed again
            seq=seq,
            device=link.profile.kind,
        )
        try:
            self._processor.feed(chunk)
        except Exception as exc:  # processing must never stop the recording
            self._processing_failed(exc)
            return
        if self._angles_flowing:
            for decoded, t, perf in items:
                self._angle_wait.append((float(t[-1]), perf, decoded.arrival_time))
        if self._calibration.state != "done":
            self._maybe_calibrate()

    def _processing_failed(self, exc: Exception) -> None:
        self._processing_error = f"{type(exc).__name__}: {exc}"
        logger.exception("live processing stopped")
        self._processor = None
        self._event(
            "processing_error",
            "Live processing stopped after an internal error; recording goes on.",
            error=self._processing_error,
        )

    def _poll(self, force: bool = False) -> None:
        if self._processor is None:
            return
        now = self.clock.monotonic()
        if not force and now - self._last_poll < POLL_INTERVAL_S:
            # between timed polls, poll only for a packet waiting for its angle, and only when there is news
            if not self._angle_wait or not self._processor.has_new_output:
                return
        self._last_poll = now
        try:
            update = self._processor.poll()
        except Exception as exc:
            self._processing_failed(exc)
            return
        n = len(update.angles)
        if n:
            if self._spool is not None:
                self._spool.add(update.angles)
            self._angle_rows += n
            self._angle_t_end = float(update.angles.t[-1])
            if not self._angles_flowing:
                self._angles_flowing = True
                self._event("angles", "Live angles are flowing.")
            now = time.perf_counter()
            # a packet is covered once the grid passed its last sample (grid rows are at most 1/rate apart)
            horizon = self._angle_t_end + 0.5 / self._processor.rate
            t_now = self.session_time()
            while self._angle_wait and self._angle_wait[0][0] <= horizon:
                _, perf, arrival = self._angle_wait.popleft()
                self._lat_angle.add(now - perf)
                self._lat_angle_session.add(t_now - arrival)
        for msg in update.messages:
            self._event("processing", msg)
        for ev in update.exercise_events:
            data = {"item": ev.item, "exercise_event": ev.kind, "exercise": getattr(ev, "exercise", None),
                    "side": getattr(ev, "side", None), "prescribed": getattr(ev, "prescribed", None),
                    "counted_so_far": getattr(ev, "counted", None)}
            if ev.result is not None:
                data.update(exercise=ev.result.exercise, side=ev.result.side, counted=ev.result.counted)
            self._event("exercise", ev.text, **data)
        news = update.messages or update.holds or update.strides or update.activity or update.exercise_events
        if self.on_update is not None and (n or news):
            try:
                self.on_update(update, self.stats)
            except Exception:
                logger.exception("on_update callback failed")

    # -- calibration -------------------------------------------------------------------------------------
    def _maybe_calibrate(self) -> None:
        cal = self._calibration
        if self.config.calibration_s <= 0 or cal.state == "done":
            return
        firsts = [link.stats.first_t for link in self.links.values()]
        if cal.state == "waiting":
            if any(f is None for f in firsts):
                return
            cal.t0 = max(float(f) for f in firsts if f is not None)
            cal.state = "running"
            secs = self.config.calibration_s
            self._event("calibration_start", f"Stand still, upright, for {secs:g} seconds.", seconds=secs)
            return
        lasts = [link.stats.last_t for link in self.links.values()]
        t1 = cal.t0 + self.config.calibration_s
        if all(last is not None and last >= t1 for last in lasts):
            cal.state = "done"
            if self._processor is not None:
                try:
                    self._processor.mark_calibration(cal.t0, t1)
                except Exception as exc:
                    self._event("processing", f"Calibration window not used: {exc}")
            self._event("calibration_done", "Calibration recorded; you can move now.", t0=cal.t0, t1=t1)

    # -- main --------------------------------------------------------------------------------------------
    def _make_processor(self) -> SessionProcessor | None:
        if not self.process:
            return None
        pres = self.config.prescription
        # the blocks run once every sensor has queued ``live_batch_ms`` of samples: the same bound as the
        # notifications' own batching, so a packet's angle waits at most for the other sensors' next packets
        # (bench/README.md, "Live path": CPU per sample against angle latency for both settings)
        batch_ms = self.config.live_batch_ms
        cfg = ProcessorConfig(
            holds_per_side=pres.holds_per_side,
            hold_s=pres.hold_s,
            max_sensor_lag_s=self.config.max_sensor_lag_s,
            keep_angles=False,  # the angle rows go to the store as they come (AngleSpool), not into memory
        )
        if batch_ms:
            cfg = dataclasses.replace(cfg, live_batch_s=batch_ms / 1000.0)
        sensors = {p: link.sensor_kind for p, link in self.links.items()}
        rates = {p: link.rate_hz for p, link in self.links.items()}
        kept = self._kept_accelerometer_offsets(sensors)
        if kept:
            initial = {p: tuple(k["offset_m_s2"]) for p, k in kept.items()}
            cfg = dataclasses.replace(cfg, acc_bias_initial=initial)
        exercises = None
        programme = getattr(self.config, "programme", None)
        if programme is not None:  # guided exercise programme (ingest/programme.py): announced, counted, cued
            from hipback.processing.exercises import ProgrammeRunner
            from hipback.processing.exercises.stream import programme_text

            exercises = ProgrammeRunner(
                programme=programme.items, worn=frozenset(sensors), catalogue=programme.catalogue
            )
            self._event("programme", programme_text(programme.items, programme.catalogue),
                        **programme.to_dict())
        try:
            processor = SessionProcessor(sensors, rates, cfg, exercises=exercises)
        except ValueError as exc:
            self._processing_error = str(exc)
            self._event("processing", f"Live processing is off: {exc}")
            return None
        for p, k in kept.items():
            when = time.strftime("%Y-%m-%d", time.gmtime(k["start_utc"]))
            mag = float(np.linalg.norm(k["offset_m_s2"]))
            self._event("accelerometer_offset", f"{p}: accelerometer offset {mag:.3f} m/s^2 kept from this "
                        f"sensor's session of {when}, subtracted from the start until this session's own "
                        "estimate is trusted", placement=p, offset_m_s2=k["offset_m_s2"],
                        from_session=k["session_id"])
        return processor

    def _kept_accelerometer_offsets(self, sensors: dict[str, str]) -> dict[str, dict]:
        """Per raw sensor, the accelerometer offset the store kept from its last session with its own estimate
        (:meth:`~hipback.ingest.store.LocalStore.accelerometer_offset`, by Bluetooth address); a store that
        cannot say leaves the sensor without one (it estimates its offset in this session as always)."""
        kept: dict[str, dict] = {}
        if self.store is None:
            return kept
        for p, link in self.links.items():
            address = getattr(getattr(link, "found", None), "address", None)
            if sensors[p] != "raw" or not address:
                continue
            try:
                known = self.store.accelerometer_offset(address)
            except Exception:  # an earlier session's unreadable summary never stops this one
                known = None
            if known is not None:
                kept[p] = known
        return kept

    def _open_session(self) -> None:
        meta = {
            "start_utc": self.start_utc,
            "source": "ble",
            "backend": self.backend.name,
            "prescription": {
                "holds_per_side": self.config.prescription.holds_per_side,
                "hold_s": self.config.prescription.hold_s,
            },
            "sensors": {
                p: {
                    "kind": link.profile.kind,
                    "address": link.found.address,
                    "mode": link.mode,
                    "rate_hz": link.rate_hz,
                }
                for p, link in self.links.items()
            },
            **self.meta,
        }
        try:
            self.session_id = self.store.open_session(
                self.config.patient_id, meta, session_id=self.resume_session_id
            )
        except ValueError as exc:  # ingest.store.StoreError: closed session, another patient's session ...
            raise ConfigError(f"the session cannot be opened: {exc}.") from None
        for p, link in self.links.items():
            self.store.add_sensor(
                self.session_id,
                p,
                link.sensor_kind,
                link.profile.kind,
                link.found.address,
                {
                    "name": link.found.name,
                    "mode": link.mode,
                    "rate_hz": link.rate_hz,
                    "rssi": link.found.rssi,
                },
            )

    async def run(self) -> SessionOutcome:
        """Run the session until stopped; always closes the session in the store."""
        found = await self._discover()
        self.start_utc, self.start_monotonic = self.clock.utc(), self.clock.monotonic()
        for s in self.config.sensors:
            self.links[s.placement] = self._make_link(s, found[s.placement])
        self._open_session()
        if self.on_session is not None:
            pres = self.config.prescription
            self.on_session(SessionIdentity(self.session_id, self.config.patient_id, self.start_utc,
                                            float(pres.hold_s), int(pres.holds_per_side)))
        self._writer = StoreWriter(
            self.store, self.session_id, asyncio.get_running_loop(), self._on_written, self._on_write_error
        )
        self._processor = self._make_processor()
        if self._processor is not None:
            self._spool = AngleSpool(self.store, self.session_id, defer=self._writer.call)
        consumer = asyncio.ensure_future(self._consume())
        supervisors = [asyncio.ensure_future(self._supervise(link)) for link in self.links.values()]
        self._event("session_start", f"Session {self.session_id} started for {self.config.patient_id}.")
        try:
            await self._wait_until_done(consumer, supervisors)
        except asyncio.CancelledError:
            await self._shutdown(consumer, supervisors, cancelled=True)  # raises CancelledError at its end
            raise
        except BaseException:
            self._stopped_by = self._stopped_by or "error"
            await asyncio.shield(self._shutdown(consumer, supervisors))
            raise
        return await self._shutdown(consumer, supervisors)

    async def _wait_until_done(
        self, consumer: asyncio.Future[Any], supervisors: Sequence[asyncio.Future[Any]]
    ) -> None:
        duration = self.config.duration_s
        while True:
            if self.stop_event.is_set():
                self._stopped_by = self._stopped_by or "stop_event"
                return
            if duration is not None and self.session_time() >= duration:
                self._stopped_by = "duration"
                return
            if self.source_finished is not None and self.source_finished():
                self._stopped_by = "source_finished"
                return
            if consumer.done():
                consumer.result()  # re-raise a consumer crash
            self._poll()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), 0.05)

    async def _shutdown(
        self,
        consumer: asyncio.Future[Any],
        supervisors: Sequence[asyncio.Future[Any]],
        cancelled: bool = False,
    ) -> SessionOutcome:
        """Stop the sensors, store what is left and close the session. Cancelled (``cancelled``, or while
        it waits for the sensors), it stops waiting for their replies and skips the results, but still stores
        everything received and closes the session, then raises ``CancelledError``; cancelled once the
        closing began, it lets the closing finish and returns the outcome as usual."""
        self._stopping = True
        self.stop_event.set()
        sensors = asyncio.ensure_future(self._stop_sensors())
        try:
            await asyncio.shield(sensors)
        except asyncio.CancelledError:
            cancelled = True
            sensors.cancel()
            with contextlib.suppress(BaseException):
                await sensors
        if cancelled:
            self._stopped_by = "cancelled"
        closing = asyncio.ensure_future(self._close(consumer, supervisors, with_results=not cancelled))
        while True:
            try:
                outcome = await asyncio.shield(closing)
                break
            except asyncio.CancelledError:  # the closing goes on: it stores what was received, then returns
                pass
        if cancelled:
            raise asyncio.CancelledError
        return outcome

    async def _stop_sensors(self) -> None:
        """The profiles' stop sequences, unsubscribing and disconnecting, each given 2 s."""
        for link in self.links.values():
            if link.battery_task is not None:
                link.battery_task.cancel()
            client = link.client
            if client is None or not client.is_connected:
                continue
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    for w in link.profile.stop_sequence(link.mode):
                        await client.write_gatt_char(w.char_uuid, w.data, response=w.response)
            # then unsubscribe (the spec's stop order); what was notified before the reply is already queued
            for uuid in link.profile.notify_uuids(link.mode):
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2.0):
                        await client.stop_notify(uuid)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await client.disconnect()
            link.stats.connected = False

    async def _close(
        self, consumer: asyncio.Future[Any], supervisors: Sequence[asyncio.Future[Any]], with_results: bool
    ) -> SessionOutcome:
        """What arrived stored, the results computed and stored (``with_results``), the session closed."""
        for task in supervisors:
            task.cancel()
        for task in supervisors:
            with contextlib.suppress(BaseException):
                await task
        # drain what arrived before the links went down
        pending = self._inbox.take_all()
        if pending:
            self._handle_batch(pending)
        consumer.cancel()
        with contextlib.suppress(BaseException):
            await consumer
        if self._writer is not None:
            await self._writer.flush()
        results = None
        empty = not any(link.stats.samples for link in self.links.values())
        if self._processor is not None and not empty and with_results:
            try:
                results = self._processor.finish()
            except Exception as exc:
                self._processing_failed(exc)
            else:
                self._poll(force=True)  # what became final at the end reaches on_update like the rest
        if self._writer is not None:
            self._writer.write_now()  # the angle rows the last polls handed over
        if results is not None:
            try:
                for kind, rows in store_rows(results, self.start_utc, angles=False).items():
                    self.store.put_results(self.session_id, kind, rows)
            except Exception as exc:
                logger.error("store: results not written: %s", exc)
                self._event("store_error", f"Results could not be stored: {exc}")
            if self._spool is not None and not self._spool.finish(results, self.start_utc):
                logger.error("store: angle series not written: %s", self._spool.failed_)
                self._event("store_error", f"The angle series could not be stored: {self._spool.failed_}")
        elif self._spool is not None and self._spool.rows_:
            # no results (processing stopped, or nothing to process): no stray rows without their header
            with contextlib.suppress(Exception):
                self.store.put_results(self.session_id, "angles", [])
        for link in self.links.values():
            rej = link.decoder.stats.rejected
            link.stats.rejected = type(link.stats.rejected)(rej)
            if link.jumps_unsaid:  # the jumps since the last event, said before the session ends
                self._say_clock_jumps(link, self.session_time())
        if empty:  # nothing to process, store or report: say so instead of closing it like any other
            self._event(
                "session_end",
                f"Session {self.session_id} ended ({self._stopped_by}) with no samples stored: no sensor "
                f"delivered data, so there are no results.",
                stats={p: link.stats.as_dict() for p, link in self.links.items()},
                empty=True,
            )
        else:
            self._event(
                "session_end",
                f"Session {self.session_id} ended ({self._stopped_by}).",
                stats={p: link.stats.as_dict() for p, link in self.links.items()},
            )
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        with contextlib.suppress(Exception):
            self.store.close_session(self.session_id)
        return SessionOutcome(
            session_id=self.session_id,
            patient_id=self.config.patient_id,
            start_utc=self.start_utc,
            end_utc=self.start_utc + self.session_time(),
            stats=self.stats,
            results=results,
            events=self.events,
            latency_stored_s=self._lat_stored.values,
            latency_angle_s=self._lat_angle.values,
            latency_angle_session_s=self._lat_angle_session.values,
            angle_rows=self._angle_rows,
            stopped_by=self._stopped_by,
            processing_error=self._processing_error,
        )


async def run_session(
    config: SessionConfig,
    store: LocalStore,
    *,
    backend: Backend | None = None,
    on_update: Callable[[ProcessorUpdate, dict[str, SensorStats]], None] | None = None,
    on_event: Callable[[SessionEvent], None] | None = None,
    stop_event: asyncio.Event | None = None,
    clock: Clock = SYSTEM_CLOCK,
    session_id: str | None = None,
    **kwargs: Any,
) -> SessionOutcome:
    """Run one session with :class:`SessionRunner` (see there for the arguments)."""
    runner = SessionRunner(
        config,
        store,
        backend=backend,
        on_update=on_update,
        on_event=on_event,
        stop_event=stop_event,
        clock=clock,
        session_id=session_id,
        **kwargs,
    )
    return await runner.run()
