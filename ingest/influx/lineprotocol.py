"""InfluxDB line protocol: points to text, with escaping done so that identifiers are data, never syntax.

One line per point::

    measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] timestamp

Escaping (InfluxDB line protocol reference, identical in 1.x, 2.x and 3.x for what is allowed here):

- measurement: ``,`` and space are escaped with a backslash;
- tag keys, tag values and field keys: ``,``, ``=`` and space are escaped with a backslash;
- string field values are double-quoted; ``"`` and ``\\`` inside them are escaped with a backslash.
  Newlines inside a quoted string field are allowed (the servers parse quoted strings across them).

What cannot be represented is **rejected** with :class:`ValueError`, never silently changed (a changed
patient id or label would merge or split series without anyone noticing):

- identifiers (measurement, tag keys and values, field keys) containing a control character
  (``\\n``, ``\\r``, tab, NUL, ... : a newline ends the line, the others are trimmed or split on by
  parsers) or a backslash (servers disagree on ``\\\\``: InfluxDB 1.x keeps both characters, 3.x reads
  one, and a trailing backslash escapes the delimiter after it);
- empty measurement, tag key or field key; a measurement starting with ``#`` (a comment line);
  the keys ``time`` (reserved by InfluxDB), and the tag keys ``_field``/``_measurement`` (2.x);
- integers outside int64; strings that are not valid Unicode (lone surrogates).

Dropped, as the line protocol specifies: tags whose value is empty or None; fields whose value is
None, NaN or +-inf (InfluxDB rejects non-finite floats). A point left with no field is dropped
(:func:`encode_lines` returns no line for it).

Field types: ``float`` (shortest repr that round-trips), ``int``/numpy integers (``i`` suffix),
``bool`` (``true``/``false``) and ``str``. Timestamps are integer nanoseconds since the Unix epoch
(:attr:`Point.time_ns`) and are written in the chosen precision (``ns``, ``us``, ``ms``, ``s``),
truncated toward minus infinity.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

#: Divisor from nanoseconds to each precision accepted by ``/write?precision=``.
PRECISION_DIVISOR: dict[str, int] = {
    "ns": 1, "n": 1, "us": 1_000, "u": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
}

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")
_MEASUREMENT_ESCAPES = str.maketrans({",": "\\,", " ": "\\ "})
_KEY_ESCAPES = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_STRING_ESCAPES = str.maketrans({'"': '\\"', "\\": "\\\\"})
_RESERVED_KEYS = frozenset({"time"})
_RESERVED_TAG_KEYS = frozenset({"time", "_field", "_measurement"})


@dataclass(slots=True)
class Point:
    """One point: measurement, tags (str -> str), fields (str -> float|int|bool|str), time in ns (UTC)."""

    measurement: str
    tags: Mapping[str, Any] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)
    time_ns: int | None = None


def _check_identifier(value: str, what: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{what} {value!r} is not a string")
    if not value:
        raise ValueError(f"{what} is empty")
    bad = _FORBIDDEN.search(value)
    if bad:
        char = bad.group()
        kind = "a backslash" if char == "\\" else f"the control character {char!r}"
        raise ValueError(f"{what} {value!r} contains {kind}, which line protocol cannot carry unchanged")
    try:
        value.encode("utf-8")  # pragma: no mutate (any UTF spelling is the same codec)
    except UnicodeEncodeError:
        raise ValueError(f"{what} {value!r} is not valid Unicode") from None


@lru_cache(maxsize=4096)
def escape_measurement(name: str) -> str:
    """Escape a measurement name (raises :class:`ValueError` for names line protocol cannot carry)."""
    _check_identifier(name, "measurement")
    if name.startswith("#"):
        raise ValueError(f"measurement {name!r} starts with '#', which makes the line a comment")
    return name.translate(_MEASUREMENT_ESCAPES)


@lru_cache(maxsize=4096)
def escape_tag_key(key: str) -> str:
    _check_identifier(key, "tag key")
    if key in _RESERVED_TAG_KEYS:
        raise ValueError(f"tag key {key!r} is reserved by InfluxDB")
    return key.translate(_KEY_ESCAPES)


@lru_cache(maxsize=65536)
def escape_tag_value(value: str) -> str:
    _check_identifier(value, "tag value")
    return value.translate(_KEY_ESCAPES)


@lru_cache(maxsize=4096)
def escape_field_key(key: str) -> str:
    _check_identifier(key, "field key")
    if key in _RESERVED_KEYS:
        raise ValueError(f"field key {key!r} is reserved by InfluxDB")
    return key.translate(_KEY_ESCAPES)


def escape_string_field(value: str) -> str:
    """A string field value in double quotes, with ``"`` and ``\\`` escaped."""
    try:
        value.encode("utf-8")  # pragma: no mutate (any UTF spelling is the same codec)
    except UnicodeEncodeError:
        raise ValueError(f"string field {value[:40]!r} is not valid Unicode") from None
    return '"' + value.translate(_STRING_ESCAPES) + '"'


