"""The bleak backend on Bumble: the unchanged bleak API against a tiny GATT peripheral on a virtual link."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from hipback.ingest.ble.bumble_backend import BumbleBleakClient, BumbleBleakScanner, BumbleWorld
from hipback.ingest.ble.bumble_backend.scanner import parse_advertising_data
from hipback.ingest.ble.connect import REQUESTED_MTU, Backend, connect_one, request_mtu
from hipback.simulator.virtual_ble.peripheral import VirtualPeripheral, build_advertising_data

SVC = "6e400001-1111-4c2a-9a3e-0123456789ab"
NOTIFY = "6e400003-1111-4c2a-9a3e-0123456789ab"
WRITE = "6e400002-1111-4c2a-9a3e-0123456789ab"
OTHER_SVC = "0000180f-0000-1000-8000-00805f9b34fb"


class Tiny:
    """A peripheral with one notify/read characteristic and one write characteristic."""

    def __init__(
        self, world: BumbleWorld, name: str, address: str, service: str = SVC, max_mtu: int = 247
    ) -> None:
        self.written: list[bytes] = []
        self.notify_char = Characteristic(
            NOTIFY, Characteristic.NOTIFY | Characteristic.READ, Characteristic.READABLE, b"hello"
        )
        write_char = Characteristic(
            WRITE,
            Characteristic.WRITE | Characteristic.WRITE_WITHOUT_RESPONSE,
            Characteristic.WRITEABLE,
            CharacteristicValue(write=lambda _c, v: self.written.append(bytes(v))),
        )
        self.p = VirtualPeripheral(
            world,
            name,
            address,
            [Service(service, [self.notify_char, write_char])],
            [service],
            max_mtu=max_mtu,
        )


def run(coro_fn):
    async def main():
        world = BumbleWorld()
        try:
            with world.activate():
                await coro_fn(world)
        finally:
            await world.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_advertising_data_fits_legacy_limit_and_parses_back() -> None:
    data = build_advertising_data("hipback-01", [SVC, OTHER_SVC])
    assert len(data) <= 31
    name, uuids, _, _, _ = parse_advertising_data(data)
    assert name == "hipback-01"
    assert OTHER_SVC in uuids  # the 16-bit UUID fits; the 128-bit one does not next to this name
    short = build_advertising_data("WT1", [SVC])
    assert parse_advertising_data(short)[1] == [SVC]


def test_scan_finds_peripherals_and_filters_by_service() -> None:
    async def body(world: BumbleWorld) -> None:
        a = Tiny(world, "ImuA", "C1:00:00:00:00:01")
        b = Tiny(world, "Batt", "C1:00:00:00:00:02", service=OTHER_SVC)
        await a.p.start()
        await b.p.start()
        found = await BleakScanner.discover(timeout=0.3, return_adv=True, backend=BumbleBleakScanner)
        assert set(found) == {"C1:00:00:00:00:01", "C1:00:00:00:00:02"}
        dev, adv = found["C1:00:00:00:00:01"]
        assert adv.local_name == "ImuA" and SVC in adv.service_uuids and adv.rssi < 0
        filtered = await BleakScanner.discover(timeout=0.3, backend=BumbleBleakScanner, service_uuids=[SVC])
        assert [d.address for d in filtered] == ["C1:00:00:00:00:01"]

    run(body)


def test_connect_gatt_io_notifications_and_mtu() -> None:
    async def body(world: BumbleWorld) -> None:
        t = Tiny(world, "ImuA", "C1:00:00:00:00:01")
        await t.p.start()
        dev = await BleakScanner.find_device_by_address(
            "C1:00:00:00:00:01", timeout=1, backend=BumbleBleakScanner
        )
        assert dev is not None
        async with BleakClient(dev, backend=BumbleBleakClient) as client:
            assert client.backend_id == "BumbleBleakClient"
            assert client.mtu_size == 23  # no exchange yet: Bumble would truncate notifications to 20 bytes
            assert await request_mtu(client) == 247  # the connect path's exchange, as on BlueZ
            char = client.services.get_characteristic(NOTIFY)
            assert char is not None and set(char.properties) >= {"notify", "read"}
            assert char.max_write_without_response_size == 244
            assert bytes(await client.read_gatt_char(NOTIFY)) == b"hello"
            await client.write_gatt_char(WRITE, b"\x01\x02", response=True)
            await client.write_gatt_char(WRITE, b"\x03", response=False)
            got: list[bytes] = []
            await client.start_notify(NOTIFY, lambda _c, d: got.append(bytes(d)))
            payloads = [bytes(range(i, i + 200)) for i in range(5)]
            for p in payloads:
                assert await t.p.notify(t.notify_char, p)
            for _ in range(50):
                if len(got) == len(payloads):
                    break
                await asyncio.sleep(0.01)
            assert got == payloads
            await client.stop_notify(NOTIFY)
            assert await t.p.notify(t.notify_char, b"x") is False  # unsubscribed: nothing sent
            for _ in range(50):
                if len(t.written) == 2:
                    break
                await asyncio.sleep(0.01)
            assert t.written == [b"\x01\x02", b"\x03"]
        assert not client.is_connected

    run(body)


def test_unsolicited_disconnect_calls_back_and_the_same_client_reconnects() -> None:
    async def body(world: BumbleWorld) -> None:
        t = Tiny(world, "ImuA", "C1:00:00:00:00:01")
        await t.p.start()
        dev = await BleakScanner.find_device_by_address(
            "C1:00:00:00:00:01", timeout=1, backend=BumbleBleakScanner
        )
        gone = asyncio.Event()
        client = BleakClient(dev, disconnected_callback=lambda _c: gone.set(), backend=BumbleBleakClient)
        await client.connect()
        await t.p.drop_link(readvertise_after=0.2)
        await asyncio.wait_for(gone.wait(), 2)
        assert not client.is_connected
        with pytest.raises(BleakError):
            await client.read_gatt_char(NOTIFY)
        await client.connect()  # waits until the peripheral advertises again
        assert client.is_connected and bytes(await client.read_gatt_char(NOTIFY)) == b"hello"
        gone.clear()
        await client.disconnect()  # solicited: no callback
        await asyncio.sleep(0.05)
        assert not gone.is_set()

    run(body)


def test_retry_connector_and_serialized_connects() -> None:
    async def body(world: BumbleWorld) -> None:
        a = Tiny(world, "ImuA", "C1:00:00:00:00:01")
        b = Tiny(world, "ImuB", "C1:00:00:00:00:02")
        await a.p.start()
        await b.p.start()
        found = await BleakScanner.discover(timeout=0.3, return_adv=True, backend=BumbleBleakScanner)
        da, db = found["C1:00:00:00:00:01"][0], found["C1:00:00:00:00:02"][0]
        # one adapter, two concurrent connects: the second is refused as by BlueZ (InProgress)
        ca, cb = BleakClient(da, backend=BumbleBleakClient), BleakClient(db, backend=BumbleBleakClient)
        res = await asyncio.gather(ca.connect(), cb.connect(), return_exceptions=True)
        errors = [r for r in res if isinstance(r, Exception)]
        assert len(errors) == 1 and isinstance(errors[0], BleakError) and "InProgress" in str(errors[0])
        await ca.disconnect()
        await cb.disconnect()
        # serialized under a lock, through bleak-retry-connector: both connect
        lock = asyncio.Lock()

        async def connect(dev):
            async with lock:
                return await establish_connection(
                    BleakClient, dev, dev.name, backend=BumbleBleakClient, use_services_cache=False
                )

        clients = await asyncio.gather(connect(da), connect(db))
        assert all(c.is_connected and c.backend_id == "BumbleBleakClient" for c in clients)
        for c in clients:
            await c.disconnect()

    run(body)


def test_connect_timeout_and_refused_connection_leave_the_adapter_usable() -> None:
    async def body(world: BumbleWorld) -> None:
        t = Tiny(world, "ImuA", "C1:00:00:00:00:01")
        await t.p.start()
        with pytest.raises(TimeoutError):
            await BleakClient("C1:00:00:00:00:09", backend=BumbleBleakClient, timeout=0.3).connect()
        t.p.refuse_next = 1
        client = BleakClient("C1:00:00:00:00:01", backend=BumbleBleakClient)
        with pytest.raises(BleakError):
            await client.connect()
        assert t.p.connections_refused == 1
        await client.connect()  # the adapter still works after the timeout and the refusal
        assert client.is_connected
        await client.disconnect()

    run(body)


def test_connect_path_requests_the_mtu_and_the_peripheral_limit_holds() -> None:
    async def body(world: BumbleWorld) -> None:
        small = Tiny(world, "ImuS", "C1:00:00:00:00:03", max_mtu=64)
        await small.p.start()
        dev = await BleakScanner.find_device_by_address(
            "C1:00:00:00:00:03", timeout=1, backend=BumbleBleakScanner
        )
        assert dev is not None
        seen: list[int] = []

        async def setup(client: BleakClient) -> None:
            seen.append(client.mtu_size)

        backend = Backend("bumble", BumbleBleakClient, BumbleBleakScanner, {"bumble_world": world})
        client = await connect_one(dev, "ImuS", asyncio.Lock(), backend, setup=setup)
        try:
            assert REQUESTED_MTU == 247 and seen == [64]  # asked for 247; the peripheral accepts 64
            got: list[bytes] = []
            await client.start_notify(NOTIFY, lambda _c, d: got.append(bytes(d)))
            assert await small.p.notify(small.notify_char, bytes(range(63)))  # a DOT long payload
            for _ in range(50):
                if got:
                    break
                await asyncio.sleep(0.01)
            assert got == [bytes(range(61))]  # cut to ATT_MTU - 3, silently, as real stacks do
            assert await request_mtu(client) == 64  # one exchange per link: asking again changes nothing
        finally:
            await client.disconnect()
        assert await request_mtu(client) == 23  # a failing exchange (no link) is logged, never raised

    run(body)


@pytest.mark.parametrize("debug", ["off", "gatt", "host", "controller"])
def test_notifications_are_the_same_with_bumbles_debug_logging_on_or_off(
    debug: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With debug logging off the virtual radio sends and receives notifications on its own short path (no
    debug string per PDU; a peripheral's notification straight onto the link; ACL data and completed-packets
    events handed between host and controller as objects); with Bumble's GATT, host or controller debug
    logging on, through Bumble's own code and bytes.
    Every way delivers the same bytes, cut to ATT_MTU - 3, in order, also many more notifications than the
    controller has buffers for (those wait for its completed-packets events)."""
    import logging

    loggers = {"off": (), "gatt": ("bumble.gatt_server", "bumble.gatt_client"), "host": ("bumble.host",),
               "controller": ("bumble.controller",)}[debug]
    for name in loggers:
        caplog.set_level(logging.DEBUG, logger=name)

    async def body(world: BumbleWorld) -> None:
        small = Tiny(world, "ImuD", "C1:00:00:00:00:04", max_mtu=64)
        await small.p.start()
        dev = await BleakScanner.find_device_by_address(
            "C1:00:00:00:00:04", timeout=1, backend=BumbleBleakScanner
        )
        assert dev is not None
        backend = Backend("bumble", BumbleBleakClient, BumbleBleakScanner, {"bumble_world": world})
        client = await connect_one(dev, "ImuD", asyncio.Lock(), backend)
        try:
            got: list[bytes] = []
            await client.start_notify(NOTIFY, lambda _c, d: got.append(bytes(d)))
            payloads = [bytes(range(i, i + n)) for i, n in ((0, 1), (1, 20), (2, 61), (3, 62), (4, 200))]
            payloads += [i.to_bytes(2, "little") * 10 for i in range(60)]
            for p in payloads:
                assert await small.p.notify(small.notify_char, p)
            for _ in range(100):
                if len(got) == len(payloads):
                    break
                await asyncio.sleep(0.01)
            assert got == [p[:61] for p in payloads]
        finally:
            await client.disconnect()

    run(body)
    gatt = ("bumble.gatt_server", "bumble.gatt_client")
    notify_lines = [r for r in caplog.records if r.name in gatt and "GATT Notify from" in r.getMessage()]
    assert len(notify_lines) == (65 if debug == "gatt" else 0)
    packet_lines = [r for r in caplog.records if r.name in ("bumble.host", "bumble.controller")
                    and "ACL" in r.getMessage()]
    assert (len(packet_lines) >= 65) == (debug in ("host", "controller"))


