"""Writes points to InfluxDB through the v1 HTTP API (``POST /write``), served by InfluxDB 1.x, 2.x
(v1 compatibility API) and 3.x.

- Line protocol lines (from :mod:`hipback.ingest.influx.lineprotocol`, usually read back from the local
  store's outbox by :mod:`hipback.ingest.sync`) are sent by :meth:`InfluxWriter.send_lines`, now, in
  gzip-compressed batches of ``batch_size`` lines, one request at a time. There is no buffer: a line counts
  as delivered only when the server has answered 2xx for its batch, which is what the outbox relies on.
- gzip: on by default (line protocol shrinks about 8x, which is what counts on a real network); on a
  loopback connection it costs CPU and ``gzip=False`` is faster.
- Retries with exponential backoff and jitter on timeouts, connection errors, 5xx and 429 (a
  ``Retry-After`` header is honoured); after ``max_retries`` retries a :class:`DatabaseError` says in
  one sentence that the server cannot be reached (the caller keeps the lines: nothing is lost).
- A 4xx that says the data are bad (400, 413, 422, ...) is never retried as it is: the batch is split
  in halves to isolate the bad lines (good halves are written), and the bad lines are set aside as
  :class:`RejectedBatch` objects (``writer.rejected``, the ``on_rejected`` callback, and one plain log
  sentence with the server's message). Replaying lines is harmless (same series and timestamp
  overwrite the same point), which is what makes the split safe.
- 401, 403 and 404 are configuration problems (credentials, permissions, missing database), not bad
  data: they raise :class:`DatabaseError` saying what to do.
- Auth: none; ``username``/``password`` (InfluxDB 1.x, and 2.x v1 API with a token as password) as
  HTTP basic auth, never in the URL; ``token`` as ``Authorization: Token ...`` (2.x/3.x).
- TLS is verified by default; ``verify=False`` must be asked for and logs and warns every time.

Secrets never appear in ``repr``, log records or exception messages (exceptions from httpx, which carry
the request with its headers, are not chained).
"""

from __future__ import annotations

import email.utils
import gzip as gzip_module
import json
import logging
import math
import random
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpcore
import httpx

from hipback.ingest.errors import ConfigError, DatabaseError
from hipback.ingest.influx.lineprotocol import PRECISION_DIVISOR
from hipback.ingest.influx.settings import InfluxSettings, Secret

log = logging.getLogger("hipback.influx")

#: Answers to a write that are worth trying again (besides every 5xx).
_RETRY_STATUS = frozenset({408, 429})
_CONFIG_STATUS = frozenset({401, 403, 404})
#: Answers that say the lines themselves are bad (parse error, type conflict, too large, partly rejected):
#: the batch is split to isolate the bad lines. Any other 4xx is not an answer InfluxDB gives to a write.
_DATA_STATUS = frozenset({400, 413, 422})
#: At most this much of an answer is read (InfluxDB's error messages are short; a bigger answer is not
#: InfluxDB's and is not kept in memory).
_MAX_ANSWER_BYTES = 64 * 1024
#: Extra requests one refused batch may cost to isolate its bad lines (about 2 log2(n) for one bad line).
_BISECT_BUDGET = 64


class _Deadline(threading.local):
    """When the current request must be over (``time.monotonic()``), per thread; None: no deadline."""

    at: float | None = None

    def clamp(self, timeout: float | None, exc: type[Exception]) -> float | None:
        if self.at is None:
            return timeout
        left = self.at - time.monotonic()
        if left <= 0:
            raise exc("the request took longer than its timeout")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every socket operation ends at the request's deadline, so that a server that
    answers one byte at a time cannot hold a request longer than the timeout (httpx's own timeouts
    apply to each read, not to the whole answer)."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner, self._deadline = inner, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname,
                                      self._deadline.clamp(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, deadline: _Deadline) -> None:
        self._inner, self._deadline = inner, deadline

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None, socket_options: Any = None) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, self._deadline.clamp(timeout, httpcore.ConnectTimeout),
                                         local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(
            path, self._deadline.clamp(timeout, httpcore.ConnectTimeout), socket_options)
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _transport(verify: bool | ssl.SSLContext, deadline: _Deadline) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(verify=verify, limits=httpx.Limits(max_keepalive_connections=4))
    pool = getattr(transport, "_pool", None)
    if pool is None or not hasattr(pool, "_network_backend"):  # httpx/httpcore changed: say so, loudly
        raise RuntimeError("this httpx/httpcore version cannot bound a request by its timeout")
    pool._network_backend = _DeadlineBackend(pool._network_backend, deadline)
    return transport