def format_field_value(value: Any) -> str | None:
    """Line-protocol text of one field value, or None when the field is to be dropped (None, NaN, inf)."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        v = int(value)
        if not _INT64_MIN <= v <= _INT64_MAX:
            raise ValueError(f"integer field value {v} is outside int64")
        return f"{v}i"
    if isinstance(value, float | np.floating):
        v = float(value)
        return repr(v) if math.isfinite(v) else None
    if isinstance(value, str):
        return escape_string_field(value)
    raise ValueError(f"field value {value!r} has unsupported type {type(value).__name__}")


def _tag_text(tags: Mapping[str, Any]) -> str:
    parts = []
    for key in sorted(tags):
        value = tags[key]
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            value = str(value)
        parts.append(f",{escape_tag_key(key)}={escape_tag_value(value)}")
    return "".join(parts)


# Escaped "measurement,tags" prefixes and field keys seen recently: points of one series repeat them.
_PREFIXES: dict[tuple, str] = {}
_FIELD_KEYS: dict[str, str] = {}
_CACHE_MAX = 50_000


def _prefix(measurement: str, tags: Mapping[str, Any]) -> str:
    try:
        key = (measurement, *tags.items())
        text = _PREFIXES.get(key)  # pragma: no mutate (a cache: a miss only costs time)
    except TypeError:  # an unhashable tag value: str() of it is still a valid tag value
        return escape_measurement(measurement) + _tag_text(tags)
    if text is None:
        text = escape_measurement(measurement) + _tag_text(tags)
        # Only all-string tag sets are cached: 1, 1.0 and True are equal keys but different text.
        if all(type(v) is str for v in tags.values()):
            if len(_PREFIXES) >= _CACHE_MAX:  # pragma: no mutate (cache size)
                _PREFIXES.clear()
            _PREFIXES[key] = text  # pragma: no mutate (a cache: storing nothing only costs time)
    return text


def _field_key(key: str) -> str:
    text = _FIELD_KEYS.get(key)  # pragma: no mutate (a cache: a miss only costs time)
    if text is None:
        text = escape_field_key(key)
        if len(_FIELD_KEYS) >= _CACHE_MAX:  # pragma: no mutate (cache size)
            _FIELD_KEYS.clear()
        _FIELD_KEYS[key] = text  # pragma: no mutate (a cache: storing nothing only costs time)
    return text


def encode_point(point: Point, precision: str = "ns") -> str | None:
    """One line (without newline) for ``point``, or None when it has no field left to write."""
    lines = encode_lines((point,), precision)
    return lines[0] if lines else None


def encode_lines(points: Iterable[Point], precision: str = "ns") -> list[str]:
    """One line per point that has at least one field left (points without fields are dropped)."""
    try:
        divisor = PRECISION_DIVISOR[precision]
    except KeyError:
        raise ValueError(f"precision {precision!r} is not one of {sorted(PRECISION_DIVISOR)}") from None
    out: list[str] = []
    field_keys = _FIELD_KEYS
    for point in points:  # hot loop: written for speed (one point of 4 fields takes a few microseconds)
        fields = []
        for key, value in point.fields.items():
            fk = field_keys.get(key)  # pragma: no mutate (a cache: a miss only costs time)
            if fk is None:
                fk = _field_key(key)
            if type(value) is float:
                if value - value == 0.0:  # finite (NaN and +-inf give NaN)
                    fields.append(f"{fk}={value!r}")
                continue
            text = format_field_value(value)
            if text is not None:
                fields.append(f"{fk}={text}")
        if not fields:
            continue
        prefix = _prefix(point.measurement, point.tags)
        if point.time_ns is None:
            out.append(f"{prefix} {','.join(fields)}")
        else:
            out.append(f"{prefix} {','.join(fields)} {int(point.time_ns) // divisor}")
    return out


def encode(points: Iterable[Point], precision: str = "ns") -> str:
    """Line protocol text for ``points``, each line ending with a newline."""
    lines = encode_lines(points, precision)
    return "\n".join(lines) + "\n" if lines else ""
