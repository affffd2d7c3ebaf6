"""A tiny HTTP server that answers like a broken, slow or hostile InfluxDB, on a real socket.

Used by ``tests/test_influx_fuzz.py`` (bounded, seeded) and ``bench/influx_fuzz.py`` (a longer campaign) to
drive :class:`hipback.ingest.influx.writer.InfluxWriter` and the outbox sync through answers a real server,
proxy or network can give: any status code, garbage, huge, partial or wrongly typed bodies, connections
closed or reset before or during the answer, answers that never come or come one byte at a time, TLS
errors. Everything is raw bytes on a TCP socket (no HTTP library on the server side), so the client sees
exactly what a real peer would send.

Each request gets an :class:`Answer` from ``choose(index, request)`` (``index`` counts requests from 0).
The server keeps a ledger: every request's lines (gzip bodies are decompressed), and ``accepted``, the
lines of requests it answered (or began to answer) with ``204``: what a real InfluxDB would have written,
recorded before the answer goes out as InfluxDB writes before it answers (a superset of what the client
can have seen accepted). The fuzz
property "nothing marked delivered that the server did not accept" is checked against that ledger.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    lines: list[str]


@dataclass
class Answer:
    """What to do with one request. ``kind``:

    - ``respond``: status line, headers and body (``content_length`` overrides the header; None: the body's
      length; -1: no Content-Length header); ``close`` closes the connection afterwards;
    - ``cut``: send the status line, headers with ``content_length`` and only part of the body, then close;
    - ``close``: close without a byte; ``reset``: close with a TCP reset (RST);
    - ``silent``: keep the connection open and never answer (until the server stops);
    - ``drip``: send ``raw`` (or an endless header) one byte every ``delay_s``;
    - ``raw``: send ``raw`` bytes as they are, then close.
    """

    kind: str = "respond"
    status: int = 204
    reason: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    content_length: int | None = None
    close: bool = False
    raw: bytes = b""
    delay_s: float = 0.05
    label: str = ""


def ok() -> Answer:
    return Answer("respond", 204, label="204")


class HostileInflux:
    """The server (see the module docstring); a context manager. ``tls``: an ``ssl.SSLContext`` to wrap
    accepted connections with (None: plain HTTP)."""

    def __init__(self, choose: Callable[[int, Request], Answer] | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.choose = choose or (lambda i, r: ok())
        self.tls = tls
        self.requests: list[Request] = []
        self.answers: list[Answer] = []
        self.accepted: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> HostileInflux:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join(5)
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        for t in self._threads:
            t.join(5)
        self._sock.close()

    # -- server side ---------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._conns.append(conn)
                self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError):
                    return  # the client refused our certificate (or spoke plain HTTP): nothing to serve
                with self._lock:
                    self._conns.append(conn)
            reader = _Reader(conn)
            while not self._stop.is_set():
                request = reader.request()
                if request is None:
                    return
                with self._lock:
                    index = len(self.requests)
                    self.requests.append(request)
                answer = self.choose(index, request)
                with self._lock:
                    self.answers.append(answer)
                if not self._answer(conn, request, answer):
                    return
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _answer(self, conn: socket.socket, request: Request, a: Answer) -> bool:
        """Act out one answer; True when the connection stays open for the next request."""
        if a.kind == "close":
            return False
        if a.kind == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if a.kind == "silent":
            self._stop.wait(30)
            return False
        if a.kind == "raw":
            if re.match(rb"HTTP/\d\.\d 204 ", a.raw) and a.raw.endswith(b"\r\n\r\n"):
                self._accept(request)  # a 204, however malformed its head: the server says it wrote them
            conn.sendall(a.raw)
            return False
        if a.kind == "drip":
            data = a.raw or (b"HTTP/1.1 204 No Content\r\nX-Pad: " + b"a" * 100_000)
            for i in range(len(data)):
                if self._stop.wait(a.delay_s):
                    return False
                if i == len(data) - 1 and re.match(rb"HTTP/\d\.\d 204 ", data) and data.endswith(b"\r\n\r\n"):
                    self._accept(request)  # before the last byte: the client may act on it at once
                conn.sendall(data[i:i + 1])
            return False
        head = _head(a)
        if a.kind == "cut":
            conn.sendall(head + a.body[: len(a.body) // 2])
            return False
        if a.status == 204:  # like InfluxDB: the lines are written before the answer goes out
            self._accept(request)
        conn.sendall(head + a.body)
        return not a.close

    def _accept(self, request: Request) -> None:
        with self._lock:
            self.accepted.update(request.lines)


def _head(a: Answer) -> bytes:
    reason = a.reason if a.reason is not None else _REASONS.get(a.status, "Whatever")
    lines = [f"HTTP/1.1 {a.status} {reason}"]
    lines += [f"{k}: {v}" for k, v in a.headers]
    length = len(a.body) if a.content_length is None else a.content_length
    if length >= 0 and a.status != 204 and not 100 <= a.status < 200:
        lines.append(f"Content-Length: {length}")
    if a.close or a.kind == "cut":
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            500: "Internal Server Error", 503: "Service Unavailable"}


class _Reader:
    def __init__(self, conn: socket.socket) -> None:
        self.conn, self.buf = conn, b""

    def _fill(self) -> bool:
        try:
            data = self.conn.recv(65536)
        except (TimeoutError, OSError):
            return False
        self.buf += data
        return bool(data)

    def request(self) -> Request | None:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill() or len(self.buf) > 1 << 20:
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        first, *rest = head.decode("latin-1").split("\r\n")
        method, target, _ = (first.split(" ") + ["", ""])[:3]
        headers = {}
        for line in rest:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0") or 0)
        while len(self.buf) < n:
            if not self._fill():
                return None
        body, self.buf = self.buf[:n], self.buf[n:]
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        lines = [x for x in body.decode("utf-8", "replace").split("\n") if x] if target.startswith("/write") \
            else []
        return Request(method, target, headers, lines)


# -- the answer generator of the fuzz campaign -------------------------------------------------------------

_STATUSES = [200, 201, 202, 203, 206, 226, 299, 300, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405,
             406, 408, 409, 410, 411, 413, 414, 415, 418, 421, 422, 426, 429, 431, 451, 499, 500, 501, 502,
             503, 504, 505, 507, 511, 520, 599]


def _bodies(rng: random.Random) -> tuple[str, list[tuple[str, str]], bytes]:
    """(label, headers, body) of one answer body: the kinds a broken server or proxy sends."""
    pick = rng.randrange(14)
    if pick == 0:
        return "empty", [], b""
    if pick == 1:
        body = rng.randbytes(rng.randrange(1, 4000))
        return "garbage", [("Content-Type", "application/octet-stream")], body
    if pick == 2:
        return "huge", [("Content-Type", "text/plain")], b"x" * rng.choice([200_000, 3_000_000])
    if pick == 3:
        return "partial-json", [("Content-Type", "application/json")], b'{"error":"unable to par'
    if pick == 4:
        return "json-not-object", [("Content-Type", "application/json")], rng.choice(
            [b"[1,2,3]", b'"text"', b"null", b"42", b"true"])
    if pick == 5:
        value = rng.choice([123, None, [1, 2], {"a": {"b": 1}}, "", "x" * 5000,
                            "\x1b[31mred\x1b[0m\r\nInjected"])
        return "json-odd-error", [("Content-Type", "application/json")], json.dumps({"error": value}).encode()
    if pick == 6:
        return "html", [("Content-Type", "text/html")], b"<html><body><h1>Welcome!</h1></body></html>"
    if pick == 7:
        return "deep-json", [("Content-Type", "application/json")], b"[" * 50_000 + b"]" * 50_000
    if pick == 8:
        return "bad-utf8", [("Content-Type", "text/plain; charset=utf-8")], b"\xff\xfe\xc3(\xa0\xa1 err"
    if pick == 9:
        return "gzip-bomb", [("Content-Encoding", "gzip")], gzip.compress(b"\0" * 20_000_000, 9)
    if pick == 10:
        return "influx-error", [("Content-Type", "application/json"), ("X-Influxdb-Version", "1.6.7")], \
            b'{"error":"partial write: field type conflict dropped=1"}'
    if pick == 11:
        return "wrong-length-header", [("Content-Type", "text/plain")], b"short"
    if pick == 12:
        return "retry-after", [("Retry-After", rng.choice(["0", "1", "99999", "-5", "nan", "inf", "1e400",
                                                            "Wed, 21 Oct 2015 07:28:00 GMT",
                                                            "Fri, 31 Dec 9999 23:59:59 GMT", "soon"]))], b""
    return "chunked-garbage", [("Transfer-Encoding", "chunked")], b"zz\r\nnot a chunk\r\n"


def fuzz_answer(rng: random.Random, p_ok: float = 0.35) -> Answer:
    """One answer drawn from the campaign's distribution (``p_ok``: share of clean 204s)."""
    r = rng.random()
    if r < p_ok:
        return ok()
    r = rng.random()
    if r < 0.45:
        status = rng.choice(_STATUSES)
        label, headers, body = _bodies(rng)
        length = None
        if label == "wrong-length-header":
            length = len(body) + rng.choice([5, 1000])
        return Answer("respond", status, headers=headers, body=body, content_length=length,
                      close=length is not None or rng.random() < 0.2, label=f"{status} {label}")
    if r < 0.55:
        # (a 204 has no body to cut: its head alone is the whole answer)
        return Answer("cut", rng.choice([200, 400, 500]), body=b'{"error":"' + b"y" * 500 + b'"}',
                      content_length=520, label="cut mid-body")
    if r < 0.63:
        return Answer("close", label="closed before answering")
    if r < 0.71:
        return Answer("reset", label="reset (RST)")
    if r < 0.76:
        return Answer("silent", label="never answers")
    if r < 0.81:
        return Answer("drip", delay_s=0.05, label="drips an endless header")
    if r < 0.86:
        return Answer("drip", delay_s=0.02, label="drips a 204",
                      raw=b"HTTP/1.1 204 No Content\r\nX-Influxdb-Version: 1.6.7\r\n\r\n")
    raw = rng.choice([b"HELLO\r\n\r\n", b"HTTP/1.1 abc Weird\r\n\r\n", b"HTTP/1.1 2040 No\r\n\r\n",
                      b"HTTP/9.9 204 No Content\r\n\r\n", b"\x16\x03\x01\x00\x05hello", b"HTTP/1.1 204",
                      b"HTTP/1.1 100 Continue\r\n\r\n",
                      b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
                      b"HTTP/1.1 204 No Content\r\nContent-Length: -1\r\n\r\n",
                      b"HTTP/1.1 204 No Content\r\nBad Header Line\r\n\r\n",
                      b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 7\r\n\r\nabc"])
    return Answer("raw", raw=raw, label=f"raw {raw[:20]!r}")


def self_signed(tmp_dir, host: str = "127.0.0.1") -> tuple[str, str]:
    """A self-signed certificate for ``host`` (an IP address SAN): returns (cert PEM path, key PEM path)."""
    import datetime
    import ipaddress
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hipback test influx")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    d = Path(tmp_dir)
    cert_path, key_path = d / "cert.pem", d / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return str(cert_path), str(key_path)


def server_tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def wait_until(pred: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
