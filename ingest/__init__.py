"""The hipback service: everything that touches the outside world (BLE, files, stores, InfluxDB, CLI)."""
