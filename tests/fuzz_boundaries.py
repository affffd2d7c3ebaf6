"""Seeded fuzzing of hipback's input boundaries: recording files (hipback CSV, Movella DOT CSV, Xsens MT
Manager export), session configs, environment settings (``HIPBACK_*`` through the CLI) and the local store
file.

Used by ``tests/test_fuzz_boundaries.py`` (bounded: a few hundred cases, seeded) and
``bench/fuzz_campaign.py`` (a longer campaign that prints cases and failures per boundary). Every case
builds one mutated input from a valid seed with a :class:`random.Random` and feeds it to the boundary
in-process; its outcome is

- ``ok``: the input was accepted and the result satisfies the boundary's invariants (finite, strictly
  increasing time within the 24 h a recording may span, values within the sensor's full scale, unit
  quaternions, bounded gap counts, a valid pseudonym, bounded numbers, ...);
- ``error``: a :class:`~hipback.ingest.errors.HipbackError` with one sentence (one line, at most 400
  characters), and for the store a file left byte for byte as it was;
- ``fail``: anything else (another exception, a broken invariant, a multi-line message, a damaged store that
  was changed, a secret in the output). :class:`Fuzzer` collects those with the seed that reproduces them.

Hangs and unbounded memory are failures too: :func:`bounded` runs the cases under an address-space limit
(``MemoryError`` instead of swapping) and a watchdog alarm.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hipback.ingest.errors import HipbackError

# -- outcomes -----------------------------------------------------------------------------------------------


class Broken(Exception):
    """A broken invariant (the case fails)."""


@dataclass
class Fuzzer:
    """Runs cases of one boundary and counts outcomes; ``failures`` keeps (seed, what, detail)."""

    name: str
    case: Callable[[random.Random], str]  # returns "ok" or "error", raises on failure
    counts: Counter = field(default_factory=Counter)
    failures: list[tuple[int, str, str]] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)  # first words of the error sentences (what was caught)
    #: watchdog per case (s; SIGALRM, main thread only): a case running longer is a hang
    timeout_s: int = 60

    def run(self, n: int, seed: int) -> Fuzzer:
        for i in range(n):
            case_seed = seed * 1_000_003 + i
            rng = random.Random(case_seed)
            try:
                with watchdog(self.timeout_s):
                    outcome = self.case(rng)
            except Broken as exc:
                self._fail(case_seed, "invariant", str(exc))
                continue
            except MemoryError:
                self._fail(case_seed, "memory", "MemoryError (unbounded allocation)")
                continue
            except TimeoutError as exc:
                self._fail(case_seed, "hang", str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - that is exactly what a fuzzer looks for
                tb = traceback.extract_tb(exc.__traceback__)[-1]
                self._fail(
                    case_seed, "exception", f"{type(exc).__name__}: {exc} at {tb.filename}:{tb.lineno}"
                )
                continue
            self.counts[outcome] += 1
        return self

    def _fail(self, seed: int, what: str, detail: str) -> None:
        self.counts["fail"] += 1
        self.failures.append((seed, what, detail[:500]))


def check_sentence(exc: HipbackError, *must_contain: str) -> str:
    """A user-facing error: one line, not empty, not a dump; returns ``"error"``."""
    text = str(exc)
    if not text.strip() or "\n" in text or "\r" in text or len(text) > 400:
        raise Broken(f"not one sentence: {text[:300]!r}")
    if "Traceback" in text:
        raise Broken(f"a traceback in the message: {text[:300]!r}")
    for part in must_contain:
        if part not in text:
            raise Broken(f"the sentence does not name {part!r}: {text[:300]!r}")
    return "error"


@contextlib.contextmanager
def bounded(memory_gib: float = 2.0, seconds: int = 60) -> Iterator[None]:
    """Run the block with at most ``memory_gib`` GiB more address space than now (allocations beyond raise
    MemoryError) and a per-block watchdog of ``seconds`` (SIGALRM raises TimeoutError); both restored
    after."""
    with open("/proc/self/statm") as fh:
        vm_bytes = int(fh.read().split()[0]) * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = vm_bytes + int(memory_gib * 2**30)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))

    def alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"a case ran longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@contextlib.contextmanager
def watchdog(seconds: int) -> Iterator[None]:
    """Raise TimeoutError in the block after ``seconds`` (needs the handler :func:`bounded` installs)."""
    if signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None):
        yield  # no handler: SIGALRM would kill the process
        return
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)


# -- mutations ----------------------------------------------------------------------------------------------

#: replacements for one number: beyond every range, not finite, not numbers, numbers Python reads but a CSV
#: reader might not, and plausible ones (a wrong but plausible value cannot be told from a right one)
NASTY_NUMBERS = [
    "1e308",
    "-1e308",
    "1e309",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1e9",
    "-1e9",
    "1e5",
    "86401",
    "-0",
    "0",
    "5e-324",
    "99999999999999999999999",
    "4294967295",
    "4294967296",
    "65535",
    "65536",
    "-1",
    "0x10",
    "1_000",
    "",
    " ",
    "1.2.3",
    "--1",
    "1e",
    "e5",
    "١٢٣",
    "½",
    "1,5",
    "0.5",
    "2",
    "9.81",
    "-9.81",
    "1000",
    "3.3e38",
    "\u00a0",
    "'1'",
    '"2"',
    "None",
    "true",
    "+5",
    ".5",
    "5.",
    "1e-9",
]
JUNK_BYTES = [
    b"\x00",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\r",
    b"\n",
    b"\r\n",
    b",",
    b";",
    b"\t",
    b"#",
    b"//",
    b"\xc3\x28",
    b"\xe2\x80\xa8",
    b'"',
    b"\\",
    b" ",
    b"=",
    b":",
    b"\x1b[2J",
]


def mutate_text(data: bytes, rng: random.Random, sep: bytes = b",") -> tuple[bytes, str]:
    """One to three mutations of a text file (bytes, rows, header, numbers); returns (mutated, what)."""
    done = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        kind = rng.choice(
            (
                "byte",
                "bytes",
                "truncate",
                "row_drop",
                "row_dup",
                "row_swap",
                "row_junk",
                "number",
                "number",
                "number",
                "header",
                "separator",
                "blank",
                "huge_row",
            )
        )
        lines = data.split(b"\n")
        n = len(lines)
        if kind == "byte" and data:
            i = rng.randrange(len(data))
            data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
        elif kind == "bytes" and data:
            i = rng.randrange(len(data))
            data = (
                data[:i] + rng.choice(JUNK_BYTES) * rng.choice((1, 2, 7)) + data[i + rng.choice((0, 1, 5)) :]
            )
        elif kind == "truncate" and data:
            data = data[: rng.randrange(len(data))]
        elif kind == "row_drop" and n > 2:
            i = rng.randrange(n)
            del lines[i : i + rng.choice((1, 1, 5, 50))]
            data = b"\n".join(lines)
        elif kind == "row_dup" and n > 2:
            i = rng.randrange(n)
            lines[i:i] = lines[i : i + rng.choice((1, 3))] * rng.choice((1, 2))
            data = b"\n".join(lines)
        elif kind == "row_swap" and n > 3:
            i, j = rng.randrange(n), rng.randrange(n)
            lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
        elif kind == "row_junk":
            i = rng.randrange(n)
            lines.insert(i, bytes(rng.randrange(32, 127) for _ in range(rng.randrange(60))))
            data = b"\n".join(lines)
        elif kind == "number":
            data = _replace_number(data, rng)
        elif kind == "header":
            data = _mutate_header(data, rng, sep)
        elif kind == "separator" and sep in data:
            positions = [m.start() for m in re.finditer(re.escape(sep), data[:20000])]
            if positions:
                i = rng.choice(positions)
                data = data[:i] + rng.choice((b"", sep + sep, b";", b"\t", b" ")) + data[i + len(sep) :]
        elif kind == "blank":
            i = rng.randrange(n)
            lines.insert(i, rng.choice((b"", b"   ", b"\r")))
            data = b"\n".join(lines)
        elif kind == "huge_row":
            i = rng.randrange(n)
            lines.insert(i, sep.join([b"1"] * rng.choice((2, 200, 20000))))
            data = b"\n".join(lines)
        done.append(kind)
    return data, "+".join(done)


_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _replace_number(data: bytes, rng: random.Random) -> bytes:
    found = [m.span() for _, m in zip(range(5000), _NUMBER.finditer(data), strict=False)]
    if not found:
        return data
    a, b = rng.choice(found)
    if rng.random() < 0.7 and len(found) > 20:  # prefer the data rows' tail (the last row is often special)
        a, b = found[-rng.randrange(1, min(len(found), 40))]
    new = rng.choice(NASTY_NUMBERS).encode()
    return data[:a] + new + data[b:]


def _mutate_header(data: bytes, rng: random.Random, sep: bytes) -> bytes:
    lines = data.split(b"\n")
    header_rows = [
        i for i, ln in enumerate(lines[:40]) if ln.startswith((b"#", b"//")) or re.search(rb"[A-Za-z]", ln)
    ]
    if not header_rows:
        return data
    i = rng.choice(header_rows)
    line = lines[i]
    choice = rng.randrange(6)
    if choice == 0:  # rename, drop or duplicate a column name
        parts = line.split(sep)
        j = rng.randrange(len(parts))
        op = rng.randrange(3)
        if op == 0:
            parts[j] = rng.choice((b"", b"Acc_X", b"time_s", b"seq", b"Quat_W", b"qw", b"x" * 300, b"\xff"))
        elif op == 1 and len(parts) > 1:
            del parts[j]
        else:
            parts.insert(j, parts[j])
        lines[i] = sep.join(parts)
    elif choice == 1 and b":" in line:  # a header value
        key = line.split(b":", 1)[0]
        lines[i] = (
            key
            + b": "
            + rng.choice(
                (
                    b"",
                    b"-1",
                    b"0",
                    b"nan",
                    b"1e308",
                    b"1e-300",
                    b"unknown",
                    b"2023-13-45T99:99:99Z",
                    b"2023-10-31T12:48:07",
                    b"9999-12-31T23:59:59Z",
                    b"{",
                    b"[1,2]",
                    b'{"a": NaN}',
                    b"quat",
                    b"raw",
                    b"other",
                    b"0.0 1e9 5 x",
                    b"1e9 0 -5 y",
                    b"2 abc",
                    b"100Hz",
                    b"1e309Hz",
                    b"0Hz",
                    b"P-0042\\nJane Doe",
                    b"../../etc/passwd",
                )
            )
        )
    elif choice == 2:
        del lines[i]
    elif choice == 3:
        lines.insert(i, lines[i])
    elif choice == 4:
        lines[i] = line.replace(sep, rng.choice((b";", b"\t", b", ", b"")))
    else:
        lines[i] = line.upper() if rng.random() < 0.5 else line.lower()
    return b"\n".join(lines)


# -- recording files ----------------------------------------------------------------------------------------


def make_file_seeds(folder: Path) -> dict[str, list[Path]]:
    """Valid seed files of each dialect (several shapes each) in ``folder``."""
    from hipback.ingest.files import write_recording
    from hipback.processing.types import Gap, Recording, SensorStream
    from tests.data_gen import motion, write_movella_dot, write_xsens_mt

    folder.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, list[Path]] = {"hipback": [], "movella_dot": [], "xsens_mt": []}
    m = motion(300, 100.0, 4)
    t = np.arange(300) / 100.0
    rec = Recording(
        streams={
            "pelvis": SensorStream(
                "pelvis",
                "quat",
                t,
                100.0,
                quat=m.quat,
                acc=m.acc,
                seq=np.arange(300),
                device="hipback_v1",
                meta={"patient": "P-0042"},
            ),
            "thigh_left": SensorStream(
                "thigh_left", "raw", t + 0.004, 100.0, acc=m.acc, gyr=m.gyr, mag=m.mag, device="witmotion"
            ),
        },
        start_utc=1_700_000_000.0,
        gaps=[Gap("pelvis", 1.0, 1.02, 1, "test")],
        meta={"patient": "P-0042"},
    )
    for p in write_recording(rec, folder / "hipback"):
        if p.suffix == ".csv":
            seeds["hipback"].append(p)
    for i, kw in enumerate(
        (
            {},
            {"columns": "quat", "preamble": True},
            {"columns": "raw", "leading_zero_rows": 3},
            {"drop": [(50, 4)], "duplicate": [70]},
        )
    ):
        p = folder / f"dot{i}.csv"
        write_movella_dot(p, 240, seed=i, **kw)
        seeds["movella_dot"].append(p)
    for i, kw in enumerate(
        (
            {},
            {"sample_time": "empty"},
            {"sep": ";", "decimal_comma": True},
            {"sample_time": "absent", "counter0": 65_500},
        )
    ):
        p = folder / f"mt{i}.txt"
        write_xsens_mt(p, 240, seed=i, **kw)
        seeds["xsens_mt"].append(p)
    return seeds


def check_stream(stream: Any, dialect: str) -> None:
    """Invariants of an imported stream (see the module docstring)."""
    from hipback.ingest.files.assemble import (
        DEFAULT_FULL_SCALE,
        FULL_SCALE,
        MAG_LIMIT,
        MAX_SPAN_S,
        QUAT_NORM_TOLERANCE,
        RANGE_MARGIN,
        RATE_LIMITS_HZ,
    )

    t = np.asarray(stream.t)
    if len(t) < 1 or not np.all(np.isfinite(t)):
        raise Broken("empty stream or non-finite time")
    if len(t) > 1 and not np.all(np.diff(t) > 0):
        raise Broken("time not strictly increasing")
    if t[-1] - t[0] > MAX_SPAN_S or (dialect == "hipback" and np.abs(t).max() > MAX_SPAN_S):
        raise Broken(f"time span {t[-1] - t[0]:.6g} s beyond the bound")
    lo, hi = RATE_LIMITS_HZ
    if not (lo <= stream.rate_hz <= hi):
        raise Broken(f"rate {stream.rate_hz!r} out of bounds")
    acc_fs, gyr_fs = FULL_SCALE.get(stream.device, DEFAULT_FULL_SCALE)
    for name, limit in (("acc", acc_fs), ("gyr", gyr_fs), ("mag", MAG_LIMIT / (1 + RANGE_MARGIN))):
        arr = getattr(stream, name)
        if arr is None:
            continue
        if arr.shape != (len(t), 3):
            raise Broken(f"{name} has shape {arr.shape}")
        if np.any(np.isinf(arr)) or np.nanmax(np.abs(arr), initial=0.0) > limit * (1 + RANGE_MARGIN):
            raise Broken(f"{name} beyond what the sensor can produce: {np.nanmax(np.abs(arr))!r}")
        if dialect != "hipback" and stream.kind == "raw" and name in ("acc", "gyr") and np.isnan(arr).any():
            raise Broken(f"NaN {name} kept in a raw vendor stream")
    if stream.quat is not None:
        norm = np.linalg.norm(stream.quat, axis=1)
        if np.any(np.abs(norm[~np.isnan(norm)] - 1) > QUAT_NORM_TOLERANCE):
            raise Broken("quaternion far from unit norm")
        if dialect != "hipback" and np.isnan(norm).any():
            raise Broken("NaN quaternion kept in a vendor stream")
    if stream.seq is not None and len(stream.seq) > 1 and not np.all(np.diff(stream.seq) > 0):
        raise Broken("packet counter not increasing")
    for g in stream.meta.get("gaps", []):
        holds = 1.5 * (g.t_end - g.t_start) * stream.rate_hz + 2  # samples the gap's time can hold
        if not (0 < g.missing <= holds) or not math.isfinite(g.t_start) or abs(g.t_start) > MAX_SPAN_S:
            raise Broken(f"implausible gap {g}")
    report = stream.meta["import"]
    if report.rows_kept != len(t):
        raise Broken("import report does not count the kept rows")


def file_case(seeds: dict[str, list[Path]], work: Path, dialect: str) -> Callable[[random.Random], str]:
    from hipback.ingest.files import read_sensor_file

    originals = {p: p.read_bytes() for paths in seeds.values() for p in paths}

    def case(rng: random.Random) -> str:
        from hipback.ingest.errors import RecordingFileError

        seed = rng.choice(seeds[dialect])
        sep = b"\t" if seed.suffix == ".txt" else b","
        data, _ = mutate_text(originals[seed], rng, sep)
        path = work / f"case{seed.suffix}"
        path.write_bytes(data)
        try:
            stream = read_sensor_file(path, dialect=dialect if rng.random() < 0.3 else None)
        except RecordingFileError as exc:
            return check_sentence(exc, str(path))
        except HipbackError as exc:
            raise Broken(f"{type(exc).__name__} is not a RecordingFileError: {exc}") from None
        check_stream(stream, stream.meta["import"].dialect)
        return "ok"

    return case


def recording_case(seeds: dict[str, list[Path]], work: Path) -> Callable[[random.Random], str]:
    """A whole recording (pelvis + thigh) with one mutated file, read and processed end to end, with the raw
    sensors' filter of live sessions or of ``hipback process`` (the lagged one), one case in two each."""
    from hipback.ingest.commands.process import DEFAULT_ORIENTATION
    from hipback.ingest.files import read_recording
    from hipback.processing.pipeline import ProcessorConfig, process_recording

    pelvis, thigh = seeds["hipback"][0], seeds["hipback"][1]
    originals = {pelvis: pelvis.read_bytes(), thigh: thigh.read_bytes()}

    def case(rng: random.Random) -> str:
        from hipback.ingest.errors import RecordingFileError

        which = rng.choice((pelvis, thigh))
        data, _ = mutate_text(originals[which], rng)
        for p, text in originals.items():
            (work / p.name).write_bytes(data if p == which else text)
        try:
            rec = read_recording({"pelvis": work / pelvis.name, "thigh_left": work / thigh.name})
        except RecordingFileError as exc:
            return check_sentence(exc)
        res = process_recording(rec, ProcessorConfig(orientation=rng.choice(("causal", DEFAULT_ORIENTATION))))
        for name in ("hip_flexion_left", "pelvic_tilt"):
            v = getattr(res.angles, name)
            if np.any(np.isinf(v)) or np.nanmax(np.abs(v), initial=0.0) > np.pi:
                raise Broken(f"{name} beyond +-180 deg")
        return "ok"

    return case