@dataclass
class RejectedBatch:
    """Lines the server refused as bad data, with its status and message (kept for inspection)."""

    lines: list[str]
    status: int
    message: str
    indices: list[int] | None = None  # positions in the list given to :meth:`InfluxWriter.send_lines`


@dataclass
class SendResult:
    """Outcome of :meth:`InfluxWriter.send_lines`: how many lines were accepted, and what was refused."""

    accepted: int
    rejected: list[RejectedBatch]
    requests: int

    @property
    def rejected_indices(self) -> list[int]:
        return sorted(i for r in self.rejected for i in (r.indices or []))


def _strip_userinfo(url: str) -> tuple[str, str | None, str | None]:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url.rstrip("/"), None, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    plain = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)).rstrip("/")
    password = unquote(parts.password) if parts.password is not None else None
    return plain, unquote(parts.username or ""), password


class InfluxWriter:
    """Batched, retrying line-protocol sender for one database (see the module docstring)."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        token: str | Secret | None = None,
        username: str | None = None,
        password: str | Secret | None = None,
        verify: bool | str = True,
        retention_policy: str | None = None,
        gzip: bool = True,
        gzip_level: int = 1,
        batch_size: int = 5000,
        timeout_s: float = 10.0,
        max_retries: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        on_rejected: Callable[[RejectedBatch], None] | None = None,
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError("batch_size must be at least 1")
        if not url.startswith(("http://", "https://")):
            raise ValueError("the InfluxDB URL must start with http:// or https://")
        url, url_user, url_password = _strip_userinfo(url)
        if url_user is not None:  # credentials in the URL move into basic auth and out of every message
            username = username or url_user
            password = password or url_password
        if token is not None and (username or password):
            raise ValueError("give either a token or a username/password, not both")
        self.url = url
        self.database = database
        self.retention_policy = retention_policy
        self.gzip = gzip
        self.gzip_level = gzip_level
        self.batch_size = int(batch_size)
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        self.on_rejected = on_rejected
        self.rejected: list[RejectedBatch] = []
        self.last_error: DatabaseError | None = None
        self.stats = {"lines_sent": 0, "requests": 0, "retries": 0, "lines_rejected": 0}

        self._secrets = [s.reveal() if isinstance(s, Secret) else s for s in (token, password) if s]
        # identity: an answer is read raw, so a compressed one cannot expand in memory
        headers = {"User-Agent": "hipback", "Accept-Encoding": "identity"}
        auth: httpx.BasicAuth | None = None
        if token is not None:
            headers["Authorization"] = "Token " + (token.reveal() if isinstance(token, Secret) else token)
            self.auth_kind = "token"
        elif username:
            pw = password.reveal() if isinstance(password, Secret) else (password or "")
            auth = httpx.BasicAuth(username, pw)
            self.auth_kind = "user"
        else:
            self.auth_kind = "none"
        if verify is False:
            message = (f"TLS certificate verification is turned off for {self.url}: anyone on the path "
                       "can read and change what is sent")
            if url.startswith("https://"):
                warnings.warn(message, stacklevel=2)
                log.warning(message)
        tls: bool | ssl.SSLContext = verify
        if isinstance(verify, str):  # a CA bundle file
            try:
                tls = ssl.create_default_context(cafile=verify)
            except (OSError, ssl.SSLError, ValueError):
                raise ConfigError(f"the CA bundle {verify} cannot be read as PEM certificates") from None
        if isinstance(tls, bool):
            tls = ssl.create_default_context() if tls else _unverified_context()
        self._deadline = _Deadline()
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s), headers=headers, auth=auth,
            transport=_transport(tls, self._deadline),
        )

    @classmethod
    def from_settings(cls, settings: InfluxSettings, **kwargs: Any) -> InfluxWriter:
        return cls(settings.url, settings.database, token=settings.token, username=settings.username,
                   password=settings.password, verify=settings.verify,
                   retention_policy=settings.retention_policy, **kwargs)

    def __repr__(self) -> str:
        return f"InfluxWriter(url={self.url!r}, database={self.database!r}, auth={self.auth_kind!r})"

    # -- public API ----------------------------------------------------------------------------------

    def send_lines(self, lines: Sequence[str], precision: str = "ns") -> SendResult:
        """Send already-encoded lines now, in batches of ``batch_size`` (no buffering).

        Returns what was accepted and what was set aside as bad data (with indices into ``lines``).
        Raises :class:`DatabaseError` when the server cannot be reached after the retries or refuses
        for a configuration reason (401/403/404); lines not yet accepted then count as not sent.
        """
        if precision not in PRECISION_DIVISOR:
            raise ValueError(f"precision {precision!r} is not one of {sorted(PRECISION_DIVISOR)}")
        result = SendResult(accepted=0, rejected=[], requests=0)
        indices = list(range(len(lines)))
        for start in range(0, len(lines), self.batch_size):
            self._send_bisect(list(lines[start:start + self.batch_size]),
                              indices[start:start + self.batch_size], precision, result)
        for rejected in result.rejected:
            self.rejected.append(rejected)
            self.stats["lines_rejected"] += len(rejected.lines)
            log.warning("InfluxDB refused %d line(s) as bad data and they were set aside: %s",
                        len(rejected.lines), rejected.message)
            if self.on_rejected is not None:
                self.on_rejected(rejected)
        return result

    def ensure_database(self) -> None:
        """Create the database where the server allows it; otherwise check it exists, or say what to do."""
        status, message = self._query(f'CREATE DATABASE "{_quote_ident(self.database)}"')
        if status == 200 and not message:
            log.info("InfluxDB database %s is ready", self.database)
            return
        # Not allowed (non-admin 1.x user, 2.x/3.x v1 API): fine if it exists already.
        show_status, show = self._query("SHOW DATABASES", want_rows=True)
        if show_status == 200 and isinstance(show, list) and self.database in show:
            return
        raise DatabaseError(self._scrub(
            f"InfluxDB at {self.url} did not create database {self.database!r} "
            f"(HTTP {status}: {message or 'no reason given'}); create it yourself (1.x: CREATE DATABASE; "
            "2.x/3.x: a bucket with a DBRP mapping to that name) and give hipback credentials with write "
            "access"))

    def ping(self) -> bool:
        """True when ``/ping`` answers (any 2xx) within the timeout."""
        try:
            return 200 <= self._exchange("GET", "/ping")[0] < 300
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        """Release the connection (nothing is buffered: every line was answered or handed back)."""
        self._client.close()

    def __enter__(self) -> InfluxWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def _write_params(self, precision: str) -> dict[str, str]:
        params = {"db": self.database, "precision": precision}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        return params

    def _send_bisect(self, lines: list[str], indices: list[int], precision: str, result: SendResult) -> None:
        budget = [_BISECT_BUDGET]
        self._settle(lines, indices, precision, result, self._post_batch(lines, precision, result), budget)

    def _settle(self, lines: list[str], indices: list[int], precision: str, result: SendResult,
                outcome: tuple[int, str], budget: list[int]) -> None:
        """Account for a posted batch; when refused, post its halves to isolate the bad lines."""
        status, message = outcome
        if status == 204:
            result.accepted += len(lines)
            return
        if len(lines) == 1 or budget[0] <= 0:
            result.rejected.append(RejectedBatch(lines, status, message, indices))
            return
        mid = len(lines) // 2
        for h_lines, h_idx in ((lines[:mid], indices[:mid]), (lines[mid:], indices[mid:])):
            budget[0] -= 1
            outcome = self._post_batch(h_lines, precision, result)
            self._settle(h_lines, h_idx, precision, result, outcome, budget)

    def _exchange(self, method: str, path: str, **kwargs: Any) -> tuple[int, httpx.Headers, bytes]:
        """One request, over within ``timeout_s`` from connect to the end of the answer; at most
        ``_MAX_ANSWER_BYTES`` of the answer are read. Raises httpx's exceptions."""
        self._deadline.at = time.monotonic() + self.timeout_s
        try:
            with self._client.stream(method, self.url + path, **kwargs) as resp:
                body = bytearray()
                for chunk in resp.iter_raw():
                    body += chunk[: _MAX_ANSWER_BYTES - len(body)]
                    if len(body) >= _MAX_ANSWER_BYTES:
                        break
                return resp.status_code, resp.headers, bytes(body)
        finally:
            self._deadline.at = None

    def _post_batch(self, lines: list[str], precision: str, result: SendResult) -> tuple[int, str]:
        """POST one batch with retries. Returns (204, "") when the server took it, (status, its message)
        when it refused the lines as bad data; raises :class:`DatabaseError` for unreachable servers,
        persistent 5xx/429/408, and answers that are a configuration problem or not InfluxDB's."""
        body = ("\n".join(lines) + "\n").encode("utf-8")
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip:
            body = gzip_module.compress(body, compresslevel=self.gzip_level, mtime=0)
            headers["Content-Encoding"] = "gzip"
        params = self._write_params(precision)
        attempt = 0
        while True:
            problem: str
            retry_after: float | None = None
            try:
                status, answer_headers, answer = self._exchange("POST", "/write", params=params, content=body,
                                                               headers=headers)
            except httpx.TimeoutException:
                problem = "timed out"
            except httpx.HTTPError as exc:
                problem = _describe_transport_error(exc)
                if "certificate" in problem:  # trying again cannot help: say what to do instead
                    raise DatabaseError(self._scrub(
                        f"InfluxDB at {self.url} {problem}; if it uses a private CA, give its certificate "
                        "file with HIPBACK_INFLUX_TLS_VERIFY")) from None
            else:
                result.requests += 1
                self.stats["requests"] += 1
                if status == 204:  # InfluxDB 1.x, 2.x and 3.x: every line was written
                    self.stats["lines_sent"] += len(lines)
                    return status, ""
                message = self._scrub(_server_message(status, answer_headers, answer))
                if status in _CONFIG_STATUS:
                    raise DatabaseError(self._config_advice(status, message))
                if status in _DATA_STATUS:
                    return status, message
                if not (status >= 500 or status in _RETRY_STATUS):
                    raise DatabaseError(self._scrub(self._not_influx(status, message)))
                problem = f"answered HTTP {status} ({message})"
                retry_after = _retry_after_s(answer_headers)
            if attempt >= self.max_retries:
                raise DatabaseError(self._scrub(
                    f"InfluxDB at {self.url} {problem} after {attempt + 1} attempts; the points are kept "
                    "and will be sent when it is back"))
            delay = self._backoff(attempt, retry_after)
            self.stats["retries"] += 1
            log.info("InfluxDB at %s %s; retrying in %.1f s", self.url, problem, delay)
            time.sleep(delay)
            attempt += 1

    def _not_influx(self, status: int, message: str) -> str:
        if 200 <= status < 300:
            what = "where InfluxDB answers 204 No Content"
        elif 300 <= status < 400:
            what = "a redirect, which hipback does not follow"
        else:
            what = "which InfluxDB does not answer to a write"
        return (f"InfluxDB at {self.url} answered HTTP {status} ({message}) to a write, {what}: check that "
                "HIPBACK_INFLUX_URL is InfluxDB's own address (not a proxy or web page); nothing was "
                "counted as delivered")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        cap = min(self.backoff_max_s, self.backoff_base_s * 2**attempt)
        delay = cap / 2 + random.uniform(0, cap / 2)  # "equal jitter"
        if retry_after is not None:  # honoured up to backoff_max_s (a server cannot park the writer)
            delay = max(delay, min(retry_after, self.backoff_max_s))
        return delay

    def _config_advice(self, status: int, message: str) -> str:
        if status == 404:
            what = (f"database {self.database!r} does not exist there; create it (1.x: CREATE DATABASE, "
                    "`hipback sync` does so where allowed; 2.x/3.x: a bucket with a DBRP mapping)")
        elif status == 401:
            what = ("the credentials were refused; check HIPBACK_INFLUX_TOKEN or HIPBACK_INFLUX_USER and "
                    "HIPBACK_INFLUX_PASSWORD")
        else:
            what = f"the credentials have no write access to {self.database!r}; grant it or use another token"
        return self._scrub(f"InfluxDB at {self.url} answered HTTP {status} ({message}): {what}")

    def _query(self, q: str, want_rows: bool = False) -> tuple[int, Any]:
        """POST an InfluxQL statement; returns (status, error message or '' / list of first-column values)."""
        try:
            status, headers, answer = self._exchange("POST", "/query", data={"q": q})
        except httpx.HTTPError as exc:
            raise DatabaseError(self._scrub(
                f"InfluxDB at {self.url} cannot be reached ({_describe_transport_error(exc)}); "
                "check HIPBACK_INFLUX_URL and that the server is running")) from None
        if not 200 <= status < 300:
            return status, self._scrub(_server_message(status, headers, answer))
        body = _json_or_none(answer)
        results = body.get("results") if isinstance(body, dict) else None
        first = results[0] if isinstance(results, list) and results and isinstance(results[0], dict) else None
        if first is None:
            return status, "the answer was not InfluxDB's JSON"
        error = body.get("error") or first.get("error")
        if error:
            return status, self._scrub(_printable(str(error)))
        if want_rows:
            rows = []
            for series in first.get("series") or []:
                values = series.get("values") if isinstance(series, dict) else None
                rows += [v[0] for v in values or [] if isinstance(v, list) and v]
            return status, rows
        return status, ""


