"""hipback: wearable IMU monitoring of hip extension, pelvic tilt and lumbar compensation.

The distribution installs one import package with three subpackages, kept in the repository's top-level
folders:

- :mod:`hipback.processing` (``processing/``): pure computation on arrays, the public API for researchers;
- :mod:`hipback.ingest` (``ingest/``): every boundary (BLE, files, local store, InfluxDB, CLI);
- :mod:`hipback.simulator` (``simulator/``): virtual patients and virtual sensors.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hipback")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