def folder_case(seeds: dict[str, list[Path]], work: Path) -> Callable[[random.Random], str]:
    """A recording folder (``<placement>.csv`` + ``session.json``) with a mutated ``session.json``."""
    from hipback.ingest.files import read_recording

    folder = seeds["hipback"][0].parent
    session = (folder / "session.json").read_bytes()
    files = {p.name: p.read_bytes() for p in folder.glob("*.csv")}
    values: list[Any] = [
        None,
        1,
        -1e308,
        "x",
        "",
        [],
        {},
        [1],
        {"a": 1},
        "pelvis.csv",
        "../pelvis.csv",
        "/etc/passwd",
        "2023-10-31T12:48:07Z",
        "9999-99-99",
        1e309,
        True,
    ]

    def case(rng: random.Random) -> str:
        import json

        from hipback.ingest.errors import RecordingFileError

        target = fresh_dir(work / "rec")
        for name, data in files.items():
            (target / name).write_bytes(data)
        if rng.random() < 0.5:
            data, _ = mutate_text(session, rng, b",")
        else:
            doc = json.loads(session)
            for _ in range(rng.choice((1, 2))):
                key = rng.choice(("streams", "gaps", "meta", "start_utc", "hipback_recording"))
                if key == "streams" and isinstance(doc.get("streams"), dict) and rng.random() < 0.5:
                    doc["streams"][rng.choice(("pelvis", "thigh_left", "x"))] = rng.choice(values)
                elif key == "gaps" and rng.random() < 0.5:
                    doc["gaps"] = [
                        {
                            "placement": rng.choice(("pelvis", "lumbar_upper")),
                            "t_start": rng.choice(values),
                            "t_end": rng.choice(values),
                            "missing": rng.choice(values),
                        }
                    ]
                else:
                    doc[key] = rng.choice(values)
            data = json.dumps(doc).encode()
        (target / "session.json").write_bytes(data)
        try:
            rec = read_recording(target)
        except RecordingFileError as exc:
            return check_sentence(exc)
        for s in rec.streams.values():
            check_stream(s, "hipback")
        for g in rec.gaps:
            most = (g.t_end - g.t_start) * 10_000 + 2
            if not (math.isfinite(g.t_start) and math.isfinite(g.t_end) and 0 <= g.missing <= most):
                raise Broken(f"implausible gap {g}")
        return "ok"

    return case


