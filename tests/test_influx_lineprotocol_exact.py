"""Line protocol, exactly: whole lines compared character for character, and every refusal saying what
and why (these tests were written to kill the mutants ``bench/mutation.py`` found surviving)."""

from __future__ import annotations

import numpy as np
import pytest

from hipback.ingest.influx.lineprotocol import (
    Point,
    encode,
    encode_lines,
    encode_point,
    escape_field_key,
    escape_measurement,
    escape_string_field,
    escape_tag_key,
    escape_tag_value,
    format_field_value,
)

T = 1_700_000_000_123_456_789


def test_whole_lines_with_several_fields_and_tags() -> None:
    p = Point("angles", {"session": "s1", "patient": "P-1"}, {"a": 1.5, "n": 3, "ok": True, "s": "x y"}, T)
    assert encode_lines([p]) == [f'angles,patient=P-1,session=s1 a=1.5,n=3i,ok=true,s="x y" {T}']
    line = 'angles,patient=P-1,session=s1 a=1.5,n=3i,ok=true,s="x y"'
    assert encode_lines([p], "ms") == [f"{line} {T // 10**6}"]
    assert encode_point(p, "s") == f'angles,patient=P-1,session=s1 a=1.5,n=3i,ok=true,s="x y" {T // 10**9}'
    assert encode([p, p]) == 2 * f'angles,patient=P-1,session=s1 a=1.5,n=3i,ok=true,s="x y" {T}\n'
    assert encode([]) == ""


def test_point_without_time_and_point_without_fields() -> None:
    assert encode_lines([Point("m", {}, {"v": 2.0})]) == ["m v=2.0"]
    assert encode_point(Point("m", {"t": "a"}, {"v": None, "w": float("nan")}, T)) is None
    assert encode_point(Point("m", {}, {"v": 1}, T), "us") == f"m v=1i {T // 1000}"


def test_a_dropped_field_does_not_drop_the_fields_after_it() -> None:
    p = Point("m", {}, {"a": float("nan"), "b": 1.0, "c": float("inf"), "d": np.float64("nan"), "e": 2}, T)
    assert encode_lines([p]) == [f"m b=1.0,e=2i {T}"]
    q = Point("m", {}, {"x": np.float32(0.5), "y": np.float64(float("-inf"))}, 1)
    assert encode_lines([q]) == ["m x=0.5 1"]


def test_format_field_value_directly() -> None:
    assert format_field_value(float("nan")) is None and format_field_value(float("-inf")) is None
    assert format_field_value(np.float64("nan")) is None and format_field_value(np.float32(2.5)) == "2.5"
    assert format_field_value(np.int16(-3)) == "-3i" and format_field_value(np.bool_(False)) == "false"
    assert format_field_value(2**63 - 1) == f"{2**63 - 1}i" and format_field_value(-(2**63)) == f"{-(2**63)}i"


def test_tag_values_that_are_not_strings() -> None:
    # 1, 1.0 and True are equal as dict keys but are different tag text: none may borrow another's line
    lines = encode_lines([Point("m", {"t": v}, {"v": 1}, 1) for v in (1, 1.0, True, "1", 1, 1.0)])
    assert lines == ["m,t=1 v=1i 1", "m,t=1.0 v=1i 1", "m,t=True v=1i 1", "m,t=1 v=1i 1", "m,t=1 v=1i 1",
                     "m,t=1.0 v=1i 1"]
    # an unhashable tag value is written as its text (and the prefix cache is not asked)
    assert encode_lines([Point("m", {"t": [1, 2]}, {"v": 1}, 1)]) == ["m,t=[1\\,\\ 2] v=1i 1"]
    assert encode_lines([Point("m", {"a": "", "b": None, "c": "x"}, {"v": 1}, 1)]) == ["m,c=x v=1i 1"]


@pytest.mark.parametrize("call, message", [
    (lambda: escape_tag_key(5), "tag key 5 is not a string"),
    (lambda: escape_tag_value(""), "tag value is empty"),
    (lambda: escape_measurement("a\\b"), r"measurement 'a\\\\b' contains a backslash, which line protocol"),
    (lambda: escape_field_key("a\nb"), r"field key 'a\\nb' contains the control character '\\n'"),
    (lambda: escape_tag_value("x\ud800"), r"tag value 'x\\ud800' is not valid Unicode"),
    (lambda: escape_measurement("#m"), "starts with '#'"),
    (lambda: escape_tag_key("time"), "tag key 'time' is reserved"),
    (lambda: escape_field_key("time"), "field key 'time' is reserved"),
    (lambda: format_field_value(2**63), f"integer field value {2**63} is outside int64"),
    (lambda: format_field_value(b"x"), "field value b'x' has unsupported type bytes"),
    (lambda: encode_lines([], "h"), r"precision 'h' is not one of \['ms', 'n', 'ns', 's', 'u', 'us'\]"),
])
def test_every_refusal_says_what_and_why(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_string_field_errors_quote_at_most_40_characters() -> None:
    with pytest.raises(ValueError) as err:
        escape_string_field("x" * 100 + "\ud800")
    assert "x" * 40 in str(err.value) and "x" * 41 not in str(err.value)
    assert "not valid Unicode" in str(err.value)
    assert escape_string_field('a"b\\c\nd') == '"a\\"b\\\\c\nd"'
