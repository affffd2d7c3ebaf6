"""Where InfluxDB is and how to log in, from the environment (secrets never printed or logged).

Environment variables:

- ``HIPBACK_INFLUX_URL``: base URL, e.g. ``https://influx.example.org:8086`` (unset: no InfluxDB).
- ``HIPBACK_INFLUX_DATABASE``: database (1.x) or DBRP-mapped bucket (2.x/3.x); default ``hipback``.
- ``HIPBACK_INFLUX_RETENTION_POLICY``: optional retention policy for ``/write?rp=``.
- ``HIPBACK_INFLUX_TOKEN`` or ``HIPBACK_INFLUX_TOKEN_FILE``: API token (2.x/3.x), sent as
  ``Authorization: Token ...``.
- ``HIPBACK_INFLUX_USER`` with ``HIPBACK_INFLUX_PASSWORD`` or ``HIPBACK_INFLUX_PASSWORD_FILE``: 1.x user
  (sent as HTTP basic auth, never in the URL).
- ``HIPBACK_INFLUX_TLS_VERIFY``: ``true`` (default), ``false`` (off, with a warning) or the path of a CA
  bundle.

Secret files must not be readable by group or others (``chmod 600``); a looser file is refused with a
:class:`~hipback.ingest.errors.ConfigError`, like ssh does with private keys.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hipback.ingest.errors import ConfigError

ENV_PREFIX = "HIPBACK_INFLUX_"


class Secret:
    """A string that does not show itself in ``str``, ``repr``, f-strings or logs; :meth:`reveal` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple:  # pickling would write the value somewhere: refuse
        raise TypeError("a Secret cannot be pickled")


def read_secret_file(path: str | Path, what: str) -> Secret:
    """Read a secret from a file that only its owner can read (one line, surrounding whitespace removed)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        raise ConfigError(f"the {what} file {p} does not exist or cannot be read") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the {what} file {p} is accessible by other users (mode {stat.S_IMODE(st.st_mode):o}); "
            f"run `chmod 600 {p}`"
        )
    try:
        value = p.read_text().strip()
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"the {what} file {p} cannot be read as text") from None
    if not value:
        raise ConfigError(f"the {what} file {p} is empty")
    return Secret(value)


@dataclass(frozen=True)
class InfluxSettings:
    """Connection settings; secrets are :class:`Secret` objects so that printing settings shows no secret."""

    url: str
    database: str = "hipback"
    retention_policy: str | None = None
    token: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    verify: bool | str = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> InfluxSettings | None:
        """Settings from ``HIPBACK_INFLUX_*`` variables, or None when ``HIPBACK_INFLUX_URL`` is not set."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name, "").strip()
            return value or None

        url = get("URL")
        if url is None:
            return None
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{ENV_PREFIX}URL must start with http:// or https://")

        token = _secret(get, "TOKEN", "API token")
        password = _secret(get, "PASSWORD", "password")
        username = get("USER")
        if token is not None and (username or password):
            raise ConfigError(f"set either {ENV_PREFIX}TOKEN or {ENV_PREFIX}USER/PASSWORD, not both")
        if password is not None and not username:
            raise ConfigError(f"{ENV_PREFIX}PASSWORD is set but {ENV_PREFIX}USER is not")

        verify_text = get("TLS_VERIFY")
        verify: bool | str = True
        if verify_text is not None:
            low = verify_text.lower()
            if low in {"1", "true", "yes", "on"}:
                verify = True
            elif low in {"0", "false", "no", "off"}:
                verify = False
            elif Path(verify_text).is_file():
                verify = verify_text
            else:
                raise ConfigError(
                    f"{ENV_PREFIX}TLS_VERIFY must be true, false or the path of a CA bundle file"
                )
        return cls(
            url=url.rstrip("/"),
            database=get("DATABASE") or "hipback",
            retention_policy=get("RETENTION_POLICY"),
            token=token,
            username=username,
            password=password,
            verify=verify,
        )


def _secret(get, name: str, what: str) -> Secret | None:
    value, path = get(name), get(name + "_FILE")
    if value is not None and path is not None:
        raise ConfigError(f"set either {ENV_PREFIX}{name} or {ENV_PREFIX}{name}_FILE, not both")
    if path is not None:
        return read_secret_file(path, what)
    return Secret(value) if value is not None else None