# -- session configs ----------------------------------------------------------------------------------------

CONFIG_SEED = """\
patient = "P-0042"
store = "hipback.sqlite"
ble_backend = "bumble"
scan_timeout_s = 10
calibration_s = 5
duration_s = 60
live_batch_ms = 20

[[sensors]]
placement = "pelvis"
kind = "hipback_v1"
address = "C4:1B:AC:00:00:01"
rate_hz = 100

[[sensors]]
placement = "thigh_left"
kind = "movella_dot"
rate_hz = 60

[prescription]
holds_per_side = 3
hold_s = 30
"""

NASTY_VALUES: list[Any] = [
    "",
    " ",
    "P-0042\n",
    "P-0042\r\n",
    "\x00",
    "x" * 5000,
    "Jane Doe",
    "../etc",
    "C4:1B:AC:00:00:01\n",
    "nan",
    0,
    -1,
    1,
    2**63,
    -(2**63),
    10**400,
    1e308,
    float("nan"),
    float("inf"),
    -0.0,
    1e-320,
    True,
    False,
    [],
    [1, 2],
    {},
    {"a": 1},
    "pelvis",
    "thigh_left",
    "hipback_v1",
    "bumble",
    "30",
    None,
    # plausible values too, so that mutated configs are also accepted and their result checked
    *(5, 30, 60.0, 0.5, 3, "P-0001", "thigh_right", "lumbar_upper", "movella_dot", "witmotion", "bleak"),
    *("C4:1B:AC:00:00:02", "store.sqlite", "quat_raw"),
]
ENV_KEYS = ("HIPBACK_STORE", "HIPBACK_BLE_BACKEND", "HIPBACK_SCAN_TIMEOUT_S")
ENV_VALUES = [
    "",
    " ",
    "bleak",
    "bumble",
    "BLEAK",
    "1",
    "0",
    "-5",
    "nan",
    "inf",
    "1e309",
    "10",
    "x" * 5000,
    "/nonexistent/dir/store.sqlite",
    "~/s.sqlite",
    "~nosuchuser/s.sqlite",
    "\t",
    "store\nname",
    "é",
    "1_0",
    "0x10",
]


