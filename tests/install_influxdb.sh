#!/usr/bin/env bash
# Makes sure `influxd` (InfluxDB 1.x, Debian package `influxdb`) is available for the tests.
# Installs it with apt when missing and running as root; otherwise says how to install it.
set -euo pipefail
if command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ]; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "influxd not found: installing the Debian package 'influxdb' ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb >/dev/null
    # The package may start a system service; the tests start their own server.
    (systemctl stop influxdb || service influxdb stop || true) >/dev/null 2>&1
    exit 0
fi
echo "influxd (InfluxDB 1.x) is required for the tests: run 'sudo apt-get install influxdb' and try again." >&2
exit 1