def test_the_answer_to_a_cancelled_command_is_logged_at_debug_level_not_as_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ctrl-C while an HCI command is on its way through the virtual controller: the controller's late answer
    finds nobody waiting. Bumble warns (a stray line after the command line's one sentence on Ctrl-C); the
    virtual link's host logs it at debug level. The semaphore is handled as Bumble does: the next command
    goes through."""
    import contextlib
    import logging

    from bumble import hci

    async def body(world: BumbleWorld) -> None:
        central = await world.central()
        task = asyncio.ensure_future(central.host.send_command(hci.HCI_Read_BD_ADDR_Command()))
        await asyncio.sleep(0)  # sent; the answer is on its way
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)  # the answer arrives
        answer = await asyncio.wait_for(central.host.send_command(hci.HCI_Read_BD_ADDR_Command()), 5)
        assert answer.return_parameters.status == hci.HCI_SUCCESS

    caplog.set_level(logging.WARNING, logger="bumble.host")
    caplog.set_level(logging.DEBUG, logger="hipback.ingest.ble.bumble_backend.world")  # (and the handler's)
    run(body)
    late = [r for r in caplog.records if "cancelled HCI command" in r.getMessage()]
    assert len(late) == 1 and late[0].levelno == logging.DEBUG
    assert not [r for r in caplog.records if r.name.startswith("bumble") and r.levelno >= logging.WARNING]