def check_config(cfg: Any) -> None:
    from hipback.ingest.config import MAXIMA, PLACEMENTS

    if not isinstance(cfg.patient_id, str) or not re.fullmatch(
        r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", cfg.patient_id
    ):
        raise Broken(f"patient id {cfg.patient_id!r} accepted")
    placements = [s.placement for s in cfg.sensors]
    if "pelvis" not in placements or len(set(placements)) != len(placements):
        raise Broken("sensor placements not unique or pelvis missing")
    if any(p not in PLACEMENTS for p in placements):
        raise Broken("unknown placement accepted")
    for key, value in (
        ("scan_timeout_s", cfg.scan_timeout_s),
        ("calibration_s", cfg.calibration_s),
        ("connect_timeout_s", cfg.connect_timeout_s),
        ("prescription.hold_s", cfg.prescription.hold_s),
        ("duration_s", cfg.duration_s or 0.0),
        ("live_batch_ms", cfg.live_batch_ms or 0.0),
        ("max_sensor_lag_s", cfg.max_sensor_lag_s or 0.0),
        *(("rate_hz", s.rate_hz or 0.0) for s in cfg.sensors),
    ):
        if not isinstance(value, float | int) or not math.isfinite(value) or not 0 <= value <= MAXIMA[key]:
            raise Broken(f"{key} = {value!r} accepted")
    if not 1 <= cfg.prescription.holds_per_side <= 20:
        raise Broken("holds_per_side out of range")
    if any(ord(c) < 32 for c in str(cfg.store)):
        raise Broken("control characters in the store path")
    for s in cfg.sensors:
        if s.address is not None and not re.fullmatch(
            r"([0-9A-F]{2}:){5}[0-9A-F]{2}|[0-9A-F-]{36}", s.address
        ):
            raise Broken(f"address {s.address!r} accepted")