def _quote_ident(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def _json_or_none(answer: bytes) -> Any:
    try:
        return json.loads(answer)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested deeper than the parser goes
        return None


def _printable(text: str) -> str:
    """One line of printable text (a server's message is shown to people: no control or escape codes)."""
    text = "".join(c if c.isprintable() else " " for c in text)
    text = " ".join(text.split())
    return (text[:300] + "...") if len(text) > 300 else text


def _server_message(status: int, headers: httpx.Headers, answer: bytes) -> str:
    if headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
        text = "a compressed answer"
    else:
        body = _json_or_none(answer)
        found = body.get("error") or body.get("message") if isinstance(body, dict) else None
        text = str(found) if found else answer.decode("utf-8", "replace")
    text = _printable(text)
    if text:
        return text
    try:
        return httpx.codes(status).phrase
    except ValueError:
        return "no reason given"


def _retry_after_s(headers: httpx.Headers) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        return max(0.0, when.timestamp() - time.time())
    except (OverflowError, OSError, ValueError):
        return None


def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _describe_transport_error(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "refused" in text:
            return "refused the connection"
        if "name or service" in text or "nodename" in text or "resolution" in text:
            return "has a host name that does not resolve"
        if "certificate_verify_failed" in text or "certificate verify failed" in text:
            reason = text.rsplit("certificate verify failed", 1)[-1].strip(" :")
            reason = reason.split("(_ssl")[0].strip(" :")
            return "presented a TLS certificate that could not be verified" + (f" ({reason})" * bool(reason))
        if "ssl" in text or "tls" in text or "wrong version" in text:
            return "failed the TLS handshake (is it serving https on that port?)"
        return "could not be connected to"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "closed the connection unexpectedly"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return f"could not be reached ({type(exc).__name__})"
