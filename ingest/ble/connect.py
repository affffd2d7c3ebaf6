"""Scanning for supported sensors and connecting to them one at a time, with bleak and bleak-retry-connector.

Rules (``docs/devices.md``, "BLE practice"): scan once, pass ``BLEDevice`` objects (never bare addresses) to
the client, serialize connects under one :class:`asyncio.Lock` per adapter, stream concurrently, reconnect
through ``bleak_retry_connector.establish_connection`` with backoff, and ask for a larger ATT MTU after each
connect (:func:`request_mtu`): stacks silently cut notifications to ATT_MTU - 3 bytes.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak_retry_connector import establish_connection

from hipback.ingest.devices import DeviceProfile, match_profile
from hipback.ingest.errors import ConfigError, HipbackError

logger = logging.getLogger(__name__)

#: ATT MTU hipback asks for: 244-byte notifications, what stacks with the LE Data Length Extension use.
REQUESTED_MTU = 247
#: ATT MTU of a link before any exchange (20-byte notifications).
DEFAULT_MTU = 23


class SensorNotFoundError(HipbackError):
    """A configured sensor did not show up in the scan."""


class BluetoothUnavailableError(HipbackError):
    """The computer's Bluetooth stack cannot be used (no adapter, BlueZ/D-Bus not running, no permission)."""


@dataclass
class Backend:
    """Which bleak backend classes to use (``None`` = the platform's own) and extra client/scanner kwargs."""

    name: str = "bleak"
    client: type | None = None
    scanner: type | None = None
    kwargs: Mapping[str, Any] | None = None

    def client_kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.kwargs or {})
        if self.client is not None:
            out["backend"] = self.client
        return out

    def scanner_kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.kwargs or {})
        if self.scanner is not None:
            out["backend"] = self.scanner
        return out


def backend_for(name: str, bumble_world: Any = None) -> Backend:
    """The backend named in a config: ``bleak`` (OS stack) or ``bumble`` (virtual link; needs a world)."""
    if name == "bleak":
        return Backend("bleak")
    if name == "bumble":
        from hipback.ingest.ble.bumble_backend import BumbleBleakClient, BumbleBleakScanner

        kwargs = {"bumble_world": bumble_world} if bumble_world is not None else {}
        return Backend("bumble", BumbleBleakClient, BumbleBleakScanner, kwargs)
    raise ConfigError(f"ble_backend must be 'bleak' or 'bumble', not {name!r}.")


@dataclass
class FoundSensor:
    """A supported sensor seen in a scan."""

    device: BLEDevice
    profile: DeviceProfile
    name: str | None
    rssi: int

    @property
    def address(self) -> str:
        return self.device.address

    @property
    def kind(self) -> str:
        return self.profile.kind


async def scan_sensors(
    timeout: float,
    backend: Backend | None = None,
    *,
    want: Callable[[dict[str, FoundSensor]], bool] | None = None,
) -> dict[str, FoundSensor]:
    """Scan for up to ``timeout`` s and return supported sensors by address (strongest RSSI kept).

    ``want`` may end the scan early: it gets the sensors found so far and returns True when satisfied.
    """
    backend = backend or Backend()
    found: dict[str, FoundSensor] = {}
    done = asyncio.Event()

    def on_adv(device: BLEDevice, adv: AdvertisementData) -> None:
        profile = match_profile(adv.local_name or device.name, adv.service_uuids)
        if profile is None:
            return
        found[device.address] = FoundSensor(device, profile, adv.local_name or device.name, adv.rssi)
        if want is not None and want(found):
            done.set()

    try:
        async with BleakScanner(on_adv, **backend.scanner_kwargs()):
            try:
                await asyncio.wait_for(done.wait(), timeout)
            except TimeoutError:
                pass
    except HipbackError:
        raise
    except Exception as exc:  # no adapter, BlueZ or D-Bus not running, permissions ...
        raise BluetoothUnavailableError(scan_failure(exc)) from None
    return found


def scan_failure(exc: BaseException) -> str:
    """The one sentence for a scan the operating system's Bluetooth stack refused (``exc`` from bleak)."""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if sys.platform.startswith("linux") and isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        # bleak's BlueZ backend talks to bluetoothd over the D-Bus system bus; its socket is missing or shut
        return (f"Bluetooth scanning failed ({first}): the system's Bluetooth service is not reachable; "
                "check that D-Bus and BlueZ (bluetoothd) are installed and running, and that an adapter is "
                "present.")
    if isinstance(exc, PermissionError):
        return (f"Bluetooth scanning failed ({first}): this user may not use Bluetooth; see "
                "docs/deployment.md (\"The gateway's Bluetooth\") for the group it needs.")
    return f"Bluetooth scanning failed ({first}); check that Bluetooth is on and usable by this user."