def config_case(work: Path) -> Callable[[random.Random], str]:
    import tomllib

    from hipback.ingest.config import load_config, parse_config
    from hipback.ingest.errors import ConfigError

    seed_data = tomllib.loads(CONFIG_SEED)

    def case(rng: random.Random) -> str:
        env = {k: rng.choice(ENV_VALUES) for k in ENV_KEYS if rng.random() < 0.25}
        try:
            if rng.random() < 0.5:  # the text
                data, _ = mutate_text(CONFIG_SEED.encode(), rng, b"=")
                path = work / "session.toml"
                path.write_bytes(data)
                cfg = load_config(path, env=env)
            else:  # the values
                data = _mutate_tree(seed_data, rng)
                cfg = parse_config(data, source="session.toml", base_dir=work, env=env)
        except ConfigError as exc:
            return check_sentence(exc)
        except HipbackError as exc:
            raise Broken(f"{type(exc).__name__} is not a ConfigError: {exc}") from None
        check_config(cfg)
        return "ok"

    return case


def _mutate_tree(tree: dict, rng: random.Random) -> dict:
    import copy

    data = copy.deepcopy(tree)
    for _ in range(rng.choice((1, 1, 2, 4))):
        target: Any = data
        sensors = (
            [x for x in data.get("sensors") or [] if isinstance(x, dict)]
            if isinstance(data.get("sensors"), list)
            else []
        )
        if rng.random() < 0.4 and sensors:
            target = rng.choice(sensors)
        elif rng.random() < 0.2 and isinstance(data.get("prescription"), dict):
            target = data["prescription"]
        keys = list(target) or ["x"]
        op = rng.randrange(10)
        if op < 7:
            target[rng.choice(keys)] = rng.choice(NASTY_VALUES)
        elif op == 7:
            target.pop(rng.choice(keys), None)
        elif op == 8:
            target[rng.choice(("unknown", "Patient", "sensors", "prescription", "rate_hz"))] = rng.choice(
                NASTY_VALUES
            )
        elif isinstance(data.get("sensors"), list):
            data["sensors"] = rng.choice(([], data["sensors"] * 2, data["sensors"][:1], "pelvis", [1], [{}]))
    return data


