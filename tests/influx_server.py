"""Start and stop a private ``influxd`` (InfluxDB 1.x) for tests and bench scripts.

:class:`InfluxServer` writes a throw-away configuration (meta/data/wal directories under its own
folder, HTTP on ``127.0.0.1:<free port>``, the RPC bind-address on another free loopback port,
reporting and the ``_internal`` monitor disabled, logging quiet), starts ``influxd -config ...``,
waits until ``GET /ping`` answers 204 and stops the process again (terminate, then kill).

It is a context manager and can also be stopped and started again on the same data directory and
port (``stop()`` / ``start()``), which the outage tests use::

    with InfluxServer() as server:
        httpx.post(f"{server.url}/query", params={"q": "CREATE DATABASE x"})

The pytest fixtures ``influxd`` (session) and ``influx_db`` (a fresh database per test) live in
``tests/conftest.py`` and use this class. Bench scripts import it as ``tests.influx_server``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx

MISSING_MESSAGE = (
    "influxd not found: run `make test` (installs the Debian package influxdb) or `apt-get install influxdb`"
)


class InfluxdNotFound(RuntimeError):
    """The ``influxd`` binary is not installed."""


def find_influxd() -> str:
    """Path of the ``influxd`` binary (``HIPBACK_INFLUXD`` overrides); raises :class:`InfluxdNotFound`."""
    path = os.environ.get("HIPBACK_INFLUXD") or shutil.which("influxd") or "/usr/bin/influxd"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise InfluxdNotFound(MISSING_MESSAGE)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  index-version = "inmem"

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = {auth_enabled}
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[continuous_queries]
  enabled = false

[retention]
  enabled = false

[shard-precreation]
  enabled = false
"""


class InfluxServer:
    """A private ``influxd`` on free loopback ports with its own data directory.

    ``root``: folder for config, data and the log (a new temporary folder when None; removed on
    :meth:`close` only when it was created here). ``auth_enabled`` turns on 1.x authentication (the
    caller then creates an admin user through :meth:`query` before anything else).
    """

    def __init__(self, root: Path | str | None = None, *, auth_enabled: bool = False,
                 start_timeout_s: float = 30.0) -> None:
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="hipback-influxd-")) if root is None else Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.auth_enabled = auth_enabled
        self.start_timeout_s = start_timeout_s
        self.http_port = free_port()
        self.rpc_port = free_port()
        while self.rpc_port == self.http_port:
            self.rpc_port = free_port()
        self.config_path = self.root / "influxdb.conf"
        self.log_path = self.root / "influxd.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: httpx.Client | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP API, e.g. ``http://127.0.0.1:41234``."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> None:
        self.config_path.write_text(
            _CONFIG.format(
                root=self.root.as_posix(),
                http_port=self.http_port,
                rpc_port=self.rpc_port,
                auth_enabled="true" if self.auth_enabled else "false",
            )
        )

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log (for error messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def start(self) -> InfluxServer:
        """Start ``influxd`` (again, on the same ports and data) and wait until ``/ping`` answers 204."""
        if self.running:
            return self
        binary = find_influxd()
        self._write_config()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        try:
            self._proc = subprocess.Popen(
                [binary, "-config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise RuntimeError(
                    f"influxd exited with code {code} while starting; log tail:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/ping", timeout=1.0).status_code == 204:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"influxd did not answer /ping with 204 within {self.start_timeout_s:.0f} s "
                    f"on {self.url}; log tail:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``timeout_s``. Data stay for a later :meth:`start`."""
        proc, self._proc = self._proc, None
        if self._client is not None:
            self._client.close()
            self._client = None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)

    def close(self) -> None:
        """Stop and remove the data directory when this object created it."""
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> InfluxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- small helpers for tests ---------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        """A keep-alive HTTP client for this server (base URL set)."""
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=30.0)
        return self._client

    def write(self, text: str | bytes, database: str, precision: str = "ns") -> None:
        """Write line protocol through ``POST /write`` (raises on anything but 204)."""
        resp = self.client.post("/write", params={"db": database, "precision": precision},
                                content=text.encode() if isinstance(text, str) else text)
        if resp.status_code != 204:
            raise RuntimeError(f"/write answered {resp.status_code}: {resp.text.strip()}")

    def query(self, q: str, database: str | None = None, **params: str) -> dict:
        """Run InfluxQL through ``POST /query`` and return the decoded JSON (raises on HTTP errors)."""
        data = {"q": q, **params}
        if database:
            data["db"] = database
        resp = self.client.post("/query", data=data)
        resp.raise_for_status()
        body = resp.json()
        for result in body.get("results", []):
            if "error" in result:
                raise RuntimeError(f"InfluxQL error for {q!r}: {result['error']}")
        return body

    def create_database(self, name: str | None = None) -> str:
        """Create a database (uniquely named when ``name`` is None) and return its name."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self.query(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.query(f'DROP DATABASE "{name}"')