def assign_sensors(
    wanted: Sequence[tuple[str, str, str | None]], found: Mapping[str, FoundSensor]
) -> dict[str, FoundSensor]:
    """Match ``(placement, kind, address|None)`` wishes to scanned sensors: by address first, then by kind.

    Raises :class:`SensorNotFoundError` naming the first sensor that is missing.
    """
    out: dict[str, FoundSensor] = {}
    used: set[str] = set()
    for placement, kind, address in wanted:
        if address is None:
            continue
        f = found.get(address.upper())
        if f is None:
            raise SensorNotFoundError(
                f"the {placement} sensor ({kind}, {address}) was not found in the scan; "
                "is it charged, switched on and not connected to another device?"
            )
        if f.kind != kind:
            raise SensorNotFoundError(f"the {placement} sensor at {address} is a {f.kind}, not a {kind}.")
        out[placement] = f
        used.add(f.address)
    for placement, kind, address in wanted:
        if address is not None:
            continue
        candidates = sorted(
            (f for f in found.values() if f.kind == kind and f.address not in used), key=lambda f: -f.rssi
        )
        if not candidates:
            raise SensorNotFoundError(
                f"no free {kind} sensor was found in the scan for the {placement}; "
                "is it charged, switched on and in range?"
            )
        out[placement] = candidates[0]
        used.add(candidates[0].address)
    return out


def wanted_satisfied(
    wanted: Sequence[tuple[str, str, str | None]],
) -> Callable[[dict[str, FoundSensor]], bool]:
    """A ``want`` predicate for :func:`scan_sensors` that is true once every wish can be assigned."""

    def check(found: dict[str, FoundSensor]) -> bool:
        try:
            assign_sensors(wanted, found)
        except SensorNotFoundError:
            return False
        return True

    return check


def current_mtu(client: BleakClient) -> int:
    """The ATT MTU of ``client``'s link as the backend knows it (23 when it does not)."""
    with warnings.catch_warnings():  # BlueZ warns that it reports 23 until the MTU was acquired
        warnings.simplefilter("ignore")
        try:
            return int(client.mtu_size)
        except Exception:  # not connected, or a backend without the property
            return DEFAULT_MTU


async def request_mtu(client: BleakClient) -> int:
    """Get a larger ATT MTU where the platform allows it, and return the MTU of the link.

    bleak has no public call for it. On BlueZ the kernel exchanges the MTU when connecting, but bleak reports
    23 until the backend's ``_acquire_mtu()`` has read it; Windows and macOS exchange it themselves and report
    it through ``mtu_size``. hipback's Bumble backend has ``_acquire_mtu()`` too, which performs the ATT
    exchange, so this path runs in the virtual sessions. A failure leaves the MTU as it was (logged): the
    profile then picks a payload mode that fits (:meth:`hipback.ingest.devices.DeviceProfile.choose_mode`).
    """
    acquire = getattr(getattr(client, "_backend", None), "_acquire_mtu", None)
    if acquire is not None:
        try:
            await acquire()
        except Exception as exc:  # e.g. no characteristic with AcquireWrite/AcquireNotify on BlueZ
            logger.warning(
                "%s: the ATT MTU could not be acquired (%s); using %d",
                client.address,
                exc,
                current_mtu(client),
            )
    return current_mtu(client)


async def connect_one(
    device: BLEDevice,
    name: str,
    lock: asyncio.Lock,
    backend: Backend,
    *,
    disconnected_callback: Callable[[BleakClient], None] | None = None,
    max_attempts: int = 4,
    setup: Callable[[BleakClient], Any] | None = None,
) -> BleakClient:
    """Connect, ask for a larger ATT MTU (:func:`request_mtu`) and run ``setup(client)`` while holding
    ``lock``: one LE connect at a time per adapter.

    Uses ``bleak_retry_connector.establish_connection`` (retries with backoff inside); a failing MTU request
    is logged and the link kept; a failing ``setup`` disconnects and re-raises.
    """
    async with lock:
        client = await establish_connection(
            BleakClient,
            device,
            name,
            disconnected_callback=disconnected_callback,
            max_attempts=max_attempts,
            use_services_cache=False,
            **backend.client_kwargs(),
        )
        await request_mtu(client)
        if setup is not None:
            try:
                await setup(client)
            except BaseException:
                try:
                    await client.disconnect()
                except Exception:  # the link may be gone already
                    pass
                raise
        return client