# -- environment settings, through the command line ----------------------------------------------------------

_HOSTS = [
    "127.0.0.1",
    "[::1]",
    "localhost",
    "",
    "[",
    "::1",
    "127.0.0.1:",
    "%31%32%37.0.0.1",
    "127.0.0.1\t",
    "[::1",
    "user:pw@127.0.0.1",
    "127.0.0.1/",
    "[fe80::1%25lo]",
    "0",
]
_PORTS = ["", ":9", ":0", ":65535", ":65536", ":-1", ":99999999999", ":abc", ":", ":9:9", ": 9"]
_SCHEMES = ["http://", "https://", "HTTP://", "ftp://", "http:/", "http:", "", "//", "http:///", " http://"]
_PATHS = ["", "/", "/influx", "/a b", "/%zz", "?db=x", "#frag", "/\x7f", "/é", "/" + "a" * 3000]


def influx_url(rng: random.Random) -> str:
    """A URL-shaped string whose host, if any, is a loopback address (nothing leaves the machine); a quarter
    are valid, so that the settings' success path is fuzzed too."""
    if rng.random() < 0.25:
        return rng.choice(("http://127.0.0.1:9", "https://[::1]:9", "http://localhost:9/influx"))
    url = rng.choice(_SCHEMES) + rng.choice(_HOSTS) + rng.choice(_PORTS) + rng.choice(_PATHS)
    if rng.random() < 0.3:
        i = rng.randrange(len(url) + 1)
        url = url[:i] + rng.choice(("", " ", "\t", "[", "]", "@", "%", "\\", "\x01", "é")) + url[i:]
    return url


