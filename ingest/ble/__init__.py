"""Bluetooth LE access for hipback: bleak everywhere, with an optional Bumble backend for virtual sensors.

- :mod:`hipback.ingest.ble.connect`: scanning, serial connects under one lock, reconnect with backoff.
- :mod:`hipback.ingest.ble.bumble_backend`: a user-supplied bleak backend over a Bumble ``LocalLink`` (tests,
  demo).

Production code always goes through ``bleak.BleakScanner`` / ``bleak.BleakClient``; the Bumble backend is
chosen only when the configuration asks for it (``ble_backend = "bumble"``) or a caller passes it.
"""
