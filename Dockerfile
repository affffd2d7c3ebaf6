# The hipback ingest service (CLI "hipback"): BLE sensors -> processing -> local store -> InfluxDB.
#
# Bluetooth: bleak talks to the HOST's BlueZ daemon over the D-Bus system bus, so the container needs
# the host's D-Bus socket (bind-mount /run/dbus, read-only is enough) and a D-Bus policy on the host
# that lets this user call org.bluez (BlueZ's default policy allows it; otherwise add the user to the
# host's "bluetooth" group by numeric gid with `group_add`). No BlueZ inside the image, no privileges
# needed for that path. Only a raw HCI transport (e.g. Bumble on /dev/hci* or a USB dongle) would need
# `privileged: true` or `cap_add: [NET_ADMIN, NET_RAW]` and `network_mode: host`.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY hipback ./hipback
COPY ingest ./ingest
COPY processing ./processing
COPY simulator ./simulator
RUN pip install . \
    && useradd --system --uid 10001 --create-home --home-dir /home/hipback hipback \
    && mkdir -p /data && chown hipback /data

USER hipback
WORKDIR /data
VOLUME ["/data"]
ENTRYPOINT ["hipback"]
CMD ["--help"]