def make_env_stores(folder: Path) -> tuple[Path, Path]:
    """Two stores for the settings fuzzer: one owing a line to InfluxDB, one owing nothing."""
    from hipback.ingest.store import LocalStore

    owing, empty = folder / "owing.sqlite", folder / "empty.sqlite"
    with LocalStore(owing) as st:
        st.outbox_add(None, ["m,patient=P-1 v=1 1763700000000000000"])
    LocalStore(empty).close()
    return owing, empty


def env_case(work: Path, stores: tuple[Path, Path]) -> Callable[[random.Random], str]:
    """``hipback sync`` with random ``HIPBACK_*`` settings (InfluxDB on a closed loopback port at best): exit
    code 0, 2 or 3 with one sentence, and the token and password never in the output."""
    from hipback.ingest import cli

    def case(rng: random.Random) -> str:
        store = rng.choice(stores)
        secret = f"s3cr3t-{rng.randrange(10**9)}"
        env: dict[str, str] = {"HIPBACK_INFLUX_URL": influx_url(rng)}
        if rng.random() < 0.5:
            env["HIPBACK_INFLUX_TOKEN"] = secret
        if rng.random() < 0.3:
            env["HIPBACK_INFLUX_USER"] = rng.choice(("admin", "", "a b", "é"))
            env["HIPBACK_INFLUX_PASSWORD"] = secret
        for name in ("DATABASE", "RETENTION_POLICY", "TLS_VERIFY", "TOKEN_FILE", "PASSWORD_FILE"):
            if rng.random() < 0.2:
                env[f"HIPBACK_INFLUX_{name}"] = rng.choice(
                    (
                        "",
                        "hipback",
                        "a b",
                        'x"y',
                        "false",
                        "true",
                        "maybe",
                        "/nonexistent",
                        str(store),
                        "\\",
                        "x" * 300,
                        "0",
                        "é",
                    )
                )
        if rng.random() < 0.2:
            env["HIPBACK_STORE"] = rng.choice(
                ("", str(store), str(work), "/nonexistent.sqlite", "x\ty", "~nosuchuser/s.sqlite")
            )
        args = ["sync"] if "HIPBACK_STORE" in env and rng.random() < 0.5 else ["sync", "--store", str(store)]
        args += rng.choice(
            ([], ["--batch-size", rng.choice(("1", "0", "-1", "x", "1e3", "99999999999999999999"))])
        )
        keys = [k for k in os.environ if k.startswith("HIPBACK_")]
        saved = {k: os.environ.pop(k) for k in keys}
        os.environ.update(env)
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.run(args)
        finally:
            for k in env:
                os.environ.pop(k, None)
            os.environ.update(saved)
        text = out.getvalue() + err.getvalue()
        if secret in text:
            raise Broken("a secret was printed")
        if code not in (0, 2, 3):
            raise Broken(f"exit code {code}: {err.getvalue().strip()[:300]}")
        if code:
            line = err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else ""
            if not line.startswith("hipback: ") or "Traceback" in text:
                raise Broken(f"no one-sentence error: {err.getvalue()[:300]!r}")
            return "error"
        return "ok"

    return case


# -- the store file -----------------------------------------------------------------------------------------


def make_store_seed(path: Path) -> Path:
    """A closed store with two sessions (samples, a gap, events, results, outbox lines)."""
    from hipback.ingest.store import LocalStore

    rng = np.random.default_rng(9)
    with LocalStore(path) as st:
        for k in range(2):
            sid = st.open_session(f"P-00{k}", {"source": "fuzz seed"})
            st.add_sensor(sid, "pelvis", "raw", "hipback_v1", None, {"rate_hz": 100.0})
            n = 1500
            t = 1_700_000_000.0 + k * 3600 + np.arange(n) / 100.0
            st.add_samples(
                sid, "pelvis", t, seq=np.arange(n), acc=rng.normal(size=(n, 3)), gyr=rng.normal(size=(n, 3))
            )
            st.add_gap(sid, "pelvis", t[10], t[11], 1, "test")
            st.add_event(sid, "session_end", {"stats": {}}, t[-1])
            st.put_results(sid, "summary", [{"duration_s": 15.0}])
            st.outbox_add(sid, [f"m,patient=P-00{k} v={i} {int(t[i] * 1e9)}" for i in range(20)])
            st.close_session(sid)
    return path


def mutate_store(data: bytes, rng: random.Random) -> bytes:
    page = 4096
    body = bytearray(data)
    kind = rng.randrange(8)
    if kind == 0:  # flip bytes anywhere
        for _ in range(rng.choice((1, 4, 64))):
            i = rng.randrange(len(body))
            body[i] = rng.randrange(256)
    elif kind == 1:  # the header
        for _ in range(rng.choice((1, 3))):
            i = rng.randrange(100)
            body[i] = rng.randrange(256)
    elif kind == 2:  # truncated
        return bytes(body[: rng.randrange(len(body))])
    elif kind == 3:  # a page zeroed or random
        k = rng.randrange(len(body) // page)
        body[k * page : (k + 1) * page] = bytes(page) if rng.random() < 0.5 else rng.randbytes(page)
    elif kind == 4:  # two pages swapped
        a, b = rng.randrange(len(body) // page), rng.randrange(len(body) // page)
        pa, pb = body[a * page : (a + 1) * page], body[b * page : (b + 1) * page]
        body[a * page : (a + 1) * page], body[b * page : (b + 1) * page] = pb, pa
    elif kind == 5:  # garbage appended
        body += rng.randbytes(rng.choice((1, 100, page)))
    elif kind == 6:  # not a database at all
        return rng.choice(
            (
                b"",
                b"\x00" * 100,
                b"SQLite format 3",
                b"SQLite format 3\x00" + rng.randbytes(200),
                b"time_s,acc_x\n0,1\n",
                rng.randbytes(8192),
            )
        )
    else:  # the page of one b-tree cell area
        k = rng.randrange(1, len(body) // page)
        for _ in range(8):
            i = k * page + rng.randrange(page)
            body[i] ^= 1 << rng.randrange(8)
    return bytes(body)


def store_case(seed: Path, work: Path) -> Callable[[random.Random], str]:
    """A mutated store: read-only use must leave it byte for byte; opening for writing may only change it
    when it opened (a damaged store is never overwritten); every error is one sentence naming the store."""
    from hipback.ingest.store import LocalStore

    original = seed.read_bytes()

    def digest(p: Path) -> str:
        return hashlib.sha256(p.read_bytes()).hexdigest()

    def case(rng: random.Random) -> str:
        path = work / "store.sqlite"
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")
        path.write_bytes(mutate_store(original, rng))
        before = digest(path)
        outcome = "ok"
        try:
            with LocalStore(path, readonly=True) as st:
                for row in st.sessions():
                    rec = st.load_recording(row["id"])
                    for s in rec.streams.values():
                        if not np.all(np.isfinite(s.t)) or (len(s.t) > 1 and np.any(np.diff(s.t) < 0)):
                            raise Broken("non-finite or unsorted stored time read back")
                        for name in ("acc", "gyr"):
                            v = getattr(s, name)
                            if v is not None and np.nanmax(np.abs(v), initial=0.0) > 32 * 9.81 * 1.05 * 1.1:
                                raise Broken(f"an impossible stored {name} value read back")
                    st.get_results(row["id"], "summary")
                st.outbox_stats()
        except HipbackError as exc:
            outcome = check_sentence(exc)
        if digest(path) != before:
            raise Broken("a read-only use changed the store file")
        try:
            with LocalStore(path) as st:
                opened = True
                sid = st.open_session("P-0099")
                st.add_sensor(sid, "pelvis", "raw", "dev", None)
                st.add_samples(
                    sid,
                    "pelvis",
                    1_800_000_000.0 + np.arange(50) / 100,
                    acc=np.ones((50, 3)),
                    gyr=np.zeros((50, 3)),
                )
                st.close_session(sid)
        except HipbackError as exc:
            outcome = check_sentence(exc)
            if not locals().get("opened") and digest(path) != before:
                raise Broken("a store that could not be opened was changed") from None
        return outcome

    return case


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def sqlite_version() -> str:
    return sqlite3.sqlite_version
